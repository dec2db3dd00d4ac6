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


def measure(preset: str, stage: str, batch: int, crop: int, steps: int) -> float:
    cfg = configs.get_preset(preset)
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args(argv)
    logging.set_verbosity(logging.WARNING)
    figs = preset_figures(args.preset, 256)
    codec_macs = sum(figs[k]["macs_per_pixel"] for k in
                     ("analysis", "synthesis", "hyper_analysis", "hyper_synthesis"))
    disc_macs = figs["discriminator"]["macs_per_pixel"]
    pixels = args.batch * args.crop * args.crop
    rate = conv_rate()
    print(f"preset {args.preset}, batch {args.batch}, crop {args.crop}; "
          f"conv rate measured now: {rate / 1e9:.1f} GMAC/s")
    print(f"{'stage':6s} {'steps/s':>8s} {'images/s':>9s} {'GMAC/s':>8s} {'of conv rate':>13s}")
    for stage in ("mse", "gan"):
        sps = measure(args.preset, stage, args.batch, args.crop, args.steps)
        per_px = codec_macs + (4 * disc_macs if stage == "gan" else 0.0)
        achieved = 3.0 * per_px * pixels * sps
        print(f"{stage:6s} {sps:8.2f} {sps * args.batch:9.1f} {achieved / 1e9:8.1f} "
              f"{achieved / rate:12.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
