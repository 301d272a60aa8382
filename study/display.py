"""What a participant's browser receives for a stimulus: the stored PNG drawn per the study's
`display` settings (study/settings.py DisplaySettings).

The project's stimuli are small binarised drawings (16 px for the embedded digits): enlarged
nearest-neighbour, every pixel is a visible block. `smooth` enlarges the image with bicubic
interpolation, blurs it with a Gaussian of `blur` stored pixels, and thresholds a black-and-white
image at mid-grey again, which turns the blocks into strokes with round edges. An image with
grey levels keeps them (only enlarged and blurred), so a study that mixes grey samples with
black-and-white drawings shows that difference as it is instead of hiding it.

The rendering is a pure function of the stored file and the settings: every stimulus of a
condition, real drawing or model sample, goes through the same steps. Rendered files are
cached under STIMULI_ROOT/display/ by the source's sha256 and the settings, written atomically,
so any number of workers share them.
"""

from __future__ import annotations

import io
import secrets
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from study.settings import DisplaySettings

CACHE_DIR = "display"


def render(image: Image.Image, display: DisplaySettings) -> Image.Image:
    """`image` (any mode, read as grey) drawn per `display`: mode `pixels` returns it as grey;
    mode `smooth` enlarges it so that its longer side is `display.size` px (never shrinks it),
    blurs it by `display.blur` source pixels and thresholds it at 128 when its only values are
    0 and 255. Returns a mode "L" image."""
    gray = image.convert("L")
    if display.mode == "pixels":
        return gray
    w, h = gray.size
    scale = max(1.0, display.size / max(w, h))
    out = gray.resize((round(w * scale), round(h * scale)), Image.Resampling.BICUBIC)
    if display.blur > 0:
        out = out.filter(ImageFilter.GaussianBlur(display.blur * scale))
    levels = np.unique(np.asarray(gray))
    if set(levels.tolist()) <= {0, 255}:
        out = out.point(lambda v: 255 if v >= 128 else 0)
    return out


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def cache_key(display: DisplaySettings) -> str:
    """The cache folder of one rendering (`smooth-512-0.7`)."""
    return f"{display.mode}-{display.size}-{display.blur:g}"


def displayed_file(source: Path, sha256: str, stimuli_root: str | Path, display: DisplaySettings) -> Path:
    """The file to send for the stored image `source` (content sha256 `sha256`): `source` itself
    for mode `pixels`, else its rendering, made on first use and kept in the display cache."""
    if display.mode == "pixels":
        return source
    target = Path(stimuli_root) / CACHE_DIR / cache_key(display) / sha256[:2] / f"{sha256}.png"
    if not target.is_file():
        with Image.open(source) as im:
            data = png_bytes(render(im, display))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)  # atomic: a concurrent request never reads half a file
    return target
