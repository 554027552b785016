"""The `youhu` command as an admin uses it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.cli import main
from models import CatalogItem, Member, Unit, make_engine

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
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--locale", "en"]) == 0
    out = capsys.readouterr().out
    assert "blocked drain" in out and "joint call" in out and "extension" in out
    assert "rejects the fix" in out and "closed unrated" in out
    assert "Accountability referral" in out and "Supervision order" in out
    headline = re.search(r"(\d+) calls raised, (\d+) answered and closed\.", out)
    assert headline and int(headline[1]) > 30 and int(headline[2]) <= int(headline[1])
    assert "区水务局" in out


def test_the_demo_tells_its_story_in_chinese_by_default(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
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
    assert "0 calls raised, 0 answered and closed" in capsys.readouterr().out
    assert main(["stats", "--period", "November"]) == 2


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
