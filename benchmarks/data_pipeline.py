"""Throughput of the training input pipeline (`gan_compress.data.build_inputs`).

    .venv/bin/python benchmarks/data_pipeline.py                  # uses the normal frame cache
    .venv/bin/python benchmarks/data_pipeline.py --rebuild_cache  # times a cold cache build

Prints the cache build time, then for each clip length (default T=1 and T=3; batch 8, 256x256
crops) clips/s and frames/s after a few warm-up batches, and the CPU the pipeline used
(process CPU seconds per wall second, i.e. cores busy). `--json` prints one JSON object instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from gan_compress.configs import DataConfig  # noqa: E402


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_glob = os.path.join(REPO, "..", "shared", "data", "video", "train", "*")
    p.add_argument("--globs", nargs="+", default=[default_glob])
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--crop_size", type=int, default=256)
    p.add_argument("--clip_lengths", type=int, nargs="+", default=[1, 3])
    p.add_argument("--batches", type=int, default=60, help="timed batches per clip length")
    p.add_argument("--warmup_batches", type=int, default=5)
    p.add_argument("--cache_dir", default=None, help="default: DataConfig's (~/.cache/...)")
    p.add_argument(
        "--rebuild_cache",
        action="store_true",
        help="build the cache from scratch in a temporary directory (deleted afterwards)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    from gan_compress.data import build_inputs, decode_cache_warmup

    tmp = tempfile.mkdtemp(prefix="gc_bench_cache_") if args.rebuild_cache else None
    try:
        base = DataConfig(
            train_globs=tuple(args.globs),
            batch_size=args.batch_size,
            crop_size=args.crop_size,
            cache_dir=tmp or args.cache_dir,
        )
        t0 = time.perf_counter()
        clips = decode_cache_warmup(base, progress=not args.json)
        build = time.perf_counter() - t0
        result = {
            "cache_build_s": round(build, 2),
            "cache_files": len(clips),
            "cache_frames": sum(c.num_frames for c in clips),
            "cache_bytes": sum(os.path.getsize(c.frames_path) for c in clips),
            "cold_cache": bool(tmp),
            "runs": [],
        }
        for t in args.clip_lengths:
            cfg = dataclasses.replace(base, clip_length=t)
            it = iter(build_inputs(cfg))
            for _ in range(args.warmup_batches):
                next(it)
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.batches):
                batch = next(it)
            wall = time.perf_counter() - w0
            cpu = time.process_time() - c0
            clips_s = args.batches * args.batch_size / wall
            result["runs"].append(
                {
                    "clip_length": t,
                    "batch_shape": list(batch.shape),
                    "clips_per_s": round(clips_s, 1),
                    "frames_per_s": round(clips_s * t, 1),
                    "batches_per_s": round(args.batches / wall, 2),
                    "cpu_cores_busy": round(cpu / wall, 2),
                }
            )
            del it
        return result
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result))
        return 0
    kind = "cold" if result["cold_cache"] else "existing cache, 0 if all files were cached"
    print(
        f"cache build: {result['cache_build_s']:.1f} s ({kind}); {result['cache_files']} files, "
        f"{result['cache_frames']} frames, {result['cache_bytes'] / 1e9:.2f} GB"
    )
    for r in result["runs"]:
        print(
            f"T={r['clip_length']} batch {r['batch_shape']}: {r['clips_per_s']:.1f} clips/s, "
            f"{r['frames_per_s']:.1f} frames/s, {r['batches_per_s']:.2f} batches/s, "
            f"{r['cpu_cores_busy']:.2f} cores busy"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
