"""GOP coding in memory: I-frames and P-frames of one clip, without the container.

`GopEncoder` codes frames one at a time: an I-frame at the start of every group of pictures
(`gop` frames; `gop=-1`: only the first frame), P-frames in between, each predicted from the
previous frame's reconstruction. The reconstruction the encoder predicts from is the decoder's,
byte for byte: I-frames go through `IFrameCodec.synthesize_reference` and P-frames through
`PFrameCodec`'s float64 decoder path (`gan_compress.layers.exact`), so nothing drifts through a
GOP whatever thread count either side runs with. `GopDecoder` mirrors it. Memory is one
reference frame on either side, however long the clip.

The coding functions are `tf.function`s with fixed input signatures (any frame size, one frame
per call), traced once per codec.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from gan_compress.models.iframe import IFrameCodec
from gan_compress.models.pframe import PFrameCodec

FRAME_I, FRAME_P = "I", "P"
DEFAULT_GOP = 12  # low delay: an I-frame every 12 frames (0.4 s at 30 fps) for seeking
# levels (each 2x lambda) the I-frames of a stream with P-frames are coded above the P-frames
# (x264's ipratio); 0: an offset of 1 saved only 0.8-1.5 % (benchmarks/intra_offset.py)
DEFAULT_INTRA_QUALITY_OFFSET = 0


class CodedFrame(NamedTuple):
    """One coded frame. frame_type: "I" or "P"; strings: (y, z) for I-frames, (motion y,
    motion z, residual y, residual z) for P-frames; height, width; quality 1-based."""

    frame_type: str
    strings: tuple[bytes, ...]
    height: int
    width: int
    quality: int

    @property
    def num_bytes(self) -> int:
        return sum(len(s) for s in self.strings)


def frame_types(num_frames: int, gop: int) -> list[str]:
    """"I"/"P" for each frame index: I at 0, gop, 2*gop, ... (`gop` -1: only frame 0)."""
    if gop == 0 or gop < -1:
        raise ValueError(f"gop must be >= 1 or -1 (only the first frame intra), got {gop}")
    return [FRAME_I if (i == 0 or (gop > 0 and i % gop == 0)) else FRAME_P
            for i in range(num_frames)]


_FRAME = tf.TensorSpec([1, None, None, 3], tf.uint8)
_STR = tf.TensorSpec([1], tf.string)
_SHAPE = tf.TensorSpec([2], tf.int32)
_Q = tf.TensorSpec([], tf.int32)
_LATENT64 = tf.TensorSpec([1, None, None, None], tf.float64)
_SYMBOLS = tf.TensorSpec([1, None, None, None], tf.int32)
_MU = tf.TensorSpec([1, None, None, None], tf.float32)


class GopFunctions:
    """The traced coding functions of one (I-frame, P-frame) codec pair. Decoding is split into
    entropy decoding (`i_entropy`, `p_entropy`: reads untrusted bytes, so a caller may bound
    its time) and synthesis (`i_synthesize`, `p_synthesize`)."""

    def __init__(self, iframe: IFrameCodec, pframe: PFrameCodec,
                 search_radius: int | None = None):
        """`search_radius`: the P-frame encoder's block-search radius in pixels (None: the
        model's; `PFrameCodec.search_radius`); it changes encoding only."""
        pframe.check_search_radius(search_radius)
        for codec, name in ((iframe, "IFrameCodec"), (pframe, "PFrameCodec")):
            if not codec.finalized:
                raise RuntimeError(f"{name}.finalize() must be called before GOP coding")

        @tf.function(input_signature=[_FRAME, _Q])
        def i_encode(frame, quality):
            c = iframe.compress(frame, quality)
            symbols, mu = iframe.decode_latents(c.y_strings, c.z_strings, c.image_shape)
            recon = iframe.synthesize_reference(symbols, mu, quality, c.image_shape)
            return c.y_strings, c.z_strings, recon

        @tf.function(input_signature=[_FRAME, _FRAME, _Q])
        def p_encode(frame, reference, quality):
            with pframe.search_radius(search_radius):  # read while this traces
                c, recon = pframe.compress(frame, reference, quality)
            return c.motion_y, c.motion_z, c.residual_y, c.residual_z, recon

        self.i_encode, self.p_encode = i_encode, p_encode
        self.i_entropy = tf.function(iframe.decode_latents, input_signature=[_STR, _STR, _SHAPE])
        self.i_synthesize = tf.function(iframe.synthesize_reference,
                                        input_signature=[_SYMBOLS, _MU, _Q, _SHAPE])
        self.p_entropy = tf.function(pframe.decode_latents,
                                     input_signature=[_STR, _STR, _STR, _STR, _SHAPE, _Q])
        self.p_synthesize = tf.function(pframe.synthesize,
                                        input_signature=[_LATENT64, _LATENT64, _FRAME, _SHAPE])
        self._entropy_warm = False

    def warm_up_entropy(self) -> None:
        """Traces `i_entropy` and `p_entropy` once on empty strings (implicit zeros: every symbol
        decodes as its table's first, so nothing can spin), so that tracing is not counted in
        a time budget a caller puts on the first frame's entropy decoding. Idempotent."""
        if self._entropy_warm:
            return
        empty, shape = tf.constant([b""]), tf.constant([1, 1], tf.int32)
        with contextlib.suppress(tf.errors.OpError):
            self.i_entropy(empty, empty, shape)
        with contextlib.suppress(tf.errors.OpError):
            self.p_entropy(empty, empty, empty, empty, shape, tf.constant(1, tf.int32))
        self._entropy_warm = True


INTRA_FIXED, INTRA_RD = "fixed", "rd"
INTRA_DECISIONS = (INTRA_FIXED, INTRA_RD)


def rd_cost(frame: np.ndarray, recon: np.ndarray, num_bytes: int, lam: float) -> float:
    """The training objective of one coded frame: bits per pixel + lam * MSE on the 0..255
    scale (`lam` = the quality level's lambda), for choosing between codings of a frame."""
    h, w = frame.shape[:2]
    err = frame.astype(np.float64) - recon.astype(np.float64)
    return 8.0 * num_bytes / (h * w) + lam * float(np.mean(err * err))


class GopEncoder:
    """Codes frames `[H, W, 3]` uint8 one at a time; `encode` returns (CodedFrame,
    reconstruction uint8 `[H, W, 3]`).

    `intra_decision`: "fixed" codes the frame types of `frame_types` (an I-frame every `gop`
    frames); "rd" (adaptive intra) also codes every scheduled P-frame as an I-frame and keeps
    the one with the lower `rd_cost` at the quality's lambda (scene cuts, motion the P-frame
    codec cannot follow, a P-frame that costs more than a new picture); the GOP restarts at
    an I-frame so chosen, so `gop` stays the longest distance between I-frames. Decoders need
    nothing new: every I-frame is in the seek index. "rd" roughly doubles P-frame encode time.
    """

    def __init__(self, iframe: IFrameCodec, pframe: PFrameCodec, quality: int,
                 gop: int = DEFAULT_GOP, functions: GopFunctions | None = None,
                 intra_decision: str = INTRA_FIXED, intra_quality_offset: int = 0):
        frame_types(1, gop)  # validates gop
        if not 1 <= quality <= iframe.cfg.num_qualities:
            raise ValueError(f"quality must be in 1..{iframe.cfg.num_qualities}, got {quality}")
        if intra_decision not in INTRA_DECISIONS:
            raise ValueError(f"intra_decision must be one of {INTRA_DECISIONS}, "
                             f"got {intra_decision!r}")
        self.fn = functions or GopFunctions(iframe, pframe)
        self.quality, self.gop = int(quality), int(gop)
        self.intra_decision = intra_decision
        self.lam = float(iframe.cfg.lambdas[self.quality - 1])
        if intra_quality_offset < 0:
            raise ValueError(f"intra_quality_offset must be >= 0, got {intra_quality_offset}")
        # I-frames of a stream with P-frames are coded this many levels above the P-frames
        # (capped at the top level): they are the references of the whole GOP
        self.intra_quality = (self.quality if gop == 1 else
                              min(self.quality + int(intra_quality_offset),
                                  iframe.cfg.num_qualities))
        self.index = 0
        self.since_intra = 0  # frames since the last I-frame
        self.reference: np.ndarray | None = None

    def next_type(self) -> str:
        """The scheduled type of the next frame (before any adaptive decision)."""
        if self.reference is None or (self.gop > 0 and self.since_intra + 1 >= self.gop):
            return FRAME_I
        return FRAME_P

    def _encode_i(self, frame, q):
        y, z, recon = self.fn.i_encode(frame[None], q)
        return (y.numpy()[0], z.numpy()[0]), recon.numpy()[0]

    def encode(self, frame: np.ndarray) -> tuple[CodedFrame, np.ndarray]:
        frame = np.asarray(frame, np.uint8)
        h, w = frame.shape[:2]
        if self.reference is not None and self.reference.shape != frame.shape:
            raise ValueError(f"frame {self.index}: size {w}x{h} differs from the reference's")
        kind = self.next_type()
        q = tf.constant(self.quality, tf.int32)
        q_intra = tf.constant(self.intra_quality, tf.int32)
        if kind == FRAME_I:
            strings, recon = self._encode_i(frame, q_intra)
        else:
            *s, recon = self.fn.p_encode(frame[None], self.reference[None], q)
            strings, recon = tuple(t.numpy()[0] for t in s), recon.numpy()[0]
            if self.intra_decision == INTRA_RD:
                i_strings, i_recon = self._encode_i(frame, q)
                cost_p = rd_cost(frame, recon, sum(len(t) for t in strings), self.lam)
                cost_i = rd_cost(frame, i_recon, sum(len(t) for t in i_strings), self.lam)
                if cost_i < cost_p:
                    kind, strings, recon = FRAME_I, i_strings, i_recon
        self.reference = recon
        self.since_intra = 0 if kind == FRAME_I else self.since_intra + 1
        self.index += 1
        quality = self.intra_quality if kind == FRAME_I else self.quality
        return CodedFrame(kind, strings, h, w, quality), self.reference


class GopDecoder:
    """Decodes `CodedFrame`s in order (a P-frame needs the frame before it decoded, or a
    reference given to `reset`); `decode` returns `[H, W, 3]` uint8.

    `run_entropy(fn)`: how the entropy-decoding step is called (default: `fn()`); `api.Codec`
    passes one that bounds its time, since corrupt bytes can make TFC's range decoder spin.
    """

    def __init__(self, iframe: IFrameCodec, pframe: PFrameCodec, run_entropy=None,
                 functions: GopFunctions | None = None):
        self.fn = functions or GopFunctions(iframe, pframe)
        self.run_entropy = run_entropy or (lambda fn: fn())
        self.reference: np.ndarray | None = None

    def reset(self, reference: np.ndarray | None = None) -> None:
        self.reference = reference

    def decode(self, coded: CodedFrame) -> np.ndarray:
        shape = tf.constant([coded.height, coded.width], tf.int32)
        q = tf.constant(coded.quality, tf.int32)
        strings = [tf.constant([s]) for s in coded.strings]
        if coded.frame_type == FRAME_I:
            symbols, mu = self.run_entropy(lambda: self.fn.i_entropy(*strings, shape))
            recon = self.fn.i_synthesize(symbols, mu, q, shape)
        elif coded.frame_type == FRAME_P:
            if self.reference is None or self.reference.shape[:2] != (coded.height, coded.width):
                raise ValueError("a P-frame needs the previous frame decoded first (decode "
                                 "from the I-frame that starts its GOP)")
            m_hat, y_hat = self.run_entropy(lambda: self.fn.p_entropy(*strings, shape, q))
            recon = self.fn.p_synthesize(m_hat, y_hat, self.reference[None], shape)
        else:
            raise ValueError(f"unknown frame type {coded.frame_type!r}")
        self.reference = recon.numpy()[0]
        return self.reference
