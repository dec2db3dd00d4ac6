"""Y'CbCr <-> R'G'B' conversion (BT.601 / BT.709, limited / full range) and chroma resampling.

Everything here is numpy on 8-bit code values; nothing is gamma-linearised (the codec works on
gamma-encoded R'G'B', as every video codec does).

Matrices. With luma weights `(Kr, Kb)` = `(0.299, 0.114)` for BT.601 and `(0.2126, 0.0722)` for
BT.709, `Kg = 1 - Kr - Kb`, and R', G', B' in [0, 1]:

    E'y  = Kr R' + Kg G' + Kb B'
    E'pb = (B' - E'y) / (2 (1 - Kb))          in [-0.5, 0.5]
    E'pr = (R' - E'y) / (2 (1 - Kr))          in [-0.5, 0.5]

8-bit code values:

    limited ("tv", "MPEG"):  Y = 16 + 219 E'y,   Cb = 128 + 224 E'pb,   Cr = 128 + 224 E'pr
    full    ("pc", "JPEG"):  Y = 255 E'y,        Cb = 128 + 255 E'pb,   Cr = 128 + 255 E'pr

The inverse is the exact algebraic inverse of the same equations (`yuv_to_rgb_matrix`). Results
are rounded to nearest (`np.rint`, ties to even) and clipped to [0, 255]; limited-range inputs
outside [16, 235] / [16, 240] are not clipped before the inverse, so super-whites survive as far
as RGB allows.

Chroma siting and resampling (4:2:0). We treat chroma samples as centred in each 2x2 luma block
(JPEG / MPEG-1 / y4m `C420jpeg` siting) for every source, including H.264 streams that signal
left siting; the half-pixel horizontal offset that ignores is far below the codec's error.
- Down (`chroma_downsample`): the 2x2 box average. From float Cb/Cr (RGB input) it averages
  before rounding; from uint8 4:4:4 planes it is `(a + b + c + d + 2) // 4` (round half up).
- Up (`chroma_upsample`): bilinear, centred: output pixel `i` takes `0.75 c[i // 2] +
  0.25 c[i // 2 -/+ 1]` (neighbour towards the pixel; edge samples repeated) in each axis,
  i.e. weights 9/16, 3/16, 3/16, 1/16 in 2-D. This is libjpeg's "fancy upsampling".

Accuracy (tests/test_color.py): full-range 4:4:4 uint8 round trip is within 1 level for BT.601
and BT.709; limited range within 2 (its 219/224-level scale cannot hold 256 levels). 4:2:0
round trip on smooth content: within 3 levels except the outermost two pixels (edge sample
repetition), mean < 0.6. Matrices agree with ffmpeg's swscale
(`-vf scale=out_color_matrix=...:out_range=...:flags=accurate_rnd`) within 1 level, in both
directions; 4:2:0 agrees within 1 level away from chroma edges (swscale filters chroma with a
wider kernel).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import numpy as np

MATRICES = ("bt601", "bt709")
RANGES = ("limited", "full")

# (Kr, Kb) luma weights.
_KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


@dataclasses.dataclass(frozen=True)
class ColorSpec:
    """How 8-bit Y'CbCr code values map to R'G'B': `matrix` in 'bt601' | 'bt709', `range` in
    'limited' | 'full'."""

    matrix: str = "bt601"
    range: str = "limited"

    def __post_init__(self):
        if self.matrix not in MATRICES:
            raise ValueError(f"ColorSpec.matrix must be one of {MATRICES}, got {self.matrix!r}")
        if self.range not in RANGES:
            raise ValueError(f"ColorSpec.range must be one of {RANGES}, got {self.range!r}")

    @classmethod
    def for_size(cls, width: int, height: int) -> ColorSpec:
        """The usual default for untagged video: BT.709 for HD (height >= 720), else BT.601;
        limited range. `width` is accepted for symmetry and ignored."""
        del width
        return cls("bt709" if height >= 720 else "bt601", "limited")


class YUVFrame(NamedTuple):
    """One frame as three uint8 planes. 4:2:0: `y` is [H, W], `u` (Cb) and `v` (Cr) are
    [H/2, W/2]. 4:4:4 (`frames_yuv444`): all three [H, W]. Grey sources have u = v = 128."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray


def _weights(matrix: str) -> tuple[float, float, float]:
    kr, kb = _KR_KB[matrix]
    return kr, 1.0 - kr - kb, kb


def _scales(color: ColorSpec) -> tuple[float, float, float]:
    """(luma offset, luma scale, chroma scale) on the 0..255 code scale."""
    if color.range == "limited":
        return 16.0, 219.0, 224.0
    return 0.0, 255.0, 255.0


def rgb_to_yuv_matrix(color: ColorSpec) -> tuple[np.ndarray, np.ndarray]:
    """(M [3, 3], offset [3]) with `[Y, Cb, Cr] = M @ [R', G', B'] + offset`, R'G'B' in [0, 1],
    results on the 0..255 code scale."""
    kr, kg, kb = _weights(color.matrix)
    y_off, y_scale, c_scale = _scales(color)
    rows = np.array(
        [
            [kr, kg, kb],
            [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
            [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
        ],
        dtype=np.float64,
    )
    m = rows * np.array([[y_scale], [c_scale], [c_scale]])
    return m, np.array([y_off, 128.0, 128.0])


def yuv_to_rgb_matrix(color: ColorSpec) -> tuple[np.ndarray, np.ndarray]:
    """(M [3, 3], offset [3]) with `[R', G', B'] = M @ ([Y, Cb, Cr] - offset)`, Y/Cb/Cr on the
    0..255 code scale, R'G'B' in [0, 1]. The exact inverse of `rgb_to_yuv_matrix`."""
    m, off = rgb_to_yuv_matrix(color)
    return np.linalg.inv(m), off


def _as_unit_float(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {rgb.shape}")
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) * np.float32(1 / 255)
    if np.issubdtype(rgb.dtype, np.floating):
        return rgb.astype(np.float32, copy=False)
    raise ValueError(f"expected uint8 or float RGB, got dtype {rgb.dtype}")


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def rgb_to_yuv_float(rgb: np.ndarray, color: ColorSpec) -> np.ndarray:
    """[H, W, 3] R'G'B' (uint8, or float in [0, 1]) -> [H, W, 3] float32 Y, Cb, Cr on the 0..255
    code scale, unrounded and full resolution."""
    m, off = rgb_to_yuv_matrix(color)
    x = _as_unit_float(rgb)
    return x @ m.T.astype(np.float32) + off.astype(np.float32)


def yuv_float_to_rgb_float(yuv: np.ndarray, color: ColorSpec) -> np.ndarray:
    """[H, W, 3] Y, Cb, Cr (0..255 code scale, any float) -> [H, W, 3] float32 R'G'B', unclipped
    (nominally [0, 1])."""
    m, off = _inverse(color)
    x = np.asarray(yuv, dtype=np.float32) - off.astype(np.float32)
    return x @ m.T.astype(np.float32)


def _check_even(h: int, w: int) -> None:
    if h % 2 or w % 2:
        raise ValueError(f"4:2:0 needs even width and height, got {w}x{h}")


def chroma_downsample(plane: np.ndarray) -> np.ndarray:
    """2x2 box average of a full-resolution chroma plane [H, W] (H, W even) -> [H/2, W/2].

    uint8 in: `(a + b + c + d + 2) // 4`, uint8 out. Float in: the plain mean, float32 out
    (rounding is left to the caller)."""
    plane = np.asarray(plane)
    _check_even(*plane.shape)
    if plane.dtype == np.uint8:
        p = plane.astype(np.uint16)
        s = p[0::2, 0::2] + p[0::2, 1::2] + p[1::2, 0::2] + p[1::2, 1::2]
        return ((s + 2) >> 2).astype(np.uint8)
    p = plane.astype(np.float32, copy=False)
    return (p[0::2, 0::2] + p[0::2, 1::2] + p[1::2, 0::2] + p[1::2, 1::2]) * np.float32(0.25)


def _upsample_axis(c: np.ndarray, axis: int) -> np.ndarray:
    c = np.moveaxis(c, axis, 0)
    out = np.empty((2 * c.shape[0],) + c.shape[1:], np.float32)
    q = c * np.float32(0.25)
    out[0::2] = q
    out[0::2] *= 3
    out[1::2] = out[0::2]
    out[2::2] += q[:-1]  # even outputs lean towards the previous sample ...
    out[0] += q[0]  # ... which at the edge is the sample itself
    out[1:-1:2] += q[1:]  # odd outputs lean towards the next sample
    out[-1] += q[-1]
    return np.moveaxis(out, 0, axis)


def chroma_upsample(plane: np.ndarray) -> np.ndarray:
    """Centred bilinear 2x upsampling [h, w] -> [2h, 2w] float32 (see module docstring)."""
    c = np.asarray(plane, dtype=np.float32)
    return _upsample_axis(_upsample_axis(c, 0), 1)


def rgb_to_yuv420(rgb: np.ndarray, color: ColorSpec | None = None) -> YUVFrame:
    """[H, W, 3] R'G'B' (uint8, or float in [0, 1]; H, W even) -> 4:2:0 `YUVFrame` uint8.

    `color` defaults to `ColorSpec.for_size(W, H)`. Chroma is the 2x2 mean of the full-resolution
    float Cb/Cr, rounded once."""
    rgb = np.asarray(rgb)
    h, w = rgb.shape[:2]
    _check_even(h, w)
    color = color or ColorSpec.for_size(w, h)
    yuv = rgb_to_yuv_float(rgb, color)
    return YUVFrame(
        _to_uint8(yuv[..., 0]),
        _to_uint8(chroma_downsample(yuv[..., 1])),
        _to_uint8(chroma_downsample(yuv[..., 2])),
    )


def rgb_to_yuv444(rgb: np.ndarray, color: ColorSpec | None = None) -> YUVFrame:
    """[H, W, 3] R'G'B' (uint8, or float in [0, 1]) -> 4:4:4 `YUVFrame` uint8 (three [H, W])."""
    rgb = np.asarray(rgb)
    color = color or ColorSpec.for_size(rgb.shape[1], rgb.shape[0])
    yuv = _to_uint8(rgb_to_yuv_float(rgb, color))
    return YUVFrame(yuv[..., 0], yuv[..., 1], yuv[..., 2])


def _rgb_from_planes(
    frame: YUVFrame, upsample: bool, color: ColorSpec, scale: float
) -> np.ndarray:
    """[3, H, W] (planar) float32 R'G'B' * scale, unclipped, from uint8/float planes."""
    y = np.asarray(frame.y, dtype=np.float32)
    if upsample:
        _check_even(*y.shape)
        u, v = chroma_upsample(frame.u), chroma_upsample(frame.v)
    else:
        u, v = (np.asarray(p, dtype=np.float32) for p in (frame.u, frame.v))
    if u.shape != y.shape or v.shape != y.shape:
        raise ValueError(
            f"chroma planes {np.shape(frame.u)} / {np.shape(frame.v)} do not match luma "
            f"{y.shape} for {'4:2:0' if upsample else '4:4:4'}"
        )
    m, off = _inverse(color)
    m = m * scale
    bias = -(m @ off)  # fold the code-value offsets into one constant per channel
    out = np.empty((3,) + y.shape, np.float32)
    scratch = np.empty(y.shape, np.float32)
    for c in range(3):
        np.multiply(y, np.float32(m[c, 0]), out=out[c])
        for k, plane in ((1, u), (2, v)):
            if abs(m[c, k]) > 1e-9:  # R has no Cb term, B no Cr term
                np.multiply(plane, np.float32(m[c, k]), out=scratch)
                out[c] += scratch
        out[c] += np.float32(bias[c])
    return out


def _interleave(planar: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(planar.transpose(1, 2, 0))


@functools.cache
def _inverse(color: ColorSpec) -> tuple[np.ndarray, np.ndarray]:
    return yuv_to_rgb_matrix(color)


def _round_rgb(x: np.ndarray) -> np.ndarray:
    np.clip(x, 0.0, 255.0, out=x)
    np.rint(x, out=x)
    return _interleave(x.astype(np.uint8))


def _unit_rgb(x: np.ndarray) -> np.ndarray:
    np.clip(x, 0.0, 1.0, out=x)
    return _interleave(x)


def yuv420_to_rgb_float(frame: YUVFrame, color: ColorSpec | None = None) -> np.ndarray:
    """4:2:0 `YUVFrame` -> [H, W, 3] float32 R'G'B' clipped to [0, 1] (no 8-bit rounding)."""
    h, w = np.shape(frame.y)
    color = color or ColorSpec.for_size(w, h)
    return _unit_rgb(_rgb_from_planes(frame, True, color, 1.0))


def yuv420_to_rgb(frame: YUVFrame, color: ColorSpec | None = None) -> np.ndarray:
    """4:2:0 `YUVFrame` -> [H, W, 3] uint8 R'G'B'. `color` defaults to `ColorSpec.for_size`."""
    h, w = np.shape(frame.y)
    color = color or ColorSpec.for_size(w, h)
    return _round_rgb(_rgb_from_planes(frame, True, color, 255.0))


def yuv444_to_rgb_float(frame: YUVFrame, color: ColorSpec | None = None) -> np.ndarray:
    """4:4:4 `YUVFrame` -> [H, W, 3] float32 R'G'B' clipped to [0, 1]."""
    h, w = np.shape(frame.y)
    color = color or ColorSpec.for_size(w, h)
    return _unit_rgb(_rgb_from_planes(frame, False, color, 1.0))


def yuv444_to_rgb(frame: YUVFrame, color: ColorSpec | None = None) -> np.ndarray:
    """4:4:4 `YUVFrame` -> [H, W, 3] uint8 R'G'B'."""
    h, w = np.shape(frame.y)
    color = color or ColorSpec.for_size(w, h)
    return _round_rgb(_rgb_from_planes(frame, False, color, 255.0))


def yuv444_to_yuv420(frame: YUVFrame) -> YUVFrame:
    """4:4:4 uint8 planes -> 4:2:0 by 2x2 chroma averaging (rounded half up); luma untouched."""
    return YUVFrame(frame.y, chroma_downsample(frame.u), chroma_downsample(frame.v))


def yuv420_to_yuv444(frame: YUVFrame) -> YUVFrame:
    """4:2:0 -> 4:4:4 uint8 by centred bilinear chroma upsampling."""
    return YUVFrame(
        frame.y, _to_uint8(chroma_upsample(frame.u)), _to_uint8(chroma_upsample(frame.v))
    )


def gray_frame(y: np.ndarray, subsampled: bool = True) -> YUVFrame:
    """A grey `YUVFrame` from a luma plane: u = v = 128 at half (4:2:0) or full size."""
    h, w = y.shape
    shape = (h // 2, w // 2) if subsampled else (h, w)
    c = np.full(shape, 128, np.uint8)
    return YUVFrame(y, c, c.copy())
