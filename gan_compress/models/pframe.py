"""The P-frame (inter-frame) codec: scale-space flow plus a conditional residual coder.

Papers: Agustsson et al. 2020 (scale-space flow: the motion decoder gives dx, dy and a blur
level s; the decoded reference is warped through a Gaussian scale-space volume), Li et al. 2021
(DCVC: the residual coder sees the prediction as context), Mentzer et al. 2022 (GAN detail
propagation: the generator and a discriminator conditioned on the prediction, so texture made
in the I-frame is carried by the warp instead of re-invented every frame).

Per frame t, with the decoded reference r = x_hat_{t-1}:
  1. motion: m = MotionAnalysis([x_t, r] (+ a block-matching displacement estimate, encoder
     side only, with `motion_search_radius` > 0)) -> hyperprior bottleneck -> m_hat;
     flow = MotionSynthesis(m_hat) `[B, H, W, 3]` (dx, dy in pixels, times `flow_scale`;
     s in levels);
  2. prediction p = scale_space_warp(r, flow);
  3. residual: y = ResidualAnalysis([x_t - p, p]) -> bottleneck -> y_hat;
     x_hat_t = p + ResidualSynthesis(y_hat, p).

Workflow, as for `IFrameCodec`:
  1. Training mode: `codec(x, reference, quality_index, training=True)` -> `PFrameTrainOutput`.
  2. `codec.finalize()` builds the range-coding tables.
  3. Coding mode: `codec.compress(frames, references, quality)` -> (`CompressedPFrames`,
     reconstruction), `codec.decompress(...)` -> the same reconstruction. Everything the decoder
     computes (entropy parameters, flow, warp, residual synthesis) runs through the
     reproducible paths of `gan_compress.layers.exact` on both sides, so the encoder's
     reconstruction is the decoder's to the byte and a GOP cannot drift, whatever the thread
     count (`tests/test_pframe.py`).

Shapes: frames `[N, H, W, 3]` (float32 in [0, 1] when training, uint8 when coding), padded
inside to a multiple of 64 by edge replication. Quality is 1-based at the coding methods and a
0-based `quality_index` in training mode, pairing level q with the I-frame codec's level q.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import tensorflow as tf
import tensorflow_compression as tfc

from gan_compress import entropy_coding
from gan_compress.configs import ModelConfig, PFrameConfig
from gan_compress.layers import AnalysisDownStage, SynthesisUpStage, exact, pad_to_multiple
from gan_compress.layers.motion_search import block_motion_search
from gan_compress.layers.warp import scale_space_warp

PAD_MULTIPLE = 64  # latents are 16x down, hyper-latents a further 4x


class PFrameTrainOutput(NamedTuple):
    """Result of a training-mode forward pass.

    x_hat: `[B, H, W, 3]` float32 reconstruction (not clipped, so gradients flow).
    prediction: `[B, H, W, 3]` float32 warped reference.
    flow: `[B, H, W, 3]` float32 (dx, dy, s).
    y_hat: `[B, H/16, W/16, Mr]` quantized residual latent (after inverse gain); what the
      discriminator is conditioned on, with the prediction.
    bits_motion, bits_residual: `[B]` float32 rate estimates in bits per frame.
    bpp: `[B]` float32 total bits per pixel of the unpadded frame.
    """

    x_hat: tf.Tensor
    prediction: tf.Tensor
    flow: tf.Tensor
    y_hat: tf.Tensor
    bits_motion: tf.Tensor
    bits_residual: tf.Tensor
    bpp: tf.Tensor


class CompressedPFrames(NamedTuple):
    """Output of `PFrameCodec.compress` for `N` frames of one size at one quality.

    motion_y, motion_z, residual_y, residual_z: `[N]` tf.string range-coded strings.
    image_shape: `[2]` int32 (H, W) of the unpadded frames.
    quality: int32 scalar, 1-based.
    """

    motion_y: tf.Tensor
    motion_z: tf.Tensor
    residual_y: tf.Tensor
    residual_z: tf.Tensor
    image_shape: tf.Tensor
    quality: tf.Tensor


class LatentSymbols(NamedTuple):
    """One bottleneck's quantized latents before range coding (`LatentCoder.quantize`).

    y_symbols: `[N, h, w, M]` int32, round(y * gain - mu).
    z_symbols: `[N, h/4, w/4, Cz]` int32, round(z - quantization offset).
    scale_indexes: `[N, h, w, M]` int32, the y coding table of each symbol.
    mu: `[N, h, w, M]` float32, the y means from the hyperprior.
    y_hat: `[N, h, w, M]` float64, the dequantized latent the decoder synthesizes from.
    """

    y_symbols: tf.Tensor
    z_symbols: tf.Tensor
    scale_indexes: tf.Tensor
    mu: tf.Tensor
    y_hat: tf.Tensor


class LatentCoder(tf.keras.layers.Layer):
    """One variable-rate mean-scale hyperprior bottleneck (Minnen et al. 2018, gain vectors of
    Cui et al. 2021): a latent `[B, h, w, M]` (h, w multiples of 4) -> its quantized version.

    Training: `coder(y, quality_index, training)` -> (y_hat float32 after the inverse gain,
    bits `[B]`). Coding: `compress(y, quality)` -> (y strings, z strings, y_hat float64) and
    `decompress(strings, latent_shape, quality)` -> the same y_hat; the entropy parameters come
    from the exact fixed-point hyper-synthesis, so both sides agree on every symbol's table.
    """

    def __init__(self, latent_channels: int, hyper_channels: int, hyper_latent_channels: int,
                 model_cfg: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.latent_channels = latent_channels
        self.hyper_latent_channels = hyper_latent_channels
        self.num_scales = model_cfg.num_scales
        self.hyper_analysis = tf.keras.Sequential([
            tf.keras.layers.Conv2D(hyper_channels, 3, padding="same", activation="relu"),
            tf.keras.layers.Conv2D(hyper_channels, 5, strides=2, padding="same",
                                   activation="relu"),
            tf.keras.layers.Conv2D(hyper_latent_channels, 5, strides=2, padding="same"),
        ], name="hyper_analysis")
        self.hyper_synthesis = tf.keras.Sequential([
            tf.keras.layers.Conv2DTranspose(hyper_channels, 5, strides=2, padding="same",
                                            activation="relu"),
            tf.keras.layers.Conv2DTranspose(hyper_channels, 5, strides=2, padding="same",
                                            activation="relu"),
            tf.keras.layers.Conv2D(2 * latent_channels, 3, padding="same"),
        ], name="hyper_synthesis")
        q = model_cfg.num_qualities
        init = tf.linspace(-1.0, 1.0, q)[:, None] * tf.ones([1, latent_channels])
        self.log_gain = tf.Variable(init, name="log_gain")
        self.log_inv_gain = tf.Variable(-init, name="log_inv_gain")
        self.hyperprior = tfc.NoisyDeepFactorized(batch_shape=[hyper_latent_channels])
        offset = tf.math.log(model_cfg.scale_min)
        factor = (tf.math.log(model_cfg.scale_max) - offset) / (model_cfg.num_scales - 1.0)
        self._scale_offset, self._scale_factor = offset, factor
        self.y_entropy_model = None
        self.z_entropy_model = None

    def scale_fn(self, index):
        return tf.math.exp(self._scale_offset + self._scale_factor * index)

    def _y_entropy_model(self, compression: bool):
        return tfc.LocationScaleIndexedEntropyModel(
            tfc.NoisyNormal, self.num_scales, self.scale_fn, coding_rank=3,
            compression=compression)

    def _entropy_models(self, compression: bool):
        y_em = self._y_entropy_model(compression)
        z_em = tfc.ContinuousBatchedEntropyModel(self.hyperprior, coding_rank=3,
                                                 compression=compression)
        return y_em, z_em

    def gains(self, quality_index):
        """0-based `quality_index` (scalar or `[B]`) -> (gain, inverse gain) `[B or 1, 1, 1, M]`."""
        qi = tf.reshape(tf.cast(quality_index, tf.int32), [-1])
        return (tf.exp(tf.gather(self.log_gain, qi))[:, None, None, :],
                tf.exp(tf.gather(self.log_inv_gain, qi))[:, None, None, :])

    def entropy_variables(self) -> list[tf.Variable]:
        return list(self.hyperprior.trainable_variables)

    def call(self, y, quality_index, training=True):
        y_em, z_em = self._entropy_models(compression=False)
        gain, inv_gain = self.gains(quality_index)
        y = tf.cast(y, tf.float32) * gain
        z = tf.cast(self.hyper_analysis(y), tf.float32)
        _, bits_z = z_em(z, training=training)
        offset = z_em.quantization_offset
        z_hat = tfc.round_st(z - offset) + offset
        mu, scale_index = tf.split(tf.cast(self.hyper_synthesis(z_hat), tf.float32), 2, -1)
        _, bits_y = y_em(y, scale_index, loc=mu, training=training)
        y_hat = (tfc.round_st(y - mu) + mu) * inv_gain
        return y_hat, bits_y + bits_z

    # -- coding mode --------------------------------------------------------------------------

    def finalize(self, z_tables=None) -> None:
        """Builds the range-coding tables; `z_tables` (from `z_tables()` of a finalized coder
        of the SAME weights) skips the slow estimation of z's."""
        exact.check_exactness(self.hyper_synthesis.layers)
        if z_tables is None:
            self.y_entropy_model, self.z_entropy_model = self._entropy_models(compression=True)
            return
        self.y_entropy_model = self._y_entropy_model(compression=True)
        self.z_entropy_model = entropy_coding.z_model_from_tables(
            z_tables, self.hyper_latent_channels)

    def z_tables(self):
        """(cdf, cdf_offset, quantization_offset or None) numpy arrays of the finalized z model."""
        return entropy_coding.z_tables_of(self.z_entropy_model)

    def _entropy_parameters(self, z_hat):
        f = float(2**exact.FRAC_BITS)
        h = exact.exact_hyper_synthesis(self.hyper_synthesis.layers, z_hat)
        mu, index = tf.split(h, 2, axis=-1)
        index = tf.clip_by_value(tf.floor(index / f + 0.5), 0.0, self.num_scales - 1.0)
        return tf.cast(mu / f, tf.float32), tf.cast(index, tf.float32)

    def _dequantize(self, y_symbols, mu, quality):
        _, inv_gain = self.gains(quality - 1)
        return (tf.cast(y_symbols, tf.float64) + tf.cast(mu, tf.float64)) * tf.cast(
            inv_gain, tf.float64)

    def quantize(self, y, quality):
        """Coding mode up to the range coder (stock TF ops only, as the transform-only export
        needs): y `[N, h, w, M]` float32 (before the gain), quality int32 1-based ->
        `LatentSymbols` (y symbols = round(y * gain - mu), z symbols = round(z - offset),
        scale indexes, all int32; mu; y_hat float64 `[N, h, w, M]`)."""
        gain, _ = self.gains(quality - 1)
        y = tf.cast(y, tf.float32) * gain
        z = tf.cast(self.hyper_analysis(y), tf.float32)
        z_symbols = tf.round(z - self.z_entropy_model.quantization_offset)
        mu, scale_index = self.entropy_parameters(z_symbols)
        y_symbols = tf.round(y - mu)
        return LatentSymbols(tf.cast(y_symbols, tf.int32), tf.cast(z_symbols, tf.int32),
                             tf.cast(scale_index, tf.int32), mu,
                             self._dequantize(y_symbols, mu, quality))

    def entropy_parameters(self, z_symbols):
        """z symbols `[N, h/4, w/4, Cz]` (int32 or float32) -> (mu float32, scale index float32
        rounded and clipped) `[N, h, w, M]`, in exact fixed point on either side."""
        z_hat = tf.cast(z_symbols, tf.float32) + self.z_entropy_model.quantization_offset
        return self._entropy_parameters(z_hat)

    def dequantize(self, y_symbols, z_symbols, quality):
        """Decoder side after entropy decoding: y and z symbols (int32) -> y_hat float64."""
        mu, _ = self.entropy_parameters(z_symbols)
        return self._dequantize(y_symbols, mu, quality)

    def range_encode(self, symbols: LatentSymbols):
        """`quantize`'s symbols -> (y strings `[N]`, z strings `[N]`) via TFC's range coder."""
        z_hat = tf.cast(symbols.z_symbols, tf.float32) + self.z_entropy_model.quantization_offset
        z_strings = self.z_entropy_model.compress(z_hat)
        y_strings = self.y_entropy_model.compress(
            tf.cast(symbols.y_symbols, tf.float32) + symbols.mu,
            tf.cast(symbols.scale_indexes, tf.float32), loc=symbols.mu)
        return y_strings, z_strings

    def decompress(self, y_strings, z_strings, latent_shape, quality):
        """Strings `[N]`, latent_shape `[2]` int32 (h, w) -> y_hat float64 `[N, h, w, M]`."""
        z_hat = self.z_entropy_model.decompress(z_strings, latent_shape // 4)
        mu, scale_index = self._entropy_parameters(z_hat)
        y_hat = self.y_entropy_model.decompress(y_strings, scale_index, loc=mu)
        return self._dequantize(tf.round(y_hat - mu), mu, quality)


def _analysis(channels, latent_channels, kernel_size, name):
    stages = [AnalysisDownStage(c, kernel_size, "gdn", name=f"down{i}")
              for i, c in enumerate(channels)]
    stages.append(AnalysisDownStage(latent_channels, kernel_size, None, name="down3"))
    return tf.keras.Sequential(stages, name=name)


def _synthesis(channels, out_channels, kernel_size, name, out_activation=None):
    stages = [SynthesisUpStage(c, kernel_size, "igdn", name=f"up{i}")
              for i, c in enumerate(reversed(channels))]
    stages.append(SynthesisUpStage(out_channels, kernel_size, out_activation, name="up3"))
    return tf.keras.Sequential(stages, name=name)


class PFrameCodec(tf.keras.Model):
    """Scale-space-flow P-frame codec with a conditional residual coder (see module docstring).

    Trainable variable groups (`variable_groups`): "transforms" (every network and gain
    vector) and "entropy" (the two factorized z priors).
    """

    REFINE_CHANNELS = 32  # width of the full-resolution fusion of residual features and p

    def __init__(self, model_cfg: ModelConfig, cfg: PFrameConfig, **kwargs):
        super().__init__(name="pframe_codec", **kwargs)
        if cfg.residual_input not in ("residual", "conditional"):
            raise ValueError(f"pframe.residual_input must be residual|conditional, "
                             f"got {cfg.residual_input!r}")
        self.model_cfg, self.cfg = model_cfg, cfg
        self._search_radius: int | None = None  # encoder-side override (`search_radius`)
        k = cfg.kernel_size
        self.motion_analysis = _analysis(cfg.motion_channels, cfg.motion_latent_channels, k,
                                         "motion_analysis")
        self.motion_synthesis = _synthesis(cfg.motion_channels, 3, k, "motion_synthesis")
        self.motion_coder = LatentCoder(cfg.motion_latent_channels, cfg.hyper_channels,
                                        cfg.hyper_latent_channels, model_cfg,
                                        name="motion_coder")
        self.residual_analysis = _analysis(cfg.residual_channels, cfg.residual_latent_channels,
                                           k, "residual_analysis")
        refine = min(self.REFINE_CHANNELS, cfg.residual_channels[0])
        self.residual_synthesis = _synthesis(cfg.residual_channels, refine, k,
                                             "residual_synthesis", out_activation="relu")
        self.residual_coder = LatentCoder(cfg.residual_latent_channels, cfg.hyper_channels,
                                          cfg.hyper_latent_channels, model_cfg,
                                          name="residual_coder")
        self.fusion = tf.keras.Sequential([
            tf.keras.layers.Conv2D(refine, 3, padding="same", activation="relu"),
            tf.keras.layers.Conv2D(3, 3, padding="same"),
        ], name="fusion")

    @property
    def conditional(self) -> bool:
        return self.cfg.residual_input == "conditional"

    def build_for_shape(self, height: int = 64, width: int = 64) -> None:
        """Creates all variables by running one tiny forward pass."""
        x = tf.zeros([1, height, width, 3])
        self(x, x, tf.zeros([1], tf.int32), training=False)

    def variable_groups(self) -> dict[str, list[tf.Variable]]:
        entropy = self.motion_coder.entropy_variables() + self.residual_coder.entropy_variables()
        ids = {id(v) for v in entropy}
        return {"transforms": [v for v in self.trainable_variables if id(v) not in ids],
                "entropy": entropy}

    SEARCH_SCALE = 8.0  # block-matching displacements are divided by this at the encoder input

    @contextlib.contextmanager
    def search_radius(self, radius: int | None):
        """Within the block, the encoder's block search covers +-`radius` pixels instead of
        `cfg.motion_search_radius` (None: unchanged), like x264's --merange. Encoder-side only:
        the bitstream and the decoder do not depend on it. Read when a function is traced, so
        trace coding functions inside the block (`gop.GopFunctions(search_radius=...)`)."""
        self.check_search_radius(radius)
        previous, self._search_radius = self._search_radius, (
            None if radius is None else int(radius))
        try:
            yield
        finally:
            self._search_radius = previous

    def check_search_radius(self, radius: int | None) -> None:
        """Raises ValueError unless `radius` is None or a radius `search_radius` accepts."""
        if radius is None:
            return
        if self.cfg.motion_search_radius <= 0:
            raise ValueError("this P-frame codec was trained without a block-search input; "
                             "its search radius cannot be set")
        if not 4 <= int(radius) <= 128:
            raise ValueError(f"the search radius must be in 4..128 pixels, got {radius}")

    @property
    def encoder_search_radius(self) -> int:
        """The block-search radius the encoder uses now (pixels; 0: no search input)."""
        return self.cfg.motion_search_radius if self._search_radius is None else (
            self._search_radius)

    def _motion_input(self, xp, rp):
        """The motion encoder's input: both padded frames `[N, H', W', 6]`, plus the
        block-matching displacement estimate (2 channels) when `motion_search_radius` > 0."""
        rp = tf.cast(rp, xp.dtype)
        if self.cfg.motion_search_radius <= 0:
            return tf.concat([xp, rp], axis=-1)
        search = block_motion_search(xp, rp, radius=self.encoder_search_radius)
        return tf.concat([xp, rp, search / self.SEARCH_SCALE], axis=-1)

    def _motion_latent(self, xp, rp):
        """The motion encoder: padded frame and reference -> latent `[N, H'/16, W'/16, Mm]`
        (times `motion_latent_scale`)."""
        m = self.motion_analysis(self._motion_input(xp, rp))
        k = self.cfg.motion_latent_scale
        return m if k == 1.0 else m * k

    def _flow(self, motion_output):
        """Motion decoder output `[B, H, W, 3]` -> flow (dx, dy scaled by `flow_scale`, s)."""
        k = self.cfg.flow_scale
        if k == 1.0:
            return motion_output
        scale = tf.constant([k, k, 1.0], motion_output.dtype)
        return motion_output * scale

    def _warp(self, reference, flow):
        return scale_space_warp(reference, flow, self.cfg.scale_space_levels,
                                self.cfg.scale_space_sigma0)

    def _residual_input(self, x, prediction):
        if self.conditional:
            return tf.concat([x - prediction, prediction], axis=-1)
        return x - prediction

    def _fusion_input(self, features, prediction):
        if self.conditional:
            return tf.concat([features, tf.cast(prediction, features.dtype)], axis=-1)
        return features

    # -- training mode ------------------------------------------------------------------------

    def call(self, x, reference, quality_index, training=True) -> PFrameTrainOutput:
        """x, reference: `[B, H, W, 3]` float32 in [0, 1]; quality_index `[B]` int32 in [0, Q)."""
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        xp = pad_to_multiple(x, PAD_MULTIPLE)
        rp = pad_to_multiple(reference, PAD_MULTIPLE)
        m = self._motion_latent(xp, rp)
        m_hat, bits_motion = self.motion_coder(m, quality_index, training=training)
        flow = self._flow(tf.cast(self.motion_synthesis(m_hat), tf.float32))
        prediction = self._warp(rp, flow)
        y = self.residual_analysis(self._residual_input(xp, prediction))
        y_hat, bits_residual = self.residual_coder(y, quality_index, training=training)
        features = self.residual_synthesis(y_hat)
        x_hat = prediction + tf.cast(self.fusion(self._fusion_input(features, prediction)),
                                     tf.float32)
        crop = (slice(None), slice(0, height), slice(0, width), slice(None))
        bpp = (bits_motion + bits_residual) / tf.cast(height * width, tf.float32)
        return PFrameTrainOutput(x_hat[crop], prediction[crop], flow[crop], y_hat,
                                 bits_motion, bits_residual, bpp)

    # -- coding mode --------------------------------------------------------------------------

    def finalize(self, z_tables: dict | None = None) -> None:
        """Builds the range-coding tables of both bottlenecks (call after training).
        `z_tables` = `z_tables()` of a finalized codec of the SAME weights skips the slow
        estimation of the z tables."""
        z_tables = z_tables or {}
        self.motion_coder.finalize(z_tables.get("motion"))
        self.residual_coder.finalize(z_tables.get("residual"))

    def z_tables(self) -> dict[str, tuple]:
        """{"motion", "residual"}: (cdf, cdf_offset, quantization_offset or None) numpy arrays
        of each bottleneck's z model (finalized codec)."""
        if not self.finalized:
            raise RuntimeError("PFrameCodec.finalize() must be called first")
        return {"motion": self.motion_coder.z_tables(),
                "residual": self.residual_coder.z_tables()}

    @property
    def finalized(self) -> bool:
        return self.residual_coder.y_entropy_model is not None

    def _check_quality(self, quality):
        if not self.finalized:
            raise RuntimeError("PFrameCodec.finalize() must be called before compress/decompress")
        quality = tf.cast(quality, tf.int32)
        tf.debugging.assert_greater_equal(quality, 1, message="quality must be >= 1")
        tf.debugging.assert_less_equal(quality, self.model_cfg.num_qualities,
                                       message="quality above num_qualities")
        return quality

    def _predict(self, reference_padded64, m_hat):
        """float64 padded reference and motion latent -> float64 prediction (padded)."""
        return self._warp(reference_padded64,
                          self._flow(exact.run_float64(self.motion_synthesis, m_hat)))

    def _reconstruct(self, prediction, y_hat, image_shape):
        """The decoder's reproducible path: float64 prediction and residual latent -> uint8
        frames (cropped to `image_shape`)."""
        features = exact.run_float64(self.residual_synthesis, y_hat)
        x_hat = prediction + exact.run_float64(self.fusion,
                                               self._fusion_input(features, prediction))
        x_hat = x_hat[:, : image_shape[0], : image_shape[1], :]
        return tf.saturate_cast(tf.round(x_hat * 255.0), tf.uint8)

    @staticmethod
    def _padded_reference(references):
        return pad_to_multiple(tf.cast(references, tf.float64) / 255.0, PAD_MULTIPLE)

    def quantize(self, frames, references, quality):
        """Coding mode up to the range coders (stock TF ops only: the transform-only export's
        `p_analyze`). frames, references: `[N, H, W, 3]` uint8; quality int32 scalar in [1, Q].

        Returns (motion `LatentSymbols`, residual `LatentSymbols`, reconstruction
        `[N, H, W, 3]` uint8): the reconstruction is what the decoder gets, the next reference.
        """
        quality = self._check_quality(quality)
        image_shape = tf.shape(frames)[1:3]
        xp = pad_to_multiple(tf.cast(frames, tf.float32) / 255.0, PAD_MULTIPLE)
        rp64 = self._padded_reference(references)
        m = self._motion_latent(xp, rp64)
        motion = self.motion_coder.quantize(m, quality)
        prediction = self._predict(rp64, motion.y_hat)
        y = self.residual_analysis(self._residual_input(xp, tf.cast(prediction, tf.float32)))
        residual = self.residual_coder.quantize(y, quality)
        return motion, residual, self._reconstruct(prediction, residual.y_hat, image_shape)

    def compress(self, frames, references, quality):
        """frames, references: `[N, H, W, 3]` uint8; quality int32 scalar in [1, Q].

        Returns (`CompressedPFrames`, reconstruction `[N, H, W, 3]` uint8): the reconstruction
        is exactly what `decompress` gives, the next frame's reference.
        """
        quality = self._check_quality(quality)
        motion, residual, recon = self.quantize(frames, references, quality)
        m_y, m_z = self.motion_coder.range_encode(motion)
        r_y, r_z = self.residual_coder.range_encode(residual)
        return CompressedPFrames(m_y, m_z, r_y, r_z, tf.shape(frames)[1:3], quality), recon

    def synthesize_symbols(self, motion_y, motion_z, residual_y, residual_z, references,
                           image_shape, quality):
        """The transform-only decoder: symbols (int32, as in `quantize`), references
        `[N, H, W, 3]` uint8, image_shape `[2]` int32 -> frames `[N, H, W, 3]` uint8."""
        quality = self._check_quality(quality)
        m_hat = self.motion_coder.dequantize(motion_y, motion_z, quality)
        y_hat = self.residual_coder.dequantize(residual_y, residual_z, quality)
        return self.synthesize(m_hat, y_hat, references, image_shape)

    def decode_latents(self, motion_y, motion_z, residual_y, residual_z, image_shape, quality):
        """Entropy decoding only (the part that reads untrusted bytes; a caller can bound its
        time): strings `[N]`, image_shape `[2]` int32, quality -> (motion latent, residual
        latent), float64 `[N, h, w, M]`, the inputs of `synthesize`."""
        quality = self._check_quality(quality)
        image_shape = tf.cast(image_shape, tf.int32)
        latent_shape = (image_shape + PAD_MULTIPLE - 1) // PAD_MULTIPLE * (PAD_MULTIPLE // 16)
        m_hat = self.motion_coder.decompress(motion_y, motion_z, latent_shape, quality)
        y_hat = self.residual_coder.decompress(residual_y, residual_z, latent_shape, quality)
        return m_hat, y_hat

    def synthesize(self, m_hat, y_hat, references, image_shape):
        """Decoded latents and references `[N, H, W, 3]` uint8 -> frames `[N, H, W, 3]` uint8."""
        prediction = self._predict(self._padded_reference(references), m_hat)
        return self._reconstruct(prediction, y_hat, tf.cast(image_shape, tf.int32))

    def decompress(self, motion_y, motion_z, residual_y, residual_z, references, image_shape,
                   quality):
        """Inverse of `compress`: strings `[N]`, references `[N, H, W, 3]` uint8, image_shape
        `[2]` int32, quality int32 -> `[N, H, W, 3]` uint8."""
        m_hat, y_hat = self.decode_latents(motion_y, motion_z, residual_y, residual_z,
                                           image_shape, quality)
        return self.synthesize(m_hat, y_hat, references, image_shape)
