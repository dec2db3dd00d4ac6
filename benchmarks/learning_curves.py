"""Held-out learning curves of training runs, from their `validation.jsonl`.

    .venv/bin/python benchmarks/learning_curves.py runs/small_mse [runs/small_gan ...] \
        [--out docs/learning_curves.png]

Prints one table row per validation (step, training minutes, then bpp / PSNR per quality) and
plots PSNR and bpp against steps and against training wall time (`train_seconds`, summed over
every resumed run of the model_dir), one line per quality level.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def read(model_dir: Path) -> dict[int, list[dict]]:
    """{step: [row per quality]} (the last validation of a step wins)."""
    by_step: dict[int, dict[int, dict]] = defaultdict(dict)
    for line in (model_dir / "validation.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            by_step[row["step"]][row["quality"]] = row
    return {s: [q[k] for k in sorted(q)] for s, q in sorted(by_step.items())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dirs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, default=Path("docs/learning_curves.png"))
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    for d in args.model_dirs:
        curves = read(d)
        qs = [r["quality"] for r in next(iter(curves.values()))]
        print(f"{d} (held-out crops; bpp / PSNR-RGB dB per quality)")
        print("| step | train min | " + " | ".join(f"q{q}" for q in qs) + " |")
        print("|---|---|" + "---|" * len(qs))
        for step, rows in curves.items():
            cells = " | ".join(f"{r['bpp']:.3f} / {r['psnr']:.2f}" for r in rows)
            print(f"| {step} | {rows[0]['train_seconds'] / 60:.1f} | {cells} |")
        steps = list(curves)
        minutes = [curves[s][0]["train_seconds"] / 60 for s in steps]
        for i, q in enumerate(qs):
            psnr = [curves[s][i]["psnr"] for s in steps]
            bpp = [curves[s][i]["bpp"] for s in steps]
            label = f"{d.name} q{q}"
            axes[0].plot(steps, psnr, marker=".", label=label)
            axes[1].plot(minutes, psnr, marker=".", label=label)
            axes[2].plot(steps, bpp, marker=".", label=label)
    labels = [("step", "held-out PSNR-RGB (dB)"),
              ("training wall time (min, 2 CPU cores)", "held-out PSNR-RGB (dB)"),
              ("step", "held-out bpp")]
    for ax, (x, y) in zip(axes, labels, strict=True):
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"plot: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
