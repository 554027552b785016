"""Photos as callers and liaisons send them: checked, then stored by hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from models import Attachment, AttachmentStage, MediaStore
from workflows.errors import InvalidInput

MAX_PHOTOS = 9

# Magic numbers of the formats phones send. The content type a channel claims
# is not trusted: a PDF renamed .jpg must not reach a liaison as a "photo".
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
)


@dataclass(frozen=True)
class Photo:
    """Bytes a member sent as a photo."""

    data: bytes


def image_type(data: bytes) -> str | None:
    """The image type of `data` from its first bytes, or None if not an image."""
    for signature, offset, content_type in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            if content_type == "image/webp" and not data.startswith(b"RIFF"):
                continue
            return content_type
    return None


def check_photo(data: bytes, max_bytes: int) -> str:
    """Refuse what is not a usable photo; return its content type."""
    if not data:
        raise InvalidInput("the photo is empty", reason="empty_photo")
    if len(data) > max_bytes:
        raise InvalidInput(
            f"the photo is {len(data)} bytes, over the limit of {max_bytes}",
            reason="photo_too_large",
            limit_mb=max_bytes // (1024 * 1024),
        )
    content_type = image_type(data)
    if content_type is None:
        raise InvalidInput("the file is not a JPEG, PNG, GIF or WebP image", reason="not_an_image")
    return content_type


def attach_photos(
    session: Session,
    media: MediaStore,
    call_id: int,
    photos: list[Photo],
    stage: AttachmentStage,
    by: int,
    now: datetime,
    max_bytes: int,
) -> list[Attachment]:
    """Check every photo first (so one bad photo stores nothing), then store
    the bytes and add the attachment rows to the caller's transaction."""
    if len(photos) > MAX_PHOTOS:
        raise InvalidInput(
            f"at most {MAX_PHOTOS} photos", reason="too_many_photos", limit=MAX_PHOTOS
        )
    types = [check_photo(photo.data, max_bytes) for photo in photos]
    attachments = []
    for photo, content_type in zip(photos, types, strict=True):
        digest = media.put(photo.data)
        attachment = Attachment(
            call_id=call_id,
            sha256=digest,
            stage=stage,
            content_type=content_type,
            size=len(photo.data),
            uploaded_by=by,
            created_at=now,
        )
        session.add(attachment)
        attachments.append(attachment)
    session.flush()
    return attachments
