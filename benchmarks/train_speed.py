"""Training throughput: steps/s of the MSE and GAN stages and achieved MAC/s.

  .venv/bin/python benchmarks/train_speed.py [--preset small] [--batch 8] [--crop 128] [--steps 20]

Feeds a synthetic in-memory batch (so the input pipeline is not measured; see
benchmarks/data_pipeline.py for that). Achieved MAC/s counts forward MACs of everything a step
runs (codec; in the GAN stage also 4 discriminator passes) times 3 (forward + the two backward
convolutions), and is shown as a fraction of this machine's conv rate measured in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks.flops import conv_rate, preset_figures  # noqa: E402
from gan_compress import configs  # noqa: E402
from gan_compress.training.trainer import Trainer  # noqa: E402


def measure(preset: str, stage: str, batch: int, crop: int, steps: int,
            precision: str = "float32") -> float:
    """steps/s of `Trainer._distributed_step` under the Keras policy `precision`."""
    tf.keras.mixed_precision.set_global_policy(precision)
    try:
        return _measure(preset, stage, batch, crop, steps)
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")


_OVERRIDES: list[str] = []  # --config section.field=value, applied to the preset


def _measure(preset: str, stage: str, batch: int, crop: int, steps: int) -> float:
    cfg = configs.override(configs.get_preset(preset), _OVERRIDES)
    cfg = dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, batch_size=batch, crop_size=crop),
        train=dataclasses.replace(cfg.train, stage=stage, steps=steps + 3, log_every=10**9,
                                  checkpoint_every=10**9, image_every=0),
    )
    x = tf.random.uniform([batch, 1, crop, crop, 3])
    ds = tf.data.Dataset.from_tensors(x).repeat()
    with tempfile.TemporaryDirectory() as d:
        trainer = Trainer(cfg, d)
        it = iter(ds)
        for _ in range(3):  # trace and warm up
            trainer._distributed_step(next(it))
        t0 = time.perf_counter()
        for _ in range(steps):
            out = trainer._distributed_step(next(it))
        float(out["loss"].numpy())
        return steps / (time.perf_counter() - t0)


def op_probe(precision: str, kind: str, reps: int = 5) -> float | str:
    """Seconds per forward+backward of one 5x5 stride-2 (transposed) convolution, 96 -> 96
    channels on [8, 64, 64, 96], under the Keras policy `precision`; or the error's first line
    when the kernel fails (oneDNN refuses some bfloat16 gradients)."""
    tf.keras.mixed_precision.set_global_policy(precision)
    try:
        cls = tf.keras.layers.Conv2D if kind == "conv" else tf.keras.layers.Conv2DTranspose
        layer = cls(96, 5, strides=2, padding="same")
        x = tf.random.uniform([8, 64, 64, 96])
        layer.build(x.shape)

        @tf.function
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.reduce_sum(tf.cast(layer(x), tf.float32))
            return tape.gradient(y, [x, *layer.trainable_weights])

        try:
            step(x)
            t0 = time.perf_counter()
            for _ in range(reps):
                [g.numpy() for g in step(x)]
        except tf.errors.OpError as e:
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            detail = next((ln for ln in lines if "could not" in ln or "Status" in ln), lines[0])
            return "fails: " + detail[:110]
        return (time.perf_counter() - t0) / reps
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--precisions", default="float32,mixed_bfloat16",
                   help="comma-separated Keras policies, measured in this order")
    p.add_argument("--config", action="append", default=[],
                   help="section.field=value override of the preset (repeatable), e.g. "
                        "model.upsample=subpixel")
    p.add_argument("--ops_only", action="store_true",
                   help="only the per-op probe (conv and transposed conv, both precisions)")
    args = p.parse_args(argv)
    _OVERRIDES[:] = args.config
    logging.set_verbosity(logging.WARNING)
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset")
    print(f"per-op probe (fwd+bwd, [8,64,64,96], 5x5 stride 2; TF_ENABLE_ONEDNN_OPTS={onednn})")
    for kind in ("conv", "deconv"):
        times = {pr: op_probe(pr, kind) for pr in args.precisions.split(",")}
        shown = "  ".join(f"{pr}: {t * 1e3:.0f} ms" if isinstance(t, float) else f"{pr}: {t}"
                          for pr, t in times.items())
        print(f"  {kind:6s} {shown}")
    if args.ops_only:
        return 0
    figs = preset_figures(args.preset, 256)
    codec_macs = sum(figs[k]["macs_per_pixel"] for k in
                     ("analysis", "synthesis", "hyper_analysis", "hyper_synthesis"))
    disc_macs = figs["discriminator"]["macs_per_pixel"]
    pixels = args.batch * args.crop * args.crop
    rate = conv_rate()
    print(f"preset {args.preset}, batch {args.batch}, crop {args.crop}; "
          f"conv rate measured now: {rate / 1e9:.1f} GMAC/s")
    print(f"{'precision':15s} {'stage':6s} {'steps/s':>8s} {'images/s':>9s} {'GMAC/s':>8s} "
          f"{'of conv rate':>13s} {'vs float32':>10s}")
    base = {}
    for precision in args.precisions.split(","):
        for stage in ("mse", "gan"):
            sps = measure(args.preset, stage, args.batch, args.crop, args.steps, precision)
            base.setdefault(stage, sps)
            per_px = codec_macs + (4 * disc_macs if stage == "gan" else 0.0)
            achieved = 3.0 * per_px * pixels * sps
            print(f"{precision:15s} {stage:6s} {sps:8.2f} {sps * args.batch:9.1f} "
                  f"{achieved / 1e9:8.1f} {achieved / rate:12.0%} {sps / base[stage]:9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
