"""Photos fitted to each channel's limits (`bot.images`), with real image
files made by Pillow, and the liaison's alert on Telegram when a cadre's
photo is too big or too long to be a Telegram photo: the photo is fitted or
sent as a document, and the text and buttons always go out."""

from __future__ import annotations

import asyncio
import io
import os
from datetime import UTC, datetime

from PIL import Image
from sqlmodel import Session, col, select

from bot.images import TELEGRAM_PHOTO, WECOM_IMAGE, fit
from models import OutboxMessage
from tests.conftest import JPEG
from tests.fakes.telegram_api import FakeTelegram
from tests.test_telegram import LIAISON, district, has_button, ids, reply_to, running, until
from workflows import accounts
from workflows.calls import raise_call
from workflows.context import Context
from workflows.photos import Photo

__all__ = ["district"]  # the fixture, used by name


def picture(width: int, height: int, kind: str = "JPEG", noise: bool = False) -> bytes:
    """A real image file: a smooth gradient (small on disk), or noise (large)."""
    if noise:
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    image.save(out, kind)
    return out.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def test_a_photo_that_fits_is_sent_as_it_is() -> None:
    photo = picture(1600, 1200)
    assert fit(photo, TELEGRAM_PHOTO) is photo
    assert fit(photo, WECOM_IMAGE) is photo


def test_48_megapixels_are_scaled_down_for_telegram() -> None:
    fitted = fit(picture(8000, 6000), TELEGRAM_PHOTO)
    assert fitted is not None
    width, height = size_of(fitted)
    assert width + height <= 10_000 and width / height == 8000 / 6000
    assert len(fitted) <= TELEGRAM_PHOTO.max_bytes


def test_a_panorama_beyond_20_to_1_cannot_be_a_telegram_photo() -> None:
    assert fit(picture(9000, 400), TELEGRAM_PHOTO) is None
    # WeCom has no ratio limit: the panorama goes as it is.
    panorama = picture(9000, 400)
    assert fit(panorama, WECOM_IMAGE) is panorama


def test_over_10_mb_is_re_encoded_under_it() -> None:
    heavy = picture(2200, 2000, "PNG", noise=True)
    assert len(heavy) > 10 * 1024 * 1024
    for limits in (TELEGRAM_PHOTO, WECOM_IMAGE):
        fitted = fit(heavy, limits)
        assert fitted is not None and len(fitted) <= limits.max_bytes
        assert Image.open(io.BytesIO(fitted)).format == "JPEG"


def test_wecom_gets_jpeg_or_png_only() -> None:
    fitted = fit(picture(640, 480, "WEBP"), WECOM_IMAGE)
    assert fitted is not None and Image.open(io.BytesIO(fitted)).format == "JPEG"
    webp = picture(640, 480, "WEBP")
    assert fit(webp, TELEGRAM_PHOTO) is webp


def test_the_orientation_survives_re_encoding() -> None:
    image = Image.linear_gradient("L").resize((6000, 8000)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° to show": the camera held sideways
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    fitted = fit(out.getvalue(), TELEGRAM_PHOTO)
    assert fitted is not None
    width, height = size_of(fitted)
    assert width > height  # turned upright, since the copy has no EXIF tag


def test_bytes_pillow_cannot_read_are_left_to_the_channel() -> None:
    assert fit(JPEG, TELEGRAM_PHOTO) == JPEG


def test_the_alert_reaches_the_liaison_whatever_the_photos(district: Context) -> None:
    """The cadre sent a 48-megapixel photo and a 9000×400 panorama as files:
    the alert carries a fitted photo, the panorama as a document, and the
    card with its buttons — nothing is given up."""
    ctx = district
    big, panorama = picture(8000, 6000), picture(9000, 400)
    caller = ids(ctx, "li-ming")
    call = raise_call(ctx, caller, datetime.now(UTC), "村口路面塌陷",
                      item_code="drainage-blockage", photos=[Photo(big), Photo(panorama)])

    async def scenario(tg: FakeTelegram) -> None:
        async with running(ctx, tg):
            alert = await reply_to(tg, LIAISON, 0, has_button(rf"^c:ack:{call.id}$"))
            assert call.number in (alert.text or "")
            sent = tg.messages_to(LIAISON)
            [photo] = [m for m in sent if m.method == "sendPhoto"]
            width, height = size_of(photo.photos[0])  # type: ignore[arg-type]
            assert width + height <= 10_000
            [document] = [m for m in sent if m.method == "sendDocument"]
            assert document.photos == [panorama]  # the original, whole
            await until(lambda: _status(ctx, call.id) == "delivered")

    with FakeTelegram() as tg:
        asyncio.run(scenario(tg))


def test_a_photo_telegram_refuses_goes_as_a_document(district: Context) -> None:
    """Telegram refuses a photo we thought fit (it has its own reasons): the
    photo follows as a document and the card still goes out."""
    ctx = district
    photo = picture(800, 600)
    call = raise_call(ctx, ids(ctx, "li-ming"), datetime.now(UTC), "井盖缺失",
                      item_code="drainage-blockage", photos=[Photo(photo)])

    async def scenario(tg: FakeTelegram) -> None:
        tg.fail_next("sendPhoto", status=400, count=100,
                     description="Bad Request: IMAGE_PROCESS_FAILED")
        async with running(ctx, tg):
            alert = await reply_to(tg, LIAISON, 0, has_button(rf"^c:ack:{call.id}$"))
            assert alert.method == "sendMessage" and call.number in (alert.text or "")
            documents = [m for m in tg.messages_to(LIAISON) if m.method == "sendDocument"]
            assert [d.photos for d in documents] == [[photo]]
            await until(lambda: _status(ctx, call.id) == "delivered")

    with FakeTelegram() as tg:
        asyncio.run(scenario(tg))


def _status(ctx: Context, call_id: int | None) -> str:
    """The status of the liaison's (Telegram) copy of the call's alert."""
    with Session(ctx.engine) as session:
        rows = session.exec(select(OutboxMessage).where(
            OutboxMessage.call_id == call_id, col(OutboxMessage.template) == "call_alert"))
        for row in rows:
            if accounts.account_map(session, row.member_id).get("telegram") == str(LIAISON):
                return row.status.value
    return "missing"
