"""The rate-distortion sweep: every quality of the test codec and every anchor rate point, per clip.

Workflow (`run_sweep`):
1. each clip is decoded once to raw 8-bit yuv420p (`clips.prepare_clip`); every codec reads it;
2. one encode at a time (`-threads 2` for the anchors), bytes = the bitstream on disk
   (elementary streams; IVF headers stripped for AV1; `.gcv` files for gan_compress);
3. the decode (every frame, `-fps_mode passthrough`) is measured frame-exact against the raw clip
   (`metrics.video_metrics`); a frame-count mismatch is an error for that point, never aligned;
4. PNG crops of a few frames are kept for the report's side-by-side viewer;
5. a failure at any stage (e.g. an encoder exiting nonzero) is recorded in the row's `error`
   with the command, and the sweep goes on;
6. BD-rates (test codec vs each anchor, and each anchor vs the baseline anchor) and, when given,
   a comparison with the reference anchors JSON are added.

`results.json` (rewritten after every point, so a long sweep can be watched and resumed) holds:
`config`, `tool`, `clips`, `codecs`, `rows` (one per encode: bytes, bpp, kbps, timings, commands,
metrics, crops, error), `bd_rate`, `reference_check`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from gan_compress.evaluation import anchors as anchors_lib
from gan_compress.evaluation import bdrate, ffmpeg, metrics
from gan_compress.evaluation.clips import Clip, prepare_clip
from gan_compress.evaluation.codecs import Encoded, FfmpegCodec, TestCodec

BD_METRICS = ("psnr_y_seqmse", "psnr_yuv_seqmse", "msssim_y_db", "vmaf", "vmaf_neg", "ssimulacra2")
REFERENCE_KEYS = (
    "psnr_y_seqmse", "psnr_u_seqmse", "psnr_v_seqmse", "psnr_yuv_seqmse",
    "msssim_y", "msssim_y_db", "vmaf", "vmaf_neg", "ssimulacra2",
)  # fmt: skip
BASELINE_ANCHOR = "x264_ld"


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """What to sweep and where to write it.

    `max_frames` keeps the first N frames of each clip and `crop` (w, h, x, y) a window (tests);
    `viewer_crop` is the side of the square crop kept for the report's viewer.
    """

    report_dir: Path
    clips: tuple[Path, ...]
    anchors: tuple[anchors_lib.Anchor, ...] = tuple(anchors_lib.ANCHORS.values())
    metrics: tuple[str, ...] = metrics.ALL_METRICS
    max_frames: int | None = None
    crop: tuple[int, int, int, int] | None = None
    threads: int = 2
    ssimulacra2_step: int = 4
    viewer_crop: int = 256
    resume: bool = False
    keep_work: bool = False
    reference: Path | None = None

    def to_json(self) -> dict:
        return {
            "report_dir": str(self.report_dir),
            "clips": [str(c) for c in self.clips],
            "anchors": [a.name for a in self.anchors],
            "metrics": list(self.metrics),
            "max_frames": self.max_frames,
            "crop": list(self.crop) if self.crop else None,
            "threads": self.threads,
            "ssimulacra2_step": self.ssimulacra2_step,
            "viewer_crop": self.viewer_crop,
            "reference": str(self.reference) if self.reference else None,
        }


def tool_info() -> dict:
    import importlib.metadata as md

    def version(pkg: str) -> str | None:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    return {
        "ffmpeg": ffmpeg.ffmpeg_version(),
        "imageio_ffmpeg": version("imageio-ffmpeg"),
        "tensorflow": version("tensorflow"),
        "ssimulacra2": version("ssimulacra2"),
        "bjontegaard": version("bjontegaard"),
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def viewer_frames(frames: int) -> list[int]:
    """Frames kept as PNG crops for the viewer: the first (intra) and the middle one."""
    return sorted({0, frames // 2})


def viewer_rect(width: int, height: int, side: int) -> tuple[int, int, int, int]:
    """A centred crop (w, h, x, y) of at most side x side, even-aligned."""
    w, h = min(side, width), min(side, height)
    x, y = ((width - w) // 2) & ~1, ((height - h) // 2) & ~1
    return w, h, x, y


def _rel(path: Path, root: Path) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default, allow_nan=True))
    tmp.replace(path)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o)}")


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="enc", disable=not enabled, dynamic_ncols=True,
                desc="rd sweep", file=sys.stderr)


def measure_point(
    codec: TestCodec,
    clip: Clip,
    q: int,
    *,
    kind: str,
    config: SweepConfig,
    dirs: dict[str, Path],
) -> tuple[dict, object]:
    """Encodes, decodes and measures one point; returns (row, Encoded or None). Never raises."""
    report = config.report_dir
    row: dict = {
        "clip": clip.name, "codec": codec.name, "kind": kind, "label": codec.label,
        "setting": codec.setting, "q": q, "width": clip.width, "height": clip.height,
        "frames": clip.frames, "fps": float(clip.raw.fps), "commands": {}, "error": None,
        "error_stage": None,
    }  # fmt: skip
    stage = "encode"
    encoded = None
    decoded_path = dirs["work"] / f"{clip.name}.{codec.name}.q{q}.dec.yuv"
    try:
        encoded = codec.encode(clip, q, dirs["streams"])
        row["commands"]["encode"] = encoded.commands
        row["stream"] = _rel(encoded.path, report)
        row["bytes"] = int(encoded.bytes)
        pixels = clip.width * clip.height * clip.frames
        row["bpp"] = 8.0 * encoded.bytes / pixels
        row["kbps"] = 8.0 * encoded.bytes / (clip.frames / float(clip.raw.fps)) / 1000.0
        row["enc_seconds"] = encoded.seconds
        row["enc_fps"] = clip.frames / encoded.seconds if encoded.seconds > 0 else None

        stage = "decode"
        decoded = codec.decode(encoded, clip, decoded_path)
        row["commands"]["decode"] = decoded.commands
        row["dec_seconds"] = decoded.seconds
        if decoded.note:
            row["note"] = decoded.note
        dist = dataclasses.replace(clip.raw, path=decoded.path)

        stage = "metrics"
        t0 = time.perf_counter()
        row.update(
            metrics.video_metrics(
                clip.raw, dist, config.metrics, threads=config.threads,
                ssimulacra2_step=config.ssimulacra2_step, ref_png_dir=dirs["ssimu2"] / clip.name,
            )
        )  # fmt: skip
        row["metrics_seconds"] = time.perf_counter() - t0

        stage = "crops"
        rect = viewer_rect(clip.width, clip.height, config.viewer_crop)
        pngs = ffmpeg.raw_to_pngs(dist, dirs["crops"] / clip.name,
                                  frames=viewer_frames(clip.frames), crop=rect,
                                  prefix=f"{codec.name}_q{q}")
        row["crops"] = {str(int(p.stem.rsplit("_", 1)[1])): _rel(p, report) for p in pngs}
    except Exception as e:  # noqa: BLE001 - every failure is recorded, the sweep goes on
        row["error_stage"] = stage
        row["error"] = f"{type(e).__name__}: {e}"
        row["error_summary"] = error_summary(e)
        if isinstance(e, ffmpeg.FfmpegError):
            row["commands"].setdefault(stage, [ffmpeg.format_command(e.cmd)])
        elif not isinstance(e, (ValueError, OSError)):
            row["traceback"] = traceback.format_exc(limit=5)
    finally:
        for leftover in dirs["work"].glob(f"{clip.name}.{codec.name}.q{q}.dec*"):
            leftover.unlink()
    return row, encoded


def error_summary(e: Exception) -> str:
    """One line saying why a point failed (for logs and report tables)."""
    if isinstance(e, ffmpeg.FfmpegError):
        return e.summary
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


def _original_crops(clip: Clip, config: SweepConfig, dirs: dict[str, Path]) -> dict[str, str]:
    rect = viewer_rect(clip.width, clip.height, config.viewer_crop)
    pngs = ffmpeg.raw_to_pngs(clip.raw, dirs["crops"] / clip.name,
                              frames=viewer_frames(clip.frames), crop=rect, prefix="original")
    return {str(int(p.stem.rsplit("_", 1)[1])): _rel(p, config.report_dir) for p in pngs}


def run_sweep(
    config: SweepConfig,
    test_codecs: Sequence[TestCodec] = (),
    *,
    progress: bool = True,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
) -> dict:
    """Runs the sweep and writes `results.json`; returns the results dict (see module doc)."""
    report = Path(config.report_dir)
    dirs = {k: report / k for k in ("streams", "crops", "work")}
    dirs["ssimu2"] = dirs["work"] / "ssimu2_ref"
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    results_path = report / "results.json"

    previous: dict[tuple, dict] = {}
    if config.resume and results_path.exists():
        for row in json.loads(results_path.read_text()).get("rows", []):
            if not row.get("error"):
                previous[(row["clip"], row["codec"], row["q"], row["frames"])] = row

    codecs: list[tuple[TestCodec, str]] = []
    skipped = []
    for tc in test_codecs:
        ok, reason = tc.available()
        if ok:
            codecs.append((tc, "test"))
        else:
            skipped.append({"codec": tc.name, "reason": reason})
            log(f"skipping test codec {tc.name}: {reason}")
    for anchor in config.anchors:
        codecs.append((FfmpegCodec(anchor, threads=config.threads), "anchor"))

    results: dict = {
        "about": "gan_compress RD sweep: bytes on disk, metrics frame-exact on raw 8-bit yuv420p "
                 "(see gan_compress/evaluation/metrics.py)",
        "config": config.to_json(),
        "tool": tool_info(),
        "clips": [],
        "codecs": [{**c.to_json(), "kind": kind} for c, kind in codecs],
        "skipped_codecs": skipped,
        "rows": [],
    }

    per_clip = [len(c.qualities() or [1]) for c, _ in codecs]
    bar = _progress(total=sum(per_clip) * len(config.clips), enabled=progress)
    try:
        for src in config.clips:
            try:
                clip = prepare_clip(src, dirs["work"], max_frames=config.max_frames,
                                    crop=config.crop)
                clip_json = clip.to_json()
                clip_json["crops"] = _original_crops(clip, config, dirs)
            except Exception as e:  # noqa: BLE001 - an unreadable clip is recorded, not fatal
                results.setdefault("clip_errors", []).append(
                    {"source": str(src), "error": f"{type(e).__name__}: {e}",
                     "error_summary": error_summary(e)})
                log(f"cannot read clip {src}: {error_summary(e)}")
                bar.total -= sum(per_clip)
                continue
            results["clips"].append(clip_json)
            for codec, kind in codecs:
                qs = codec.qualities()
                pending = list(qs) if qs is not None else [1]
                done: set[int] = set()
                while pending:
                    q = pending.pop(0)
                    done.add(q)
                    bar.set_postfix_str(f"{clip.name} {codec.name} q{q}")
                    key = (clip.name, codec.name, q, clip.frames)
                    encoded = None
                    if key in previous and _crops_exist(previous[key], report):
                        row = previous[key]
                    else:
                        row, encoded = measure_point(codec, clip, q, kind=kind, config=config,
                                                     dirs=dirs)
                    results["rows"].append(row)
                    if row.get("error"):
                        log(f"[{clip.name} {codec.name} q{q}] {row['error_stage']} failed: "
                            f"{row.get('error_summary') or row['error']}")
                    if qs is None:  # qualities known only after the first encode
                        qs = []
                        if encoded is None and row.get("stream") and not row.get("error"):
                            encoded = Encoded(report / row["stream"], row["bytes"], [], 0.0)
                        if encoded is not None:
                            try:
                                qs = codec.discover_qualities(encoded)
                            except Exception as e:  # noqa: BLE001
                                log(f"{codec.name}: could not read num_qualities: {e}")
                        pending = [x for x in qs if x not in done]
                        remaining = len(config.clips) - len(results["clips"])
                        bar.total += len(pending) + remaining * max(len(qs) - 1, 0)
                        bar.refresh()
                    bar.update(1)
                    _write_json(results_path, results)
    finally:
        bar.close()
        if not config.keep_work:
            shutil.rmtree(dirs["work"], ignore_errors=True)

    results["bd_rate"] = bd_summary(results)
    if config.reference:
        results["reference_check"] = reference_check(results["rows"], config.reference)
    _write_json(results_path, results)
    return results


def _crops_exist(row: dict, report: Path) -> bool:
    return all((report / p).exists() for p in row.get("crops", {}).values())


# --- BD-rate over the rows -----------------------------------------------------------------------


def curve(rows: Sequence[dict], clip: str, codec: str, key: str, rate_key: str = "bpp"):
    """(rates, qualities) of one codec on one clip, skipping failed points."""
    pts = [
        (r[rate_key], r[key])
        for r in rows
        if r["clip"] == clip and r["codec"] == codec and not r.get("error")
        and r.get(key) is not None and r.get(rate_key)
    ]
    return [p[0] for p in pts], [p[1] for p in pts]


def bd_table(rows: Sequence[dict], test: str, anchor: str, key: str, clips: Sequence[str]) -> dict:
    """Per-clip and mean BD-rate of `test` against `anchor` on quality `key`."""
    per_clip = {}
    for clip in clips:
        ra, qa = curve(rows, clip, anchor, key)
        rt, qt = curve(rows, clip, test, key)
        per_clip[clip] = bdrate.bd_rate(ra, qa, rt, qt)
    mean = bdrate.mean_bd(per_clip.values())
    return {
        "test": test, "anchor": anchor, "metric": key,
        "per_clip": {c: r.to_json() for c, r in per_clip.items()},
        "mean": {**mean.to_json(), "n_clips": sum(r.value is not None for r in per_clip.values())},
    }  # fmt: skip


def bd_summary(results: dict, metric_keys: Sequence[str] = BD_METRICS) -> list[dict]:
    """Test codecs vs every anchor, every other anchor vs the baseline (x264 LD), and, when the
    test codec was swept at several intra periods (`gan-compress eval --gop 1,12,-1`), each
    inter-coded one vs the same model's I-only curve."""
    rows = results["rows"]
    clips = [c["name"] for c in results["clips"]]
    tests = [c["name"] for c in results["codecs"] if c["kind"] == "test"]
    intra = [c["name"] for c in results["codecs"] if c["kind"] == "test" and c.get("gop") == 1]
    anchors = [c["name"] for c in results["codecs"] if c["kind"] == "anchor"]
    present = {k for r in rows for k in r}
    keys = [k for k in metric_keys if k in present]
    pairs = [(t, a) for t in tests for a in anchors]
    if anchors:
        base = BASELINE_ANCHOR if BASELINE_ANCHOR in anchors else anchors[0]
        pairs += [(a, base) for a in anchors if a != base]
    if intra:
        pairs += [(t, intra[0]) for t in tests if t != intra[0]]
    return [bd_table(rows, t, a, k, clips) for t, a in pairs for k in keys]


# --- Reproduction check against the reference anchors --------------------------------------------


def reference_check(rows: Sequence[dict], reference: str | os.PathLike) -> dict:
    """Deviation of our anchor points from `anchors_eval.json` (same clip, codec, q, frames).

    Bytes as a relative deviation in percent; metrics as absolute differences.
    """
    ref = json.loads(Path(reference).read_text())
    ref_rows = {(e["clip"], e["codec"], e["q"]): e for e in ref["encodes"]}
    points = []
    for r in rows:
        e = ref_rows.get((r["clip"], r["codec"], r["q"]))
        if e is None or r.get("error") or r["frames"] != e["frames"]:
            continue
        p = {"clip": r["clip"], "codec": r["codec"], "q": r["q"], "bytes": r["bytes"],
             "ref_bytes": e["bytes"],
             "bytes_dev_pct": 100.0 * (r["bytes"] - e["bytes"]) / e["bytes"]}
        for k in REFERENCE_KEYS:
            if r.get(k) is not None and e.get(k) is not None:
                p[f"{k}_dev"] = float(r[k]) - float(e[k])
        points.append(p)
    summary: dict = {"reference": str(reference), "points": len(points),
                     "reference_points": len(ref_rows)}
    if points:
        devs = [abs(p["bytes_dev_pct"]) for p in points]
        summary["max_abs_bytes_dev_pct"] = max(devs)
        summary["bytes_within_1pct"] = sum(d <= 1.0 for d in devs)
        for k in REFERENCE_KEYS:
            vals = [abs(p[f"{k}_dev"]) for p in points if f"{k}_dev" in p]
            if vals:
                summary[f"max_abs_{k}_dev"] = max(vals)
                summary[f"{k}_within_0.05"] = sum(v <= 0.05 for v in vals)
    summary["details"] = points
    return summary
