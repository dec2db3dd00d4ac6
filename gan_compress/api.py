"""The Python API that apps and the CLI use: `load(path)` -> `Codec`.

    codec = gan_compress.load()                      # the shipped default model
    stats = codec.compress_video("in.y4m", "out.gcv", quality=3)
    codec.decompress_video("out.gcv", "out.y4m")
    data = codec.compress_image(rgb, quality=3)     # rgb: [H, W, 3] uint8 -> .gcv bytes
    rgb = codec.decompress_image(data)               # -> [H, W, 3] uint8

`path` may be a shipped model name (`small-gan`, the default, or `small-mse`; see
`gan_compress.registry`), a training model_dir (config.json + checkpoints), an export version
dir or base dir of the full codec SavedModel (assets/config.json), or a shipped-model folder.
Every model has a fingerprint (sha256 of its architecture and weights); `.gcv` files record it,
decoding with another model is refused, and `load_for_stream` finds the shipped model a stream
needs.
"""

from __future__ import annotations

import fractions
import os
import tempfile
import time
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from gan_compress import bitstream as bs
from gan_compress import io as gio
from gan_compress.framecoder import (  # noqa: F401  (re-exported: the public API)
    MAX_FRAME_PIXELS,
    FrameCoder,
    check_frame_size,
    check_packet,
    entropy_decode_budget,
    packet_of,
    packet_shapes,
    stuck_decoders,
)
from gan_compress.loading import (  # noqa: F401  (re-exported: the public API)
    CONFIG_NAME,
    ModelLoadError,
    load,
    load_for_stream,
    save_codec_checkpoint,
    save_shipped_model,
)


class EncodeStats(NamedTuple):
    frames: int
    bytes: int
    width: int
    height: int
    fps: fractions.Fraction
    seconds: float

    @property
    def bpp(self) -> float:
        return 8.0 * self.bytes / max(1, self.width * self.height * self.frames)

    @property
    def kbps(self) -> float:
        return 8.0 * self.bytes * float(self.fps) / max(1, self.frames) / 1000.0

    @property
    def frames_per_second(self) -> float:
        return self.frames / max(self.seconds, 1e-9)

    def summary(self, verb: str = "encoded") -> str:
        return (f"{verb} {self.frames} frame(s) {self.width}x{self.height}: {self.bytes:,} bytes, "
                f"{self.bpp:.4f} bpp, {self.kbps:.1f} kbps at {float(self.fps):.3g} fps, "
                f"{self.frames_per_second:.2f} frames/s")


def _progress(total: int | None, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=not enabled, leave=False,
                dynamic_ncols=True)


class Codec(FrameCoder):
    """A loaded codec: `FrameCoder`'s frame coding plus `.gcv` files, video and image files;
    thread-compatible (not thread-safe). Made by `load`."""

    # -- files ------------------------------------------------------------------------------------

    def _header(self, info: gio.VideoInfo, intra_period: int) -> bs.SequenceHeader:
        return bs.SequenceHeader(
            width=info.width, height=info.height,
            fps_num=info.fps.numerator, fps_den=info.fps.denominator, num_frames=0,
            matrix=info.color.matrix, color_range=info.color.range,
            intra_period=intra_period, model_name=self.name,
            model_fingerprint=self.fingerprint,
        )

    def compress_video(self, input_path: str, output_path: str, quality: int = 3,
                       frames: int | None = None, intra_period: int | None = None,
                       progress: bool = False, raw_options: dict | None = None,
                       intra_decision: str = "rd",
                       intra_quality_offset: int | None = None,
                       search_radius: int | None = None) -> EncodeStats:
        """Encodes a video or image file into a `.gcv` file (written atomically).

        `intra_period`: frames per GOP (an I-frame every `intra_period` frames, P-frames
        between; 1 = all intra, 0 = only the first frame intra; None: `default_intra_period`).
        `intra_decision`: "rd" also tries each scheduled P-frame as an I-frame and keeps the
        cheaper one (rate + lambda * MSE; the GOP restarts there, so `intra_period` is the
        longest I-frame distance), "fixed" keeps the schedule (`gop.GopEncoder`).
        `intra_quality_offset`: I-frames of a stream with P-frames are coded this many quality
        levels above `quality` (capped at the top level; None: `default_intra_quality_offset`).
        `search_radius`: the P-frame encoder's block-motion search range in pixels (x264's
        --merange; None: the model's `pframe.motion_search_radius`); encoding only.

        `raw_options` (width, height, fps) describe headerless `.yuv` input."""
        quality = self.check_quality(quality)
        if intra_period is None:
            intra_period = self.default_intra_period
        if intra_period != 1 and not self.supports_inter:
            raise ValueError(f"model {self.name} codes I-frames only: the GOP must be 1 (all "
                             f"intra), got {intra_period}")
        if intra_period < 0:
            raise ValueError(f"the intra period must be >= 0 (0: only the first frame intra), "
                             f"got {intra_period}")
        if frames is not None and frames < 1:
            raise ValueError(f"--frames must be at least 1, got {frames}")
        if intra_decision not in ("rd", "fixed"):
            raise ValueError(f"intra_decision must be rd or fixed, got {intra_decision!r}")
        if intra_quality_offset is None:
            intra_quality_offset = self.default_intra_quality_offset
        if intra_quality_offset < 0:
            raise ValueError(f"the intra quality offset must be >= 0, got {intra_quality_offset}")
        if search_radius is not None and intra_period != 1:
            self._gop(search_radius)  # validates the radius before any output exists
        t0 = time.perf_counter()
        with gio.open_video(input_path, **(raw_options or {})) as reader:
            info = reader.info
            check_frame_size(input_path, info.width, info.height)
            total = min(x for x in (info.num_frames, frames) if x is not None) if (
                info.num_frames or frames) else None
            n = 0
            encoder = None
            if intra_period != 1:
                from gan_compress import gop

                encoder = gop.GopEncoder(self._model, self._pframe, quality,
                                         intra_period if intra_period > 0 else -1,
                                         self._gop(search_radius),
                                         intra_decision=intra_decision,
                                         intra_quality_offset=intra_quality_offset)
            with bs.ContainerWriter(output_path, self._header(info, intra_period)) as writer, \
                    _progress(total, "encode", progress) as bar:
                for rgb in reader.frames_rgb():
                    if frames is not None and n >= frames:
                        break
                    if encoder is None:
                        writer.write(self.encode_frame(rgb, quality, n))
                    else:
                        writer.write(packet_of(encoder.encode(rgb)[0], n))
                    n += 1
                    bar.update(1)
                if n == 0:  # inside the writer's block, so no empty .gcv is left behind
                    raise gio.EmptyVideoError(input_path, "no frames to encode")
        size = os.path.getsize(output_path)
        return EncodeStats(n, size, info.width, info.height, info.fps, time.perf_counter() - t0)

    def iter_decoded(self, input_path: str, start: int = 0,
                     count: int | None = None) -> Iterator[np.ndarray]:
        """Streams decoded RGB frames `[H, W, 3]` uint8 of a `.gcv` file: frames `start`,
        `start + 1`, ... (`count` of them, default all). A stream with P-frames is entered at
        the I-frame at or before `start` (the seek index); memory stays one frame however
        long the clip."""
        with bs.ContainerReader(input_path, expected_fingerprint=self.fingerprint) as reader:
            header = reader.header
            check_frame_size(input_path, header.width, header.height)
            if not 0 <= start < max(1, reader.num_frames):
                raise ValueError(f"{input_path}: start frame {start} is outside 0.."
                                 f"{reader.num_frames - 1}")
            end = reader.num_frames if count is None else min(reader.num_frames, start + count)
            if header.intra_period == 1:
                for packet in reader.iter_packets(start):
                    if packet.frame_index >= end:
                        return
                    yield self.decode_packet(packet, header, input_path)
                return
            if not self.supports_inter:
                raise bs.MalformedError(input_path, f"the stream has P-frames (intra period "
                                        f"{header.intra_period}) and model {self.name} codes "
                                        f"I-frames only")
            key = reader.seek(start).frame_index
            decoder = self._gop_decoder(input_path)
            for packet in reader.iter_packets(key):
                if packet.frame_index >= end:
                    return
                rgb = self._decode_gop_packet(decoder, packet, header, input_path)
                if packet.frame_index >= start:
                    yield rgb

    def read_header(self, input_path: str) -> bs.SequenceHeader:
        with bs.ContainerReader(input_path, expected_fingerprint=self.fingerprint) as reader:
            return reader.header

    def decompress_video(self, input_path: str, output_path: str, progress: bool = False,
                         start: int = 0, frames: int | None = None) -> EncodeStats:
        """Decodes a `.gcv` file to `.y4m`, `.mkv`, `.mp4` or `.png` (a `%05d` pattern for
        several frames; without a pattern, frames go to `<stem>_00001.png`, ...): frames
        `start` .. `start + frames - 1` (default: all)."""
        t0 = time.perf_counter()
        header = self.read_header(input_path)
        if frames is not None and frames < 1:
            raise ValueError(f"--frames must be at least 1, got {frames}")
        if not 0 <= start < max(1, header.num_frames):
            raise ValueError(f"{input_path}: --start {start} is outside the stream's frames "
                             f"0..{header.num_frames - 1}")
        wanted = header.num_frames - start if frames is None else min(
            frames, header.num_frames - start)
        fps = fractions.Fraction(header.fps_num, header.fps_den)
        color = gio.ColorSpec(header.matrix, header.color_range)
        info = gio.VideoInfo(path=output_path, width=header.width, height=header.height, fps=fps,
                             num_frames=wanted, pix_fmt="yuv420p", color=color)
        out = output_path
        lower = out.lower()
        if lower.endswith(".png"):
            if wanted == 1 and "%" not in out:
                rgb = next(iter(self.iter_decoded(input_path, start, 1)))
                gio.write_png(out, rgb)
                return EncodeStats(1, os.path.getsize(input_path), header.width, header.height,
                                   fps, time.perf_counter() - t0)
            if "%" not in out:
                out = out[:-4] + "_%05d.png"
        elif not lower.endswith((".y4m", ".mkv", ".mp4")):
            raise ValueError(f"{output_path}: output must be .y4m, .mkv, .mp4 or .png")
        elif header.width % 2 or header.height % 2:
            kind = output_path.rsplit(".", 1)[-1].lower()
            raise ValueError(f"{output_path}: {kind} output is 4:2:0 and needs an even size, "
                             f"the video is {header.width}x{header.height}; decode to .png")
        decoded = 0
        with _progress(wanted, "decode", progress) as bar:
            def decoded_frames():
                nonlocal decoded
                for rgb in self.iter_decoded(input_path, start, wanted):
                    decoded += 1
                    bar.update(1)
                    yield rgb

            kwargs = {"crf": 12} if lower.endswith((".mkv", ".mp4")) else {}
            n = gio.write_video(out, decoded_frames(), info, **kwargs)  # atomic, PNG sets included
        return EncodeStats(n, os.path.getsize(input_path), header.width, header.height, fps,
                           time.perf_counter() - t0)

    def compress_image(self, image, quality: int = 3) -> bytes:
        """image: `[H, W, 3]` uint8 array or a PNG/JPEG path -> bytes of a 1-frame `.gcv`."""
        quality = self.check_quality(quality)
        rgb = gio.read_image(image) if isinstance(image, str | os.PathLike) else np.asarray(image)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"image must be [H, W, 3] uint8, got {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        check_frame_size("<array>" if not isinstance(image, str | os.PathLike) else
                         os.fspath(image), w, h)
        info = gio.VideoInfo(path="<array>", width=w, height=h, fps=fractions.Fraction(1),
                             num_frames=1, pix_fmt="rgb24", color=gio.ColorSpec.for_size(w, h))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "image.gcv")
            with bs.ContainerWriter(path, self._header(info, 1)) as writer:
                writer.write(self.encode_frame(rgb, quality, 0))
            with open(path, "rb") as f:
                return f.read()

    def decompress_image(self, data) -> np.ndarray:
        """bytes of a `.gcv` (or its path) -> `[H, W, 3]` uint8 (its first frame)."""
        if isinstance(data, bytes | bytearray):
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "image.gcv")
                with open(path, "wb") as f:
                    f.write(data)
                return next(iter(self.iter_decoded(path)))
        return next(iter(self.iter_decoded(os.fspath(data))))


