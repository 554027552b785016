"""Draw the two example photos of the README's console session (a blocked
drain, and the same drain cleared) — small real PNGs, made with Pillow:

    .venv/bin/python examples/make_images.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SIZE = (320, 240)


def scene(flooded: bool) -> Image.Image:
    image = Image.new("RGB", SIZE, (176, 206, 230))                     # sky
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 90, 320, 240), fill=(128, 128, 124))             # the road
    draw.rectangle((0, 84, 320, 92), fill=(196, 192, 180))              # the kerb
    draw.rectangle((130, 150, 190, 180), fill=(48, 48, 48))             # the drain grate
    for x in range(134, 190, 8):
        draw.line((x, 152, x, 178), fill=(96, 96, 96), width=2)
    if flooded:
        draw.ellipse((40, 120, 290, 215), fill=(118, 92, 52))           # muddy water
        draw.ellipse((70, 135, 180, 170), fill=(140, 112, 70))
        draw.polygon([(150, 160), (162, 150), (170, 164)], fill=(230, 230, 225))  # litter
    else:
        draw.ellipse((120, 182, 200, 196), fill=(110, 110, 108))        # a damp patch
    return image.quantize(colors=16)                                    # a few KB


def main() -> None:
    scene(flooded=True).save(HERE / "drain.png", optimize=True)
    scene(flooded=False).save(HERE / "after.png", optimize=True)


if __name__ == "__main__":
    main()
