"""`open_video`: one entry point for every input we read, and the readers behind it.

| extension | reader | notes |
|---|---|---|
| `.y4m` | `Y4MReader` (ours, `y4m.py`) | 4:2:0, 4:4:4, mono; exact frame count |
| `.yuv` | `RawYUVReader` | headerless 8-bit I420; `width=`/`height=` required, `fps=` (25) |
| `.png .jpg .jpeg .bmp .webp` | `ImageReader` | one frame; `frames_rgb()` = stored pixels |
| `.mkv .mp4 .avi .webm .mov .m4v`, other | `PyAVReader` | any container/codec libav decodes |

Why PyAV for containers: it hands us the decoder's own yuv420p planes (no RGB round trip through
swscale, so our colour conversion is the only one), the stream's exact rational frame rate, the
container's frame count and colour tags, and it streams frame by frame in-process. Piping
`ffmpeg -f rawvideo` would give the same planes but no metadata without a separate ffprobe and
a process per file. The decoded planes equal `ffmpeg -i X -f rawvideo -pix_fmt yuv420p
-fps_mode passthrough -` byte for byte (tests/test_io_readers.py).

Colour for containers: the frame's matrix tag (bt709 -> BT.709; bt470bg / smpte170m -> BT.601;
untagged or anything else -> `ColorSpec.for_size`) and range tag (full for 'pc' or yuvj*
formats, else limited). Decoded formats other than 8-bit yuv420p / yuv444p / gray (and their
yuvj twins) raise `UnsupportedFormatError`; convert with ffmpeg (`-pix_fmt yuv420p`) first.
"""

from __future__ import annotations

import fractions
import os
from collections.abc import Iterator

import numpy as np

from gan_compress.io.base import (
    VideoInfo,
    VideoReader,
    as_fraction,
    is_image_path,
)
from gan_compress.io.color import ColorSpec, YUVFrame, rgb_to_yuv444
from gan_compress.io.errors import (
    EmptyVideoError,
    TruncatedVideoError,
    UnsupportedFormatError,
    VideoError,
    VideoNotFoundError,
)
from gan_compress.io.images import read_image
from gan_compress.io.y4m import Y4MReader

# libav pixel format -> (our pix_fmt, forced full range?)
_AV_PIX_FMTS = {
    "yuv420p": ("yuv420p", False),
    "yuvj420p": ("yuv420p", True),
    "yuv444p": ("yuv444p", False),
    "yuvj444p": ("yuv444p", True),
    "gray": ("gray", False),
}
# AVColorSpace values
_AVCOL_SPC_BT709 = 1
_AVCOL_SPC_BT601 = (5, 6)  # bt470bg, smpte170m
_AVCOL_RANGE_JPEG = 2


def _check_exists(path: str) -> None:
    if not os.path.exists(path):
        raise VideoNotFoundError(path, "no such file")
    if os.path.isdir(path):
        raise VideoError(path, "is a directory, not a video file")


def _av_plane(plane, width: int, height: int) -> np.ndarray:
    a = np.frombuffer(plane, np.uint8, count=plane.line_size * height)
    return a.reshape(height, plane.line_size)[:, :width].copy()


class PyAVReader(VideoReader):
    """Containers (mkv, mp4, avi, webm, mov, ...) decoded with PyAV; first video stream only."""

    def __init__(self, path: str | os.PathLike[str], max_frames: int | None = None):
        import av

        self._av = av
        path = os.fspath(path)
        _check_exists(path)
        try:
            with av.open(path) as container:
                if not container.streams.video:
                    raise EmptyVideoError(path, "has no video stream")
                stream = container.streams.video[0]
                try:
                    first = next(container.decode(stream), None)
                except av.error.EOFError:
                    first = None
                if first is None:
                    raise EmptyVideoError(path, "video stream has no frames (zero frames)")
                info = self._make_info(path, container, stream, first)
        except av.error.EOFError:
            raise EmptyVideoError(
                path, "no video frames: the file ends before any (empty or truncated container)"
            ) from None
        except av.FFmpegError as e:
            raise VideoError(path, f"not a readable video file ({_av_reason(e)})") from None
        super().__init__(info, max_frames=max_frames)
        self._av_fmt = first.format.name

    @staticmethod
    def _make_info(path, container, stream, first) -> VideoInfo:
        av_fmt = first.format.name
        if av_fmt not in _AV_PIX_FMTS:
            raise UnsupportedFormatError(
                path,
                f"unsupported pixel format {av_fmt} (read: 8-bit yuv420p, yuv444p, gray); "
                "convert first, e.g. ffmpeg -i IN -pix_fmt yuv420p -c:v ffv1 OUT.mkv",
            )
        pix_fmt, jpeg = _AV_PIX_FMTS[av_fmt]
        w, h = first.width, first.height
        if pix_fmt == "yuv420p" and (w % 2 or h % 2):
            raise UnsupportedFormatError(path, f"odd size {w}x{h} is not allowed for 4:2:0")
        spc = int(first.colorspace or 0)
        matrix = (
            "bt709"
            if spc == _AVCOL_SPC_BT709
            else "bt601"
            if spc in _AVCOL_SPC_BT601
            else ColorSpec.for_size(w, h).matrix
        )
        full = jpeg or int(first.color_range or 0) == _AVCOL_RANGE_JPEG
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate
        sar = stream.sample_aspect_ratio
        return VideoInfo(
            path=path,
            width=w,
            height=h,
            fps=fractions.Fraction(fps) if fps else fractions.Fraction(25),
            num_frames=int(stream.frames) if stream.frames else None,
            pix_fmt=pix_fmt,
            color=ColorSpec(matrix, "full" if full else "limited"),
            sample_aspect=fractions.Fraction(sar) if sar else None,
        )

    def _native_frames(self) -> Iterator[YUVFrame]:
        av, info = self._av, self.info
        path, w, h = info.path, info.width, info.height
        n_planes = 1 if info.pix_fmt == "gray" else 3
        cw, ch = (w // 2, h // 2) if info.pix_fmt == "yuv420p" else (w, h)
        try:
            with av.open(path) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for index, frame in enumerate(container.decode(stream)):
                    if (frame.format.name, frame.width, frame.height) != (self._av_fmt, w, h):
                        raise UnsupportedFormatError(
                            path,
                            f"frame {index} is {frame.format.name} {frame.width}x{frame.height}"
                            f", the stream started as {self._av_fmt} {w}x{h} (format changes "
                            "mid-stream are not supported)",
                        )
                    planes = [_av_plane(frame.planes[0], w, h)]
                    if n_planes == 3:
                        planes += [_av_plane(frame.planes[i], cw, ch) for i in (1, 2)]
                        yield YUVFrame(*planes)
                    else:
                        yield YUVFrame(planes[0], None, None)
        except av.FFmpegError as e:
            raise VideoError(path, f"decoding failed ({_av_reason(e)})") from None


def _av_reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e)


class RawYUVReader(VideoReader):
    """Headerless 8-bit I420 (`.yuv`): planes Y, U, V per frame, no frame markers."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int | None,
        height: int | None,
        fps: fractions.Fraction | int | float | str | None = None,
        max_frames: int | None = None,
        color: ColorSpec | None = None,
    ):
        path = os.fspath(path)
        _check_exists(path)
        if not width or not height:
            raise VideoError(
                path, "raw .yuv has no header: pass width= and height= (and fps=) to open_video"
            )
        if width % 2 or height % 2:
            raise UnsupportedFormatError(
                path, f"odd size {width}x{height} is not allowed for 4:2:0 raw yuv"
            )
        self._frame_bytes = width * height * 3 // 2
        size = os.path.getsize(path)
        if size == 0:
            raise EmptyVideoError(path, "raw yuv file is empty (zero frames)")
        if size % self._frame_bytes:
            raise TruncatedVideoError(
                path,
                f"truncated: size {size} is not a multiple of the {width}x{height} I420 frame "
                f"size {self._frame_bytes} (partial last frame, or wrong width/height)",
            )
        info = VideoInfo(
            path=path,
            width=int(width),
            height=int(height),
            fps=as_fraction(fps if fps is not None else 25),
            num_frames=size // self._frame_bytes,
            pix_fmt="yuv420p",
            color=color or ColorSpec.for_size(width, height),
        )
        super().__init__(info, max_frames=max_frames)

    def _native_frames(self) -> Iterator[YUVFrame]:
        w, h = self.info.width, self.info.height
        with open(self.info.path, "rb") as f:
            for _ in range(self.info.num_frames):
                buf = np.empty(self._frame_bytes, np.uint8)
                if f.readinto(memoryview(buf)) != self._frame_bytes:
                    raise TruncatedVideoError(self.info.path, "truncated while reading")
                y = buf[: w * h].reshape(h, w)
                u = buf[w * h : w * h * 5 // 4].reshape(h // 2, w // 2)
                v = buf[w * h * 5 // 4 :].reshape(h // 2, w // 2)
                yield YUVFrame(y, u, v)


class ImageReader(VideoReader):
    """A still image as a one-frame video. `frames_rgb()` yields the stored pixels exactly;
    YUV views are converted with `info.color` (`ColorSpec.for_size`); `fps` is 1."""

    def __init__(self, path: str | os.PathLike[str], max_frames: int | None = None):
        path = os.fspath(path)
        self._rgb = read_image(path)
        h, w = self._rgb.shape[:2]
        info = VideoInfo(
            path=path,
            width=w,
            height=h,
            fps=fractions.Fraction(1),
            num_frames=1,
            pix_fmt="yuv444p",
            color=ColorSpec.for_size(w, h),
        )
        super().__init__(info, max_frames=max_frames)

    def _native_frames(self) -> Iterator[YUVFrame]:
        yield rgb_to_yuv444(self._rgb, self.info.color)

    def frames_rgb(self, color: ColorSpec | None = None) -> Iterator[np.ndarray]:
        if color is not None and color != self.info.color:
            yield from super().frames_rgb(color)
            return
        if self.max_frames is None or self.max_frames > 0:
            yield self._rgb.copy()


def open_video(
    path: str | os.PathLike[str],
    *,
    width: int | None = None,
    height: int | None = None,
    fps: fractions.Fraction | int | float | str | None = None,
    max_frames: int | None = None,
) -> VideoReader:
    """Opens any supported video or image file (table in the module docstring).

    `width`, `height` and `fps` are only used for raw `.yuv` (which has no header); other files
    describe themselves. `max_frames` caps every iteration. Raises `VideoError` (with the file name
    and the problem) for missing, unreadable, empty, truncated or unsupported files.
    """
    path = os.fspath(path)
    _check_exists(path)
    lower = path.lower()
    if lower.endswith(".y4m"):
        return Y4MReader(path, max_frames=max_frames)
    if lower.endswith(".yuv"):
        return RawYUVReader(path, width, height, fps, max_frames=max_frames)
    if is_image_path(path):
        return ImageReader(path, max_frames=max_frames)
    return PyAVReader(path, max_frames=max_frames)


def iterate_frames(
    path: str | os.PathLike[str], max_frames: int | None = None, **kwargs
) -> Iterator[np.ndarray]:
    """[H, W, 3] uint8 RGB frames of a video or image file (evaluation-time full frames),
    converted with the file's own `ColorSpec`. `kwargs` go to `open_video`."""
    with open_video(path, max_frames=max_frames, **kwargs) as reader:
        yield from reader.frames_rgb()
