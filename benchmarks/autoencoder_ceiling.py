"""Where a model loses quality: the transforms (no quantization) or the quantization.

    .venv/bin/python benchmarks/autoencoder_ceiling.py [--models small-mse] [--images 8]
                                                       [--crop 256]

For each model and quality on centre crops of the first Kodak images, prints PSNR-RGB of:
- `no quantization`: synthesis(analysis(x) * gain * inverse gain): the transforms' ceiling;
- `rounded`: the same with y rounded (what coding does, without the hyperprior's means);
- `model`: the model's own forward pass (rounding around the predicted means), and its bpp.
If `no quantization` is low at every quality, more bits cannot help: the transforms (capacity
or training) limit the codec, not the entropy model.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

KODAK = REPO.parent / "shared" / "data" / "images" / "kodak"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    a = np.round(np.clip(a, 0.0, 1.0) * 255.0)
    return float(10 * np.log10(255.0**2 / np.mean((a - b * 255.0) ** 2)))


def ceiling(model: str, images: int, crop: int) -> list[dict]:
    import tensorflow as tf

    from gan_compress import api
    from gan_compress.io import read_image

    m = api.load(model)._model
    paths = sorted(KODAK.glob("kodim*.png"))[:images]
    rows = []
    for qi in range(m.cfg.num_qualities):
        gain, inv = m.gains(tf.constant([qi]))
        acc = {"noquant": [], "rounded": [], "coded": [], "bpp": []}
        for p in paths:
            img = read_image(str(p))
            h, w = img.shape[:2]
            top, left = (h - crop) // 2, (w - crop) // 2
            x = img[top:top + crop, left:left + crop].astype(np.float32)[None] / 255.0
            y = m.analysis(tf.constant(x)) * gain
            acc["noquant"].append(_psnr(m.synthesis(y * inv).numpy(), x))
            acc["rounded"].append(_psnr(m.synthesis(tf.round(y) * inv).numpy(), x))
            out = m(tf.constant(x), tf.constant([qi]), training=False)
            acc["coded"].append(_psnr(out.x_hat.numpy(), x))
            acc["bpp"].append(float(out.bpp[0]))
        rows.append({"model": model, "quality": qi + 1,
                     **{k: float(np.mean(v)) for k, v in acc.items()}})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="small-mse")
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--crop", type=int, default=256)
    args = p.parse_args(argv)
    print(f"PSNR-RGB (dB), mean of {args.images} Kodak centre crops {args.crop}x{args.crop}")
    print(f"{'model':12s} {'q':>2s} {'no quantization':>16s} {'rounded':>8s} {'model':>7s} "
          f"{'bpp':>7s}")
    for model in args.models.split(","):
        for r in ceiling(model, args.images, args.crop):
            print(f"{r['model']:12s} {r['quality']:2d} {r['noquant']:16.2f} {r['rounded']:8.2f} "
                  f"{r['coded']:7.2f} {r['bpp']:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
