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

import contextlib
import dataclasses
import fractions
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from gan_compress import bitstream as bs
from gan_compress import io as gio
from gan_compress.configs import Config

CONFIG_NAME = "config.json"

# Largest frame the codec encodes or decodes (width * height; `gan_compress.io`'s limit).
# Decoding a frame this size takes a few GB of activations; a file that declares more is
# refused before anything is allocated.
MAX_FRAME_PIXELS = gio.MAX_FRAME_PIXELS
# Geometry of the I-frame codec (`gan_compress.models.iframe`: y is 16x down, z 64x, frames are
# padded to a multiple of 64). Repeated here so checks run before TensorFlow is imported; a
# test asserts they match the model.
LATENT_STRIDE, HYPER_STRIDE = 16, 64

# Time allowed for entropy-decoding one frame: a base plus a per-symbol allowance. Valid data
# needs 0.3-0.4 us per symbol on this project's 2-core machine with training running beside it
# (small-mse: 0.38 s for a 1080p frame, 2.0 s for 2160p; `benchmarks/decode_budget.py`), so
# the budget is 11x that or more (6.5 s and 22.9 s there, 1.0 s for tiny frames).
# A corrupt string can make TFC's range decoder loop forever (its Elias-gamma escape reads
# zero bits past the end of the data without bound); past the budget the frame is reported as
# corrupt. The spinning op cannot be cancelled: it keeps one thread busy until the process
# exits (the CLI exits at once; see `stuck_decoders`).
DECODE_BUDGET_BASE_S = 1.0
DECODE_BUDGET_PER_SYMBOL_S = 3e-6
_STUCK: list[threading.Thread] = []


def packet_shapes(height: int, width: int) -> tuple[tuple[int, int], ...]:
    """The shapes an I-frame packet of a `height` x `width` frame records: image, y, z."""
    ph = -(-height // HYPER_STRIDE) * HYPER_STRIDE
    pw = -(-width // HYPER_STRIDE) * HYPER_STRIDE
    return ((height, width), (ph // LATENT_STRIDE, pw // LATENT_STRIDE),
            (ph // HYPER_STRIDE, pw // HYPER_STRIDE))


def check_frame_size(path: str, width: int, height: int) -> None:
    """Raises `AbsurdDimensionsError` naming `path` if a frame is above `MAX_FRAME_PIXELS`."""
    if width * height > MAX_FRAME_PIXELS:
        raise bs.AbsurdDimensionsError(
            path, f"frame size {width}x{height} is above the codec's maximum of "
                  f"{MAX_FRAME_PIXELS:,} pixels (4096x4096)")


class ModelLoadError(ValueError):
    """The model path is missing or not a gan_compress model; the message names the path."""


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


def entropy_decode_budget(height: int, width: int, channels: int = 320) -> float:
    """Seconds allowed to entropy-decode a `width`x`height` frame with at most `channels`
    latent channels (y and z together, an upper bound for every shipped preset)."""
    hy = -(-height // HYPER_STRIDE) * (HYPER_STRIDE // LATENT_STRIDE)
    wy = -(-width // HYPER_STRIDE) * (HYPER_STRIDE // LATENT_STRIDE)
    return DECODE_BUDGET_BASE_S + DECODE_BUDGET_PER_SYMBOL_S * hy * wy * channels


def stuck_decoders() -> int:
    """How many entropy-decoding threads overran their budget and are still running (each
    spins one core inside TFC's range decoder until the process exits)."""
    return sum(t.is_alive() for t in _STUCK)


def _call_within(fn, seconds: float):
    """`fn()` run on a daemon thread; returns its result or re-raises its exception, or raises
    TimeoutError when it has not finished after `seconds` (the thread is then abandoned)."""
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e

    t = threading.Thread(target=target, name="gan-compress-entropy-decode", daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        _STUCK.append(t)
        raise TimeoutError(seconds)
    if "error" in box:
        raise box["error"]
    return box["result"]


def check_packet(packet: bs.FramePacket, header: bs.SequenceHeader | None,
                 path: str = "<stream>") -> None:
    """Checks a packet's type and shapes against the sequence header (`packet_shapes`
    of the header's frame size, at most `MAX_FRAME_PIXELS`) without TensorFlow; raises
    `MalformedError` naming `path` and the frame."""
    def bad(problem: str) -> bs.BitstreamError:
        return bs.MalformedError(path, f"frame {packet.frame_index}: {problem}")

    kind = packet.frame_type
    if kind == bs.FrameType.P and header is not None and header.intra_period == 1:
        raise bad("a P-frame in an all-intra stream (the header's intra_period is 1)")
    if kind == bs.FrameType.P and packet.frame_index == 0:
        raise bad("the first frame is a P-frame (nothing to predict it from)")
    if kind not in (bs.FrameType.I, bs.FrameType.P):
        raise bad(f"frame type {kind.name} is not supported")
    num_strings = 2 if kind == bs.FrameType.I else 4
    if len(packet.shapes) != 3 or len(packet.strings) != num_strings or any(
            len(s) != 2 for s in packet.shapes):
        raise bad(f"malformed {kind.name}-frame packet (expected 3 shapes of rank 2 and "
                  f"{num_strings} strings)")
    h, w = packet.shapes[0]
    if header is not None and (h, w) != (header.height, header.width):
        raise bad(f"the packet's frame size {w}x{h} differs from the sequence header's "
                  f"{header.width}x{header.height}")
    if h < 1 or w < 1:
        raise bad(f"empty frame size {w}x{h}")
    check_frame_size(path, w, h)
    if tuple(packet.shapes) != packet_shapes(h, w):
        raise bad(f"latent shapes {packet.shapes[1:]} do not match a {w}x{h} frame "
                  f"(expected {packet_shapes(h, w)[1:]})")


@contextlib.contextmanager
def _entropy_errors(bad, budget: float):
    """Turns what corrupt entropy-coded data does to a decode (a TF op error, or a range
    decoder still running after `budget` seconds) into `bad(problem)`, a `MalformedError`."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.OpError as e:
        first = (e.message or str(e)).strip().splitlines()[0][:120]
        raise bad(f"corrupt entropy-coded data ({first})") from None
    except TimeoutError:
        raise bad(f"corrupt entropy-coded data (the range decoder did not finish within "
                  f"{budget:.1f} s)") from None


def _packet_of(coded, frame_index: int) -> bs.FramePacket:
    """A `gop.CodedFrame` -> its container packet (I: y, z strings; P: motion y, motion z,
    residual y, residual z), with the frame and latent shapes (`packet_shapes`)."""
    from gan_compress import gop

    kind = bs.FrameType.I if coded.frame_type == gop.FRAME_I else bs.FrameType.P
    return bs.FramePacket(frame_index=frame_index, frame_type=kind, quality=coded.quality,
                          shapes=packet_shapes(coded.height, coded.width),
                          strings=tuple(bytes(s) for s in coded.strings))


class Codec:
    """A loaded codec; thread-compatible (not thread-safe)."""

    def __init__(self, codec, config: Config, fingerprint_hex: str, name: str, pframe=None):
        import tensorflow as tf

        self._model = codec
        self._pframe = pframe  # PFrameCodec of a video model, else None
        self._gop_functions = None
        self.config = config
        self.fingerprint = bytes.fromhex(fingerprint_hex)
        self.name = name
        self.num_qualities = config.model.num_qualities
        frames = tf.TensorSpec([None, None, None, 3], tf.uint8)
        q = tf.TensorSpec([], tf.int32)
        strings = tf.TensorSpec([None], tf.string)
        shape2 = tf.TensorSpec([2], tf.int32)
        if getattr(codec, "eager", False):
            self._compress, self._decompress = codec.compress, codec.decompress
        else:
            self._compress = tf.function(codec.compress, input_signature=[frames, q])
            self._decompress = tf.function(
                codec.decompress, input_signature=[strings, strings, shape2, q])
        if hasattr(codec, "decode_latents"):  # a Keras IFrameCodec (not a loaded SavedModel)
            self._decode_latents = tf.function(
                codec.decode_latents, input_signature=[strings, strings, shape2])
            latent = tf.TensorSpec([None, None, None, None], tf.int32)
            self._synthesize = tf.function(
                codec.synthesize_latents,
                input_signature=[latent, tf.TensorSpec(latent.shape, tf.float32), q, shape2])
        else:
            self._decode_latents = self._synthesize = None
        self._warm = getattr(codec, "eager", False)  # a remote model was traced at load

    @property
    def supports_inter(self) -> bool:
        """Whether this model codes P-frames (a video model), not only I-frames."""
        return self._pframe is not None

    @property
    def default_intra_period(self) -> int:
        """The intra period `compress_video` uses when none is given: `gop.DEFAULT_GOP` for a
        video model, 1 (all intra) for an I-frame-only model."""
        from gan_compress import gop

        return gop.DEFAULT_GOP if self.supports_inter else 1

    def _gop(self):
        from gan_compress import gop

        if self._gop_functions is None:
            self._gop_functions = gop.GopFunctions(self._model, self._pframe)
        return self._gop_functions

    # -- frames ----------------------------------------------------------------------------------

    def check_quality(self, quality: int) -> int:
        if not 1 <= int(quality) <= self.num_qualities:
            raise ValueError(f"quality must be in 1..{self.num_qualities}, got {quality}")
        return int(quality)

    def encode_frame(self, rgb: np.ndarray, quality: int, frame_index: int) -> bs.FramePacket:
        """rgb `[H, W, 3]` uint8 -> an I-frame packet."""
        c = self._compress(rgb[None], np.int32(quality))
        return bs.FramePacket(
            frame_index=frame_index,
            frame_type=bs.FrameType.I,
            quality=quality,
            shapes=(tuple(int(v) for v in c.image_shape.numpy()),
                    tuple(int(v) for v in c.y_shape.numpy()),
                    tuple(int(v) for v in c.z_shape.numpy())),
            strings=(bytes(c.y_strings.numpy()[0]), bytes(c.z_strings.numpy()[0])),
        )

    def decode_packet(self, packet: bs.FramePacket, header: bs.SequenceHeader | None = None,
                      path: str = "<stream>") -> np.ndarray:
        """An I-frame packet -> `[H, W, 3]` uint8.

        Everything the packet declares is checked before decoding: the frame type, the quality
        against this model's levels, and the shapes against those the header's frame size
        implies (`packet_shapes`); so a crafted packet cannot make the decoder allocate or run
        for longer than a real frame of the header's size. Raises `BitstreamError` naming
        `path` and the frame for any bad packet, including corrupt entropy-coded data.
        """
        check_packet(packet, header, path)

        def bad(problem: str) -> bs.BitstreamError:
            return bs.MalformedError(path, f"frame {packet.frame_index}: {problem}")

        if packet.frame_type != bs.FrameType.I or (header is not None and
                                                   header.intra_period != 1):
            raise bad("a frame of a stream with P-frames depends on the frames before it: "
                      "decode it with iter_decoded")
        h, w = packet.shapes[0]
        if not 1 <= packet.quality <= self.num_qualities:
            raise bad(f"quality {packet.quality} is outside model {self.name}'s "
                      f"1..{self.num_qualities}")

        y_strings = np.array([packet.strings[0]], object)
        z_strings = np.array([packet.strings[1]], object)
        size, quality = np.array([h, w], np.int32), np.int32(packet.quality)
        m = self.config.model
        budget = entropy_decode_budget(h, w, m.latent_channels + m.hyper_latent_channels)
        self._warm_up_decoder()
        if self._decode_latents is None:  # a SavedModel: one call, transforms included
            budget += 30.0 + 2e-5 * h * w
            with _entropy_errors(bad, budget):
                out = _call_within(
                    lambda: self._decompress(y_strings, z_strings, size, quality).numpy(), budget)
            return out[0]
        with _entropy_errors(bad, budget):
            y_symbols, mu = _call_within(
                lambda: self._decode_latents(y_strings, z_strings, size), budget)
        return self._synthesize(y_symbols, mu, quality, size).numpy()[0]

    def _warm_up_decoder(self) -> None:
        """Runs the decoding graph once, unbudgeted, on empty strings (all implicit zeros: every
        symbol decodes as its table's first, so it cannot spin), so tracing and graph
        optimisation are not counted in the first frame's entropy-decoding budget."""
        if self._warm:
            return
        import tensorflow as tf

        empty = np.array([b""], object)
        one = np.array([1, 1], np.int32)
        with contextlib.suppress(tf.errors.OpError):
            if self._decode_latents is None:
                self._decompress(empty, empty, one, np.int32(1))
            else:
                self._decode_latents(empty, empty, one)
        self._warm = True

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
                       progress: bool = False, raw_options: dict | None = None) -> EncodeStats:
        """Encodes a video or image file into a `.gcv` file (written atomically).

        `intra_period`: frames per GOP (an I-frame every `intra_period` frames, P-frames
        between; 1 = all intra, 0 = only the first frame intra; None: `default_intra_period`).

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
                                         intra_period if intra_period > 0 else -1, self._gop())
            with bs.ContainerWriter(output_path, self._header(info, intra_period)) as writer, \
                    _progress(total, "encode", progress) as bar:
                for rgb in reader.frames_rgb():
                    if frames is not None and n >= frames:
                        break
                    if encoder is None:
                        writer.write(self.encode_frame(rgb, quality, n))
                    else:
                        writer.write(_packet_of(encoder.encode(rgb)[0], n))
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

    def _gop_decoder(self, path: str):
        from gan_compress import gop

        self._warm_up_decoder()
        return gop.GopDecoder(self._model, self._pframe, functions=self._gop())

    def _decode_gop_packet(self, decoder, packet: bs.FramePacket, header: bs.SequenceHeader,
                           path: str) -> np.ndarray:
        """One packet of a stream with P-frames, through `decoder` (which holds the reference);
        the entropy decoding runs within `entropy_decode_budget`."""

        from gan_compress import gop

        check_packet(packet, header, path)

        def bad(problem: str) -> bs.BitstreamError:
            return bs.MalformedError(path, f"frame {packet.frame_index}: {problem}")

        if not 1 <= packet.quality <= self.num_qualities:
            raise bad(f"quality {packet.quality} is outside model {self.name}'s "
                      f"1..{self.num_qualities}")
        h, w = packet.shapes[0]
        p = self.config.pframe
        channels = (self.config.model.latent_channels + self.config.model.hyper_latent_channels
                    if packet.frame_type == bs.FrameType.I else
                    p.motion_latent_channels + p.residual_latent_channels
                    + 2 * p.hyper_latent_channels)
        budget = entropy_decode_budget(h, w, channels)
        decoder.run_entropy = lambda fn: _call_within(fn, budget)
        kind = gop.FRAME_I if packet.frame_type == bs.FrameType.I else gop.FRAME_P
        coded = gop.CodedFrame(kind, packet.strings, h, w, packet.quality)
        with _entropy_errors(bad, budget):
            try:
                return decoder.decode(coded)
            except ValueError as e:  # a P-frame without its reference
                raise bad(str(e)) from None

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


# -- loading --------------------------------------------------------------------------------------


def _read_config(path: str) -> Config:
    with open(path) as f:
        return Config.from_json(f.read())


def _has_pframe(model_dir: str, config: Config) -> bool:
    """Whether `model_dir` holds a video model (I-frame and P-frame codecs): shipped P-frame
    weights, or a checkpoint of a P-frame training stage."""
    if os.path.exists(os.path.join(model_dir, SHIPPED_WEIGHTS)):
        return os.path.exists(os.path.join(model_dir, SHIPPED_PFRAME_WEIGHTS))
    return config.train.stage.startswith("pframe")


def _build_pframe_from_checkpoint(model_dir: str, config: Config):
    """The finalized P-frame codec of a video model, or None for an I-frame-only model."""
    if not _has_pframe(model_dir, config):
        return None
    import tensorflow as tf

    from gan_compress.models.pframe import PFrameCodec

    pmodel = PFrameCodec(config.model, config.pframe)
    pmodel.build_for_shape()
    weights = os.path.join(model_dir, SHIPPED_PFRAME_WEIGHTS)
    if os.path.exists(weights):
        load_shipped_weights(pmodel, weights)
    else:
        ckpt_path = tf.train.latest_checkpoint(model_dir)
        if ckpt_path is None:
            raise ModelLoadError(f"{model_dir}: no checkpoint found")
        status = tf.train.Checkpoint(pmodel=pmodel).read(ckpt_path)
        status.expect_partial().assert_existing_objects_matched()
    pmodel.finalize()
    return pmodel


def _build_from_checkpoint(model_dir: str, config: Config):
    import tensorflow as tf

    from gan_compress.models.iframe import IFrameCodec

    model = IFrameCodec(config.model)
    model.build_for_shape()
    weights = os.path.join(model_dir, SHIPPED_WEIGHTS)
    if os.path.exists(weights):
        load_shipped_weights(model, weights)
        _finalize_with_cache(model, model_dir)
        return model
    ckpt_path = tf.train.latest_checkpoint(model_dir)
    if ckpt_path is None:
        raise ModelLoadError(f"{model_dir}: no checkpoint found")
    # read(), not restore(): restore() adds a save_counter that a codec-only checkpoint written
    # by save_codec_checkpoint() (Checkpoint.write) lacks, and the match assertion then fails.
    status = tf.train.Checkpoint(model=model).read(ckpt_path)
    status.expect_partial().assert_existing_objects_matched()
    _finalize_with_cache(model, model_dir)
    return model


TABLES_CACHE = "z_tables.npz"
SHIPPED_WEIGHTS = "weights.npz"
SHIPPED_PFRAME_WEIGHTS = "pframe_weights.npz"  # video models only


def load_shipped_weights(model, path: str) -> None:
    """Assigns the float16 arrays of a shipped `weights.npz` (keys w000.. in the codec's
    variable order) to the float32 variables; refuses a count or shape mismatch."""
    variables = model.trainable_variables
    with np.load(path) as d:
        keys = sorted(k for k in d.files if k.startswith("w"))
        if len(keys) != len(variables):
            raise ModelLoadError(f"{path}: {len(keys)} arrays for {len(variables)} variables "
                                 "of this architecture")
        for key, v in zip(keys, variables, strict=True):
            value = d[key]
            if tuple(value.shape) != tuple(v.shape):
                raise ModelLoadError(f"{path}: {key} has shape {value.shape}, the "
                                     f"architecture needs {tuple(v.shape)}")
            v.assign(value.astype(np.float32))


def _save_float16(model, path: str) -> None:
    arrays = {f"w{i:03d}": v.numpy().astype(np.float16)
              for i, v in enumerate(model.trainable_variables)}
    np.savez(path, **arrays)


def save_shipped_model(model, config: Config, out_dir: str, card: str = "",
                       pmodel=None) -> str:
    """Writes a model in the shipped form (see `gan_compress.registry`): float16 weights,
    config, fingerprint of the weights as they load back, z tables and the model card.
    The folder is built beside `out_dir` and renamed into place. Returns the fingerprint."""
    import shutil

    from gan_compress.export_lib import fingerprint
    from gan_compress.registry import FINGERPRINT_NAME

    out_dir = os.path.abspath(out_dir)
    tmp = f"{out_dir}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    _save_float16(model, os.path.join(tmp, SHIPPED_WEIGHTS))
    if pmodel is not None:
        _save_float16(pmodel, os.path.join(tmp, SHIPPED_PFRAME_WEIGHTS))
    with open(os.path.join(tmp, CONFIG_NAME), "w") as f:
        f.write(config.to_json())
    loaded = _build_from_checkpoint(tmp, config)  # the float16-rounded weights, finalized
    fp = fingerprint(config, loaded, _build_pframe_from_checkpoint(tmp, config))
    with open(os.path.join(tmp, FINGERPRINT_NAME), "w") as f:
        f.write(fp + "\n")
    if card:
        with open(os.path.join(tmp, "MODEL_CARD.md"), "w") as f:
            f.write(card)
    if os.path.exists(out_dir):
        old = f"{out_dir}.old-{os.getpid()}"
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)
    return fp


def _weights_sha(model) -> str:
    import hashlib

    h = hashlib.sha256()
    for v in model.trainable_variables:
        h.update(np.ascontiguousarray(v.numpy()).tobytes())
    return h.hexdigest()


def _finalize_with_cache(model, model_dir: str) -> None:
    """finalize(), reusing z's coding tables cached beside the checkpoint when they were made
    from exactly these weights (the eager table estimation costs several seconds per load)."""
    sha = _weights_sha(model)
    path = os.path.join(model_dir, TABLES_CACHE)
    tables = None
    try:
        with np.load(path) as d:
            if str(d["weights_sha"]) == sha:
                offset = d["quantization_offset"] if bool(d["has_offset"]) else None
                tables = (d["cdf"], d["cdf_offset"], offset)
    except (OSError, KeyError, ValueError):  # no cache, or an unreadable one: rebuild it
        tables = None
    if tables is not None:
        model.finalize(tables)
        return
    model.finalize()
    cdf, cdf_offset, offset = model.z_tables()
    tmp = f"{path}.partial-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, cdf=cdf, cdf_offset=cdf_offset, weights_sha=sha,
                     has_offset=offset is not None,
                     quantization_offset=offset if offset is not None else np.zeros(0))
        os.replace(tmp, path)
    except OSError:  # read-only model dir: no cache, just slower loads
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _resolve_saved_model(path: str) -> str | None:
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = sorted((int(d) for d in os.listdir(path) if d.isdigit()), reverse=True) if \
        os.path.isdir(path) else []
    for v in versions:
        p = os.path.join(path, str(v))
        if os.path.exists(os.path.join(p, "saved_model.pb")):
            return p
    return None


class _SavedModelCodec:
    """Adapter giving a loaded full-codec SavedModel the `compress`/`decompress` of IFrameCodec."""

    def __init__(self, loaded, eager: bool = False):
        self._m = loaded
        self.eager = eager  # calls leave TensorFlow (gRPC): never trace them into a graph

    def compress(self, frames, quality):
        from gan_compress.models.iframe import CompressedFrames

        out = self._m.compress(frames, quality)
        return CompressedFrames(out["y_strings"], out["z_strings"], out["image_shape"],
                                out["y_shape"], out["z_shape"], quality)

    def decompress(self, y_strings, z_strings, image_shape, quality):
        return self._m.decompress(y_strings, z_strings, image_shape, quality)["frames"]


def load(path: str | None = None, name: str | None = None) -> Codec:
    """Loads a codec: a shipped model name (default `registry.DEFAULT_MODEL`), a training
    model_dir, a shipped-model folder, or a full-codec SavedModel (version or base dir)."""
    from gan_compress import registry

    try:
        path, shipped = registry.resolve(None if path is None else os.fspath(path))
    except registry.UnknownModelError as e:
        raise ModelLoadError(str(e)) from None
    import tensorflow as tf
    import tensorflow_compression  # noqa: F401  (registers the range-coding ops)

    from gan_compress.export_lib import fingerprint

    saved = _resolve_saved_model(path)
    if saved is not None:
        cfg_path = os.path.join(saved, "assets", CONFIG_NAME)
        fp_path = os.path.join(saved, "assets", "fingerprint.txt")
        if not (os.path.exists(cfg_path) and os.path.exists(fp_path)):
            raise ModelLoadError(f"{saved}: SavedModel without gan_compress assets")
        config = _read_config(cfg_path)
        loaded = tf.saved_model.load(saved)
        if not hasattr(loaded, "compress"):
            raise ModelLoadError(f"{saved}: not a full-codec SavedModel (no compress signature)")
        with open(fp_path) as f:
            fp = f.read().strip()
        return Codec(_SavedModelCodec(loaded), config, fp,
                     name or f"{config.model.name}-{config.preset}")
    cfg_path = os.path.join(path, CONFIG_NAME)
    if not os.path.exists(cfg_path):
        raise ModelLoadError(f"{path}: not a gan_compress model (no {CONFIG_NAME})")
    config = _read_config(cfg_path)
    model = _build_from_checkpoint(path, config)
    pmodel = _build_pframe_from_checkpoint(path, config)
    return Codec(model, config, fingerprint(config, model, pmodel),
                 name or shipped or f"{config.model.name}-{config.preset}", pframe=pmodel)


def load_for_stream(gcv_path: str, model: str | None = None) -> Codec:
    """The codec that decodes `gcv_path`: `model` if given, else the shipped model whose
    fingerprint the stream's header records. Raises ModelLoadError naming the file, the
    stream's model and the shipped ones when none matches."""
    from gan_compress import registry

    if model is not None:
        return load(model)
    try:
        return load(registry.model_for_stream(gcv_path))
    except registry.UnknownModelError as e:
        raise ModelLoadError(str(e)) from None


def save_codec_checkpoint(model, config: Config, out_dir: str) -> str:
    """Writes the codec's weights only (no discriminator/optimizers) and its config: the form
    a shipped model takes. Returns the checkpoint prefix."""
    import tensorflow as tf

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, CONFIG_NAME), "w") as f:
        f.write(dataclasses.replace(config).to_json())
    ckpt = tf.train.Checkpoint(model=model)
    prefix = ckpt.write(os.path.join(out_dir, "codec"))
    with open(os.path.join(out_dir, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "codec"\nall_model_checkpoint_paths: "codec"\n')
    return prefix

