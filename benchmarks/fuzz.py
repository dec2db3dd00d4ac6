"""Long fuzzing runs of the `.gcv` info and decode paths, with counts per outcome.

  .venv/bin/python benchmarks/fuzz.py [--info_cases 50000] [--decode_cases 20000]
      [--model small-mse] [--timeout 2] [--seed 0] [--out reports/fuzz]

Seeds are made with the model: a 1x1 image, a 33x17 image and 3 frames of the bundled sample
clip cut to 96x64. Each case runs in a supervised worker (`gan_compress.fuzz`); a case without
an answer within --timeout seconds is a hang. Writes `fuzz.json` and `fuzz.md` to --out and
prints the tables; the inputs of cases that were not a clean error or a silent decode go to
`--out/cases/<outcome>-<case>.gcv`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from gan_compress import api, fuzz  # noqa: E402
from gan_compress import io as gio  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "samples",
                      "foreman_cif_30f.mkv")


def make_seeds(model: str) -> list[bytes]:
    codec = api.load(model)
    seeds = [codec.compress_image(np.full((1, 1, 3), 128, np.uint8), quality=1)]
    rng = np.random.default_rng(0)
    seeds.append(codec.compress_image(rng.integers(0, 256, (17, 33, 3), np.uint8), quality=6))
    with gio.open_video(SAMPLE) as reader, tempfile.TemporaryDirectory() as d:
        frames = [f[:64, :96] for _, f in zip(range(3), reader.frames_rgb(), strict=False)]
        path = os.path.join(d, "clip.y4m")
        info = gio.VideoInfo(path=path, width=96, height=64, fps=reader.info.fps,
                             num_frames=3, pix_fmt="yuv420p", color=reader.info.color)
        gio.write_video(path, iter(frames), info)
        out = os.path.join(d, "clip.gcv")
        codec.compress_video(path, out, quality=3)
        with open(out, "rb") as f:
            seeds.append(f.read())
    return seeds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--info_cases", type=int, default=50_000)
    p.add_argument("--decode_cases", type=int, default=20_000)
    p.add_argument("--model", default="small-mse")
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="reports/fuzz")
    args = p.parse_args(argv)
    seeds = make_seeds(args.model)
    reports = []
    for path, cases in (("info", args.info_cases), ("decode", args.decode_cases)):
        if cases <= 0:
            continue
        t0 = time.perf_counter()
        report = fuzz.fuzz(seeds, path=path, cases=cases, seed=args.seed, model=args.model,
                           timeout=args.timeout, progress=True,
                           save_dir=os.path.join(args.out, "cases"))
        report["wall_seconds"] = time.perf_counter() - t0
        report["model"] = args.model
        reports.append(report)
        print(fuzz.format_report(report))
        print(f"wall time {report['wall_seconds']:.0f} s")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "fuzz.json"), "w") as f:
        json.dump(reports, f, indent=1)
    with open(os.path.join(args.out, "fuzz.md"), "w") as f:
        f.write("# Fuzzing the .gcv readers\n\n")
        f.write(f"`{' '.join(['benchmarks/fuzz.py', *(argv or sys.argv[1:])])}`\n\n")
        for r in reports:
            table = fuzz.format_report(r)
            f.write(f"```\n{table}\nwall time {r['wall_seconds']:.0f} s\n```\n\n")
    bad = sum(r["counts"][k] for r in reports for k in ("other_exception", "hang", "crash",
                                                         "memory"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
