"""The I-frame codec: the range-coded round trip is exactly the quantized training-mode path,
inside and outside tf.function and after a checkpoint round trip, for any frame size; plus the
discriminator and spectral normalisation it is trained against."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gan_compress import configs
from gan_compress.layers import pad_to_multiple
from gan_compress.layers.spectral_norm import SNConv2D
from gan_compress.models.discriminator import ConditionalPatchDiscriminator
from gan_compress.models.iframe import IFrameCodec

FRAMES = tf.TensorSpec([None, None, None, 3], tf.uint8)
QUALITY = tf.TensorSpec([], tf.int32)
STRINGS = tf.TensorSpec([None], tf.string)
SHAPE2 = tf.TensorSpec([2], tf.int32)


def _model_cfg():
    return configs.get_preset("tiny").model


def _make_codec(seed: int = 0) -> IFrameCodec:
    """A tiny codec whose latents are far from all-zero.

    Freshly initialised transforms give |y| ~ 0.03, so most levels would code nothing but zeros
    and every round trip would be trivially exact. Larger gains (all levels still e^2 apart) and
    a scale-index bias in the middle of the table make every level code many non-zero symbols
    with a spread of scales.
    """
    tf.keras.utils.set_random_seed(seed)
    codec = IFrameCodec(_model_cfg())
    codec.build_for_shape()
    codec.log_gain.assign_add(tf.fill(codec.log_gain.shape, 3.0))
    codec.log_inv_gain.assign_add(tf.fill(codec.log_inv_gain.shape, -3.0))
    head = codec.hyper_synthesis.layers[-1]
    m = codec.cfg.latent_channels
    head.bias.assign(tf.concat([tf.zeros([m]), tf.fill([m], 6.0)], axis=0))
    return codec


@pytest.fixture(scope="module")
def codec_and_checkpoint(tmp_path_factory) -> tuple[IFrameCodec, str]:
    """The finalized codec, and a checkpoint of its weights written BEFORE `finalize()` (like a
    training checkpoint: no coding tables in it, so a restored model must rebuild them)."""
    c = _make_codec()
    path = tf.train.Checkpoint(model=c).write(str(tmp_path_factory.mktemp("codec") / "ckpt"))
    c.finalize()
    return c, path


@pytest.fixture(scope="module")
def codec(codec_and_checkpoint) -> IFrameCodec:
    return codec_and_checkpoint[0]


def _restored(path: str) -> IFrameCodec:
    """A new codec, initialised with other weights, then restored from `path`."""
    tf.keras.utils.set_random_seed(1)
    restored = IFrameCodec(_model_cfg())
    restored.build_for_shape()
    fresh_gain = restored.log_gain.numpy()
    tf.train.Checkpoint(model=restored).read(path).assert_existing_objects_matched()
    assert not np.allclose(fresh_gain, restored.log_gain.numpy())  # the restore did something
    return restored


def _frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise: natural-ish content with texture, `[n, h, w, 3]` uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for i in range(n):
        base = np.stack([yy * 255 / max(h, 1), xx * 255 / max(w, 1),
                         128 + 100 * np.sin((xx + yy + 7 * i) / 9.0)], -1)
        out.append(base + rng.normal(scale=20.0, size=base.shape))
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)


def _training_reconstruction(codec, frames, quality):
    """The training-mode forward pass at `quality` (1-based), as uint8 frames, and its y_hat."""
    x = tf.cast(frames, tf.float32) / 255.0
    qi = tf.fill([frames.shape[0]], quality - 1)
    out = codec(x, qi, training=True)
    return tf.saturate_cast(tf.round(out.x_hat * 255.0), tf.uint8).numpy(), out.y_hat.numpy()


# -- exactness of the round trip ------------------------------------------------------------------


def test_decoder_recovers_the_encoders_quantized_latents_exactly(codec):
    frames = _frames(2, 64, 96)
    quality = 4
    y_sym, z_sym, scale_index, mu = codec.encode_latents(frames, quality)
    assert np.count_nonzero(y_sym.numpy()) > y_sym.numpy().size // 4  # not a trivial latent
    c = codec.compress(frames, quality)
    assert c.y_strings.shape == (2,) and c.z_strings.shape == (2,)
    np.testing.assert_array_equal(c.y_shape.numpy(), [4, 8])  # 96 is padded to 128
    np.testing.assert_array_equal(c.z_shape.numpy(), [1, 2])

    # decode step by step with the entropy models, as `decompress` does
    z_hat = codec.z_entropy_model.decompress(c.z_strings, c.z_shape)
    z_offset = codec.z_entropy_model.quantization_offset
    np.testing.assert_array_equal(tf.round(z_hat - z_offset).numpy(), z_sym.numpy())
    mu_dec, scale_index_dec = codec.entropy_parameters(z_hat)
    np.testing.assert_array_equal(mu_dec.numpy(), mu.numpy())
    np.testing.assert_array_equal(scale_index_dec.numpy(), scale_index.numpy())
    y_hat = codec.y_entropy_model.decompress(c.y_strings, scale_index_dec, loc=mu_dec)
    np.testing.assert_array_equal(tf.round(y_hat - mu_dec).numpy(), y_sym.numpy())


def test_decoded_frames_equal_the_quantized_training_mode_reconstruction(codec):
    frames = _frames(2, 64, 96, seed=1)
    for quality in (1, 6):
        y_sym, _, _, mu = codec.encode_latents(frames, quality)
        c = codec.compress(frames, quality)
        decoded = codec.decompress(c.y_strings, c.z_strings, c.image_shape, quality).numpy()
        expected, y_hat_train = _training_reconstruction(codec, frames, quality)
        # The decoder's y_hat (symbols + mean, times the inverse gain) is the training y_hat up
        # to the exact fixed-point means of coding (about 2^-16 from the float32 training
        # path; a symbol whose y - mu sits at x.5 may round the other way).
        _, inv_gain = codec.gains(quality - 1)
        y_hat_dec = ((tf.cast(y_sym, tf.float32) + mu) * inv_gain).numpy()
        close = np.abs(y_hat_dec - y_hat_train) < 1e-2
        assert close.mean() > 0.999
        assert np.mean(decoded == expected) > 0.99
        assert np.max(np.abs(decoded.astype(int) - expected.astype(int))) <= 8
        encoder_side = codec.synthesize_latents(y_sym, mu, quality, tf.shape(frames)[1:3])
        np.testing.assert_array_equal(decoded, encoder_side.numpy())
        assert decoded.dtype == np.uint8 and decoded.shape == frames.shape


def test_round_trip_inside_tf_function_equals_the_eager_round_trip(codec):
    compress = tf.function(codec.compress, input_signature=[FRAMES, QUALITY])
    decompress = tf.function(codec.decompress, input_signature=[STRINGS, STRINGS, SHAPE2, QUALITY])
    frames = _frames(2, 48, 80, seed=2)
    c = compress(frames, np.int32(3))
    decoded = decompress(c.y_strings, c.z_strings, c.image_shape, np.int32(3)).numpy()
    assert decoded.shape == frames.shape
    eager = codec.decompress(c.y_strings, c.z_strings, c.image_shape, 3).numpy()
    np.testing.assert_array_equal(decoded, eager)
    expected, _ = _training_reconstruction(codec, frames, 3)
    assert np.mean(decoded == expected) > 0.99  # see the test above


def test_compression_works_after_serialization(codec_and_checkpoint):
    codec, path = codec_and_checkpoint
    frames = _frames(1, 40, 72, seed=3)
    c = codec.compress(frames, 5)
    decoded = codec.decompress(c.y_strings, c.z_strings, c.image_shape, 5).numpy()

    restored = _restored(path)
    restored.finalize()
    again = restored.decompress(c.y_strings, c.z_strings, c.image_shape, 5).numpy()
    np.testing.assert_array_equal(again, decoded)
    c2 = restored.compress(frames, 5)
    np.testing.assert_array_equal(c2.y_strings.numpy(), c.y_strings.numpy())
    np.testing.assert_array_equal(c2.z_strings.numpy(), c.z_strings.numpy())
    # the coding tables are a function of the weights alone
    for a, b in zip(restored.z_tables(), codec.z_tables(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_finalize_with_cached_z_tables_codes_exactly_like_a_full_finalize(codec_and_checkpoint):
    codec, path = codec_and_checkpoint
    cached = _restored(path)
    cached.finalize(z_tables=codec.z_tables())
    frames = _frames(2, 40, 72, seed=7)
    for quality in (1, 4):
        c = codec.compress(frames, quality)
        c2 = cached.compress(frames, quality)
        np.testing.assert_array_equal(c2.y_strings.numpy(), c.y_strings.numpy())
        np.testing.assert_array_equal(c2.z_strings.numpy(), c.z_strings.numpy())
        np.testing.assert_array_equal(
            cached.decompress(c.y_strings, c.z_strings, c.image_shape, quality).numpy(),
            codec.decompress(c.y_strings, c.z_strings, c.image_shape, quality).numpy())


# -- sizes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("height, width", [(17, 33), (1, 1), (65, 64)])
def test_any_frame_size_round_trips_and_padding_is_cropped_back(codec, height, width):
    frames = _frames(2, height, width, seed=4)
    c = codec.compress(frames, 2)
    np.testing.assert_array_equal(c.image_shape.numpy(), [height, width])
    padded = [-(-height // 64) * 64, -(-width // 64) * 64]
    np.testing.assert_array_equal(c.y_shape.numpy(), [p // 16 for p in padded])
    np.testing.assert_array_equal(c.z_shape.numpy(), [p // 64 for p in padded])
    decoded = codec.decompress(c.y_strings, c.z_strings, c.image_shape, 2).numpy()
    assert decoded.shape == frames.shape
    y_sym, _, _, mu = codec.encode_latents(frames, 2)
    expected = codec.synthesize_latents(y_sym, mu, 2, tf.constant([height, width])).numpy()
    np.testing.assert_array_equal(decoded, expected)
    if (height, width) == (17, 33):
        np.testing.assert_array_equal(decoded, _training_reconstruction(codec, frames, 2)[0])


def test_a_720p_frame_round_trips(codec):
    frames = _frames(1, 720, 1280, seed=5)
    y_sym, _, _, mu = codec.encode_latents(frames, 3)
    assert y_sym.shape[1:3] == (48, 80)  # 720 is padded to 768
    c = codec.compress(frames, 3)
    decoded = codec.decompress(c.y_strings, c.z_strings, c.image_shape, 3).numpy()
    assert decoded.shape == (1, 720, 1280, 3)
    expected = codec.synthesize_latents(y_sym, mu, 3, tf.constant([720, 1280])).numpy()
    np.testing.assert_array_equal(decoded, expected)


def test_pad_to_multiple_replicates_the_last_row_and_column():
    x = tf.reshape(tf.range(2 * 3 * 5 * 1, dtype=tf.float32), [2, 3, 5, 1])
    p = pad_to_multiple(x, 4).numpy()
    assert p.shape == (2, 4, 8, 1)
    np.testing.assert_array_equal(p[:, :3, :5], x.numpy())
    np.testing.assert_array_equal(p[:, 3, :5], x.numpy()[:, 2])
    np.testing.assert_array_equal(p[:, :, 5:], np.repeat(p[:, :, 4:5], 3, axis=2))
    assert pad_to_multiple(x, 1).shape == x.shape


# -- quality levels and misuse --------------------------------------------------------------------


def test_each_quality_level_gives_a_different_bitstream(codec):
    frames = _frames(1, 64, 64, seed=6)
    streams = []
    for quality in range(1, codec.cfg.num_qualities + 1):
        c = codec.compress(frames, quality)
        streams.append(bytes(c.y_strings.numpy()[0]) + b"|" + bytes(c.z_strings.numpy()[0]))
        decoded = codec.decompress(c.y_strings, c.z_strings, c.image_shape, quality)
        y_sym, _, _, mu = codec.encode_latents(frames, quality)
        expected = codec.synthesize_latents(y_sym, mu, quality, tf.constant([64, 64]))
        np.testing.assert_array_equal(decoded.numpy(), expected.numpy())
    assert len(set(streams)) == codec.cfg.num_qualities


@pytest.mark.parametrize("quality", [0, 7, -1])
def test_quality_out_of_range_is_rejected_eagerly_and_in_graph(codec, quality):
    frames = _frames(1, 16, 16)
    with pytest.raises(tf.errors.InvalidArgumentError, match="quality"):
        codec.compress(frames, quality)
    compress = tf.function(codec.compress, input_signature=[FRAMES, QUALITY])
    with pytest.raises(tf.errors.InvalidArgumentError, match="quality"):
        compress(frames, np.int32(quality))
    c = codec.compress(frames, 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="quality"):
        codec.decompress(c.y_strings, c.z_strings, c.image_shape, quality)


def test_compress_and_decompress_before_finalize_raise():
    fresh = IFrameCodec(_model_cfg())
    assert not fresh.finalized
    with pytest.raises(RuntimeError, match="finalize"):
        fresh.compress(_frames(1, 16, 16), 1)
    with pytest.raises(RuntimeError, match="finalize"):
        fresh.decompress(tf.constant([b""]), tf.constant([b""]), tf.constant([16, 16]), 1)


# -- training mode and variables ------------------------------------------------------------------


def test_training_forward_pass_shapes_and_rate(codec):
    x = tf.cast(_frames(3, 17, 33), tf.float32) / 255.0
    out = codec(x, tf.constant([0, 2, 5]), training=True)
    assert out.x_hat.shape == (3, 17, 33, 3)
    assert out.y_hat.shape == (3, 4, 4, codec.cfg.latent_channels)
    for t in (out.bits_y, out.bits_z, out.bpp):
        assert t.shape == (3,)
    np.testing.assert_allclose(out.bpp, (out.bits_y + out.bits_z) / (17 * 33), rtol=1e-5)
    assert np.all(out.bpp.numpy() > 0)


def test_rate_gradients_reach_the_entropy_model_and_the_gains(codec):
    x = tf.cast(_frames(2, 64, 64), tf.float32) / 255.0
    with tf.GradientTape() as tape:
        out = codec(x, tf.constant([1, 4]), training=True)
        loss = tf.reduce_mean(out.bpp) + tf.reduce_mean(tf.square(out.x_hat - x))
    groups = codec.variable_groups()
    grads = tape.gradient(loss, groups["transforms"] + groups["entropy"])
    assert all(g is not None for g in grads)
    assert all(float(tf.reduce_max(tf.abs(tf.convert_to_tensor(g)))) > 0 for g in grads)


def test_variable_groups_partition_the_trainable_variables(codec):
    groups = codec.variable_groups()
    ids = [id(v) for g in groups.values() for v in g]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(v) for v in codec.trainable_variables}
    entropy = {id(v) for v in codec.hyperprior.trainable_variables}
    assert entropy and {id(v) for v in groups["entropy"]} == entropy
    assert id(codec.log_gain) in {id(v) for v in groups["transforms"]}


# -- discriminator and spectral normalisation -----------------------------------------------------


def test_discriminator_gives_patch_logits_and_one_feature_map_per_conv():
    cfg = _model_cfg()
    disc = ConditionalPatchDiscriminator(cfg)
    out = disc(tf.zeros([2, 64, 64, 3]), tf.zeros([2, 4, 4, cfg.latent_channels]))
    n = len(cfg.disc_channels)
    assert out.logits.shape == (2, 64 // 2**n, 64 // 2**n, 1)
    assert len(out.features) == n
    assert [f.shape[-1] for f in out.features] == list(cfg.disc_channels)


def test_discriminator_depends_on_the_latent_it_is_conditioned_on():
    cfg = _model_cfg()
    tf.keras.utils.set_random_seed(0)
    disc = ConditionalPatchDiscriminator(cfg)
    x = tf.random.uniform([1, 64, 64, 3])
    a = disc(x, tf.zeros([1, 4, 4, cfg.latent_channels])).logits
    b = disc(x, tf.random.normal([1, 4, 4, cfg.latent_channels], stddev=3.0)).logits
    assert not np.allclose(a.numpy(), b.numpy())


def test_spectral_norm_normalises_the_kernel_to_unit_largest_singular_value():
    tf.keras.utils.set_random_seed(0)
    layer = SNConv2D(6, 3)
    x = tf.random.normal([1, 8, 8, 4])
    layer(x)
    u0 = layer.u.numpy().copy()
    layer(x, training=False)
    np.testing.assert_array_equal(layer.u.numpy(), u0)  # inference does not move u
    layer.kernel.assign(layer.kernel * 5.0)
    for _ in range(50):  # power iteration converges on u
        layer(x, training=True)
    assert not np.array_equal(layer.u.numpy(), u0)
    w = tf.reshape(layer.kernel, [-1, 6]).numpy()
    u = layer.u.numpy()
    v = u @ w.T
    v /= np.linalg.norm(v)
    sigma = float(v @ w @ u.T)
    np.testing.assert_allclose(sigma, np.linalg.svd(w, compute_uv=False)[0], rtol=1e-3)
    # the effective kernel has spectral norm ~1 whatever the stored kernel's scale
    np.testing.assert_allclose(np.linalg.svd(w / sigma, compute_uv=False)[0], 1.0, rtol=1e-3)
