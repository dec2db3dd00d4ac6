"""The one ffmpeg the evaluation uses (imageio-ffmpeg's static build) and raw-video helpers.

Every encode, decode and ffmpeg-side metric in `gan_compress.evaluation` goes through
`ffmpeg_exe()`, never a system ffmpeg, so numbers are reproducible across machines that share the
imageio-ffmpeg version. Raw video here is always planar 8-bit yuv420p (`[Y | U | V]` per frame,
`W*H*3/2` bytes), except VVenC's 10-bit decode (`yuv420p10le`, 2 bytes per sample).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import subprocess
from fractions import Fraction
from pathlib import Path


class FfmpegError(RuntimeError):
    """An ffmpeg (or other tool) call exited nonzero; carries the command and stderr tail."""

    def __init__(self, cmd: list[str], returncode: int, stderr: str):
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stderr = stderr
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        super().__init__(f"command exited with {returncode}: {format_command(cmd)}\n{tail}")

    @property
    def summary(self) -> str:
        """The last non-empty stderr line (usually the reason) and the exit code."""
        lines = [ln for ln in self.stderr.strip().splitlines() if ln.strip()]
        return f"{lines[-1].strip() if lines else 'no stderr'} (exit {self.returncode})"


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of imageio-ffmpeg's ffmpeg binary."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=1)
def ffmpeg_version() -> str:
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-version"], capture_output=True, text=True)
    line = out.stdout.splitlines()[0] if out.stdout else "ffmpeg unknown"
    return line.split(" Copyright")[0]


@functools.lru_cache(maxsize=1)
def encoders() -> frozenset[str]:
    """Names of the encoders this ffmpeg was built with (`ffmpeg -encoders`)."""
    out = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True
    ).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


def format_command(cmd: list[str]) -> str:
    """Shell-like rendering of a command, with the ffmpeg path shortened to `ffmpeg`."""
    import shlex

    exe = ffmpeg_exe()
    return " ".join("ffmpeg" if c == exe else shlex.quote(str(c)) for c in cmd)


def run(cmd: list[str], *, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Runs a command, raising `FfmpegError` (with the stderr tail) on a nonzero exit."""
    proc = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, errors="replace"
    )
    if proc.returncode != 0:
        raise FfmpegError([str(c) for c in cmd], proc.returncode, proc.stderr)
    return proc


@dataclasses.dataclass(frozen=True)
class RawVideo:
    """A raw planar yuv420p (8-bit) file and its geometry.

    `path` holds exactly `frames` frames of `width * height * 3 // 2` bytes.
    `fps` is exact (a Fraction), as signalled by the source container.
    """

    path: Path
    width: int
    height: int
    frames: int
    fps: Fraction

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height * 3 // 2

    def input_args(self, pix_fmt: str = "yuv420p") -> list[str]:
        """ffmpeg input options that read this file (`-f rawvideo ... -i path`)."""
        return [
            "-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{self.width}x{self.height}",
            "-framerate", f"{self.fps.numerator}/{self.fps.denominator}", "-i", str(self.path),
        ]  # fmt: skip


def probe_fps(path: str | os.PathLike) -> Fraction:
    """Exact average frame rate of the first video stream (PyAV; ffmpeg banner as fallback)."""
    try:
        import av

        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
            if rate:
                return Fraction(rate.numerator, rate.denominator)
    except Exception:  # noqa: BLE001 - fall back to ffmpeg's banner below
        pass
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )
    match = re.search(r"Video:.*?, ([\d.]+) fps", proc.stderr)
    if not match:
        return Fraction(25)
    fps = float(match.group(1))
    for num in (24000, 30000, 60000):  # NTSC rates are printed rounded
        if abs(fps - num / 1001) < 0.01:
            return Fraction(num, 1001)
    return Fraction(fps).limit_denominator(1001)


def probe_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of the first video stream, from ffmpeg's banner."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )
    match = re.search(r"Video:.*?, (\d{2,5})x(\d{2,5})", proc.stderr)
    if not match:
        raise FfmpegError([ffmpeg_exe(), "-i", str(path)], 1, proc.stderr)
    return int(match.group(1)), int(match.group(2))


def decode_to_raw(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    pix_fmt: str = "yuv420p",
    max_frames: int | None = None,
    crop: tuple[int, int, int, int] | None = None,
) -> list[str]:
    """Decodes every frame of `src` to raw `pix_fmt`, frame-exact (`-fps_mode passthrough`).

    `crop` is (w, h, x, y). Returns the command used.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", "-i", str(src)]
    if crop is not None:
        cmd += ["-vf", "crop={}:{}:{}:{}".format(*crop)]
    if max_frames is not None:
        cmd += ["-frames:v", str(max_frames)]
    cmd += ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", pix_fmt, str(out)]
    run(cmd)
    return cmd


def count_frames(path: str | os.PathLike, width: int, height: int, bytes_per_sample: int = 1):
    """Number of whole yuv420p frames in a raw file; raises ValueError on a partial frame."""
    size = os.path.getsize(path)
    frame = width * height * 3 // 2 * bytes_per_sample
    if size % frame:
        raise ValueError(
            f"{path}: {size} bytes is not a whole number of {width}x{height} yuv420p frames"
        )
    return size // frame


def ivf_payload_bytes(path: str | os.PathLike) -> int:
    """Sum of the frame payloads of an IVF file: the raw OBU size without IVF headers."""
    data = Path(path).read_bytes()
    if data[:4] != b"DKIF":
        raise ValueError(f"{path} is not an IVF file")
    pos = int.from_bytes(data[6:8], "little")
    total = 0
    while pos + 12 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "little")
        total += size
        pos += 12 + size
    if pos != len(data):
        raise ValueError(f"{path}: truncated IVF frame")
    return total


def rgb_matrix_for_height(height: int) -> str:
    """BT.709 for HD (720 lines and more), BT.601 below, as the reference anchors do."""
    return "bt709" if height >= 720 else "bt601"


def yuv_to_rgb_filter(matrix: str, in_range: str | None = "tv") -> str:
    """swscale filter for an accurate yuv->rgb24 conversion with full chroma interpolation."""
    rng = f":in_range={in_range}" if in_range else ""
    return f"scale=in_color_matrix={matrix}{rng}:flags=accurate_rnd+full_chroma_int,format=rgb24"


def raw_to_pngs(
    raw: RawVideo,
    out_dir: str | os.PathLike,
    *,
    step: int = 1,
    frames: list[int] | None = None,
    matrix: str | None = None,
    crop: tuple[int, int, int, int] | None = None,
    prefix: str = "f",
) -> list[Path]:
    """Writes RGB PNGs of every `step`-th frame (or of the listed `frames`) of a raw yuv420p file.

    Colour conversion: BT.601 limited range (BT.709 for 720-line and taller video) unless
    `matrix` is given, with `accurate_rnd+full_chroma_int`. Returns the PNG paths in frame order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    matrix = matrix or rgb_matrix_for_height(raw.height)
    if frames is not None:
        wanted = sorted(set(frames))
        select = "+".join(f"eq(n\\,{i})" for i in wanted)
    else:
        wanted = list(range(0, raw.frames, step))
        select = f"not(mod(n\\,{step}))"
    filters = [f"select={select}"]
    if crop is not None:
        filters.append("crop={}:{}:{}:{}".format(*crop))
    filters.append(yuv_to_rgb_filter(matrix))
    pattern = out_dir / f"{prefix}%05d.png"
    cmd = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", *raw.input_args()]
    cmd += ["-vf", ",".join(filters), "-fps_mode", "passthrough", str(pattern)]
    for old in out_dir.glob(f"{prefix}[0-9][0-9][0-9][0-9][0-9].png"):
        old.unlink()
    run(cmd)
    written = sorted(out_dir.glob(f"{prefix}[0-9][0-9][0-9][0-9][0-9].png"))
    if len(written) != len(wanted):
        raise ValueError(
            f"expected {len(wanted)} PNGs from {raw.path}, ffmpeg wrote {len(written)}"
        )
    named = []
    for idx, path in zip(wanted, written, strict=True):
        target = out_dir / f"{prefix}_{idx:05d}.png"
        path.replace(target)
        named.append(target)
    return named
