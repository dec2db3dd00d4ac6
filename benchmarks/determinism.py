"""Is decoding bit-exact across thread counts and oneDNN on/off? Which part is not?

    .venv/bin/python benchmarks/determinism.py [--model small-mse] [--images 6] [--quality 3]

Encodes centre crops (512x512) of the first Kodak images once, in this process. Then decodes
every stream in fresh processes under each configuration (TF intra-op threads 1 or 2,
`TF_ENABLE_ONEDNN_OPTS` 0 or 1) and compares, against the first configuration:
- the entropy-parameter path: z symbols, the rounded scale indexes the range decoder uses
  (`IFrameCodec.entropy_parameters`, exact fixed point) and the decoded y symbols (these decide
  whether a stream decodes at all); beside them, the indexes the float32 training path would
  give (what coding used before fingerprint v3);
- the decoded frames (bytes that differ).
It also prints, for the float32 path, the smallest distance of a pre-rounding scale index to a
rounding boundary (x.5) and the largest difference of the pre-rounding values between
configurations: a difference that reaches the margin changes an index and breaks decoding.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KODAK = REPO.parent / "shared" / "data" / "images" / "kodak"
CONFIGS = [(2, "0"), (1, "0"), (2, "1"), (1, "1")]  # (intra-op threads, oneDNN)


def _worker(model: str, streams: list[str], out: str) -> None:
    """In a fresh process: decode each stream, save what is compared."""
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["GCV_THREADS"]))
    from gan_compress import api
    from gan_compress import bitstream as bs

    codec = api.load(model)
    m = codec._model
    for path in streams:
        with bs.ContainerReader(path) as reader:
            packet = next(iter(reader))
        h, w = packet.shapes[0]
        padded = np.array([-(-h // 64) * 64, -(-w // 64) * 64], np.int32)
        z_hat = m.z_entropy_model.decompress(
            tf.constant([packet.strings[1]]), tf.constant(padded // 64))
        mu, index = m.entropy_parameters(z_hat)  # what the decoder uses (exact fixed point)
        index = index.numpy()
        _, raw_index = m._hyper_params(z_hat)  # the float32 training path, for comparison
        raw_index = tf.cast(raw_index, tf.float32).numpy()
        float_index = np.clip(np.round(raw_index), 0, m.cfg.num_scales - 1)
        y_hat = m.y_entropy_model.decompress(tf.constant([packet.strings[0]]), tf.constant(index),
                                             loc=mu)
        y_symbols = tf.round(y_hat - mu).numpy().astype(np.int32)
        frame = next(iter(codec.iter_decoded(path)))
        np.savez(os.path.join(out, os.path.basename(path) + ".npz"), z_hat=z_hat.numpy(),
                 raw_index=raw_index, index=index.astype(np.int32), y_symbols=y_symbols,
                 float_index=float_index.astype(np.int32),
                 frame=frame)
    print(json.dumps({"threads": tf.config.threading.get_intra_op_parallelism_threads()}))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="small-mse")
    p.add_argument("--images", type=int, default=6)
    p.add_argument("--quality", type=int, default=3)
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args.model, args.worker[1:], args.worker[0])
        return 0
    import numpy as np

    sys.path.insert(0, str(REPO))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from gan_compress import api
    from gan_compress.io import read_image

    codec = api.load(args.model)
    with tempfile.TemporaryDirectory() as d:
        streams = []
        for path in sorted(KODAK.glob("kodim*.png"))[:args.images]:
            img = read_image(str(path))
            h, w = img.shape[:2]
            crop = img[(h - 512) // 2:(h + 512) // 2, (w - 512) // 2:(w + 512) // 2]
            stream = os.path.join(d, path.stem + ".gcv")
            with open(stream, "wb") as f:
                f.write(codec.compress_image(np.ascontiguousarray(crop), args.quality))
            streams.append(stream)
        outs = {}
        for threads, onednn in CONFIGS:
            out = os.path.join(d, f"t{threads}_dnn{onednn}")
            os.makedirs(out)
            env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, GCV_THREADS=str(threads),
                       TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
            cmd = [sys.executable, __file__, "--model", args.model, "--worker", out, *streams]
            subprocess.run(cmd, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
            outs[(threads, onednn)] = out
        ref_key = CONFIGS[0]
        print(f"model {args.model}, quality {args.quality}, {len(streams)} Kodak crops 512x512; "
              f"reference: {ref_key[0]} threads, oneDNN {ref_key[1]}")
        print(f"{'threads':>7s} {'oneDNN':>6s} {'z':>6s} {'indexes':>8s} {'y symbols':>10s} "
              f"{'frame bytes differing':>22s} | float32 path: {'indexes':>8s} "
              f"{'max |raw diff|':>15s}")
        margin = 1.0
        for key, out in outs.items():
            same = {"z_hat": 0, "index": 0, "y_symbols": 0, "float_index": 0}
            diff_bytes, total_bytes, max_raw = 0, 0, 0.0
            for s in streams:
                a = np.load(os.path.join(outs[ref_key], os.path.basename(s) + ".npz"))
                b = np.load(os.path.join(out, os.path.basename(s) + ".npz"))
                for k in same:
                    same[k] += int(np.array_equal(a[k], b[k]))
                diff_bytes += int(np.sum(a["frame"] != b["frame"]))
                total_bytes += a["frame"].size
                max_raw = max(max_raw, float(np.max(np.abs(a["raw_index"] - b["raw_index"]))))
                frac = np.abs(a["raw_index"] - np.floor(a["raw_index"]) - 0.5)
                inside = (a["raw_index"] > 0) & (a["raw_index"] < 63)
                if inside.any():
                    margin = min(margin, float(frac[inside].min()))
            n = len(streams)
            print(f"{key[0]:7d} {key[1]:>6s} {same['z_hat']:>4d}/{n} {same['index']:>6d}/{n} "
                  f"{same['y_symbols']:>8d}/{n} {diff_bytes:>12,d} of {total_bytes:,} "
                  f"|               {same['float_index']:>6d}/{n} {max_raw:15.2e}")
        print(f"smallest distance of a reference pre-rounding scale index to a rounding boundary: "
              f"{margin:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
