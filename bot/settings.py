"""Typed settings, one section per concern.

Read from the TOML file named by `--config` or `YOUHU_CONFIG` (optional: every
key has an embedded default), then overridden by environment variables
`YOUHU_<SECTION>__<KEY>` (e.g. `YOUHU_DATABASE__URL`); top-level keys are
`YOUHU_<KEY>` (e.g. `YOUHU_TIMEZONE`). Unknown keys and bad values stop the
program at start-up with the key named.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from datetime import time
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

QUIET_HOURS = re.compile(r"^(?:none|([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d)$")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(Section):
    url: str = "sqlite:///youhu.db"


class MediaSettings(Section):
    dir: Path = Path("media")
    max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)


class WorkdaySettings(Section):
    end: time = time(18, 0)


class CalendarSettings(Section):
    override_file: Path | None = None


class EscalationSettings(Section):
    """Defaults for every domain; a domain in the catalog may override the
    supervision and accountability delays and the quiet hours."""

    repeat_every: str = "1wd"
    quiet_hours: str = "22:00-07:00"
    auto_close_after_days: int = Field(default=3, gt=0)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_format(cls, value: str) -> str:
        if not QUIET_HOURS.match(value):
            raise ValueError("expected 'HH:MM-HH:MM' or 'none'")
        return value

    @field_validator("repeat_every")
    @classmethod
    def _limit_format(cls, value: str) -> str:
        from workflows.deadlines import Limit

        Limit.parse(value)
        return value


class EvaluationSettings(Section):
    """The two-way evaluation: half the towns' ratings, half performance made
    of the four weights below (they are normalised, so only ratios matter)."""

    rating_share: float = Field(default=0.5, ge=0, le=1)
    on_time_acknowledge: float = Field(default=0.25, ge=0)
    on_time_respond: float = Field(default=0.25, ge=0)
    on_time_resolve: float = Field(default=0.25, ge=0)
    closure: float = Field(default=0.25, ge=0)


class BurdenSettings(Section):
    """The form-burden watch: estimated minutes a town spends per field of a
    request (the report's town hours), and a department's score deduction per
    unapproved out-of-plan request and per duplicate — 0 (off) by default."""

    minutes_per_field: int = Field(default=10, ge=1, le=600)
    deduct_out_of_plan: float = Field(default=0.0, ge=0, le=100)
    deduct_duplicate: float = Field(default=0.0, ge=0, le=100)


class SchedulerSettings(Section):
    """The sweep (reminders, escalation, the daily routine) and the deliverer."""

    sweep_seconds: float = Field(default=30, gt=0)
    deliver_seconds: float = Field(default=5, gt=0)
    digest_at: time = time(8, 30)


class TelegramSettings(Section):
    """A Telegram bot (BotFather token). `base_url`/`base_file_url` point at a
    self-hosted Bot API server (or the tests' fake one)."""

    token: SecretStr | None = None
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"

    @field_validator("webhook_secret")
    @classmethod
    def _secret_format(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram accepts 1-256 characters A-Z, a-z, 0-9, _ and -.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}",
                                                  value.get_secret_value()):
            raise ValueError("1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value


class WeComSettings(Section):
    """A WeCom self-built app (企业微信自建应用): the CorpID (我的企业 → 企业信息),
    the app's AgentId and Secret, and the Token and EncodingAESKey of its
    callback (接收消息). `api_base` points at a private deployment (or the
    tests' fake server); `path` is where the callback is served."""

    corp_id: str | None = None
    agent_id: int | None = None
    secret: SecretStr | None = None
    token: SecretStr | None = None
    encoding_aes_key: SecretStr | None = None
    api_base: str = "https://qyapi.weixin.qq.com"
    path: str = "/wecom/callback"

    REQUIRED: ClassVar[tuple[str, ...]] = ("corp_id", "agent_id", "secret", "token",
                                           "encoding_aes_key")

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key_format(cls, value: SecretStr | None) -> SecretStr | None:
        # WeCom shows 43 base64 characters: a 32-byte AES key without its "=".
        # wechatpy fails on anything else with a bare AssertionError, and only
        # when the first callback arrives; say so at start-up instead.
        if value is None:
            return value
        key = value.get_secret_value()
        if not re.fullmatch(r"[A-Za-z0-9+/]{43}", key):
            raise ValueError("expected the 43 base64 characters WeCom shows")
        try:
            decoded = base64.b64decode(key + "=", validate=True)
        except binascii.Error as error:
            raise ValueError(f"not base64: {error}") from error
        if len(decoded) != 32:
            raise ValueError("does not decode to a 32-byte key")
        return value

    @field_validator("path")
    @classmethod
    def _path_format(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @field_validator("api_base")
    @classmethod
    def _api_base_format(cls, value: str) -> str:
        if not re.match(r"^https?://[^/]", value):
            raise ValueError("expected an http:// or https:// address")
        return value.rstrip("/")

    def missing(self) -> list[str]:
        """The keys a working app needs that are not set."""
        return [key for key in self.REQUIRED if getattr(self, key) is None]

    @property
    def configured(self) -> bool:
        """Whether any of the app's keys is set (then all of them must be)."""
        return len(self.missing()) < len(self.REQUIRED)


class HttpSettings(Section):
    """Where the webhook application listens."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)


class BoardSettings(Section):
    """The dispatch board (`/board`), served with the webhooks on `[http]`.
    `url` is the address browsers reach it at (e.g. behind a reverse proxy,
    `https://board.example.gov.cn`); the board is served, and `/board` in
    chat sends login links, only when it is set. Behind https the session
    cookie is marked Secure."""

    url: str | None = None

    @field_validator("url")
    @classmethod
    def _url_format(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class Open311Settings(Section):
    """The Open311 GeoReport v2 API for other systems (see the README, "Calls
    from other systems"), served under /open311/v2/ on [http] host and port.
    Off unless enabled: it opens a port a polling-only bot does not need."""

    enabled: bool = False
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    media_timeout_seconds: float = Field(default=10.0, gt=0)
    # media_url photos come from public addresses only, unless the systems'
    # image servers sit on the district's own network.
    media_private_addresses: bool = False


class Settings(BaseSettings):
    """Everything youhu can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="YOUHU_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    timezone: str = "Asia/Shanghai"
    call_prefix: str = Field(default="BY", pattern=r"^[A-Z]{1,6}$")
    database: DatabaseSettings = DatabaseSettings()
    media: MediaSettings = MediaSettings()
    workday: WorkdaySettings = WorkdaySettings()
    calendar: CalendarSettings = CalendarSettings()
    escalation: EscalationSettings = EscalationSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    burden: BurdenSettings = BurdenSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    telegram: TelegramSettings = TelegramSettings()
    wecom: WeComSettings = WeComSettings()
    http: HttpSettings = HttpSettings()
    board: BoardSettings = BoardSettings()
    open311: Open311Settings = Open311Settings()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown timezone {value!r}") from error
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _CONFIG_FILE.get("path")
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


# The TOML file is chosen at run time (--config), which pydantic-settings'
# class-level config cannot express; this holds it for the duration of load().
_CONFIG_FILE: dict[str, Path | None] = {}


class SettingsError(Exception):
    """The configuration is wrong; the message names the file, key and fault."""


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from `config` (else `YOUHU_CONFIG`, else defaults only)
    and the environment. Raises SettingsError with every fault listed."""
    path = config or (Path(os.environ["YOUHU_CONFIG"]) if os.environ.get("YOUHU_CONFIG") else None)
    if path is not None and not path.is_file():
        raise SettingsError(f"configuration file not found: {path}")
    _CONFIG_FILE["path"] = path
    try:
        return Settings(**overrides)
    except ValidationError as error:
        where = f" in {path}" if path else ""
        faults = "; ".join(
            f"{'.'.join(str(part) for part in fault['loc'])}: {fault['msg']}"
            for fault in error.errors()
        )
        raise SettingsError(f"bad configuration{where}: {faults}") from error
    except ValueError as error:  # e.g. a TOML syntax error
        raise SettingsError(f"bad configuration file {path}: {error}") from error
    finally:
        _CONFIG_FILE.pop("path", None)
