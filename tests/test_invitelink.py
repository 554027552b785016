"""`youhu invite` prints the Telegram deep link (the bot's username from
getMe, asked once and remembered) and writes its QR code as a PNG that
scans back to the link."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import segno
from PIL import Image

from bot.cli import main
from bot.invitelink import QR_SCALE
from tests.fakes.telegram_api import FakeTelegram

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("YOUHU_DATABASE__URL", f"sqlite:///{tmp_path / 'invite.db'}")
    monkeypatch.setenv("YOUHU_MEDIA__DIR", str(tmp_path / "media"))
    monkeypatch.delenv("YOUHU_CONFIG", raising=False)
    monkeypatch.delenv("YOUHU_TELEGRAM__TOKEN", raising=False)
    assert main(["init", "--org", str(EXAMPLES / "org.yaml"), "--catalog",
                 str(EXAMPLES / "catalog.yaml")]) == 0
    return tmp_path


def modules(png: Path, size: int) -> list[list[bool]]:
    """The dark/light modules of a QR code image (border of 4 modules)."""
    image = Image.open(png).convert("L")
    assert image.size == ((size + 8) * QR_SCALE,) * 2
    centre = QR_SCALE // 2
    data = image.tobytes()  # one byte of grey per pixel, row by row
    width = image.size[0]

    def dark(x: int, y: int) -> bool:
        return data[((y + 4) * QR_SCALE + centre) * width + (x + 4) * QR_SCALE + centre] < 128

    return [[dark(x, y) for x in range(size)] for y in range(size)]


def test_invite_prints_the_deep_link_and_writes_its_qr_code(
        configured: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    with FakeTelegram() as tg:
        monkeypatch.setenv("YOUHU_TELEGRAM__TOKEN", tg.token)
        monkeypatch.setenv("YOUHU_TELEGRAM__BASE_URL", tg.base_url)
        qr = configured / "li.png"
        assert main(["invite", "--member", "li-ming", "--qr", str(qr)]) == 0
        out = capsys.readouterr().out
        code = re.search(r"/start (\S+)", out)
        assert code is not None
        link = f"https://t.me/youhu_test_bot?start={code[1]}"
        assert f"or open on Telegram: {link}" in out and str(qr) in out
        expected = segno.make(link, error="m", micro=False)
        size = int(expected.symbol_size(scale=1, border=0)[0])
        assert modules(qr, size) == [[bool(v) for v in row] for row in expected.matrix]
        assert qr.stat().st_size < 10_000
        # Asked once: the next invite uses the remembered username.
        assert main(["invite", "--member", "zhang-wei", "--qr", str(configured / "z.png")]) == 0
        assert "https://t.me/youhu_test_bot?start=" in capsys.readouterr().out
        assert [c.method for c in tg.requests].count("getMe") == 1


def test_without_a_token_or_a_reachable_telegram_the_code_is_still_printed(
        configured: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["invite", "--member", "li-ming"]) == 0
    out = capsys.readouterr().out
    assert "/start " in out and "no deep link" in out and "t.me" not in out
    monkeypatch.setenv("YOUHU_TELEGRAM__TOKEN", "42:unreachable")
    monkeypatch.setenv("YOUHU_TELEGRAM__BASE_URL", "http://127.0.0.1:9/bot")
    assert main(["invite", "--member", "li-ming"]) == 0
    out = capsys.readouterr().out
    assert "/start " in out and "no deep link this time" in out
