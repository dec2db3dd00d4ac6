"""Still-image RD sweep (Kodak): bpp vs RGB PSNR, RGB MS-SSIM and SSIMULACRA2.

Codecs, all through the same ffmpeg (skipped with a note if this ffmpeg lacks the encoder):

- jpeg: mjpeg, yuvj420p (BT.601 full range, JFIF), `-q:v` 2 3 5 8 12 18 25;
- webp: libwebp lossy, RGB in (libwebp converts itself), `-quality` 10 25 40 55 70 85 95;
- x265_444 (BPG-like): libx265 medium, all-intra (`keyint=1`), yuv444p full range,
  CRF 17 22 27 32 37 42;
- av1_444 (AVIF-like): libaom `-still-picture 1 -cpu-used 6`, yuv444p full range,
  CRF 12 20 28 36 44 52.

Rates are bytes on disk (the .jpg / .webp file; the hevc elementary stream; AV1 without IVF
headers) over the RGB pixel count. Decodes are converted back to RGB with the matrix and range
they were encoded with (accurate rounding, full chroma interpolation), then compared with the PNG:
PSNR over all RGB samples, MS-SSIM on RGB (max 255, 5 scales), SSIMULACRA2.

The test codec is driven through `encode_image` / `decode_image` (for gan_compress: the CLI with a
.png in and out). BD-rates are computed on the mean curve over the images (mean bpp and mean
metric per rate point).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from gan_compress.evaluation import bdrate, ffmpeg, metrics
from gan_compress.evaluation.sweep import error_summary

IMAGE_METRIC_KEYS = ("psnr_rgb", "msssim_rgb", "msssim_rgb_db", "ssimulacra2", "vmaf",
                     "vmaf_neg")
IMAGE_BD_METRICS = ("psnr_rgb", "msssim_rgb_db", "ssimulacra2", "vmaf_neg")


@dataclasses.dataclass(frozen=True)
class ImageAnchor:
    """An ffmpeg still-image codec: RGB PNG in, a stream on disk, RGB PNG back."""

    name: str
    label: str
    encoder: str
    args: tuple[str, ...]  # encoder options; "{q}" is replaced by the rate point
    ladder: tuple[int, ...]
    muxer: str
    ext: str
    pix_fmt: str | None  # what ffmpeg converts the RGB to before the encoder (None: encoder's)
    matrix: str = "bt601"
    range: str = "tv"  # 'pc' = full range

    @property
    def setting(self) -> str:
        return " ".join(self.args)

    def encode_command(self, png: Path, q: int, out: Path) -> list[str]:
        cmd = [ffmpeg.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", str(png)]
        if self.pix_fmt and self.pix_fmt.startswith("yuv"):
            cmd += ["-vf", f"scale=out_color_matrix={self.matrix}:out_range={self.range}"
                           f":flags=accurate_rnd+full_chroma_int,format={self.pix_fmt}"]
        elif self.pix_fmt:
            cmd += ["-pix_fmt", self.pix_fmt]
        cmd += [a.replace("{q}", str(q)) for a in self.args]
        return cmd + ["-frames:v", "1", "-f", self.muxer, str(out)]

    def decode_command(self, stream: Path, out_png: Path) -> list[str]:
        return [
            ffmpeg.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", str(stream),
            "-vf", ffmpeg.yuv_to_rgb_filter(self.matrix, self.range), "-frames:v", "1",
            "-update", "1", str(out_png),
        ]  # fmt: skip

    def stream_bytes(self, stream: Path) -> int:
        return ffmpeg.ivf_payload_bytes(stream) if self.muxer == "ivf" else os.path.getsize(stream)


IMAGE_ANCHORS: dict[str, ImageAnchor] = {
    a.name: a
    for a in (
        ImageAnchor("jpeg", "JPEG (ffmpeg mjpeg, 4:2:0)", "mjpeg",
                    ("-c:v", "mjpeg", "-q:v", "{q}"), (2, 3, 5, 8, 12, 18, 25), "image2", "jpg",
                    "yuvj420p", range="pc"),
        ImageAnchor("webp", "WebP (libwebp lossy)", "libwebp",
                    ("-c:v", "libwebp", "-quality", "{q}"), (10, 25, 40, 55, 70, 85, 95), "webp",
                    "webp", "bgra", range="tv"),
        ImageAnchor("x265_444", "x265 intra 4:4:4 (BPG-like)", "libx265",
                    ("-c:v", "libx265", "-preset", "medium", "-x265-params", "keyint=1",
                     "-crf", "{q}"), (17, 22, 27, 32, 37, 42), "hevc", "hevc", "yuv444p",
                    range="pc"),
        ImageAnchor("av1_444", "AV1 intra 4:4:4 (AVIF-like, libaom)", "libaom-av1",
                    ("-c:v", "libaom-av1", "-still-picture", "1", "-cpu-used", "6", "-crf", "{q}",
                     "-b:v", "0"), (12, 20, 28, 36, 44, 52), "ivf", "ivf", "yuv444p", range="pc"),
    )
}  # fmt: skip


def resolve_image_anchors(names: str | Sequence[str]) -> list[ImageAnchor]:
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if list(names) == ["all"]:
        names = list(IMAGE_ANCHORS)
    unknown = [n for n in names if n not in IMAGE_ANCHORS]
    if unknown:
        raise ValueError(f"unknown image anchors {unknown}; known: {', '.join(IMAGE_ANCHORS)}")
    return [IMAGE_ANCHORS[n] for n in names]


def _measure(ref_png: Path, dec_png: Path) -> dict:
    return metrics.image_metrics(ref_png, dec_png)


def run_image_sweep(
    images: Sequence[Path],
    report_dir: Path,
    anchors: Sequence[ImageAnchor] = tuple(IMAGE_ANCHORS.values()),
    test_codecs: Sequence = (),
    *,
    progress: bool = True,
    resume: bool = False,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
) -> dict:
    """Encodes every image at every rate point of every codec; writes `images.json`, returns it."""
    from tqdm import tqdm

    report_dir = Path(report_dir)
    streams = report_dir / "image_streams"
    work = report_dir / "work_images"
    streams.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    out_path = report_dir / "images.json"
    previous = {}
    if resume and out_path.exists():
        for r in json.loads(out_path.read_text()).get("rows", []):
            if not r.get("error"):
                previous[(r["image"], r["codec"], r["q"])] = r

    available_encoders = ffmpeg.encoders()
    codecs: list[tuple[object, str]] = []
    skipped = []
    for tc in test_codecs:
        ok, reason = tc.available()
        if ok and hasattr(tc, "encode_image"):
            codecs.append((tc, "test"))
        else:
            skipped.append({"codec": tc.name, "reason": reason or "no image support"})
    for a in anchors:
        if a.encoder in available_encoders:
            codecs.append((a, "anchor"))
        else:
            skipped.append({"codec": a.name, "reason": f"this ffmpeg has no {a.encoder} encoder"})
            log(f"skipping {a.name}: this ffmpeg has no {a.encoder} encoder")

    results: dict = {
        "about": "Kodak: bpp = 8 * bytes on disk / (W * H); RGB PSNR / MS-SSIM / SSIMULACRA2 of "
                 "the decode converted back to RGB; mean over images per rate point.",
        "images": [],
        "codecs": [],
        "skipped_codecs": skipped,
        "rows": [],
    }
    for c, kind in codecs:
        if kind == "test":
            results["codecs"].append({**c.to_json(), "kind": kind})
        else:
            results["codecs"].append({"name": c.name, "label": c.label, "setting": c.setting,
                                      "kind": kind, "ladder": list(c.ladder)})

    def ladder(c, kind):
        return list(c.ladder) if kind == "anchor" else (c.qualities() or [1, 2, 3, 4, 5, 6])

    total = len(images) * sum(len(ladder(c, k)) for c, k in codecs)
    bar = tqdm(total=total, unit="enc", desc="image sweep", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    try:
        for png in images:
            png = Path(png)
            w, h = metrics.load_rgb(png).shape[1::-1]
            results["images"].append({"name": png.stem, "source": str(png), "width": w,
                                      "height": h})
            for c, kind in codecs:
                for q in ladder(c, kind):
                    bar.set_postfix_str(f"{png.stem} {c.name} q{q}")
                    key = (png.stem, c.name, q)
                    if key in previous:
                        results["rows"].append(previous[key])
                        bar.update(1)
                        continue
                    row = {"image": png.stem, "codec": c.name, "kind": kind, "q": q, "width": w,
                           "height": h, "commands": {}, "error": None, "error_stage": None}
                    dec = work / f"{png.stem}.{c.name}.q{q}.png"
                    stage = "encode"
                    try:
                        if kind == "anchor":
                            out = streams / f"{png.stem}.{c.name}.q{q}.{c.ext}"
                            cmd = c.encode_command(png, q, out)
                            row["commands"]["encode"] = [ffmpeg.format_command(cmd)]
                            t0 = time.perf_counter()
                            ffmpeg.run(cmd)
                            row["enc_seconds"] = time.perf_counter() - t0
                            row["bytes"] = c.stream_bytes(out)
                            stage = "decode"
                            cmd = c.decode_command(out, dec)
                            row["commands"]["decode"] = [ffmpeg.format_command(cmd)]
                            ffmpeg.run(cmd)
                        else:
                            enc = c.encode_image(png, q, streams)
                            row["commands"]["encode"] = enc.commands
                            row["enc_seconds"] = enc.seconds
                            row["bytes"] = enc.bytes
                            stage = "decode"
                            d = c.decode_image(enc, dec)
                            row["commands"]["decode"] = d.commands
                        row["stream"] = os.path.relpath(
                            next(streams.glob(f"{png.stem}.{c.name}.q{q}.*")), report_dir)
                        row["bpp"] = 8.0 * row["bytes"] / (w * h)
                        stage = "metrics"
                        row.update(_measure(png, dec))
                    except Exception as e:  # noqa: BLE001 - recorded, the sweep goes on
                        row["error_stage"] = stage
                        row["error"] = f"{type(e).__name__}: {e}"
                        row["error_summary"] = error_summary(e)
                        log(f"[{png.stem} {c.name} q{q}] {stage} failed: {row['error_summary']}")
                    finally:
                        dec.unlink(missing_ok=True)
                    results["rows"].append(row)
                    bar.update(1)
                    out_path.write_text(json.dumps(results, indent=1))
    finally:
        bar.close()
        shutil.rmtree(work, ignore_errors=True)
    results["mean_points"] = mean_points(results)
    results["bd_rate"] = image_bd(results)
    out_path.write_text(json.dumps(results, indent=1))
    return results


def mean_points(results: dict) -> list[dict]:
    """Per codec and rate point, the mean bpp and metrics over the images that all succeeded."""
    n = len(results["images"])
    groups: dict[tuple, list[dict]] = {}
    for r in results["rows"]:
        if not r.get("error"):
            groups.setdefault((r["codec"], r["q"]), []).append(r)
    out = []
    for (codec, q), rows in groups.items():
        if len(rows) != n:
            continue
        p = {"codec": codec, "q": q, "images": n, "bpp": float(np.mean([r["bpp"] for r in rows]))}
        for k in IMAGE_METRIC_KEYS:
            vals = [r[k] for r in rows if r.get(k) is not None and np.isfinite(r[k])]
            p[k] = float(np.mean(vals)) if len(vals) == n else None
        out.append(p)
    return out


def image_bd(results: dict) -> list[dict]:
    """BD-rate on the mean curves: each test codec vs each anchor, else each anchor vs JPEG."""
    pts = results.get("mean_points", [])
    tests = [c["name"] for c in results["codecs"] if c["kind"] == "test"]
    anchors = [c["name"] for c in results["codecs"] if c["kind"] == "anchor"]
    pairs = [(t, a) for t in tests for a in anchors]
    if "jpeg" in anchors:
        pairs += [(a, "jpeg") for a in anchors if a != "jpeg"]
    out = []
    for t, a in pairs:
        for k in IMAGE_BD_METRICS:
            ca = [(p["bpp"], p[k]) for p in pts if p["codec"] == a and p.get(k) is not None]
            ct = [(p["bpp"], p[k]) for p in pts if p["codec"] == t and p.get(k) is not None]
            res = bdrate.bd_rate([x[0] for x in ca], [x[1] for x in ca],
                                 [x[0] for x in ct], [x[1] for x in ct])
            out.append({"test": t, "anchor": a, "metric": k, "per_clip": {"kodak": res.to_json()},
                        "mean": {**res.to_json(), "n_clips": 1}})
    return out
