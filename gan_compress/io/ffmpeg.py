"""The ffmpeg binary (always imageio-ffmpeg's, never a system ffmpeg) and an encoding writer.

`FFmpegVideoWriter` pipes raw yuv420p frames into `ffmpeg -f rawvideo -i -`, which encodes them
(libx264 by default; `codec='ffv1'` for lossless) into an .mp4 / .mkv written atomically: ffmpeg
writes a hidden temporary file that is renamed only after ffmpeg exits with status 0.
"""

from __future__ import annotations

import fractions
import os
import subprocess
import sys
import tempfile
import weakref

import numpy as np

from gan_compress.io.atomic import temp_path_for
from gan_compress.io.base import as_fraction
from gan_compress.io.color import ColorSpec, YUVFrame, rgb_to_yuv420
from gan_compress.io.errors import EmptyVideoError, UnsupportedFormatError, VideoError

_MUXERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov", ".webm": "webm"}
_CRF_CODECS = ("libx264", "libx265", "libvpx-vp9", "libaom-av1", "libsvtav1")
# ffmpeg's names for our matrices (colorspace / primaries / transfer tags).
_TAGS = {"bt709": ("bt709", "bt709", "bt709"), "bt601": ("smpte170m", "smpte170m", "smpte170m")}


def ffmpeg_exe() -> str:
    """Path of imageio-ffmpeg's bundled ffmpeg binary."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _die_with_parent() -> None:
    """In the ffmpeg child (Linux): receive SIGKILL when our process dies, so a killed decode
    cannot leave ffmpeg behind to finish a playable file under the temporary name."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def _kill(proc: subprocess.Popen, log, tmp: str) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for stream in (proc.stdin, log):
        try:
            stream.close()
        except (OSError, ValueError):
            pass
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


class FFmpegVideoWriter:
    """Encodes 4:2:0 frames to `.mp4` / `.mkv` (also `.mov`, `.webm`) with ffmpeg.

        with FFmpegVideoWriter("out.mp4", 352, 288, "30000/1001", crf=18) as w:
            w.write(frame)       # YUVFrame uint8 4:2:0
            w.write_rgb(rgb)     # or [H, W, 3] RGB, converted with `color`

    `codec`: any ffmpeg encoder, e.g. 'libx264' (default), 'libx265', 'ffv1' (lossless).
    `crf` is passed to CRF-capable encoders (x264/x265/vp9/av1) and ignored by others. The stream
    is tagged with `color` (matrix, primaries, transfer, range) and is not converted: the planes
    you write are the planes that get encoded. `extra_args` go before the output file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: fractions.Fraction | int | float | str,
        codec: str = "libx264",
        crf: int | None = 18,
        preset: str | None = "medium",
        color: ColorSpec | None = None,
        extra_args: tuple[str, ...] = (),
    ):
        self.path = os.fspath(path)
        ext = os.path.splitext(self.path)[1].lower()
        if ext not in _MUXERS:
            raise UnsupportedFormatError(
                self.path, f"FFmpegVideoWriter writes {sorted(_MUXERS)}, not {ext!r}"
            )
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise UnsupportedFormatError(
                self.path, f"4:2:0 needs a positive even width and height, got {width}x{height}"
            )
        self.width, self.height = int(width), int(height)
        self.fps = as_fraction(fps)
        self.color = color or ColorSpec.for_size(width, height)
        self.frames_written = 0
        self.tmp_path = temp_path_for(self.path)
        matrix, primaries, trc = _TAGS[self.color.matrix]
        rng = "pc" if self.color.range == "full" else "tv"
        tags = ["-colorspace", matrix, "-color_primaries", primaries, "-color_trc", trc]
        tags += ["-color_range", rng]
        codec_args = ["-c:v", codec]
        if crf is not None and codec in _CRF_CODECS:
            codec_args += ["-crf", str(crf)]
            if codec == "libvpx-vp9":
                codec_args += ["-b:v", "0"]
        if preset is not None and codec in ("libx264", "libx265"):
            codec_args += ["-preset", preset]
        cmd = [
            ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{self.width}x{self.height}",
            "-framerate", f"{self.fps.numerator}/{self.fps.denominator}",
            *tags,  # as input options: declare what the planes are, so nothing is converted
            "-i", "pipe:0",
            *codec_args, "-pix_fmt", "yuv420p", *tags, *extra_args,
            "-f", _MUXERS[ext], self.tmp_path,
        ]  # fmt: skip
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self._finalizer = weakref.finalize(self, _kill, self._proc, self._log, self.tmp_path)
        self._shapes = [(height, width), (height // 2, width // 2), (height // 2, width // 2)]

    def _stderr(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace").strip()[-2000:]

    def write(self, frame: YUVFrame) -> None:
        if not self._finalizer.alive:
            raise ValueError(f"{self.path}: writer is closed")
        planes = [np.asarray(p) for p in frame]
        for name, p, shape in zip("yuv", planes, self._shapes, strict=True):
            if p.shape != shape or p.dtype != np.uint8:
                raise ValueError(
                    f"{self.path}: plane {name} must be uint8 {shape}, got {p.dtype} {p.shape}"
                )
        try:
            for p in planes:
                self._proc.stdin.write(np.ascontiguousarray(p).data)
        except BrokenPipeError:
            self._proc.wait()
            msg = self._stderr()
            self.abort()
            raise VideoError(self.path, f"ffmpeg stopped while encoding: {msg}") from None
        self.frames_written += 1

    def write_rgb(self, rgb: np.ndarray) -> None:
        self.write(rgb_to_yuv420(rgb, self.color))

    def close(self) -> None:
        """Finishes encoding and renames the file into place; on failure (or with no frames)
        nothing is left behind and VideoError is raised."""
        if not self._finalizer.alive:
            return
        if self.frames_written == 0:
            self.abort()
            raise EmptyVideoError(self.path, "no frames were written; file not created")
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        rc = self._proc.wait()
        if rc != 0:
            msg = self._stderr()
            self.abort()
            raise VideoError(self.path, f"ffmpeg failed with status {rc}: {msg}")
        try:
            os.replace(self.tmp_path, self.path)
        except BaseException:
            self.abort()
            raise
        self._log.close()
        self._finalizer.detach()

    def abort(self) -> None:
        """Stops ffmpeg and deletes the partial output."""
        self._finalizer()

    def __enter__(self) -> FFmpegVideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
