"""Helpers shared by the io / colour / data-pipeline tests (imported, not a conftest plugin)."""

from __future__ import annotations

import os
import pathlib
import subprocess

import numpy as np
import pytest

from gan_compress import io as gio

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = (REPO / ".." / "shared" / "data").resolve()
TRAIN = DATA / "video" / "train"

needs_data = pytest.mark.skipif(not TRAIN.is_dir(), reason=f"shared data not found at {DATA}")


def ffmpeg(*args: str, input: bytes | None = None) -> bytes:
    """Runs imageio-ffmpeg's ffmpeg quietly; returns stdout; raises with stderr on failure."""
    cmd = [gio.ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", *args]
    proc = subprocess.run(cmd, input=input, capture_output=True)
    if proc.returncode != 0:
        raise AssertionError(f"ffmpeg {' '.join(args)} failed: {proc.stderr.decode()[-2000:]}")
    return proc.stdout


def split_frames(raw: bytes, width: int, height: int, pix_fmt: str = "yuv420p"):
    """Raw planar bytes -> list of YUVFrame (4:2:0 or 4:4:4) or [H, W] arrays (gray)."""
    a = np.frombuffer(raw, np.uint8)
    ys = width * height
    cs = {"yuv420p": ys // 4, "yuv444p": ys, "gray": 0}[pix_fmt]
    ch, cw = (height // 2, width // 2) if pix_fmt == "yuv420p" else (height, width)
    size = ys + 2 * cs
    assert a.size % size == 0, (a.size, size)
    frames = []
    for i in range(a.size // size):
        f = a[i * size : (i + 1) * size]
        y = f[:ys].reshape(height, width)
        if pix_fmt == "gray":
            frames.append(y)
        else:
            u = f[ys : ys + cs].reshape(ch, cw)
            v = f[ys + cs :].reshape(ch, cw)
            frames.append(gio.YUVFrame(y, u, v))
    return frames


def ffmpeg_decode(path, width, height, pix_fmt="yuv420p", max_frames=None):
    """ffmpeg's own decode of `path` as raw planes, every frame (passthrough timing)."""
    limit = ["-frames:v", str(max_frames)] if max_frames else []
    raw = ffmpeg(
        "-i", str(path), "-map", "0:v:0", *limit, "-f", "rawvideo", "-pix_fmt", pix_fmt,
        "-fps_mode", "passthrough", "-",
    )  # fmt: skip
    return split_frames(raw, width, height, pix_fmt)


def assert_frames_equal(ours, theirs):
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for name, pa, pb in zip("yuv", a, b, strict=True):
            np.testing.assert_array_equal(pa, pb, err_msg=f"frame {i} plane {name}")


def random_yuv420(rng, n, width, height):
    return [
        gio.YUVFrame(
            rng.integers(0, 256, (height, width), dtype=np.uint8),
            rng.integers(0, 256, (height // 2, width // 2), dtype=np.uint8),
            rng.integers(0, 256, (height // 2, width // 2), dtype=np.uint8),
        )
        for _ in range(n)
    ]


def write_raw_y4m(path, header: str, frames_bytes: list[bytes], frame_marker=b"FRAME\n"):
    """Hand-made y4m (any header, any payload) for malformed-input tests."""
    with open(path, "wb") as f:
        f.write(header.encode("ascii") + b"\n")
        for data in frames_bytes:
            f.write(frame_marker + data)
    return os.fspath(path)


def constant_y4m(path, luma: int, width=64, height=48, frames=4, fps="25:1"):
    """A y4m whose every pixel is grey level `luma` (u = v = 128): files told apart by colour."""
    frame = bytes([luma]) * (width * height) + bytes([128]) * (width * height // 2)
    return write_raw_y4m(
        path, f"YUV4MPEG2 W{width} H{height} F{fps} Ip A1:1 C420jpeg", [frame] * frames
    )
