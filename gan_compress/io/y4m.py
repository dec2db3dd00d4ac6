"""YUV4MPEG2 (`.y4m`): our own streaming reader and an atomic 4:2:0 writer.

Format: one text header line, then per frame a `FRAME[ params]\\n` line and the raw planes.

    YUV4MPEG2 W352 H288 F30000:1001 Ip A1:1 C420jpeg XCOLORRANGE=LIMITED

Read: `W`, `H`, `F` (frame rate; 25 if absent, as ffmpeg does), `A` (sample aspect; `A0:0` =
unknown), `I` (ignored: fields are returned as coded frames), `C` and the `XCOLORRANGE=FULL|LIMITED`
extension (default limited). Chroma formats read: `420jpeg`, `420mpeg2`, `420paldv`, `420`
(all 8-bit 4:2:0, the siting difference is ignored), `444`, `mono`; anything else (`422`, `411`,
`420p10`, `444alpha`, ...) is an `UnsupportedFormatError`. 4:2:0 needs an even width and height.
Y4M has no matrix tag, so the matrix is `ColorSpec.for_size` (BT.709 from 720 lines up).

Opening a file walks its frame headers (one small read per frame, no pixel data), so
`info.num_frames` is exact and truncation or a missing `FRAME` marker is reported at once;
iteration then streams one frame at a time and re-checks.

The writer emits `C420jpeg` (chroma centred in each 2x2 block, which is what our box-average
downsampling produces) and `XCOLORRANGE`; ffmpeg reads both.
"""

from __future__ import annotations

import dataclasses
import fractions
import os
from collections.abc import Iterator

import numpy as np

from gan_compress.io.atomic import AtomicFile
from gan_compress.io.base import VideoInfo, VideoReader, as_fraction
from gan_compress.io.color import ColorSpec, YUVFrame, rgb_to_yuv420
from gan_compress.io.errors import (
    EmptyVideoError,
    TruncatedVideoError,
    UnsupportedFormatError,
    VideoError,
    VideoNotFoundError,
)

MAGIC = b"YUV4MPEG2"
_MAX_HEADER = 4096
_MAX_FRAME_HEADER = 1024
_CHROMA = {
    "420jpeg": "yuv420p",
    "420mpeg2": "yuv420p",
    "420paldv": "yuv420p",
    "420": "yuv420p",
    "444": "yuv444p",
    "mono": "gray",
}


def _open(path: str):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise VideoNotFoundError(path, "no such file") from None
    except IsADirectoryError:
        raise VideoError(path, "is a directory, not a video file") from None


def _ratio(path: str, token: str) -> fractions.Fraction | None:
    try:
        num, den = (int(x) for x in token[1:].split(":"))
    except ValueError:
        raise VideoError(path, f"bad y4m header field {token!r}") from None
    if num == 0 or den == 0:
        return None
    return fractions.Fraction(num, den)


def plane_shapes(pix_fmt: str, width: int, height: int) -> list[tuple[int, int]]:
    if pix_fmt == "yuv420p":
        return [(height, width), (height // 2, width // 2), (height // 2, width // 2)]
    if pix_fmt == "yuv444p":
        return [(height, width)] * 3
    return [(height, width)]


def parse_header(path: str, line: bytes) -> tuple[VideoInfo, int]:
    """Parses a y4m header line (without its newline) -> (VideoInfo without num_frames,
    bytes of pixel data per frame)."""
    tokens = line.decode("ascii", "replace").split(" ")
    if tokens[0] != "YUV4MPEG2":
        raise VideoError(path, "not a y4m file (no YUV4MPEG2 signature)")
    width = height = None
    fps: fractions.Fraction | None = fractions.Fraction(25)
    aspect = None
    chroma = "420jpeg"
    color_range = "limited"
    for tok in tokens[1:]:
        if not tok:
            continue
        key, val = tok[0], tok[1:]
        if key in "WH":
            try:
                n = int(val)
            except ValueError:
                raise VideoError(path, f"bad y4m header field {tok!r}") from None
            if n <= 0:
                raise VideoError(path, f"bad y4m header field {tok!r}")
            width, height = (n, height) if key == "W" else (width, n)
        elif key == "F":
            fps = _ratio(path, tok)
        elif key == "A":
            aspect = _ratio(path, tok)
        elif key == "C":
            chroma = val
        elif key == "X" and val.upper().startswith("COLORRANGE="):
            r = val.split("=", 1)[1].upper()
            if r not in ("FULL", "LIMITED"):
                raise VideoError(path, f"bad y4m header field {tok!r}")
            color_range = r.lower()
    if width is None or height is None:
        raise VideoError(path, "y4m header lacks W (width) or H (height)")
    if fps is None:
        raise VideoError(path, "y4m header has frame rate F0:0")
    pix_fmt = _CHROMA.get(chroma)
    if pix_fmt is None:
        raise UnsupportedFormatError(
            path,
            f"unsupported y4m pixel format C{chroma} (only 8-bit 4:2:0, 4:4:4 and mono are read)",
        )
    if pix_fmt == "yuv420p" and (width % 2 or height % 2):
        raise UnsupportedFormatError(
            path, f"odd size {width}x{height} is not allowed for 4:2:0 (C{chroma})"
        )
    info = VideoInfo(
        path=path,
        width=width,
        height=height,
        fps=fps,
        num_frames=None,
        pix_fmt=pix_fmt,
        color=ColorSpec(ColorSpec.for_size(width, height).matrix, color_range),
        sample_aspect=aspect,
    )
    frame_bytes = sum(h * w for h, w in plane_shapes(pix_fmt, width, height))
    return info, frame_bytes


def _read_line(path: str, f, limit: int, what: str) -> bytes:
    line = f.readline(limit + 1)
    if not line.endswith(b"\n"):
        if len(line) > limit:
            raise VideoError(path, f"{what} longer than {limit} bytes")
        raise TruncatedVideoError(path, f"truncated: file ends inside the {what}")
    return line[:-1]


def _check_frame_marker(path: str, line: bytes, index: int) -> None:
    if not (line == b"FRAME" or line.startswith(b"FRAME ")):
        raise VideoError(path, f"frame {index}: expected a FRAME marker, found {line[:20]!r}")


class Y4MReader(VideoReader):
    """Streaming `.y4m` reader (see module docstring). Use `gan_compress.io.open_video`."""

    def __init__(self, path: str | os.PathLike[str], max_frames: int | None = None):
        path = os.fspath(path)
        with _open(path) as f:
            size = os.fstat(f.fileno()).st_size
            if f.read(len(MAGIC)) != MAGIC:
                raise VideoError(path, "not a y4m file (no YUV4MPEG2 signature)")
            f.seek(0)
            header = _read_line(path, f, _MAX_HEADER, "y4m header")
            info, frame_bytes = parse_header(path, header)
            self._data_start = f.tell()
            self._frame_bytes = frame_bytes
            num = self._count_frames(path, f, size)
        super().__init__(dataclasses.replace(info, num_frames=num), max_frames=max_frames)

    def _count_frames(self, path: str, f, size: int) -> int:
        pos, n = self._data_start, 0
        while pos < size:
            f.seek(pos)
            line = _read_line(path, f, _MAX_FRAME_HEADER, f"header of frame {n}")
            _check_frame_marker(path, line, n)
            data = f.tell()
            if data + self._frame_bytes > size:
                raise TruncatedVideoError(
                    path,
                    f"truncated: frame {n} has {size - data} of {self._frame_bytes} bytes "
                    "(partial last frame)",
                )
            pos = data + self._frame_bytes
            n += 1
        if n == 0:
            raise EmptyVideoError(path, "y4m file has no frames (header only)")
        return n

    def _native_frames(self) -> Iterator[YUVFrame]:
        info = self.info
        shapes = plane_shapes(info.pix_fmt, info.width, info.height)
        with _open(info.path) as f:
            f.seek(self._data_start)
            for index in range(info.num_frames):
                _check_frame_marker(
                    info.path,
                    _read_line(info.path, f, _MAX_FRAME_HEADER, f"header of frame {index}"),
                    index,
                )
                buf = np.empty(self._frame_bytes, np.uint8)
                got = f.readinto(memoryview(buf))
                if got != self._frame_bytes:
                    raise TruncatedVideoError(
                        info.path,
                        f"truncated: frame {index} has {got} of {self._frame_bytes} bytes "
                        "(file changed while reading?)",
                    )
                planes, off = [], 0
                for h, w in shapes:
                    planes.append(buf[off : off + h * w].reshape(h, w))
                    off += h * w
                if len(planes) == 1:
                    yield YUVFrame(planes[0], None, None)
                else:
                    yield YUVFrame(*planes)


class Y4MWriter:
    """Atomic 4:2:0 `.y4m` writer (`C420jpeg`, `XCOLORRANGE`).

        with Y4MWriter("out.y4m", 352, 288, fractions.Fraction(30000, 1001)) as w:
            w.write(frame)        # YUVFrame uint8, 4:2:0
            w.write_rgb(rgb)      # or [H, W, 3] uint8 / float RGB, converted with `color`

    The file appears under its name only after a successful `close()` (or a `with` block that
    ends without an exception) with at least one frame; see `gan_compress.io.atomic`.
    `color` defaults to `ColorSpec.for_size(width, height)`; only its range is stored (y4m has no
    matrix tag).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: fractions.Fraction | int | float | str,
        color: ColorSpec | None = None,
        sample_aspect: fractions.Fraction | None = None,
    ):
        self.path = os.fspath(path)
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise UnsupportedFormatError(
                self.path, f"4:2:0 needs a positive even width and height, got {width}x{height}"
            )
        self.width, self.height = int(width), int(height)
        self.fps = as_fraction(fps)
        self.color = color or ColorSpec.for_size(width, height)
        self.frames_written = 0
        sar = sample_aspect or fractions.Fraction(1)
        header = (
            f"YUV4MPEG2 W{self.width} H{self.height} F{self.fps.numerator}:{self.fps.denominator}"
            f" Ip A{sar.numerator}:{sar.denominator} C420jpeg"
            f" XCOLORRANGE={self.color.range.upper()}\n"
        )
        self._file = AtomicFile(self.path)
        self._file.write(header.encode("ascii"))
        self._shapes = plane_shapes("yuv420p", self.width, self.height)

    def write(self, frame: YUVFrame) -> None:
        planes = [np.asarray(p) for p in frame]
        for name, p, shape in zip("yuv", planes, self._shapes, strict=True):
            if p.shape != shape or p.dtype != np.uint8:
                raise ValueError(
                    f"{self.path}: plane {name} must be uint8 {shape}, got {p.dtype} {p.shape}"
                )
        self._file.write(b"FRAME\n")
        for p in planes:
            self._file.write(np.ascontiguousarray(p).data)
        self.frames_written += 1

    def write_rgb(self, rgb: np.ndarray) -> None:
        self.write(rgb_to_yuv420(rgb, self.color))

    def close(self) -> None:
        """Commits the file; with no frames written it is discarded and EmptyVideoError raised."""
        if self._file.closed:
            return
        if self.frames_written == 0:
            self._file.abort()
            raise EmptyVideoError(self.path, "no frames were written; file not created")
        self._file.commit()

    def abort(self) -> None:
        self._file.abort()

    def __enter__(self) -> Y4MWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
