"""The `youhu` command as an admin uses it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlmodel import Session, select

from bot.cli import main
from models import CatalogItem, ChannelAccount, Member, Unit, make_engine
from workflows import accounts

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("YOUHU_DATABASE__URL", url)
    monkeypatch.delenv("YOUHU_CONFIG", raising=False)
    return url


def count(url: str, model: type[Unit] | type[Member] | type[CatalogItem]) -> int:
    engine = make_engine(url)
    with Session(engine) as session:
        rows = len(session.exec(select(model)).all())
    engine.dispose()
    return rows


def test_init_loads_the_example_district(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["init", "--org", str(EXAMPLES / "org.yaml"), "--catalog",
            str(EXAMPLES / "catalog.yaml")]
    assert main(args) == 0
    assert "domains" in capsys.readouterr().out
    units, items = count(database, Unit), count(database, CatalogItem)
    assert units > 70 and items >= 15
    assert main(args) == 0  # again: an upsert, nothing doubled
    assert (count(database, Unit), count(database, CatalogItem)) == (units, items)


def test_init_refuses_a_bad_org_and_loads_nothing(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    assert main(["init", "--org", str(DATA / "bad_org_unknown_unit.yaml")]) == 1
    error = capsys.readouterr().err
    assert "nothing loaded" in error and re.search(r"line \d+", error)
    assert count(database, Unit) == 0


def test_init_binds_the_accounts_of_the_org_file_and_refuses_a_taken_one(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--org", str(EXAMPLES / "org.yaml")]) == 0
    engine = make_engine(database)
    with Session(engine) as session:
        bound = {(m.code, a.channel, a.external_id) for a, m in session.exec(
            select(ChannelAccount, Member).where(ChannelAccount.member_id == Member.id))}
    assert {("zhang-wei", "telegram", "700000101"), ("he-wenbin", "telegram", "700000201"),
            ("he-wenbin", "wecom", "HeWenBin")} <= bound
    # 黄建国 binds a Telegram account by invite; a new file gives it to 唐可:
    # refused, nothing of the file loaded.
    with Session(engine) as session:
        huang = session.exec(select(Member).where(Member.code == "huang-jianguo")).one()
        accounts.bind(session, huang.id or 0, "telegram", 5550001)
        session.commit()
    org = tmp_path / "org.yaml"
    text = (EXAMPLES / "org.yaml").read_text(encoding="utf-8")
    org.write_text(text.replace("telegram_id: 700000001", "telegram_id: 5550001")
                   .replace("name: 张伟", "name: 张伟伟"), encoding="utf-8")
    assert main(["init", "--org", str(org)]) == 1
    error = capsys.readouterr().err
    assert "nothing loaded" in error and "tang-ke" in error and "5550001" in error
    with Session(engine) as session:
        assert session.exec(select(Member.name).where(Member.code == "zhang-wei")).one() == "张伟"
    engine.dispose()


def test_a_bad_catalog_loads_not_even_the_good_org(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = tmp_path / "catalog.yaml"
    text = (EXAMPLES / "catalog.yaml").read_text(encoding="utf-8")
    catalog.write_text(text.replace("lead: water", "lead: waterworks", 1), encoding="utf-8")
    assert main(["init", "--org", str(EXAMPLES / "org.yaml"), "--catalog", str(catalog)]) == 1
    assert "waterworks" in capsys.readouterr().err
    assert main(["init"]) == 0
    assert count(database, Unit) == 0 and count(database, Member) == 0


def test_demo_tells_the_month_and_reports(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--locale", "en"]) == 0
    out = capsys.readouterr().out
    assert "blocked drain" in out and "joint call" in out and "extension" in out
    assert "rejects the fix" in out and "closed unrated" in out
    assert "Accountability referral" in out and "Supervision order" in out
    assert "reminder_halfway" not in out and "supervise " not in out
    headline = re.search(r"(\d+) calls raised, (\d+) answered and closed\.", out)
    assert headline and int(headline[1]) > 30 and int(headline[2]) <= int(headline[1])
    assert "区水务局" in out
    # The auto-close happens when it falls due, inside the month — not on 11-01.
    closed = re.search(r"(\d\d-\d\d) \d\d:\d\d  (BY-\S+) closed unrated", out)
    assert closed and closed[1] == "10-28"
    # The workbook and the chart are written beside the text, and said where.
    for name in ("demo-report.xlsx", "demo-report.png"):
        assert (tmp_path / name).stat().st_size > 1000
        assert str(tmp_path / name) in out


def test_the_demo_tells_its_story_in_chinese_by_default(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the demo writes its workbook and chart here
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "本月的故事：" in out and "排水管堵塞" in out and "联合呼叫" in out
    assert "未评价自动办结" in out and "督办" in out and "问责" in out
    assert "blocked drain" not in out and "raises" not in out
    assert main(["demo", "--locale", "zh_Hant"]) == 0
    assert "本月的故事：" in capsys.readouterr().out
    assert main(["demo", "--locale", "fr"]) == 2


def test_stats_for_a_month(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["init", "--org", str(EXAMPLES / "org.yaml")])
    assert main(["stats", "--period", "2026-11"]) == 0
    out = capsys.readouterr().out
    assert "0 calls raised, 0 answered and closed" in out
    assert "白云区" in out  # the district's name comes from the org file
    assert main(["stats", "--period", "2026-11", "--lang", "zh_Hans"]) == 0
    assert "共发起呼叫0件，已响应办结0件。" in capsys.readouterr().out
    assert main(["stats", "--period", "November"]) == 2
    assert main(["stats", "--period", "2026-11", "--lang", "fr"]) == 2


def test_report_writes_the_workbook_chart_and_json(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["init", "--org", str(EXAMPLES / "org.yaml"), "--catalog",
          str(EXAMPLES / "catalog.yaml")])
    capsys.readouterr()
    xlsx, png, data = tmp_path / "r.xlsx", tmp_path / "out" / "r.png", tmp_path / "r.json"
    assert main(["report", "--period", "2026-11", "--xlsx", str(xlsx), "--chart", str(png),
                 "--json", str(data)]) == 0
    out = capsys.readouterr().out
    assert "0 calls raised" in out and f"wrote {xlsx}" in out
    assert load_workbook(xlsx).sheetnames == ["Summary", "Departments", "Towns", "Domains",
                                              "Ledger"]
    assert png.read_bytes().startswith(b"\x89PNG")
    exported = json.loads(data.read_text(encoding="utf-8"))
    assert exported["schema"] == "youhu.report/1" and exported["district"] == "白云区"
    assert main(["report", "--period", "2026-13"]) == 2


def test_check_calendar(database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["check-calendar", "--today", "2026-11-26"]) == 1
    assert "2027" in capsys.readouterr().out
    monkeypatch.setenv("YOUHU_CALENDAR__OVERRIDE_FILE", str(DATA / "calendar_override_2027.yaml"))
    assert main(["check-calendar", "--today", "2026-11-26"]) == 0
    assert main(["check-calendar", "--today", "2025-06-01"]) == 0


def test_bad_configuration_is_reported(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("YOUHU_TIMEZONE", "Nowhere/City")
    assert main(["check-calendar"]) == 2
    assert "timezone" in capsys.readouterr().err
