"""Conventional-codec anchors: exact encoder settings, rate ladders and how their bits are counted.

The settings and ladders are those of `data/reference/README.md` (anchors_eval.json), so a sweep
reproduces those points: bytes to within ~1 % and metrics to within ~0.05.

| name | encoder settings | ladder |
|---|---|---|
| x264_ld | libx264 medium zerolatency, no B-frames, GOP 12, no scenecut, CRF | 23 28 33 38 |
| x265_ld | libx265 medium zerolatency, bframes=0, keyint=12, no scenecut, CRF | 23 28 33 38 |
| x265_veryslow | libx265 veryslow, default GOP, CRF | 23 28 33 38 |
| svtav1_p6 | libsvtav1 preset 6, default GOP, CRF | 30 38 46 54 |
| vvenc_medium | libvvenc medium, 10-bit input, QP | 27 32 37 42 |

Every encoder reads the same raw 8-bit yuv420p file, one encode at a time with `-threads 2`.
Bytes are what lands on disk as an elementary stream (h264, hevc, vvc); for AV1 the IVF container
is stripped (the raw OBU size). VVenC is fed 10-bit (`yuv420p10le`, ffmpeg's exact <<2) and its
10-bit decode is rounded back to 8 bit with `(x + 2) >> 2` (clipped to 255) before any metric.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from gan_compress.evaluation import ffmpeg


@dataclasses.dataclass(frozen=True)
class Anchor:
    """One conventional codec configuration and its rate ladder.

    `args` are the ffmpeg output options before the rate option (`rate_flag Q`); `muxer` is the
    `-f` format of the elementary stream; `input_pix_fmt` is what the encoder is fed (ffmpeg
    converts the 8-bit raw input); `decode_bits` 10 means the decode is read as yuv420p10le and
    rounded to 8 bit.
    """

    name: str
    label: str
    setting: str
    args: tuple[str, ...]
    rate_flag: str
    ladder: tuple[int, ...]
    muxer: str
    ext: str
    input_pix_fmt: str = "yuv420p"
    decode_bits: int = 8

    def encode_command(
        self, raw: ffmpeg.RawVideo, q: int, out: str | os.PathLike, threads: int = 2
    ) -> list[str]:
        """The ffmpeg command encoding `raw` at rate point `q` to `out`."""
        cmd = [ffmpeg.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y"]
        cmd += raw.input_args()
        if self.input_pix_fmt != "yuv420p":
            cmd += ["-pix_fmt", self.input_pix_fmt]
        cmd += [*self.args, self.rate_flag, str(q), "-threads", str(threads), "-f", self.muxer]
        return cmd + [str(out)]

    def decode_command(self, stream: str | os.PathLike, out: str | os.PathLike) -> list[str]:
        pix_fmt = "yuv420p10le" if self.decode_bits == 10 else "yuv420p"
        return [
            ffmpeg.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", str(stream),
            "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", pix_fmt, str(out),
        ]  # fmt: skip

    def stream_bytes(self, stream: str | os.PathLike) -> int:
        """Bytes of the coded video: the file size, minus container headers for IVF."""
        if self.muxer == "ivf":
            return ffmpeg.ivf_payload_bytes(stream)
        return os.path.getsize(stream)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["args"] = list(self.args)
        d["ladder"] = list(self.ladder)
        return d


ANCHORS: dict[str, Anchor] = {
    a.name: a
    for a in (
        Anchor(
            name="x264_ld",
            label="x264 LD (medium, zerolatency, GOP 12)",
            setting="libx264 medium zerolatency bf0 g12",
            args=("-c:v", "libx264", "-preset", "medium", "-tune", "zerolatency", "-bf", "0",
                  "-g", "12", "-sc_threshold", "0"),
            rate_flag="-crf", ladder=(23, 28, 33, 38), muxer="h264", ext="h264",
        ),
        Anchor(
            name="x265_ld",
            label="x265 LD (medium, zerolatency, GOP 12)",
            setting="libx265 medium zerolatency bframes0 keyint12",
            args=("-c:v", "libx265", "-preset", "medium", "-tune", "zerolatency", "-x265-params",
                  "bframes=0:keyint=12:min-keyint=12:scenecut=0"),
            rate_flag="-crf", ladder=(23, 28, 33, 38), muxer="hevc", ext="hevc",
        ),
        Anchor(
            name="x265_veryslow",
            label="x265 veryslow (default GOP)",
            setting="libx265 veryslow default GOP",
            args=("-c:v", "libx265", "-preset", "veryslow"),
            rate_flag="-crf", ladder=(23, 28, 33, 38), muxer="hevc", ext="hevc",
        ),
        Anchor(
            name="svtav1_p6",
            label="SVT-AV1 preset 6 (default GOP)",
            setting="libsvtav1 preset 6 default GOP",
            args=("-c:v", "libsvtav1", "-preset", "6"),
            rate_flag="-crf", ladder=(30, 38, 46, 54), muxer="ivf", ext="ivf",
        ),
        Anchor(
            name="vvenc_medium",
            label="VVenC medium (10-bit, RA)",
            setting="libvvenc medium (10-bit internal, default qpa=1, RA)",
            args=("-c:v", "libvvenc", "-preset", "medium"),
            rate_flag="-qp", ladder=(27, 32, 37, 42), muxer="vvc", ext="vvc",
            input_pix_fmt="yuv420p10le", decode_bits=10,
        ),
    )
}  # fmt: skip

ALIASES: dict[str, tuple[str, ...]] = {
    "x264": ("x264_ld",),
    "x265": ("x265_ld", "x265_veryslow"),
    "svtav1": ("svtav1_p6",),
    "svt-av1": ("svtav1_p6",),
    "av1": ("svtav1_p6",),
    "vvenc": ("vvenc_medium",),
    "vvc": ("vvenc_medium",),
    "all": tuple(ANCHORS),
    "none": (),
}


def resolve(names: str | Iterable[str]) -> list[Anchor]:
    """Anchors from a comma-separated list of names or aliases (`x264,x265` -> three anchors)."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        expanded = ALIASES.get(name, (name,))
        for n in expanded:
            if n not in ANCHORS:
                known = ", ".join([*ANCHORS, *ALIASES])
                raise ValueError(f"unknown anchor {n!r}; known: {known}")
            if n not in out:
                out.append(n)
    return [ANCHORS[n] for n in out]


def with_ladder(anchor: Anchor, ladder: Sequence[int]) -> Anchor:
    """A copy of `anchor` with another rate ladder."""
    return dataclasses.replace(anchor, ladder=tuple(int(q) for q in ladder))


def read_decoded_as_8bit(anchor: Anchor, decoded: Path, out: Path, width: int, height: int) -> Path:
    """Turns a decode into raw 8-bit yuv420p: 10-bit samples are rounded with (x + 2) >> 2."""
    if anchor.decode_bits == 8:
        if decoded != out:
            decoded.replace(out)
        return out
    import numpy as np

    frame = width * height * 3 // 2
    data = np.fromfile(decoded, dtype="<u2")
    if data.size % frame:
        raise ValueError(f"{decoded}: not a whole number of 10-bit {width}x{height} frames")
    eight = np.minimum((data.astype(np.int32) + 2) >> 2, 255).astype(np.uint8)
    eight.tofile(out)
    decoded.unlink()
    return out
