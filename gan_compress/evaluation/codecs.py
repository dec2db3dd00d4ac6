"""Pluggable "test codecs" for the RD sweep: ours through its CLI, or any ffmpeg configuration.

A test codec turns a `Clip` (raw 8-bit yuv420p) into a bitstream on disk and back into raw 8-bit
yuv420p; the sweep measures bytes on disk and compares the decode with the clip:

    codec.encode(clip, quality, out_dir) -> Encoded(path, bytes, commands, seconds)
    codec.decode(encoded, clip, out_raw)  -> Decoded(path, commands, seconds)

`GanCompressCodec` drives gan_compress exactly as a user would, in a subprocess:
`gan-compress encode IN.y4m OUT.gcv --quality N --frames F [--model DIR]`,
`gan-compress info OUT.gcv --json` (for "num_qualities") and `gan-compress decode OUT.gcv OUT.y4m`.
`FfmpegCodec` wraps an `Anchor` so tests (or comparisons) can pose any ffmpeg encoder as the
test codec.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

from gan_compress.evaluation import anchors as anchors_lib
from gan_compress.evaluation import ffmpeg
from gan_compress.evaluation.clips import Clip


class Encoded(NamedTuple):
    """A bitstream on disk: `bytes` is what counts for the rate."""

    path: Path
    bytes: int
    commands: list[str]
    seconds: float


class Decoded(NamedTuple):
    """A decode as raw 8-bit yuv420p at `path`."""

    path: Path
    commands: list[str]
    seconds: float
    note: str = ""


class TestCodec:
    """Interface of a codec under test (subclass and implement encode/decode)."""

    __test__ = False  # not a pytest class
    name = "test"
    label = "test codec"
    setting = ""

    def available(self) -> tuple[bool, str]:
        return True, ""

    def qualities(self) -> list[int] | None:
        """The quality levels to sweep, or None if only known after a first encode."""
        raise NotImplementedError

    def discover_qualities(self, encoded: Encoded) -> list[int]:
        return self.qualities() or []

    def encode(self, clip: Clip, quality: int, out_dir: Path) -> Encoded:
        raise NotImplementedError

    def decode(self, encoded: Encoded, clip: Clip, out_raw: Path) -> Decoded:
        raise NotImplementedError

    def to_json(self) -> dict:
        return {"name": self.name, "label": self.label, "setting": self.setting}


class FfmpegCodec(TestCodec):
    """Any `Anchor` configuration posing as the test codec (qualities = its ladder)."""

    def __init__(self, anchor: anchors_lib.Anchor, name: str | None = None,
                 label: str | None = None, threads: int = 2):
        self.anchor = anchor
        self.name = name or anchor.name
        self.label = label or anchor.label
        self.setting = anchor.setting
        self.threads = threads

    def qualities(self) -> list[int]:
        return list(self.anchor.ladder)

    def encode(self, clip: Clip, quality: int, out_dir: Path) -> Encoded:
        out = Path(out_dir) / f"{clip.name}.{self.name}.q{quality}.{self.anchor.ext}"
        cmd = self.anchor.encode_command(clip.raw, quality, out, threads=self.threads)
        t0 = time.perf_counter()
        ffmpeg.run(cmd)
        seconds = time.perf_counter() - t0
        return Encoded(out, self.anchor.stream_bytes(out), [ffmpeg.format_command(cmd)], seconds)

    def decode(self, encoded: Encoded, clip: Clip, out_raw: Path) -> Decoded:
        tmp = out_raw.with_suffix(".dec")
        cmd = self.anchor.decode_command(encoded.path, tmp)
        t0 = time.perf_counter()
        ffmpeg.run(cmd)
        anchors_lib.read_decoded_as_8bit(self.anchor, tmp, out_raw, clip.width, clip.height)
        note = ""
        if self.anchor.decode_bits == 10:
            note = "10-bit decode rounded to 8 bit with (x+2)>>2"
        return Decoded(out_raw, [ffmpeg.format_command(cmd)], time.perf_counter() - t0, note)

    def to_json(self) -> dict:
        return {**super().to_json(), "anchor": self.anchor.to_json()}


def default_cli_command() -> list[str]:
    """`gan-compress` next to the running interpreter, else `python -m gan_compress`."""
    exe = Path(sys.executable).parent / "gan-compress"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("gan-compress")
    return [found] if found else [sys.executable, "-m", "gan_compress"]


def y4m_chroma(path: str | os.PathLike) -> str:
    """The colour-space tag of a .y4m header (e.g. '420jpeg', '444'; '420' when absent)."""
    with open(path, "rb") as f:
        header = f.readline(4096).decode("ascii", "replace").split()
    for token in header:
        if token.startswith("C"):
            return token[1:]
    return "420"


def gop_name(gop: int) -> str:
    """The codec-name suffix of an intra period: 'intra' (1), 'gop12', 'gop_inf' (-1)."""
    return {1: "intra", -1: "gop_inf"}.get(gop, f"gop{gop}")


def gop_label(gop: int) -> str:
    return {1: "I-only", -1: "GOP -1: one I-frame"}.get(gop, f"GOP {gop}")


class GanCompressCodec(TestCodec):
    """gan_compress through its CLI, in a subprocess, as a user would run it.

    `gop` (None: the CLI's default) is passed as `--gop`; a sweep at several intra periods
    uses one codec per period, named `gan_compress_intra`, `gan_compress_gop12`, ...
    Subclasses change how a file is coded by overriding `_encode_file` / `_decode_file`.
    """

    name = "gan_compress"

    def __init__(self, model: str | os.PathLike | None = None, command: list[str] | None = None,
                 qualities: list[int] | None = None, timeout: float = 3600.0,
                 gop: int | None = None, name: str | None = None,
                 intra_decision: str | None = None, intra_quality_offset: int | None = None,
                 search_radius: int | None = None):
        self.model = str(model) if model else None
        self.command = list(command) if command else default_cli_command()
        self._qualities = list(qualities) if qualities else None
        self.timeout = timeout
        self.gop = gop
        # None: the CLI's default (rd); "fixed" is named in the codec's name and label
        self.intra_decision = intra_decision
        # None: the CLI's default offset; a given one is named (gan_compress_gop12_io1)
        self.intra_quality_offset = None if gop == 1 else intra_quality_offset
        self.search_radius = None if gop == 1 else search_radius  # P-frame encoder only
        base = name or self.name
        self.name = base if gop is None else f"{base}_{gop_name(gop)}"
        fixed = intra_decision == "fixed" and gop not in (None, 1)
        self.name += "_fixed" if fixed else ""
        offset = self.intra_quality_offset
        self.name += f"_io{offset}" if offset is not None else ""
        self.name += f"_sr{self.search_radius}" if self.search_radius is not None else ""
        model_name = Path(self.model).name if self.model else base
        detail = [model_name] if model_name != base else []
        detail += [gop_label(gop)] if gop is not None else []
        detail += ["fixed I-frames"] if fixed else []
        detail += [f"I-frames +{offset} levels"] if offset is not None else []
        detail += ([f"search +-{self.search_radius} px"] if self.search_radius is not None
                   else [])
        self.label = base + (f" ({', '.join(detail)})" if detail else "")
        self.setting = " ".join(self.command + self._model_args() + self._gop_args())
        self._available: tuple[bool, str] | None = None

    def _run(self, args: list[str]) -> subprocess.CompletedProcess:
        return ffmpeg.run([*self.command, *args], timeout=self.timeout)

    def available(self) -> tuple[bool, str]:
        if self._available is None:
            try:
                proc = subprocess.run([*self.command, "encode", "--help"], capture_output=True,
                                      text=True, timeout=300)
                ok = proc.returncode == 0
                reason = "" if ok else (proc.stderr.strip().splitlines() or ["no output"])[-1]
            except (OSError, subprocess.TimeoutExpired) as e:
                ok, reason = False, str(e)
            self._available = (ok, reason and f"gan-compress CLI not usable: {reason}")
        return self._available

    def qualities(self) -> list[int] | None:
        return self._qualities

    def info(self, path: str | os.PathLike) -> dict:
        return json.loads(self._run(["info", str(path), "--json"]).stdout)

    def discover_qualities(self, encoded: Encoded) -> list[int]:
        """1..num_qualities, from `info --json` (else the model's config.json, else 6)."""
        if self._qualities is None:
            info = self.info(encoded.path)
            n = info.get("num_qualities") or info.get("header", {}).get("num_qualities")
            config = Path(self.model or "", "config.json")
            if not n and self.model and config.exists():
                n = json.loads(config.read_text()).get("model", {}).get("num_qualities")
            self._qualities = list(range(1, int(n or 6) + 1))
        return self._qualities

    def _model_args(self) -> list[str]:
        return ["--model", self.model] if self.model else []

    def _gop_args(self) -> list[str]:
        args = ["--gop", str(self.gop)] if self.gop is not None else []
        if self.intra_decision is not None and self.gop != 1:
            args += ["--intra_decision", self.intra_decision]
        if self.intra_quality_offset is not None:
            args += ["--intra_quality_offset", str(self.intra_quality_offset)]
        if self.search_radius is not None:
            args += ["--search_radius", str(self.search_radius)]
        return args

    def _encode_args(self, src: Path, out: Path, quality: int, frames: int | None) -> list[str]:
        args = ["encode", str(src), str(out), "--quality", str(quality)]
        args += ["--frames", str(frames)] if frames is not None else []
        return [*args, *self._model_args(), *self._gop_args()]

    def _decode_args(self, gcv: Path, out: Path) -> list[str]:
        return ["decode", str(gcv), str(out), *self._model_args()]

    def _encode_file(self, src: Path, out: Path, quality: int, frames: int | None) -> str:
        """Codes `src` (a .y4m or an image) into `out`; returns the command, as a user types it."""
        args = self._encode_args(src, out, quality, frames)
        self._run(args)
        return " ".join(self.command + args)

    def _decode_file(self, gcv: Path, out: Path) -> str:
        """Decodes `gcv` to `out` (.y4m or .png); returns the command."""
        args = self._decode_args(gcv, out)
        self._run(args)
        return " ".join(self.command + args)

    def encode(self, clip: Clip, quality: int, out_dir: Path) -> Encoded:
        out = Path(out_dir) / f"{clip.name}.{self.name}.q{quality}.gcv"
        src = clip.y4m(clip.raw.path.parent)
        t0 = time.perf_counter()
        command = self._encode_file(src, out, quality, clip.frames)
        seconds = time.perf_counter() - t0
        return Encoded(out, os.path.getsize(out), [command], seconds)

    def decode(self, encoded: Encoded, clip: Clip, out_raw: Path) -> Decoded:
        y4m = out_raw.with_suffix(".y4m")
        t0 = time.perf_counter()
        command = self._decode_file(encoded.path, y4m)
        seconds = time.perf_counter() - t0
        chroma = y4m_chroma(y4m)
        ff = ffmpeg.decode_to_raw(y4m, out_raw)
        y4m.unlink()
        note = "" if chroma.startswith("420") else f"decoded as {chroma}, converted to yuv420p"
        return Decoded(out_raw, [command, ffmpeg.format_command(ff)], seconds, note)

    # Images (Kodak): the same coding with a PNG in and out.
    def encode_image(self, png: Path, quality: int, out_dir: Path) -> Encoded:
        out = Path(out_dir) / f"{png.stem}.{self.name}.q{quality}.gcv"
        t0 = time.perf_counter()
        command = self._encode_file(png, out, quality, None)
        seconds = time.perf_counter() - t0
        return Encoded(out, os.path.getsize(out), [command], seconds)

    def decode_image(self, encoded: Encoded, out_png: Path) -> Decoded:
        t0 = time.perf_counter()
        command = self._decode_file(encoded.path, out_png)
        return Decoded(out_png, [command], time.perf_counter() - t0)

    def to_json(self) -> dict:
        return {**super().to_json(), "command": self.command, "model": self.model,
                "gop": self.gop, "intra_decision": self.intra_decision or "rd",
                "intra_quality_offset": self.intra_quality_offset,
                "search_radius": self.search_radius}


class InProcessCodec(GanCompressCodec):
    """A gan_compress model through the Python API in this process (one model load for a whole
    sweep instead of one per file). It writes and reads real `.gcv` files with the same
    `Codec.compress_video` / `decompress_video` calls the CLI makes, so bytes and decodes equal
    the CLI's (tests/test_same_network_everywhere.py); the recorded commands are the CLI
    commands that reproduce them."""

    def __init__(self, model: str, name: str | None = None, gop: int | None = None,
                 qualities: list[int] | None = None, intra_decision: str | None = None,
                 intra_quality_offset: int | None = None, search_radius: int | None = None):
        super().__init__(model, command=["gan-compress"], qualities=qualities, gop=gop,
                         name=name or Path(model).name, intra_decision=intra_decision,
                         intra_quality_offset=intra_quality_offset,
                         search_radius=search_radius)
        if not self.label.startswith("gan_compress"):
            self.label = f"gan_compress {self.label}"
        self.setting = f"gan_compress.load({model!r}) in-process" + (
            f", GOP {gop}" if gop is not None else "")
        self._codec = None

    _loaded: dict = {}  # model -> loaded Codec, shared by the codecs of one sweep (GOPs)

    def codec(self):
        if self._codec is None:
            if self.model not in InProcessCodec._loaded:
                from gan_compress import api

                InProcessCodec._loaded[self.model] = api.load(self.model)
            self._codec = InProcessCodec._loaded[self.model]
        return self._codec

    def available(self) -> tuple[bool, str]:
        try:
            self.codec()
        except Exception as e:  # noqa: BLE001 - reported as the reason it is skipped
            return False, f"{self.model}: {e}"
        return True, ""

    def qualities(self) -> list[int] | None:
        return self._qualities or list(range(1, self.codec().num_qualities + 1))

    def _encode_file(self, src: Path, out: Path, quality: int, frames: int | None) -> str:
        intra_period = None if self.gop is None else (0 if self.gop == -1 else self.gop)
        extra = {"intra_decision": self.intra_decision} if self.intra_decision else {}
        if self.intra_quality_offset is not None:
            extra["intra_quality_offset"] = self.intra_quality_offset
        if self.search_radius is not None:
            extra["search_radius"] = self.search_radius
        self.codec().compress_video(str(src), str(out), quality=quality, frames=frames,
                                    intra_period=intra_period, **extra)
        return " ".join(self.command + self._encode_args(src, out, quality, frames))

    def _decode_file(self, gcv: Path, out: Path) -> str:
        self.codec().decompress_video(str(gcv), str(out))
        return " ".join(self.command + self._decode_args(gcv, out))
