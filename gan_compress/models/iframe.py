"""The I-frame (key-frame) codec: a variable-rate mean-scale hyperprior with a GAN generator.

Papers: Balle et al. 2018 (scale hyperprior), Minnen et al. 2018 (mean and scale prediction),
Mentzer et al. 2020 (HiFiC: the synthesis transform is a GAN generator, trained against a
discriminator conditioned on the quantized latent), Cui et al. 2021 (per-channel gain vectors
for variable rate in one model).

Workflow:
  1. Training mode (the default): `codec(x, quality_index, training=True)` returns an
     `IFrameTrainOutput` with the reconstruction and the rate in bits from the entropy models
     (additive-noise proxy for the rate; straight-through rounding for the reconstruction).
  2. `codec.finalize()` builds the range-coding tables (`compression=True` entropy models).
  3. Coding mode: `codec.compress(frames_uint8, quality)` -> `CompressedFrames` (one pair of
     strings per frame), `codec.decompress(...)` -> uint8 frames. The decoder reproduces the
     encoder's quantized latent exactly (both are computed from the same decoded `z_hat`).

Shapes: images `[B, H, W, 3]`; `y` is `[B, ceil(H/16), ceil(W/16), M]` after padding to a
multiple of 64; `z` is `[B, H/64, W/64, Cz]`. Quality is 1-based at the public methods
(1 = lowest rate) and a 0-based `quality_index` inside.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf
import tensorflow_compression as tfc

from gan_compress import entropy_coding
from gan_compress.configs import ModelConfig
from gan_compress.layers import (
    AnalysisDownStage,
    ResidualBlock,
    SynthesisUpStage,
    exact,
    pad_to_multiple,
)

PAD_MULTIPLE = 64  # y is 16x down, z a further 4x


class IFrameTrainOutput(NamedTuple):
    """Result of a training-mode forward pass.

    x_hat: `[B, H, W, 3]` float32, nominally in [0, 1] (not clipped, so gradients flow).
    y_hat: `[B, h, w, M]` float32 quantized latent in the synthesis domain (after inverse gain);
      what the discriminator is conditioned on.
    bits_y, bits_z: `[B]` float32 rate estimates in bits per image.
    bpp: `[B]` float32 total bits per pixel of the (unpadded) image.
    """

    x_hat: tf.Tensor
    y_hat: tf.Tensor
    bits_y: tf.Tensor
    bits_z: tf.Tensor
    bpp: tf.Tensor


class CompressedFrames(NamedTuple):
    """Output of `IFrameCodec.compress` for `N` frames of one size at one quality.

    y_strings, z_strings: `[N]` tf.string, one range-coded string per frame.
    image_shape: `[2]` int32 (H, W) of the unpadded frames.
    y_shape, z_shape: `[2]` int32 spatial sizes of the latents (implied by image_shape; stored in
      the bitstream so a reader can sanity-check a packet before decoding).
    quality: int32 scalar, 1-based quality level.
    """

    y_strings: tf.Tensor
    z_strings: tf.Tensor
    image_shape: tf.Tensor
    y_shape: tf.Tensor
    z_shape: tf.Tensor
    quality: tf.Tensor


class AnalysisTransform(tf.keras.Sequential):
    """`[B, H, W, 3]` in [0, 1] -> `y` `[B, H/16, W/16, M]` (4 stride-2 stages)."""

    def __init__(self, cfg: ModelConfig):
        act = "gdn" if cfg.use_gdn else "relu"
        layers = [
            AnalysisDownStage(c, cfg.kernel_size, act, name=f"down{i}")
            for i, c in enumerate(cfg.analysis_channels)
        ]
        layers.append(AnalysisDownStage(cfg.latent_channels, cfg.kernel_size, None, name="down3"))
        super().__init__(layers, name="analysis")


class SynthesisTransform(tf.keras.Model):
    """The generator: `y_hat` `[B, h, w, M]` -> `[B, 16h, 16w, 3]` (HiFiC-style).

    A residual trunk at 1/16 resolution carries most of the capacity (cheap per pixel), then four
    stride-2 up-stages.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(name="synthesis")
        self.head = tf.keras.layers.Conv2D(cfg.synthesis_head_channels, 3, padding="same")
        self.blocks = [
            ResidualBlock(cfg.synthesis_head_channels, name=f"res{i}")
            for i in range(cfg.synthesis_res_blocks)
        ]
        act = "igdn" if cfg.use_gdn else "relu"
        self.ups = [
            SynthesisUpStage(c, cfg.kernel_size, act, name=f"up{i}")
            for i, c in enumerate(cfg.synthesis_channels)
        ]
        self.out = SynthesisUpStage(3, cfg.kernel_size, None, name="up3")

    def call(self, y_hat):
        h = self.head(y_hat)
        trunk = h
        for block in self.blocks:
            trunk = block(trunk)
        h = h + trunk
        for up in self.ups:
            h = up(h)
        return self.out(h) + 0.5  # centre the output range on mid-grey

    def call_float64(self, y_hat):
        """The same function evaluated in float64 (`exact.run_float64`): reproducible across
        thread counts and kernel libraries, for frames that serve as P-frame references."""
        h = exact.run_float64(self.head, y_hat)
        trunk = h
        for block in self.blocks:
            trunk = exact.run_float64(block, trunk)
        h = h + trunk
        for up in self.ups:
            h = exact.run_float64(up, h)
        return exact.run_float64(self.out, h) + 0.5


class HyperAnalysis(tf.keras.Sequential):
    """`y` `[B, h, w, M]` -> `z` `[B, h/4, w/4, Cz]`."""

    def __init__(self, cfg: ModelConfig):
        c = cfg.hyper_channels
        super().__init__(
            [
                tf.keras.layers.Conv2D(c, 3, padding="same", activation="relu"),
                tf.keras.layers.Conv2D(c, 5, strides=2, padding="same", activation="relu"),
                tf.keras.layers.Conv2D(cfg.hyper_latent_channels, 5, strides=2, padding="same"),
            ],
            name="hyper_analysis",
        )


class HyperSynthesis(tf.keras.Sequential):
    """`z_hat` -> `[B, h, w, 2M]`: the mean and the (continuous) scale index of each `y` element."""

    def __init__(self, cfg: ModelConfig):
        c = cfg.hyper_channels
        super().__init__(
            [
                tf.keras.layers.Conv2DTranspose(
                    c, 5, strides=2, padding="same", activation="relu"
                ),
                tf.keras.layers.Conv2DTranspose(
                    c, 5, strides=2, padding="same", activation="relu"
                ),
                tf.keras.layers.Conv2D(2 * cfg.latent_channels, 3, padding="same"),
            ],
            name="hyper_synthesis",
        )


class IFrameCodec(tf.keras.Model):
    """Variable-rate hyperprior codec whose synthesis transform is the GAN generator.

    Trainable variable groups (each variable in exactly one, see `variable_groups`):
      - "transforms": analysis, synthesis, hyper-analysis, hyper-synthesis, gain vectors;
      - "entropy": the factorized prior of `z`.
    """

    def __init__(self, cfg: ModelConfig, **kwargs):
        super().__init__(name="iframe_codec", **kwargs)
        self.cfg = cfg
        self.analysis = AnalysisTransform(cfg)
        self.synthesis = SynthesisTransform(cfg)
        self.hyper_analysis = HyperAnalysis(cfg)
        self.hyper_synthesis = HyperSynthesis(cfg)
        q, m = cfg.num_qualities, cfg.latent_channels
        # Log gains start spread over a factor of ~7 so the levels begin at different rates.
        init = tf.linspace(-1.0, 1.0, q)[:, None] * tf.ones([1, m])
        self.log_gain = tf.Variable(init, name="log_gain")
        self.log_inv_gain = tf.Variable(-init, name="log_inv_gain")
        self.hyperprior = tfc.NoisyDeepFactorized(batch_shape=[cfg.hyper_latent_channels])
        offset = tf.math.log(cfg.scale_min)
        factor = (tf.math.log(cfg.scale_max) - offset) / (cfg.num_scales - 1.0)
        self._scale_offset, self._scale_factor = offset, factor
        self.y_entropy_model = None  # set by finalize()
        self.z_entropy_model = None

    # -- helpers -------------------------------------------------------------------------------

    def scale_fn(self, index):
        return tf.math.exp(self._scale_offset + self._scale_factor * index)

    def _y_entropy_model(self, compression: bool):
        return tfc.LocationScaleIndexedEntropyModel(
            tfc.NoisyNormal, self.cfg.num_scales, self.scale_fn, coding_rank=3,
            compression=compression,
        )

    def _entropy_models(self, compression: bool):
        y_em = self._y_entropy_model(compression)
        z_em = tfc.ContinuousBatchedEntropyModel(
            self.hyperprior, coding_rank=3, compression=compression
        )
        return y_em, z_em

    def gains(self, quality_index: tf.Tensor):
        """`quality_index` int32 `[B]` or scalar (0-based) -> (gain, inverse gain), each
        `[B or 1, 1, 1, M]`."""
        qi = tf.reshape(tf.cast(quality_index, tf.int32), [-1])
        gain = tf.exp(tf.gather(self.log_gain, qi))[:, None, None, :]
        inv = tf.exp(tf.gather(self.log_inv_gain, qi))[:, None, None, :]
        return gain, inv

    def _hyper_params(self, z_hat):
        params = self.hyper_synthesis(z_hat)
        mu, scale_index = tf.split(params, 2, axis=-1)
        return mu, scale_index

    @property
    def finalized(self) -> bool:
        return self.y_entropy_model is not None

    def variable_groups(self) -> dict[str, list[tf.Variable]]:
        entropy = list(self.hyperprior.trainable_variables)
        ids = {id(v) for v in entropy}
        transforms = [v for v in self.trainable_variables if id(v) not in ids]
        return {"transforms": transforms, "entropy": entropy}

    def build_for_shape(self, height: int = 64, width: int = 64) -> None:
        """Creates all variables by running one tiny forward pass."""
        x = tf.zeros([1, height, width, 3])
        self(x, tf.zeros([1], tf.int32), training=False)

    # -- training mode ------------------------------------------------------------------------

    def call(self, x, quality_index, training=True) -> IFrameTrainOutput:
        """x: `[B, H, W, 3]` float32 in [0, 1]; quality_index: `[B]` int32 in [0, Q)."""
        y_em, z_em = self._entropy_models(compression=False)
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        xp = pad_to_multiple(x, PAD_MULTIPLE)
        gain, inv_gain = self.gains(quality_index)
        y = tf.cast(self.analysis(xp), tf.float32) * gain
        z = self.hyper_analysis(y)
        z = tf.cast(z, tf.float32)
        _, bits_z = z_em(z, training=training)
        z_offset = z_em.quantization_offset
        z_hat = tfc.round_st(z - z_offset) + z_offset
        mu, scale_index = self._hyper_params(z_hat)
        mu, scale_index = tf.cast(mu, tf.float32), tf.cast(scale_index, tf.float32)
        _, bits_y = y_em(y, scale_index, loc=mu, training=training)
        y_hat = (tfc.round_st(y - mu) + mu) * inv_gain
        x_hat = self.synthesis(y_hat)[:, :height, :width, :]
        num_pixels = tf.cast(height * width, tf.float32)
        bpp = (bits_y + bits_z) / num_pixels
        return IFrameTrainOutput(tf.cast(x_hat, tf.float32), y_hat, bits_y, bits_z, bpp)

    # -- coding mode --------------------------------------------------------------------------

    def finalize(self, z_tables=None) -> None:
        """Builds the range-coding tables from the trained priors (call after training).

        Estimating the tables of z's learned prior takes several seconds (TFC does it eagerly);
        `z_tables` = (cdf, cdf_offset, quantization_offset or None), as read back from a
        finalized model of the SAME weights, skips that. The y tables depend only on the
        config and are always rebuilt (a fraction of a second). Raises ValueError if the
        hyper-synthesis weights do not allow the exact fixed-point path (`check_exactness`).
        """
        self.check_exactness()
        if z_tables is None:
            self.y_entropy_model, self.z_entropy_model = self._entropy_models(compression=True)
            return
        self.y_entropy_model = self._y_entropy_model(compression=True)
        self.z_entropy_model = entropy_coding.z_model_from_tables(
            z_tables, self.cfg.hyper_latent_channels)

    def z_tables(self):
        """(cdf, cdf_offset, quantization_offset or None) numpy arrays of a finalized model."""
        self._require_finalized()
        return entropy_coding.z_tables_of(self.z_entropy_model)

    def _require_finalized(self):
        if not self.finalized:
            raise RuntimeError("IFrameCodec.finalize() must be called before compress/decompress")

    def _check_quality(self, quality):
        quality = tf.cast(quality, tf.int32)
        tf.debugging.assert_greater_equal(quality, 1, message="quality must be >= 1")
        tf.debugging.assert_less_equal(
            quality, self.cfg.num_qualities, message="quality above num_qualities"
        )
        return quality

    def encode_latents(self, frames, quality):
        """Encoder side up to quantization (stock TF ops only: used by the transform-only export).

        frames: `[N, H, W, 3]` uint8; quality: int32 scalar, 1-based.
        Returns (y_symbols int32 = round(y - mu), z_symbols int32 = round(z - offset),
        scale_index float32 rounded and clipped, mu float32) with y/z spatial shapes as above;
        the decoder's y_hat is `(y_symbols + mu) * inverse gain` (see `synthesize_latents`).
        """
        quality = self._check_quality(quality)
        x = tf.cast(frames, tf.float32) / 255.0
        xp = pad_to_multiple(x, PAD_MULTIPLE)
        gain, _ = self.gains(quality - 1)
        y = tf.cast(self.analysis(xp), tf.float32) * gain
        z = tf.cast(self.hyper_analysis(y), tf.float32)
        z_offset = self._z_offset()
        z_symbols = tf.round(z - z_offset)
        z_hat = z_symbols + z_offset
        mu, scale_index = self.entropy_parameters(z_hat)
        y_symbols = tf.round(y - mu)
        return (
            tf.cast(y_symbols, tf.int32),
            tf.cast(z_symbols, tf.int32),
            scale_index,
            mu,
        )

    def _z_offset(self):
        if self.z_entropy_model is not None:
            return self.z_entropy_model.quantization_offset
        return tfc.ContinuousBatchedEntropyModel(
            self.hyperprior, coding_rank=3, compression=False
        ).quantization_offset

    def entropy_parameters(self, z_hat):
        """z_hat `[N, h, w, Cz]` -> (mu, scale_index) `[N, 4h, 4w, M]` float32 for coding;
        indexes are rounded and clipped to the coding table range, as the range coder uses them.

        Computed in exact fixed point (`_exact_hyper_synthesis`), so encoder and decoder get
        the same indexes on any machine, thread count or kernel library: with float32
        convolutions, oneDNN on and off gave pre-rounding indexes 5e-5 apart, enough to change
        an index that sits near x.5 and make the stream undecodable
        (`benchmarks/determinism.py`). Training uses the float32 path (`_hyper_params`); the
        two differ by about 2^-16 relative.
        """
        mu, scale_index = self._exact_hyper_synthesis(z_hat)
        scale_index = tf.clip_by_value(scale_index, 0.0, self.cfg.num_scales - 1.0)
        return mu, scale_index

    def _exact_hyper_synthesis(self, z_hat):
        """The hyper-synthesis in exact fixed-point arithmetic (`exact.exact_hyper_synthesis`):
        -> (mu float32, rounded scale index float32)."""
        f = float(2**exact.FRAC_BITS)
        h = exact.exact_hyper_synthesis(self.hyper_synthesis.layers, z_hat)
        mu, index = tf.split(h, 2, axis=-1)
        mu = tf.cast(mu / f, tf.float32)
        index = tf.cast(tf.floor(index / f + 0.5), tf.float32)
        return mu, index

    def check_exactness(self) -> float:
        """Largest possible partial sum of the exact hyper-synthesis; raises ValueError if
        exactness cannot be guaranteed (`exact.check_exactness`)."""
        return exact.check_exactness(self.hyper_synthesis.layers)

    def synthesize_latents(self, y_symbols, mu, quality, image_shape):
        """Decoder side after entropy decoding: y symbols `[N, h, w, M]` int32 -> uint8 frames."""
        _, inv_gain = self.gains(tf.cast(quality, tf.int32) - 1)
        y_hat = (tf.cast(y_symbols, tf.float32) + mu) * inv_gain
        x_hat = tf.cast(self.synthesis(y_hat), tf.float32)
        x_hat = x_hat[:, : image_shape[0], : image_shape[1], :]
        return tf.saturate_cast(tf.round(x_hat * 255.0), tf.uint8)

    def synthesize_reference(self, y_symbols, mu, quality, image_shape):
        """As `synthesize_latents`, through the float64 synthesis (`SynthesisTransform.
        call_float64`): the reconstruction a P-frame encoder and decoder both predict from."""
        _, inv_gain = self.gains(tf.cast(quality, tf.int32) - 1)
        y_hat = (tf.cast(y_symbols, tf.float64) + tf.cast(mu, tf.float64)) * tf.cast(
            inv_gain, tf.float64)
        x_hat = self.synthesis.call_float64(y_hat)
        x_hat = x_hat[:, : image_shape[0], : image_shape[1], :]
        return tf.saturate_cast(tf.round(x_hat * 255.0), tf.uint8)

    def compress(self, frames, quality) -> CompressedFrames:
        """frames: `[N, H, W, 3]` uint8 (any H, W >= 1); quality: int32 scalar in [1, Q]."""
        self._require_finalized()
        quality = self._check_quality(quality)
        y_symbols, z_symbols, scale_index, mu = self.encode_latents(frames, quality)
        z_offset = self.z_entropy_model.quantization_offset
        z_strings = self.z_entropy_model.compress(tf.cast(z_symbols, tf.float32) + z_offset)
        y_strings = self.y_entropy_model.compress(
            tf.cast(y_symbols, tf.float32) + mu, scale_index, loc=mu
        )
        return CompressedFrames(
            y_strings=y_strings,
            z_strings=z_strings,
            image_shape=tf.shape(frames)[1:3],
            y_shape=tf.shape(y_symbols)[1:3],
            z_shape=tf.shape(z_symbols)[1:3],
            quality=quality,
        )

    def decode_latents(self, y_strings, z_strings, image_shape):
        """Entropy decoding only: strings `[N]` and the frame size `[2]` int32 -> (y symbols
        `[N, h, w, M]` int32, mu `[N, h, w, M]` float32), the inputs of `synthesize_latents`.

        This is the part that reads untrusted bytes; it is separate from the synthesis so a
        caller can bound its running time (a corrupt string can make TFC's range decoder spin:
        its Elias-gamma escape loop never ends on a run of zero bits past the data).
        """
        self._require_finalized()
        image_shape = tf.cast(image_shape, tf.int32)
        padded = (image_shape + PAD_MULTIPLE - 1) // PAD_MULTIPLE * PAD_MULTIPLE
        z_shape = padded // 64
        z_hat = self.z_entropy_model.decompress(z_strings, z_shape)
        mu, scale_index = self.entropy_parameters(z_hat)
        y_hat = self.y_entropy_model.decompress(y_strings, scale_index, loc=mu)
        return tf.cast(tf.round(y_hat - mu), tf.int32), mu

    def decompress(self, y_strings, z_strings, image_shape, quality):
        """Inverse of `compress`: returns `[N, H, W, 3]` uint8."""
        self._require_finalized()
        quality = self._check_quality(quality)
        y_symbols, mu = self.decode_latents(y_strings, z_strings, image_shape)
        return self.synthesize_latents(y_symbols, mu, quality, tf.cast(image_shape, tf.int32))
