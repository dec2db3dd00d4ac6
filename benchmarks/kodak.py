"""Kodak (all 24 images): the shipped models against JPEG and WebP, with colour and crops.

    .venv/bin/python benchmarks/kodak.py [--models small-mse,small-gan] [--report reports/kodak]
                                         [--anchors jpeg,webp] [--limit N] [--resume]

Bits are the sizes of the `.gcv` files written by `Codec.compress_video` (what `gan-compress
encode photo.png photo.gcv` runs) over the RGB pixel count; quality is measured on the decoded
PNG against the original: PSNR over all RGB samples, MS-SSIM on RGB, SSIMULACRA2 (the eval
tool's image sweep, `gan_compress.evaluation.images`). Prints, and writes to the report folder:

- the mean RD points per codec and quality (`images.json`, `kodak.md`);
- BD-rate of each model against each anchor (PSNR-RGB, MS-SSIM in dB, SSIMULACRA2), and PSNR
  interpolated at 0.30 bpp;
- colour fidelity per model: per-channel mean error in levels of 255 and standard-deviation
  ratio (decoded / original), averaged over images and qualities;
- `rd_kodak.png` (RD curves) and `crops_kodak.png` (crops of each model against JPEG at the
  nearest bpp).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from gan_compress.evaluation import images as images_lib  # noqa: E402
from gan_compress.evaluation import metrics  # noqa: E402
from gan_compress.evaluation.codecs import InProcessCodec  # noqa: E402

KODAK = REPO.parent / "shared" / "data" / "images" / "kodak"
METRICS = (("psnr_rgb", "PSNR-RGB (dB)"), ("msssim_rgb_db", "MS-SSIM RGB (dB)"),
           ("ssimulacra2", "SSIMULACRA2"), ("vmaf_neg", "VMAF-NEG"))


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def interpolate_at(points: list[dict], key: str, bpp: float) -> float | None:
    """The metric at `bpp` on the mean curve (linear in log bpp), None outside its range."""
    pts = sorted((p["bpp"], p[key]) for p in points if p.get(key) is not None)
    if len(pts) < 2 or not pts[0][0] <= bpp <= pts[-1][0]:
        return None
    xs = np.log([p[0] for p in pts])
    return float(np.interp(np.log(bpp), xs, [p[1] for p in pts]))


def colour_stats(results: dict, report: Path, codecs: dict) -> dict:
    """{model: (mean |mean error| per channel in levels, mean std ratio)} over images and
    qualities, decoding the kept streams again."""
    out = {}
    sources = {im["name"]: im["source"] for im in results["images"]}
    for name, codec in codecs.items():
        errs, ratios = [], []
        for row in results["rows"]:
            if row["codec"] != name or row.get("error"):
                continue
            ref = metrics.load_rgb(Path(sources[row["image"]])).astype(np.float64)
            dec = codec.codec().decompress_image(str(report / row["stream"])).astype(np.float64)
            errs.append(np.abs(dec.mean((0, 1)) - ref.mean((0, 1))))
            ratios.append(dec.std((0, 1)) / ref.std((0, 1)))
        out[name] = (float(np.mean(errs)), float(np.mean(ratios)))
    return out


def plot_rd(points: list[dict], labels: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(6 * len(METRICS), 4.5))
    for ax, (key, title) in zip(axes, METRICS, strict=True):
        for codec, label in labels.items():
            pts = sorted((p["bpp"], p[key]) for p in points
                         if p["codec"] == codec and p.get(key) is not None)
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=label)
        ax.set_xlabel("bpp (mean over Kodak)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.set_xlim(0, 1.5)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_crops(results: dict, report: Path, codecs: dict, path: Path,
               image: str = "kodim23", box=(160, 260, 256)) -> None:
    """Crops of `image` decoded by each model at q3 and by JPEG at the nearest bpp."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gan_compress import io as gio

    names = [im["name"] for im in results["images"]]
    image = image if image in names else names[-1]
    rows = [r for r in results["rows"] if r["image"] == image and not r.get("error")]
    src = next(im["source"] for im in results["images"] if im["name"] == image)
    y0, x0, s = box
    panels = [("original", metrics.load_rgb(Path(src)))]
    for name, codec in codecs.items():
        r = next((r for r in rows if r["codec"] == name and r["q"] == 3), None)
        if r is None:
            continue
        panels.append((f"{name} q3 {r['bpp']:.3f} bpp {r['psnr_rgb']:.2f} dB",
                       codec.codec().decompress_image(str(report / r["stream"]))))
        jpegs = [j for j in rows if j["codec"] == "jpeg"]
        if jpegs:
            j = min(jpegs, key=lambda j: abs(j["bpp"] - r["bpp"]))
            dec = report / "work_crop.png"
            anchor = images_lib.IMAGE_ANCHORS["jpeg"]
            from gan_compress.evaluation import ffmpeg

            ffmpeg.run(anchor.decode_command(report / j["stream"], dec))
            panels.append((f"JPEG {j['bpp']:.3f} bpp {j['psnr_rgb']:.2f} dB",
                           gio.read_image(str(dec))))
            dec.unlink()
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.4))
    for ax, (title, img) in zip(axes, panels, strict=True):
        ax.imshow(img[y0:y0 + s, x0:x0 + s], interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="small-mse,small-gan",
                   help="comma-separated shipped model names or model dirs")
    p.add_argument("--report", type=Path, default=REPO / "reports" / "kodak")
    p.add_argument("--anchors", default="jpeg,webp")
    p.add_argument("--limit", type=int, help="only the first N images")
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    pngs = sorted(KODAK.glob("*.png"))[: args.limit]
    if not pngs:
        print(f"error: no Kodak images in {KODAK}", file=sys.stderr)
        return 2
    codecs = {}
    for m in args.models.split(","):
        c = InProcessCodec(m)
        codecs[c.name] = c
    anchors = images_lib.resolve_image_anchors(args.anchors)
    args.report.mkdir(parents=True, exist_ok=True)
    results = images_lib.run_image_sweep(pngs, args.report, anchors, list(codecs.values()),
                                         resume=args.resume)
    points = results["mean_points"]
    lines = [f"# Kodak, {len(pngs)} images", "",
             "| codec | q | bpp | PSNR-RGB | MS-SSIM RGB | SSIMULACRA2 | VMAF-NEG |",
             "|---|---|---|---|---|---|---|"]
    for pt in sorted(points, key=lambda p: (p["codec"], p["bpp"])):
        lines.append(f"| {pt['codec']} | {pt['q']} | {pt['bpp']:.4f} | {pt['psnr_rgb']:.2f} | "
                     f"{pt['msssim_rgb']:.4f} | {pt['ssimulacra2']:.2f} | "
                     f"{_fmt(pt.get('vmaf_neg'))} |")
    lines += ["", "| codec | PSNR-RGB at 0.30 bpp |", "|---|---|"]
    for name in [*codecs, *(a.name for a in anchors)]:
        v = interpolate_at([q for q in points if q["codec"] == name], "psnr_rgb", 0.30)
        lines.append(f"| {name} | {'out of range' if v is None else f'{v:.2f} dB'} |")
    lines += ["", "| test | anchor | metric | BD-rate |", "|---|---|---|---|"]
    for e in results["bd_rate"]:
        if e["test"] in codecs:
            m = e["mean"]
            value = "n/a (" + m["flag"] + ")" if m["bd_rate"] is None else f"{m['bd_rate']:+.1f}%"
            lines.append(f"| {e['test']} | {e['anchor']} | {e['metric']} | {value} |")
    colour = colour_stats(results, args.report, codecs)
    lines += ["", "| model | mean per-channel mean error (levels) | mean std ratio |",
              "|---|---|---|"]
    for name, (err, ratio) in colour.items():
        lines.append(f"| {name} | {err:.2f} | {ratio:.3f} |")
    labels = {**{n: c.label for n, c in codecs.items()}, **{a.name: a.label for a in anchors}}
    plot_rd(points, labels, args.report / "rd_kodak.png")
    plot_crops(results, args.report, codecs, args.report / "crops_kodak.png")
    lines += ["", "![RD](rd_kodak.png)", "", "![crops](crops_kodak.png)"]
    text = "\n".join(lines) + "\n"
    (args.report / "kodak.md").write_text(text)
    (args.report / "colour.json").write_text(json.dumps(colour, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
