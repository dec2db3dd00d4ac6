"""`write_video`: write a stream of frames to .y4m, .mp4/.mkv/.mov/.webm or a PNG pattern,
choosing the writer from the extension. Every writer is atomic (`gan_compress.io.atomic`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np

from gan_compress.io.base import VideoInfo
from gan_compress.io.color import YUVFrame, rgb_to_yuv420, yuv420_to_rgb
from gan_compress.io.ffmpeg import FFmpegVideoWriter
from gan_compress.io.images import write_png_frames
from gan_compress.io.y4m import Y4MWriter


def _as_yuv(frames: Iterable[YUVFrame | np.ndarray], info: VideoInfo) -> Iterator[YUVFrame]:
    for f in frames:
        yield f if isinstance(f, YUVFrame) else rgb_to_yuv420(f, info.color)


def _as_rgb(frames: Iterable[YUVFrame | np.ndarray], info: VideoInfo) -> Iterator[np.ndarray]:
    for f in frames:
        yield yuv420_to_rgb(f, info.color) if isinstance(f, YUVFrame) else f


def write_video(
    path: str | os.PathLike[str],
    frames: Iterable[YUVFrame | np.ndarray],
    info: VideoInfo,
    **writer_kwargs,
) -> int:
    """Writes `frames` (4:2:0 `YUVFrame`s or [H, W, 3] RGB arrays, mixed freely) and returns how
    many were written.

    `info` gives width, height, fps and the `ColorSpec` used for any RGB <-> YUV conversion
    (its `path` is ignored). Dispatch on `path`:
    - `*.y4m` -> `Y4MWriter`;
    - `*.mp4`, `*.mkv`, `*.mov`, `*.webm` -> `FFmpegVideoWriter(**writer_kwargs)` (codec, crf);
    - `*%05d.png` style pattern -> `write_png_frames` (numbered from 1).
    """
    path = os.fspath(path)
    lower = path.lower()
    if lower.endswith(".png"):
        return len(write_png_frames(path, _as_rgb(frames, info), **writer_kwargs))
    if lower.endswith(".y4m"):
        writer = Y4MWriter(
            path, info.width, info.height, info.fps, info.color, **writer_kwargs
        )
    else:
        writer = FFmpegVideoWriter(
            path, info.width, info.height, info.fps, color=info.color, **writer_kwargs
        )
    with writer:
        for f in _as_yuv(frames, info):
            writer.write(f)
    return writer.frames_written
