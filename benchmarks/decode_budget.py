"""Entropy-decoding time of valid frames against the budget `gan_compress.api` allows.

A corrupt string can make TFC's range decoder spin, so `Codec.decode_packet` gives entropy
decoding a budget (`api.entropy_decode_budget`) and reports the frame as corrupt past it. This
prints, for frames tiled from a Kodak image at several sizes and qualities, the time valid data
takes and the budget, so the margin (budget / time) can be checked on a given machine, also
under load. Usage: `.venv/bin/python benchmarks/decode_budget.py [--model small-mse]`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SIZES = ((64, 64), (288, 352), (1080, 1920), (2160, 3840))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="small-mse")
    p.add_argument("--image", default=os.path.join(
        os.path.dirname(__file__), "..", "..", "shared", "data", "images", "kodak",
        "kodim23.png"))
    p.add_argument("--qualities", default="1,6")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    import gan_compress
    from gan_compress import api

    codec = gan_compress.load(args.model)
    m = codec.config.model
    img = np.asarray(Image.open(args.image).convert("RGB"))
    print(f"model {codec.name}; entropy decoding of valid frames (best of {args.repeats})")
    print(f"{'size':>11} {'q':>2} {'bytes':>8} {'symbols':>9} {'time s':>7} {'budget s':>8} "
          f"{'margin':>7}")
    for h, w in SIZES:
        reps = (h // img.shape[0] + 1, w // img.shape[1] + 1, 1)
        rgb = np.ascontiguousarray(np.tile(img, reps)[:h, :w])
        for q in (int(v) for v in args.qualities.split(",")):
            pk = codec.encode_frame(rgb, q, 0)
            ys, zs = (np.array([s], object) for s in pk.strings)
            size = np.array([h, w], np.int32)
            times = []
            for _ in range(args.repeats + 1):  # the first call traces
                t = time.perf_counter()
                y, _ = codec._decode_latents(ys, zs, size)
                times.append(time.perf_counter() - t)
            best = min(times[1:])
            symbols = int(y.numpy().size) + (-(-h // 64)) * (-(-w // 64)) * m.hyper_latent_channels
            budget = api.entropy_decode_budget(h, w, m.latent_channels + m.hyper_latent_channels)
            print(f"{w:>5}x{h:<5} {q:>2} {len(pk.strings[0]) + len(pk.strings[1]):>8} "
                  f"{symbols:>9} {best:>7.3f} {budget:>8.2f} {budget / best:>6.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
