"""Training losses: rate, distortion, perceptual, adversarial, and HiFiC's rate-target schedule.

Every function returns PER-EXAMPLE losses `[B]` float32; the training loop sums them and divides
by the GLOBAL batch size (correct under tf.distribute, where each replica sees part of the batch).
Images are `[B, H, W, 3]` float32 in [0, 1].
"""

from __future__ import annotations

import tensorflow as tf

from gan_compress.configs import LossConfig, ModelConfig

GAN_LOSSES = ("non_saturating", "least_squares", "hinge", "wgan_gp")
LAMBDA_SCHEDULES = ("fixed", "rate_target")


def mse_255(x, x_hat):
    """Per-example MSE on the [0, 255] scale: `[B]`."""
    return tf.reduce_mean(tf.math.squared_difference(x * 255.0, x_hat * 255.0), axis=[1, 2, 3])


def psnr(x, x_hat):
    """Per-example PSNR in dB of images in [0, 1] (x_hat clipped): `[B]`."""
    err = tf.math.squared_difference(x, tf.clip_by_value(x_hat, 0.0, 1.0))
    mse = tf.reduce_mean(err, [1, 2, 3])
    return 10.0 * tf.math.log(1.0 / tf.maximum(mse, 1e-10)) / tf.math.log(10.0)


def clip_st(x_hat):
    """Clips to [0, 1] in the forward pass with an identity gradient (straight-through), so
    what the discriminator sees is what the decoder outputs while gradients still flow."""
    return x_hat + tf.stop_gradient(tf.clip_by_value(x_hat, 0.0, 1.0) - x_hat)


def out_of_range(x_hat):
    """Per-example mean squared excursion of `x_hat` outside [0, 1], on the [0, 255] scale
    (0 when the output is in range): `[B]`."""
    over = tf.nn.relu(x_hat - 1.0) + tf.nn.relu(-x_hat)
    return tf.reduce_mean(tf.square(over * 255.0), axis=[1, 2, 3])


def msssim_loss(x, x_hat):
    """Per-example 1 - MS-SSIM (fewer scales for small crops): `[B]`."""
    weights = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    # each scale halves the image and needs >= 11 pixels for the 11x11 window
    n = 5
    while n > 1 and x.shape[1] is not None and min(x.shape[1], x.shape[2]) < 11 * 2 ** (n - 1):
        n -= 1
    w = weights[:n]
    w = tuple(v / sum(w) for v in w)
    return 1.0 - tf.image.ssim_multiscale(x, tf.clip_by_value(x_hat, 0.0, 1.0), 1.0, w)


def rate_weight(bpp, quality_index, model_cfg: ModelConfig, loss_cfg: LossConfig):
    """Weight of the rate term per example `[B]`.

    fixed: 1 (the distortion carries lambda_q). rate_target (HiFiC): lambda_a while the example's
    rate is above its quality level's target, lambda_b once below, so each level is pushed to
    its target rate instead of finding its own.
    """
    if loss_cfg.lambda_schedule == "fixed":
        return tf.ones_like(bpp)
    targets = tf.gather(tf.constant(model_cfg.rate_targets_bpp, tf.float32), quality_index)
    return tf.where(
        bpp > targets,
        tf.constant(loss_cfg.rate_lambda_high, tf.float32),
        tf.constant(loss_cfg.rate_lambda_low, tf.float32),
    )


def distortion_weight(quality_index, model_cfg: ModelConfig):
    """lambda_q per example `[B]`."""
    return tf.gather(tf.constant(model_cfg.lambdas, tf.float32), quality_index)


def perceptual_scale(quality_index, model_cfg: ModelConfig):
    """lambda_q / geometric-mean(lambda): perceptual and adversarial terms scale with the
    distortion weight so the realism/fidelity balance is the same at every quality level."""
    lambdas = tf.constant(model_cfg.lambdas, tf.float32)
    ref = tf.exp(tf.reduce_mean(tf.math.log(lambdas)))
    return tf.gather(lambdas, quality_index) / ref


# -- adversarial ------------------------------------------------------------------------------


def _patch_mean(t):
    return tf.reduce_mean(t, axis=list(range(1, t.shape.rank)))


def discriminator_loss(kind: str, real_logits, fake_logits):
    """Per-example discriminator loss (without gradient penalties): `[B]`."""
    if kind == "non_saturating":
        per = tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits)
    elif kind == "least_squares":
        per = tf.square(real_logits - 1.0) + tf.square(fake_logits)
    elif kind == "hinge":
        per = tf.nn.relu(1.0 - real_logits) + tf.nn.relu(1.0 + fake_logits)
    elif kind == "wgan_gp":
        per = fake_logits - real_logits
    else:
        raise ValueError(f"unknown GAN loss {kind!r}; choose one of {GAN_LOSSES}")
    return _patch_mean(per)


def generator_adversarial_loss(kind: str, fake_logits):
    """Per-example adversarial loss of the generator: `[B]`."""
    if kind == "non_saturating":
        per = tf.nn.softplus(-fake_logits)
    elif kind == "least_squares":
        per = tf.square(fake_logits - 1.0)
    elif kind in ("hinge", "wgan_gp"):
        per = -fake_logits
    else:
        raise ValueError(f"unknown GAN loss {kind!r}; choose one of {GAN_LOSSES}")
    return _patch_mean(per)


def feature_matching_loss(real_features, fake_features):
    """Per-example mean L1 distance between discriminator features of real and fake: `[B]`."""
    total = 0.0
    for r, f in zip(real_features, fake_features, strict=True):
        total += _patch_mean(tf.abs(tf.stop_gradient(r) - f))
    return total / float(len(real_features))


def gradient_penalty(disc_fn, x_real, x_fake, kind: str):
    """Per-example gradient penalties `[B]`.

    kind "wgan_gp": (||grad D(interp)|| - 1)^2 on random interpolates (Gulrajani et al. 2017).
    kind "r1": ||grad D(x_real)||^2 (Mescheder et al. 2018).
    """
    if kind == "wgan_gp":
        eps = tf.random.uniform([tf.shape(x_real)[0], 1, 1, 1])
        x = eps * x_real + (1.0 - eps) * x_fake
    elif kind == "r1":
        x = x_real
    else:
        raise ValueError(kind)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = disc_fn(x)
        s = tf.reduce_sum(logits)
    grad = tape.gradient(s, x)
    sq = tf.reduce_sum(tf.square(grad), axis=[1, 2, 3])
    if kind == "r1":
        return sq
    return tf.square(tf.sqrt(sq + 1e-12) - 1.0)


# -- optional VGG-style perceptual loss -------------------------------------------------------


class PerceptualLoss:
    """VGG16-style feature distance with user-supplied weights (no download at run time).

    `weights_path` is a Keras `.h5`/`.weights.h5` file for `tf.keras.applications.VGG16`
    (include_top=False), e.g. saved once on a machine that has them. Inputs in [0, 1]; the
    distance is the mean squared difference of unit-normalised features of blocks 1..4.
    """

    LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3")

    def __init__(self, weights_path: str):
        vgg = tf.keras.applications.VGG16(include_top=False, weights=None)
        vgg.load_weights(weights_path)
        vgg.trainable = False
        outputs = [vgg.get_layer(n).output for n in self.LAYERS]
        self.model = tf.keras.Model(vgg.input, outputs)

    def __call__(self, x, x_hat):
        pre = tf.keras.applications.vgg16.preprocess_input
        fr = self.model(pre(x * 255.0))
        ff = self.model(pre(tf.clip_by_value(x_hat, 0.0, 1.0) * 255.0))
        total = 0.0
        for a, b in zip(fr, ff, strict=True):
            a = a * tf.math.rsqrt(tf.reduce_sum(tf.square(a), -1, keepdims=True) + 1e-10)
            b = b * tf.math.rsqrt(tf.reduce_sum(tf.square(b), -1, keepdims=True) + 1e-10)
            total += _patch_mean(tf.square(a - b))
        return total / float(len(fr))
