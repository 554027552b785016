"""Settings: TOML file, environment overrides, clear errors for bad keys and values."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings


def test_defaults_need_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YOUHU_CONFIG", raising=False)
    settings = load_settings()
    assert settings.database.url == "sqlite:///youhu.db"
    assert settings.timezone == "Asia/Shanghai"
    assert settings.workday.end == time(18, 0)
    assert settings.media.max_bytes == 10 * 1024 * 1024


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "youhu.toml"
    config.write_text(
        'timezone = "Asia/Urumqi"\n[database]\nurl = "sqlite:///a.db"\n'
        '[workday]\nend = "17:30"\n[calendar]\noverride_file = "cal.yaml"\n'
    )
    settings = load_settings(config)
    assert settings.timezone == "Asia/Urumqi"
    assert settings.workday.end == time(17, 30)
    assert settings.calendar.override_file == Path("cal.yaml")
    monkeypatch.setenv("YOUHU_DATABASE__URL", "sqlite:///b.db")
    monkeypatch.setenv("YOUHU_CONFIG", str(config))
    assert load_settings().database.url == "sqlite:///b.db"


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[database]\nurll = 'x'\n", "database.urll"),
        ("colour = 'red'\n", "colour"),
        ("timezone = 'Mars/Olympus'\n", "timezone"),
        ("[workday]\nend = '25:00'\n", "workday.end"),
        ("[escalation]\nquiet_hours = 'late'\n", "escalation.quiet_hours"),
        ("[escalation]\nrepeat_every = '3 days'\n", "escalation.repeat_every"),
        ("[media]\nmax_bytes = -1\n", "media.max_bytes"),
        ("[database\nurl = 'x'\n", "youhu.toml"),
    ],
)
def test_bad_configuration_names_the_key(tmp_path: Path, toml: str, named: str) -> None:
    config = tmp_path / "youhu.toml"
    config.write_text(toml)
    with pytest.raises(SettingsError, match=named.replace(".", r"\.")):
        load_settings(config)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_unknown_environment_key_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOUHU_DATABASE__URLL", "x")
    with pytest.raises(SettingsError, match="urll"):
        load_settings()
