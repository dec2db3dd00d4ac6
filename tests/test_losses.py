"""Losses: known values of the adversarial losses and penalties on hand-made inputs, the
rate-target schedule, MS-SSIM and the VGG perceptual loss (random weights from a temp file)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf

from gan_compress import configs, losses

LOG2 = math.log(2.0)


def _logits(*values):
    """Per-example patch logits `[B, 2, 2, 1]`, example i filled with values[i]."""
    return tf.constant(np.array(values, np.float32)[:, None, None, None] * np.ones([1, 2, 2, 1],
                                                                                  np.float32))


# -- adversarial losses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, real, fake, expected",
    [
        # softplus(-r) + softplus(f)
        ("non_saturating", [0.0, 2.0], [0.0, -1.0],
         [2 * LOG2, math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0))]),
        # (r - 1)^2 + f^2
        ("least_squares", [1.0, 3.0], [0.0, -0.5], [0.0, 4.0 + 0.25]),
        # relu(1 - r) + relu(1 + f)
        ("hinge", [0.5, 2.0], [0.25, -3.0], [0.5 + 1.25, 0.0]),
        # f - r
        ("wgan_gp", [0.5, 2.0], [0.25, -3.0], [-0.25, -5.0]),
    ],
)
def test_discriminator_loss_has_known_values_per_example(kind, real, fake, expected):
    got = losses.discriminator_loss(kind, _logits(*real), _logits(*fake))
    assert got.shape == (2,)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kind, fake, expected",
    [
        ("non_saturating", [0.0, 3.0], [LOG2, math.log1p(math.exp(-3.0))]),
        ("least_squares", [1.0, -1.0], [0.0, 4.0]),
        ("hinge", [0.5, -2.0], [-0.5, 2.0]),
        ("wgan_gp", [0.5, -2.0], [-0.5, 2.0]),
    ],
)
def test_generator_adversarial_loss_has_known_values_per_example(kind, fake, expected):
    got = losses.generator_adversarial_loss(kind, _logits(*fake))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_patch_losses_average_over_patches_not_sum():
    real = tf.constant([[[[1.0], [3.0]], [[1.0], [3.0]]]])  # [1, 2, 2, 1]: patches 1, 3, 1, 3
    fake = tf.zeros_like(real)
    # least squares: mean of (r - 1)^2 = (0 + 4 + 0 + 4) / 4
    np.testing.assert_allclose(losses.discriminator_loss("least_squares", real, fake), [2.0])


def test_unknown_gan_loss_is_rejected_by_name():
    with pytest.raises(ValueError, match="bogus"):
        losses.discriminator_loss("bogus", _logits(0.0), _logits(0.0))
    with pytest.raises(ValueError, match="bogus"):
        losses.generator_adversarial_loss("bogus", _logits(0.0))


def test_feature_matching_is_zero_for_equal_features_and_mean_l1_otherwise():
    a = (tf.ones([2, 4, 4, 3]), tf.zeros([2, 2, 2, 5]))
    b = (tf.ones([2, 4, 4, 3]) * 3.0, tf.zeros([2, 2, 2, 5]))
    np.testing.assert_allclose(losses.feature_matching_loss(a, a), [0.0, 0.0])
    # |1 - 3| = 2 in the first feature map, 0 in the second; averaged over the 2 maps
    np.testing.assert_allclose(losses.feature_matching_loss(a, b), [1.0, 1.0])


# -- gradient penalties ---------------------------------------------------------------------------


def _linear_disc(w):
    """D(x) = <w, x> per example, so grad_x D = w everywhere."""
    return lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])


def test_r1_penalty_is_squared_gradient_norm_of_a_linear_discriminator():
    rng = np.random.default_rng(0)
    w = tf.constant(rng.normal(size=[1, 4, 4, 3]).astype(np.float32))
    x_real = tf.constant(rng.uniform(size=[3, 4, 4, 3]).astype(np.float32))
    x_fake = tf.constant(rng.uniform(size=[3, 4, 4, 3]).astype(np.float32))
    got = losses.gradient_penalty(_linear_disc(w), x_real, x_fake, "r1")
    np.testing.assert_allclose(got.numpy(), [float(tf.reduce_sum(w * w))] * 3, rtol=1e-5)


def test_wgan_gp_is_zero_for_a_unit_gradient_linear_discriminator_and_known_otherwise():
    rng = np.random.default_rng(1)
    w = rng.normal(size=[1, 4, 4, 3]).astype(np.float32)
    w /= np.linalg.norm(w)
    x_real = tf.constant(rng.uniform(size=[2, 4, 4, 3]).astype(np.float32))
    x_fake = tf.constant(rng.uniform(size=[2, 4, 4, 3]).astype(np.float32))
    unit = losses.gradient_penalty(_linear_disc(tf.constant(w)), x_real, x_fake, "wgan_gp")
    np.testing.assert_allclose(unit.numpy(), [0.0, 0.0], atol=1e-6)
    # gradient norm 3 -> (3 - 1)^2 = 4 at every interpolate
    steep = losses.gradient_penalty(_linear_disc(tf.constant(3.0 * w)), x_real, x_fake, "wgan_gp")
    np.testing.assert_allclose(steep.numpy(), [4.0, 4.0], rtol=1e-4)


@pytest.mark.parametrize("kind", ["r1", "wgan_gp"])
def test_gradient_penalties_are_non_negative_on_a_nonlinear_discriminator(kind):
    rng = np.random.default_rng(2)
    x_real = tf.constant(rng.uniform(size=[4, 8, 8, 3]).astype(np.float32))
    x_fake = tf.constant(rng.uniform(size=[4, 8, 8, 3]).astype(np.float32))

    def disc(x):  # patch logits [B, 8, 8, 1], non-linear in x
        return tf.reduce_sum(tf.sin(3.0 * x) * x, axis=-1, keepdims=True)

    got = losses.gradient_penalty(disc, x_real, x_fake, kind).numpy()
    assert got.shape == (4,)
    assert np.all(np.isfinite(got)) and np.all(got >= 0.0)
    assert np.any(got > 0.0)


def test_gradient_penalty_rejects_an_unknown_kind():
    x = tf.zeros([1, 2, 2, 3])
    with pytest.raises(ValueError):
        losses.gradient_penalty(lambda t: t, x, x, "r2")


# -- rate and distortion weights ------------------------------------------------------------------


def test_rate_target_schedule_picks_lambda_a_above_target_and_lambda_b_below():
    cfg = configs.get_preset("tiny")
    loss_cfg = dataclasses.replace(cfg.loss, lambda_schedule="rate_target",
                                   rate_lambda_high=2.0, rate_lambda_low=0.0625)
    targets = cfg.model.rate_targets_bpp
    q = tf.constant([0, 0, 3, 5])
    bpp = tf.constant([targets[0] * 1.5, targets[0] * 0.5, targets[3] + 0.01, targets[5] - 0.01])
    got = losses.rate_weight(bpp, q, cfg.model, loss_cfg)
    np.testing.assert_allclose(got.numpy(), [2.0, 0.0625, 2.0, 0.0625])


def test_fixed_schedule_weights_every_rate_by_one():
    cfg = configs.get_preset("tiny")
    got = losses.rate_weight(tf.constant([0.01, 5.0]), tf.constant([0, 5]), cfg.model, cfg.loss)
    np.testing.assert_allclose(got.numpy(), [1.0, 1.0])


def test_distortion_and_perceptual_weights_follow_the_quality_lambdas():
    m = configs.get_preset("tiny").model
    q = tf.constant([0, 5])
    np.testing.assert_allclose(losses.distortion_weight(q, m), [m.lambdas[0], m.lambdas[5]])
    ref = math.exp(np.mean(np.log(m.lambdas)))
    np.testing.assert_allclose(losses.perceptual_scale(q, m),
                               [m.lambdas[0] / ref, m.lambdas[5] / ref], rtol=1e-5)


# -- distortion -----------------------------------------------------------------------------------


def test_mse_255_and_psnr_have_known_values():
    x = tf.zeros([2, 4, 4, 3])
    x_hat = tf.concat([tf.zeros([1, 4, 4, 3]), tf.fill([1, 4, 4, 3], 0.1)], axis=0)
    np.testing.assert_allclose(losses.mse_255(x, x_hat), [0.0, 25.5**2], rtol=1e-5)
    # mse 0.01 -> 20 dB; mse 0 is floored at 1e-10 -> 100 dB
    np.testing.assert_allclose(losses.psnr(x, x_hat), [100.0, 20.0], rtol=1e-4)


def test_msssim_loss_is_zero_for_identical_images_and_positive_otherwise():
    rng = np.random.default_rng(3)
    x = tf.constant(rng.uniform(size=[2, 64, 64, 3]).astype(np.float32))
    np.testing.assert_allclose(losses.msssim_loss(x, x).numpy(), [0.0, 0.0], atol=1e-5)
    noisy = x + tf.constant(rng.normal(scale=0.2, size=[2, 64, 64, 3]).astype(np.float32))
    assert np.all(losses.msssim_loss(x, noisy).numpy() > 0.01)


# -- perceptual -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_vgg_weights(tmp_path_factory) -> str:
    tf.keras.utils.set_random_seed(0)
    vgg = tf.keras.applications.VGG16(include_top=False, weights=None)
    path = str(tmp_path_factory.mktemp("vgg") / "vgg16_random.h5")
    vgg.save_weights(path)
    return path


def test_perceptual_loss_is_zero_for_identical_images_and_positive_otherwise(random_vgg_weights):
    loss = losses.PerceptualLoss(random_vgg_weights)
    rng = np.random.default_rng(4)
    x = tf.constant(rng.uniform(size=[2, 32, 32, 3]).astype(np.float32))
    same = loss(x, x).numpy()
    assert same.shape == (2,)
    np.testing.assert_allclose(same, [0.0, 0.0], atol=1e-7)
    other = loss(x, tf.reverse(x, axis=[1])).numpy()
    assert np.all(other > 1e-4)


def test_perceptual_loss_uses_the_weights_from_the_file(random_vgg_weights, tmp_path):
    """Two different weight files give two different distances: the file is really loaded."""
    tf.keras.utils.set_random_seed(1)
    other_path = str(tmp_path / "other.h5")
    tf.keras.applications.VGG16(include_top=False, weights=None).save_weights(other_path)
    rng = np.random.default_rng(5)
    x = tf.constant(rng.uniform(size=[1, 32, 32, 3]).astype(np.float32))
    y = tf.clip_by_value(x + 0.1, 0.0, 1.0)
    a = losses.PerceptualLoss(random_vgg_weights)(x, y).numpy()
    b = losses.PerceptualLoss(other_path)(x, y).numpy()
    assert not np.allclose(a, b)
