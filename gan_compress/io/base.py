"""`VideoInfo` and the `VideoReader` base class shared by every reader in `gan_compress.io`."""

from __future__ import annotations

import dataclasses
import fractions
import itertools
import os
from collections.abc import Iterator

import numpy as np

from gan_compress.io import color as color_lib
from gan_compress.io.color import ColorSpec, YUVFrame
from gan_compress.io.errors import UnsupportedFormatError

PIX_FMTS = ("yuv420p", "yuv444p", "gray")

# Largest frame (width * height) gan_compress reads, encodes or decodes: 4096 x 4096. A file
# that declares more is refused before any frame buffer is allocated.
MAX_FRAME_PIXELS = 4096 * 4096

VIDEO_EXTENSIONS = (".y4m", ".yuv", ".mkv", ".mp4", ".avi", ".webm", ".mov", ".m4v")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """True for names ending in a video extension we read (case-insensitive)."""
    return os.fspath(path).lower().endswith(VIDEO_EXTENSIONS)


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True for names ending in a still-image extension we read (case-insensitive)."""
    return os.fspath(path).lower().endswith(IMAGE_EXTENSIONS)


def as_fraction(fps: fractions.Fraction | int | float | str) -> fractions.Fraction:
    """A frame rate as an exact Fraction: 25 -> 25, '30000/1001' -> 30000/1001,
    29.97 -> 2997/100, and floats within 1e-6 of an NTSC rate N*1000/1001 snap to it."""
    if isinstance(fps, float):
        ntsc = fractions.Fraction(round(fps * 1001 / 1000) * 1000, 1001)
        f = ntsc if abs(float(ntsc) - fps) < 1e-6 else fractions.Fraction(fps).limit_denominator(
            1001
        )
    else:
        try:
            f = fractions.Fraction(fps)
        except (ValueError, TypeError, ZeroDivisionError):
            raise ValueError(f"frame rate must be a positive number or fraction such as "
                             f"30000/1001, got {fps!r}") from None
    if f <= 0:
        raise ValueError(f"frame rate must be positive, got {fps!r}")
    return f


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What a reader knows about its file before decoding.

    `fps` is exact (e.g. 30000/1001). `num_frames` is exact for y4m, raw yuv and images, the
    container's frame count where it has one (mp4), else None (mkv: unknown until decoded).
    `pix_fmt` is the source's layout: 'yuv420p' | 'yuv444p' | 'gray'; iteration always yields
    4:2:0. `sample_aspect` is the pixel aspect ratio when the file states one, else None.
    """

    path: str
    width: int
    height: int
    fps: fractions.Fraction
    num_frames: int | None
    pix_fmt: str
    color: ColorSpec
    sample_aspect: fractions.Fraction | None = None


class VideoReader:
    """Streams frames from one file; memory does not grow with the video's length.

    Use as a context manager. Every `iter()` (and each `frames_*` call) decodes from the first
    frame again, so a reader can be iterated more than once. `max_frames` (also settable
    afterwards) caps every iteration.

        with open_video("clip.mkv") as reader:
            for frame in reader:          # YUVFrame, 4:2:0 uint8
                ...
            rgb = next(reader.frames_rgb())  # [H, W, 3] uint8

    Subclasses implement `_native_frames()`, yielding frames in `info.pix_fmt` layout
    (YUVFrame with full-size chroma for 'yuv444p'; for 'gray' u and v are None).
    """

    def __init__(self, info: VideoInfo, max_frames: int | None = None):
        self.info = info
        self.max_frames = max_frames

    # -- to implement -------------------------------------------------------------------------
    def _native_frames(self) -> Iterator[YUVFrame]:
        raise NotImplementedError

    def close(self) -> None:
        """Releases the file; iterating afterwards is an error for readers holding a handle."""

    # -- public -------------------------------------------------------------------------------
    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _limited(self) -> Iterator[YUVFrame]:
        frames = self._native_frames()
        if self.max_frames is not None:
            frames = itertools.islice(frames, self.max_frames)
        return frames

    def __iter__(self) -> Iterator[YUVFrame]:
        """4:2:0 frames; 4:4:4 chroma is 2x2-averaged (`color.yuv444_to_yuv420`)."""
        fmt = self.info.pix_fmt
        if self.info.width % 2 or self.info.height % 2:
            raise UnsupportedFormatError(
                self.info.path,
                f"odd size {self.info.width}x{self.info.height} cannot be given as 4:2:0; "
                "use frames_rgb() or frames_yuv444()",
            )
        for f in self._limited():
            if fmt == "yuv444p":
                yield color_lib.yuv444_to_yuv420(f)
            elif fmt == "gray":
                yield color_lib.gray_frame(f.y, subsampled=True)
            else:
                yield f

    def frames_yuv444(self) -> Iterator[YUVFrame]:
        """4:4:4 frames: native planes for 4:4:4 sources, bilinear-upsampled chroma for 4:2:0,
        u = v = 128 for grey."""
        fmt = self.info.pix_fmt
        for f in self._limited():
            if fmt == "yuv420p":
                yield color_lib.yuv420_to_yuv444(f)
            elif fmt == "gray":
                yield color_lib.gray_frame(f.y, subsampled=False)
            else:
                yield f

    def frames_rgb(self, color: ColorSpec | None = None) -> Iterator[np.ndarray]:
        """[H, W, 3] uint8 R'G'B' frames, converted with `color` (default: `info.color`) from the
        native planes (4:4:4 sources keep full chroma)."""
        color = color or self.info.color
        fmt = self.info.pix_fmt
        for f in self._limited():
            if fmt == "yuv420p":
                yield color_lib.yuv420_to_rgb(f, color)
            elif fmt == "gray":
                yield color_lib.yuv444_to_rgb(color_lib.gray_frame(f.y, subsampled=False), color)
            else:
                yield color_lib.yuv444_to_rgb(f, color)

    def read(self, n: int | None = None) -> list[YUVFrame]:
        """The first `n` 4:2:0 frames (all, up to `max_frames`, if n is None) as a list."""
        return list(itertools.islice(iter(self), n))

    def __repr__(self) -> str:
        i = self.info
        return (
            f"{type(self).__name__}({i.path!r}, {i.width}x{i.height}, {i.pix_fmt}, "
            f"fps={i.fps}, frames={i.num_frames})"
        )
