"""Hypothesis 1 of docs/TRAINING.md: does the GAN stage pull the codec off the fidelity optimum?

  .venv/bin/python benchmarks/gan_recipe.py [--mse_steps 200] [--gan_steps 100]

Overfits a `tiny` model on two real 64x64 crops of the sample clip (MSE stage), then runs the
GAN stage from it twice: with the old recipe (every transform trainable, adversarial terms scaled
by lambda_q / geometric-mean(lambda), no range penalty) and with the current one (synthesis
only, constant beta, range penalty, the discriminator judging the clipped output in both
updates). Prints per quality: PSNR, per-channel mean error (levels of 255), standard deviation
ratio against the source, and the fraction of raw output values outside [0, 1].
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import logging  # noqa: E402

from gan_compress import configs, losses  # noqa: E402
from gan_compress import io as gio  # noqa: E402
from gan_compress.training.trainer import Trainer  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "samples",
                      "foreman_cif_30f.mkv")
RECIPES = {
    "old (all, lambda-scaled, no range term)": dict(
        train={"gan_trainable": "all"}, loss={"gan_scaling": "lambda", "range_weight": 0.0}),
    "new (synthesis only, constant beta, range term)": dict(train={}, loss={}),
}


def _config(stage, steps, train=None, loss=None):
    cfg = configs.get_preset("tiny")
    t = dataclasses.replace(cfg.train, stage=stage, steps=steps, lr=1e-3, log_every=0,
                            checkpoint_every=0, validate_every=0, **(train or {}))
    return dataclasses.replace(cfg, train=t, loss=dataclasses.replace(cfg.loss, **(loss or {})),
                               data=dataclasses.replace(cfg.data, batch_size=2))


def _stats(model, x, q):
    out = model(x, tf.fill([int(x.shape[0])], q), training=False)
    raw = out.x_hat.numpy()
    clipped, ref = np.clip(raw, 0, 1), x.numpy()
    return (float(np.mean(losses.psnr(x, out.x_hat).numpy())),
            float(np.mean(np.abs(clipped.mean((1, 2)) - ref.mean((1, 2))) * 255)),
            float(np.mean(clipped.std((1, 2)) / ref.std((1, 2)))),
            float(np.mean((raw < 0) | (raw > 1))), float(np.mean(out.bpp.numpy())))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mse_steps", type=int, default=200)
    p.add_argument("--gan_steps", type=int, default=100)
    args = p.parse_args(argv)
    logging.set_verbosity(logging.WARNING)
    with gio.open_video(SAMPLE) as reader:
        rgb = next(iter(reader.frames_rgb()))
    clip = tf.constant(np.stack([rgb[100:164, 150:214], rgb[20:84, 30:94]])[:, None],
                       tf.float32) / 255.0
    ds = tf.data.Dataset.from_tensors(clip).repeat()
    x = clip[:, 0]
    with tempfile.TemporaryDirectory() as d:
        tf.random.set_seed(0)
        mse = Trainer(_config("mse", args.mse_steps), os.path.join(d, "mse"))
        mse.train(dataset=ds)
        rows = [("MSE stage", mse.model)]
        for i, (name, recipe) in enumerate(RECIPES.items()):
            tf.random.set_seed(1)
            gan = Trainer(_config("gan", args.gan_steps, **recipe), os.path.join(d, f"g{i}"),
                          init_from=os.path.join(d, "mse"))
            gan.train(dataset=ds)
            rows.append((name, gan.model))
        print(f"{'model':48s} {'q':>2s} {'bpp':>6s} {'PSNR':>6s} {'mean err':>8s} "
              f"{'std ratio':>9s} {'outside':>8s}")
        for name, model in rows:
            for q in (0, 3, 5):
                psnr, err, ratio, outside, bpp = _stats(model, x, q)
                print(f"{name:48s} {q + 1:2d} {bpp:6.3f} {psnr:6.2f} {err:8.2f} {ratio:9.3f} "
                      f"{outside:8.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
