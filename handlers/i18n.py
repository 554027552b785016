"""Translations and locale-aware formatting, per member.

Source strings are English, in the code, marked with `_()` (translated now)
or `N_()` (marked for extraction, translated where shown). Catalogs are
`locales/<locale>/LC_MESSAGES/youhu.po`, compiled to `.mo` by `make setup`
(`pybabel compile -d locales -D youhu`). A missing or stale `.mo` is compiled
from the `.po` in memory, so a fresh checkout still speaks every language.
"""

from __future__ import annotations

import functools
import gettext
import io
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale as BabelLocale
from babel.dates import format_date, format_time, format_timedelta, get_datetime_format
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

from models import Locale

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "youhu"
DEFAULT_LOCALE = Locale.ZH_HANS
_BABEL = {Locale.ZH_HANS: "zh_Hans_CN", Locale.ZH_HANT: "zh_Hant", Locale.EN: "en"}


def N_(message: str) -> str:
    """Mark `message` for extraction; it is translated where it is shown."""
    return message


def locale_from_hint(hint: str | None) -> Locale:
    """A platform's language hint ("zh-hans", "zh-TW", "en-GB"…) as one of
    the three locales; anything else is the default, Simplified Chinese."""
    if not hint:
        return DEFAULT_LOCALE
    text = hint.strip().replace("_", "-").lower()
    if text.startswith("en"):
        return Locale.EN
    if text in ("zh-hant", "zh-tw", "zh-hk", "zh-mo") or text.startswith("zh-hant"):
        return Locale.ZH_HANT
    return DEFAULT_LOCALE


def parse_locale(text: str) -> Locale | None:
    for locale in Locale:
        if text.strip().lower() == locale.value.lower():
            return locale
    return None


@functools.cache
def translations(locale: Locale) -> gettext.NullTranslations:
    """The catalog of `locale`: the compiled `.mo` when it is at least as new
    as the `.po`, else the `.po` compiled in memory."""
    folder = LOCALES_DIR / locale.value / "LC_MESSAGES"
    mo, po = folder / f"{DOMAIN}.mo", folder / f"{DOMAIN}.po"
    if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as handle:
            return Translations(handle, domain=DOMAIN)
    if po.is_file():
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=_BABEL[locale], domain=DOMAIN)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        return Translations(buffer, domain=DOMAIN)
    log.warning("no catalog for %s in %s; speaking English", locale.value, folder)
    return gettext.NullTranslations()


class Translator:
    """Speaks to one member: their language, the district's time zone."""

    def __init__(self, locale: Locale, tz: ZoneInfo) -> None:
        self.locale = locale
        self.tz = tz
        self.babel = BabelLocale.parse(_BABEL[locale])
        self._catalog = translations(locale)

    def _(self, message: str, **params: Any) -> str:
        """`message` in the member's language, with `%(name)s` filled in."""
        text = self._catalog.gettext(message)
        return text % params if params else text

    def join(self, *sentences: str) -> str:
        """Sentences as one text: Chinese sentences follow each other with no
        space (their full stops are full-width); English ones with one."""
        glue = " " if self.locale is Locale.EN else ""
        return glue.join(s.strip() for s in sentences if s.strip())

    def either(self, choices: Sequence[str]) -> str:
        """`choices` as one "a, b or c" in the member's language (CLDR's list
        pattern: "a、b或c" in Chinese)."""
        return format_list(list(choices), style="or", locale=self.babel)

    def datetime(self, moment: datetime) -> str:
        """A moment as local date and time, e.g. 2025年10月9日 18:00 / Oct 9, 2025, 6:00 PM."""
        local = moment.astimezone(self.tz)
        pattern = get_datetime_format("medium", locale=self.babel)
        return str(pattern).replace("{1}", format_date(local, "medium", locale=self.babel)).replace(
            "{0}", format_time(local, "short", locale=self.babel)
        )

    def number(self, value: float, pattern: str | None = None) -> str:
        return format_decimal(value, format=pattern, locale=self.babel)

    def percent(self, value: float | None) -> str:
        return "—" if value is None else format_percent(value, locale=self.babel)

    def duration(self, span: timedelta) -> str:
        return format_timedelta(span, threshold=1.5, locale=self.babel)
