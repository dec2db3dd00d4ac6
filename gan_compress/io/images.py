"""Still images through Pillow: `read_image`, atomic `write_png` and `write_png_frames`."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Iterable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gan_compress.io.atomic import atomic_write_bytes, temp_path_for
from gan_compress.io.base import MAX_FRAME_PIXELS
from gan_compress.io.errors import EmptyVideoError, VideoError, VideoNotFoundError


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """PNG / JPEG / BMP / WebP -> [H, W, 3] uint8 R'G'B'.

    EXIF orientation is applied; grey and palette images are expanded to RGB; alpha is dropped
    (not composited); 16-bit images are reduced to 8 bits by rounding (`v / 257`).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoNotFoundError(path, "no such file")
    if os.path.isdir(path):
        raise VideoError(path, "is a directory, not an image file")
    try:
        with Image.open(path) as img:
            w, h = img.size  # from the header: refuse a decompression bomb before decoding
            if w * h > MAX_FRAME_PIXELS:
                raise VideoError(path, f"image size {w}x{h} is above the maximum of "
                                       f"{MAX_FRAME_PIXELS:,} pixels (4096x4096)")
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(img, dtype=np.float64)
                a = np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8)
                return np.repeat(a[..., None], 3, axis=-1)
            return np.array(img.convert("RGB"), dtype=np.uint8)
    except VideoError:
        raise
    except Image.DecompressionBombError as e:
        raise VideoError(path, f"image size is above the maximum of {MAX_FRAME_PIXELS:,} "
                               f"pixels (4096x4096): {e}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise VideoError(path, f"not a readable image ({e})") from None


def _as_rgb_uint8(path: str, rgb: np.ndarray) -> np.ndarray:
    a = np.asarray(rgb)
    if np.issubdtype(a.dtype, np.floating):
        a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] == 3)):
        raise ValueError(
            f"{path}: expected [H, W, 3] (or [H, W]) uint8 or float in [0, 1], "
            f"got {a.dtype} {a.shape}"
        )
    return a


def encode_png(rgb: np.ndarray, compress_level: int = 6) -> bytes:
    """PNG bytes of an [H, W, 3] (or [H, W]) uint8 image (floats in [0, 1] are rounded)."""
    buf = io.BytesIO()
    Image.fromarray(_as_rgb_uint8("<png>", rgb)).save(
        buf, format="PNG", compress_level=compress_level
    )
    return buf.getvalue()


def write_png(path: str | os.PathLike[str], rgb: np.ndarray, compress_level: int = 6) -> None:
    """Writes an RGB (or grey) image as PNG atomically (temp file + `os.replace`)."""
    path = os.fspath(path)
    _as_rgb_uint8(path, rgb)
    atomic_write_bytes(path, encode_png(rgb, compress_level))


def format_pattern(pattern: str, index: int) -> str:
    """ffmpeg-style frame file name: printf pattern with one integer field, e.g. `f_%05d.png`."""
    try:
        name = pattern % index
    except (TypeError, ValueError):
        name = None
    if name is None or name == pattern % (index + 1):
        raise ValueError(
            f"{pattern!r} is not a frame pattern with one integer field such as 'frame_%05d.png'"
        )
    return name


def write_png_frames(
    pattern: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    start: int = 1,
    compress_level: int = 6,
) -> list[str]:
    """Writes each [H, W, 3] uint8 frame to `pattern % i` (i = start, start + 1, ...; ffmpeg's
    image2 convention starts at 1). Returns the paths written.

    The set appears all at once or not at all: frames are written into a hidden
    `.<pattern>.partial-<pid>-<hex>/` directory beside the output and moved into place (one
    `os.replace` each, no data copied) only after the last frame was written; any error or
    interruption before that removes the directory and leaves no frame under a final name.
    """
    pattern = os.fspath(pattern)
    format_pattern(pattern, start)  # validate before touching the disk
    directory = os.path.dirname(os.path.abspath(pattern))
    stage = temp_path_for(pattern)
    os.mkdir(stage)
    finals: list[str] = []
    moved: list[str] = []
    try:
        staged = []
        for i, rgb in enumerate(frames, start):
            final = os.path.join(directory, os.path.basename(format_pattern(pattern, i)))
            tmp = os.path.join(stage, os.path.basename(final))
            with open(tmp, "wb") as f:
                f.write(encode_png(rgb, compress_level))
            staged.append(tmp)
            finals.append(final)
        if not staged:
            raise EmptyVideoError(pattern, "no frames to write")
        for tmp, final in zip(staged, finals, strict=True):
            os.replace(tmp, final)
            moved.append(final)
    except BaseException:
        for final in moved:  # an error while moving (e.g. a full disk): take the set back
            with contextlib.suppress(OSError):
                os.unlink(final)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [format_pattern(pattern, i) for i in range(start, start + len(finals))]
