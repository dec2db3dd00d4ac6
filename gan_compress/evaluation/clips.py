"""Evaluation clips: the source file decoded once to raw 8-bit yuv420p, which every codec reads.

Default data locations come from `$GAN_COMPRESS_DATA` (else `/work/shared/data`): eval clips in
`video/eval/*.mkv`, Kodak in `images/kodak/*.png`, reference anchors in
`reference/anchors_eval.json`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from gan_compress.evaluation import ffmpeg
from gan_compress.evaluation.ffmpeg import RawVideo

VIDEO_EXTS = (".mkv", ".mp4", ".y4m", ".avi", ".mov", ".webm", ".ivf", ".h264", ".hevc", ".264")


def data_dir() -> Path:
    return Path(os.environ.get("GAN_COMPRESS_DATA", "/work/shared/data"))


def default_eval_clips() -> list[Path]:
    """The eval clips (`video/eval/*`), sorted by name."""
    root = data_dir() / "video" / "eval"
    return sorted(p for p in root.glob("*") if p.suffix.lower() in VIDEO_EXTS)


def default_kodak() -> list[Path]:
    return sorted((data_dir() / "images" / "kodak").glob("*.png"))


def default_reference() -> Path | None:
    path = data_dir() / "reference" / "anchors_eval.json"
    return path if path.exists() else None


def resolve_clips(specs: list[str] | None) -> list[Path]:
    """Paths for clip specs: existing files, or names/stems of the default eval clips."""
    if not specs:
        return default_eval_clips()
    known = {p.stem: p for p in default_eval_clips()}
    out = []
    for spec in specs:
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            path = Path(item)
            if path.exists():
                out.append(path)
                continue
            matches = [p for stem, p in known.items() if stem == item or stem.startswith(item)]
            if len(matches) != 1:
                raise ValueError(f"clip {item!r} is neither a file nor one eval clip name "
                                 f"(known: {', '.join(known)})")
            out.append(matches[0])
    return out


@dataclasses.dataclass(frozen=True)
class Clip:
    """A source clip and its raw yuv420p decode (`raw`), named after the file stem."""

    name: str
    source: Path
    raw: RawVideo
    decode_command: str

    @property
    def width(self) -> int:
        return self.raw.width

    @property
    def height(self) -> int:
        return self.raw.height

    @property
    def frames(self) -> int:
        return self.raw.frames

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "source": str(self.source),
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "fps": float(self.raw.fps),
            "fps_fraction": f"{self.raw.fps.numerator}/{self.raw.fps.denominator}",
            "decode_command": self.decode_command,
        }

    def y4m(self, work_dir: str | os.PathLike) -> Path:
        """A lossless .y4m copy of the raw clip (for codecs driven through a CLI); made once."""
        path = Path(work_dir) / f"{self.name}.y4m"
        if not path.exists():
            tmp = path.with_suffix(".tmp.y4m")
            cmd = [ffmpeg.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y"]
            cmd += self.raw.input_args() + ["-c:v", "rawvideo", "-f", "yuv4mpegpipe", str(tmp)]
            ffmpeg.run(cmd)
            tmp.replace(path)
        return path


def prepare_clip(
    source: str | os.PathLike,
    work_dir: str | os.PathLike,
    *,
    max_frames: int | None = None,
    crop: tuple[int, int, int, int] | None = None,
    name: str | None = None,
) -> Clip:
    """Decodes `source` once to `work_dir/<name>.yuv` (8-bit yuv420p, every frame, passthrough).

    `max_frames` keeps the first N frames; `crop` is (w, h, x, y) (tests use tiny crops).
    """
    source = Path(source)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    name = name or source.stem
    raw_path = work_dir / f"{name}.yuv"
    cmd = ffmpeg.decode_to_raw(source, raw_path, max_frames=max_frames, crop=crop)
    if crop is not None:
        width, height = crop[0], crop[1]
    else:
        width, height = ffmpeg.probe_size(source)
    frames = ffmpeg.count_frames(raw_path, width, height)
    if frames == 0:
        raise ValueError(f"{source}: no frames decoded")
    raw = RawVideo(raw_path, width, height, frames, ffmpeg.probe_fps(source))
    return Clip(name, source, raw, ffmpeg.format_command(cmd))
