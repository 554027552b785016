"""Stored photos fitted to what a channel accepts as a photo, with Pillow.

A cadre may send a 48-megapixel picture or a 9000×400 panorama *as a file*;
it is stored as sent (the evidence stays whole), but Telegram refuses it as a
photo (PHOTO_INVALID_DIMENSIONS: width + height at most 10,000, sides at most
20:1, 10 MB) and WeCom takes images of at most 10 MB, JPEG or PNG only. Before
a photo is sent, `fit` gives bytes the channel takes as a photo — the
original when it already fits, else a downscaled JPEG — or None when no
photo can show it (a panorama beyond the ratio, bytes Pillow cannot read as
an image the channel would refuse): the channel then sends the original as
a document, and the text and buttons of the message go out either way.

Bytes Pillow cannot decode at all are passed through unchanged: the channel
decides, and a refusal falls back to a document.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

MB = 1024 * 1024


@dataclass(frozen=True)
class PhotoLimits:
    """What one channel accepts as a photo."""

    name: str
    max_bytes: int
    max_side_sum: int | None = None  # width + height
    max_ratio: float | None = None  # long side / short side
    formats: frozenset[str] = frozenset({"JPEG", "PNG", "GIF", "WEBP"})


# https://core.telegram.org/bots/api#sendphoto
TELEGRAM_PHOTO = PhotoLimits("telegram", 10 * MB, max_side_sum=10_000, max_ratio=20)
# https://developer.work.weixin.qq.com/document/path/90253 (上传临时素材: 图片 10MB, JPG/PNG)
WECOM_IMAGE = PhotoLimits("wecom", 10 * MB, formats=frozenset({"JPEG", "PNG"}))

_QUALITIES = (85, 75, 60)
# A photo that must be re-encoded anyway is made at most this long: Telegram
# shows photos at up to 2560 px, and decoding a 48-megapixel JPEG at half
# scale (Pillow's draft mode) takes a fraction of the time.
REENCODED_LONG_SIDE = 2560


def _fits(limits: PhotoLimits, width: int, height: int, size: int, kind: str | None) -> bool:
    if size > limits.max_bytes or kind not in limits.formats:
        return False
    if limits.max_side_sum is not None and width + height > limits.max_side_sum:
        return False
    return limits.max_ratio is None or max(width, height) <= limits.max_ratio * min(width, height)


def fit(data: bytes, limits: PhotoLimits) -> bytes | None:
    """`data` as a photo `limits` allow: the same bytes if they fit, a
    downscaled JPEG if they can be made to, None if not (send as a document)."""
    try:
        with Image.open(io.BytesIO(data)) as probe:  # reads the header only
            width, height, kind = probe.width, probe.height, probe.format
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return data  # not something Pillow reads: let the channel judge
    if width <= 0 or height <= 0:
        return None
    if _fits(limits, width, height, len(data), kind):
        return data
    if limits.max_ratio is not None and max(width, height) > limits.max_ratio * min(width,
                                                                                    height):
        return None  # no scaling changes a ratio
    try:
        return _shrink(data, limits, width, height)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        log.warning("a photo of %sx%s could not be re-encoded: %s", width, height, error)
        return None


def _shrink(data: bytes, limits: PhotoLimits, width: int, height: int) -> bytes | None:
    """Downscale to within the side limit and re-encode as JPEG, lowering the
    quality, then the size, until it is under the byte limit."""
    scale = min(1.0, REENCODED_LONG_SIDE / max(width, height))
    if limits.max_side_sum is not None and width + height > limits.max_side_sum:
        scale = min(scale, (limits.max_side_sum - 2) / (width + height))
    for _ in range(6):
        target = (max(1, int(width * scale)), max(1, int(height * scale)))
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", target)  # JPEG: decode at a reduced scale, far faster
            upright = ImageOps.exif_transpose(image)  # the re-encoded copy loses the EXIF tag
            converted = upright.convert("RGB")
            converted.thumbnail(target if upright.size == image.size else target[::-1],
                                Image.Resampling.LANCZOS)
            for quality in _QUALITIES:
                out = io.BytesIO()
                converted.save(out, "JPEG", quality=quality, optimize=True)
                encoded = out.getvalue()
                if _fits(limits, converted.width, converted.height, len(encoded), "JPEG"):
                    return encoded
        scale *= 0.7
    return None
