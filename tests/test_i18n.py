"""Every message the conversations can say exists, complete and well-formed,
in every catalog: a missing, empty or fuzzy translation, a catalog template
(.pot) behind the code, or a placeholder lost in translation fails here."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from handlers.i18n import Translator, locale_from_hint
from models import Locale

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
TZ = ZoneInfo("Asia/Shanghai")


def extracted() -> set[str]:
    """The msgids in the code right now, as `pybabel extract -F babel.cfg` finds them."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)  # type: ignore[no-untyped-call]
    found = extract_from_dir(str(ROOT), method_map, options_map,
                             keywords={"_": None, "N_": None})
    return {message for _file, _line, message, _comments, _context in found
            if isinstance(message, str) and message}


def catalog(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle)


def test_the_template_is_up_to_date_with_the_code() -> None:
    in_code = extracted()
    in_pot = {m.id for m in catalog(LOCALES / "messages.pot") if m.id}
    assert in_code, "nothing extracted: is babel.cfg right?"
    assert sorted(in_code - in_pot) == [], "run the pybabel extract/update of the README"
    assert sorted(in_pot - in_code) == [], "the .pot lists messages the code no longer has"


@pytest.mark.parametrize("locale", [locale.value for locale in Locale])
def test_every_message_is_translated_in_every_catalog(locale: str) -> None:
    translations = catalog(LOCALES / locale / "LC_MESSAGES" / "youhu.po")
    problems = []
    for msgid in sorted(extracted()):
        message = translations.get(msgid)
        if message is None:
            problems.append(f"missing: {msgid!r}")
        elif not isinstance(message.string, str) or not message.string:
            problems.append(f"empty or plural: {msgid!r}")
        elif message.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        elif sorted(PLACEHOLDER.findall(msgid)) != sorted(PLACEHOLDER.findall(message.string)):
            problems.append(f"placeholders differ: {msgid!r} → {message.string!r}")
        else:
            params = dict.fromkeys(PLACEHOLDER.findall(msgid), "x")
            try:
                _ = message.string % params if params else message.string
            except (KeyError, ValueError, TypeError) as error:
                problems.append(f"bad format ({error}): {message.string!r}")
    assert problems == []


def test_traditional_chinese_is_written_in_traditional_characters() -> None:
    simplified_only = set("这为请签办应确认过检对书时发说图们单号区镇门条")
    translations = catalog(LOCALES / "zh_Hant" / "LC_MESSAGES" / "youhu.po")
    offenders = [m.string for m in translations
                 if m.id and isinstance(m.string, str) and set(m.string) & simplified_only]
    assert offenders == []


def test_the_glossary_is_followed() -> None:
    hans = Translator(Locale.ZH_HANS, TZ)
    hant = Translator(Locale.ZH_HANT, TZ)
    assert [hans._(w) for w in ("Acknowledge", "Respond", "Resolve", "Return", "Urge",
                                "Supervision order", "Reminder")] == [
        "签收", "响应", "办结", "退回", "催办", "督办", "提醒"]
    assert [hant._(w) for w in ("Acknowledge", "Resolve", "Urge")] == ["簽收", "辦結", "催辦"]
    assert hans._("Mostly satisfied") == "基本满意"
    assert hans._("command centre") == "指挥调度中心"


def test_dates_and_numbers_follow_the_locale_in_shanghai_time() -> None:
    moment = datetime(2025, 10, 9, 10, 0, tzinfo=UTC)  # 18:00 in Shanghai
    assert Translator(Locale.ZH_HANS, TZ).datetime(moment) == "2025年10月9日 18:00"
    assert "6:00" in Translator(Locale.EN, TZ).datetime(moment)
    assert "Oct 9, 2025" in Translator(Locale.EN, TZ).datetime(moment)
    assert Translator(Locale.EN, TZ).number(12345) == "12,345"
    assert Translator(Locale.ZH_HANT, TZ).percent(0.807) == "81%"


@pytest.mark.parametrize(("hint", "locale"), [
    (None, Locale.ZH_HANS), ("zh-hans", Locale.ZH_HANS), ("zh-CN", Locale.ZH_HANS),
    ("zh-hant", Locale.ZH_HANT), ("zh-TW", Locale.ZH_HANT), ("en-GB", Locale.EN),
    ("fr", Locale.ZH_HANS),
])
def test_language_hints_map_to_the_three_locales(hint: str | None, locale: Locale) -> None:
    assert locale_from_hint(hint) == locale


# A space between two Chinese sentences, or around full-width punctuation,
# is a typo in a catalog (Chinese is written without spaces between words).
_SPACED = re.compile(r"[。！？；，：、）」”] |(?<=[\u4e00-\u9fff]) (?=[\u4e00-\u9fff（「“])")


@pytest.mark.parametrize("locale", ["zh_Hans", "zh_Hant"])
def test_chinese_translations_join_sentences_without_spaces(locale: str) -> None:
    spaced = [message.string for message in catalog(LOCALES / locale / "LC_MESSAGES"
                                                    / "youhu.po")
              if message.id and isinstance(message.string, str)
              and _SPACED.search(message.string)]
    assert spaced == []


@pytest.mark.parametrize("locale", [Locale.ZH_HANS, Locale.ZH_HANT])
def test_a_chinese_refusal_is_one_run_of_sentences(locale: Locale) -> None:
    """The sentences the code puts together (a refusal and "nothing was
    changed") are joined the same way."""
    from handlers.errors import describe
    from workflows.errors import WrongState

    text = describe(Translator(locale, TZ), WrongState("x", number="BY-2026-000001",
                                                        status="closed", action="respond"))
    assert "。" in text and not _SPACED.search(text)
    english = describe(Translator(Locale.EN, TZ), WrongState("x", number="BY-2026-000001",
                                                             status="closed", action="respond"))
    assert ". Nothing was changed." in english
