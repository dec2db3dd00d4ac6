"""Frame coding: a loaded model's networks and what codes one frame or one packet.

`FrameCoder` holds the I-frame codec (and the P-frame codec of a video model) with their traced
coding functions: `encode_frame` / `decode_packet` for I-frames, and GOP coders
(`gan_compress.gop`) for streams with P-frames. Every packet is checked against the sequence
header before anything is decoded (`check_packet`), and entropy decoding, the part that reads
untrusted bytes, runs within a time budget (`entropy_decode_budget`). Container files are
`api.Codec`'s business, model loading `gan_compress.loading`'s.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from gan_compress import bitstream as bs
from gan_compress import io as gio
from gan_compress.configs import Config

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


def _bad_packet(packet: bs.FramePacket, path: str):
    """-> bad(problem): a `MalformedError` naming `path` and the packet's frame."""
    return lambda problem: bs.MalformedError(path, f"frame {packet.frame_index}: {problem}")


def check_packet(packet: bs.FramePacket, header: bs.SequenceHeader | None,
                 path: str = "<stream>") -> None:
    """Checks a packet's type and shapes against the sequence header (`packet_shapes`
    of the header's frame size, at most `MAX_FRAME_PIXELS`) without TensorFlow; raises
    `MalformedError` naming `path` and the frame."""
    bad = _bad_packet(packet, path)

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


def packet_of(coded, frame_index: int) -> bs.FramePacket:
    """A `gop.CodedFrame` -> its container packet (I: y, z strings; P: motion y, motion z,
    residual y, residual z), with the frame and latent shapes (`packet_shapes`)."""
    from gan_compress import gop

    kind = bs.FrameType.I if coded.frame_type == gop.FRAME_I else bs.FrameType.P
    return bs.FramePacket(frame_index=frame_index, frame_type=kind, quality=coded.quality,
                          shapes=packet_shapes(coded.height, coded.width),
                          strings=tuple(bytes(s) for s in coded.strings))


class FrameCoder:
    """The coding functions of a loaded model (`api.Codec` adds files on top of these);
    thread-compatible (not thread-safe).

    `codec`: a finalized `IFrameCodec`, or an adapter of a full-codec SavedModel with its
    `compress`/`decompress`; `pframe`: the finalized `PFrameCodec` of a video model, or None.
    """

    def __init__(self, codec, config: Config, fingerprint_hex: str, name: str, pframe=None):
        import tensorflow as tf

        self._model = codec
        self._pframe = pframe  # PFrameCodec of a video model, else None
        self._gop_functions: dict = {}  # encoder search radius (None: the model's) -> functions
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

    @property
    def default_intra_quality_offset(self) -> int:
        """How many quality levels above the P-frames `compress_video` codes the I-frames of a
        stream with P-frames when no offset is given (`gop.DEFAULT_INTRA_QUALITY_OFFSET`)."""
        from gan_compress import gop

        return gop.DEFAULT_INTRA_QUALITY_OFFSET

    def _gop(self, search_radius: int | None = None):
        """The traced GOP coding functions (one set per P-frame encoder search radius)."""
        from gan_compress import gop

        if search_radius not in self._gop_functions:
            self._gop_functions[search_radius] = gop.GopFunctions(self._model, self._pframe,
                                                                  search_radius)
        return self._gop_functions[search_radius]

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

        bad = _bad_packet(packet, path)

        if packet.frame_type != bs.FrameType.I or (header is not None and
                                                   header.intra_period != 1):
            raise bad("a frame of a stream with P-frames depends on the frames before it: "
                      "decode it with iter_decoded")
        h, w = packet.shapes[0]
        self._check_packet_quality(packet, bad)

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

    def _check_packet_quality(self, packet: bs.FramePacket, bad) -> None:
        if not 1 <= packet.quality <= self.num_qualities:
            raise bad(f"quality {packet.quality} is outside model {self.name}'s "
                      f"1..{self.num_qualities}")

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

    def _gop_decoder(self, path: str):
        from gan_compress import gop

        functions = self._gop()
        functions.warm_up_entropy()
        return gop.GopDecoder(self._model, self._pframe, functions=functions)

    def _decode_gop_packet(self, decoder, packet: bs.FramePacket, header: bs.SequenceHeader,
                           path: str) -> np.ndarray:
        """One packet of a stream with P-frames, through `decoder` (which holds the reference);
        the entropy decoding runs within `entropy_decode_budget`."""

        from gan_compress import gop

        check_packet(packet, header, path)

        bad = _bad_packet(packet, path)

        self._check_packet_quality(packet, bad)
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
