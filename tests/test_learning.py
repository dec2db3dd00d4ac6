"""Tests that catch a codec that cannot learn or drifts, in seconds on a CPU.

A `tiny` model is overfitted on two real 64x64 crops of the sample clip (MSE stage), then
fine-tuned briefly against the discriminator (GAN stage, generator = synthesis transform). The
thresholds are far below what a working model reaches (about 22.7 dB at q6 after 200 steps when
measured) and far above what a broken one gives (about 12-14 dB: a flat grey).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

MSE_STEPS = 200
GAN_STEPS = 60
MIN_PSNR_Q6 = 20.0  # dB after MSE_STEPS
MAX_MEAN_DRIFT = 1.5  # levels of 255: GAN model's mean colour error minus the MSE model's
MAX_STD_RATIO = 1.10  # per-channel contrast of the GAN output / of the source
MIN_STD_VS_MSE = 0.90  # mean per-channel contrast of the GAN output / of the MSE model's output
# fraction of raw output values outside [0, 1]: measured 0.6-1 % on an AMD EPYC and 2.2-2.3 % on
# an Intel Xeon with AMX (oneDNN's kernels differ, and the 60 GAN steps amplify it); the failure
# this guards against (hypothesis 1 of docs/TRAINING.md) put 12-23 % of pixels out of range
MAX_OUT_OF_RANGE = 0.04


def _crops(sample_clip):
    import tensorflow as tf

    from gan_compress import io as gio

    with gio.open_video(sample_clip) as reader:
        rgb = next(iter(reader.frames_rgb()))
    crops = np.stack([rgb[100:164, 150:214], rgb[20:84, 30:94]])[:, None]
    return tf.constant(crops, tf.float32) / 255.0


def _config(stage: str, steps: int):
    from gan_compress import configs

    cfg = configs.get_preset("tiny")
    train = dataclasses.replace(cfg.train, stage=stage, steps=steps, lr=1e-3, log_every=0,
                                checkpoint_every=0, validate_every=0)
    return dataclasses.replace(cfg, train=train, data=dataclasses.replace(cfg.data, batch_size=2))


@pytest.fixture(scope="module")
def overfit(sample_clip, tmp_path_factory):
    """(crops [2, 64, 64, 3], MSE trainer after MSE_STEPS, GAN trainer after GAN_STEPS)."""
    import tensorflow as tf

    from gan_compress.training.trainer import Trainer

    clip = _crops(sample_clip)
    ds = tf.data.Dataset.from_tensors(clip).repeat()
    tf.random.set_seed(0)
    mse_dir = str(tmp_path_factory.mktemp("overfit_mse"))
    mse = Trainer(_config("mse", MSE_STEPS), mse_dir)
    mse.train(dataset=ds)
    gan = Trainer(_config("gan", GAN_STEPS), str(tmp_path_factory.mktemp("overfit_gan")),
                  init_from=mse_dir)
    gan.train(dataset=ds)
    return clip[:, 0], mse, gan


def _forward(trainer, x, quality_index):
    import tensorflow as tf

    q = tf.fill([int(x.shape[0])], quality_index)
    return trainer.model(x, q, training=False)


def test_a_tiny_model_overfits_two_real_crops_within_200_steps(overfit):
    from gan_compress import losses

    x, mse, _ = overfit
    out = _forward(mse, x, 5)
    psnr = float(np.mean(losses.psnr(x, out.x_hat).numpy()))
    assert psnr >= MIN_PSNR_Q6, f"PSNR at q6 after {MSE_STEPS} steps: {psnr:.2f} dB"


def test_after_overfitting_higher_quality_levels_spend_more_bits(overfit):
    x, mse, _ = overfit
    bpp = [float(np.mean(_forward(mse, x, q).bpp.numpy())) for q in range(6)]
    assert bpp[-1] > bpp[0], bpp
    assert all(b2 >= b1 * 0.9 for b1, b2 in zip(bpp, bpp[1:], strict=False)), bpp


def _colour_stats(trainer, x, q):
    """(per-image, per-channel |mean error| in levels, std ratio, fraction out of range)."""
    ref = x.numpy()
    raw = _forward(trainer, x, q).x_hat.numpy()
    out = np.clip(raw, 0.0, 1.0)
    mean_err = np.abs(out.mean(axis=(1, 2)) - ref.mean(axis=(1, 2))) * 255.0
    std_ratio = out.std(axis=(1, 2)) / ref.std(axis=(1, 2))
    return mean_err, std_ratio, float(np.mean((raw < 0.0) | (raw > 1.0)))


def test_a_short_gan_run_keeps_colour_contrast_and_range(overfit):
    x, mse, gan = overfit
    for q in (0, 5):
        mse_err, mse_std, _ = _colour_stats(mse, x, q)
        mean_err, std_ratio, outside = _colour_stats(gan, x, q)
        print(f"q{q + 1}: mse mean err {mse_err.mean():.2f} gan {mean_err.mean():.2f} "
              f"max {mean_err.max():.2f}; std ratio {std_ratio.min():.3f}..{std_ratio.max():.3f}"
              f"; outside {outside:.4f}")
        # the GAN stage may not add a colour cast beyond the MSE model's own error
        assert mean_err.mean() <= mse_err.mean() + MAX_MEAN_DRIFT, (q, mse_err, mean_err)
        # no contrast gain over the source, and no more blur than the MSE model
        assert std_ratio.max() <= MAX_STD_RATIO, (q, std_ratio)
        # (averaged over images and channels: per channel, a 60-step run on two crops varies
        # by +-10 % between runs of the same seed on a multi-threaded CPU)
        assert (std_ratio / mse_std).mean() >= MIN_STD_VS_MSE, (q, std_ratio, mse_std)
        assert outside <= MAX_OUT_OF_RANGE, (q, outside)


def test_the_gan_stage_trains_only_the_synthesis_so_the_bitstream_is_unchanged(overfit):
    x, mse, gan = overfit
    for a, b in zip(mse.model.analysis.weights, gan.model.analysis.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(mse.model.hyperprior.trainable_variables,
                    gan.model.hyperprior.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    changed = [not np.array_equal(a.numpy(), b.numpy()) for a, b in
               zip(mse.model.synthesis.weights, gan.model.synthesis.weights, strict=True)]
    assert any(changed)
    np.testing.assert_array_equal(_forward(mse, x, 2).bpp.numpy(),
                                  _forward(gan, x, 2).bpp.numpy())
