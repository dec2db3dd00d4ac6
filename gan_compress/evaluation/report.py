"""Renders a sweep's `results.json` as RD plots (PNG), `report.md` and a static `index.html`.

    write_report(report_dir, results) -> ReportFiles

Layout of `report_dir`:
    results.json            every encode, metric and command (written by the sweeps)
    plots/<clip>__<metric>.png, plots/mean__<metric>.png, plots/kodak__<metric>.png
    plots/<clip>__frames.png  PSNR-Y of every frame (drift across GOPs) of each test codec at
                            its middle rate point and of the baseline anchor at the nearest rate
    report.md               clips, settings, BD-rate tables (flags: † low overlap, — none), points
    index.html              the same tables, the plots and a side-by-side crop viewer; no network:
                            everything is inline or a relative file (plots/, crops/)
The viewer shows, for a chosen clip, frame and rate point of the main codec (the test codec, or
the baseline anchor when there is none), PNG crops of the original and of every codec at its
nearest bitrate, plus a slider/toggle comparing any two.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from gan_compress.evaluation import bdrate
from gan_compress.evaluation.metrics import METRIC_LABELS

PLOT_METRICS = ("psnr_y_seqmse", "psnr_yuv_seqmse", "msssim_y_db", "vmaf", "vmaf_neg",
                "ssimulacra2")
IMAGE_METRICS = ("psnr_rgb", "msssim_rgb_db", "ssimulacra2", "vmaf_neg")
TABLE_KEYS = ("bytes", "bpp", "kbps", "psnr_y_seqmse", "psnr_yuv_seqmse", "msssim_y", "vmaf",
              "vmaf_neg", "ssimulacra2", "enc_fps")
TEST_COLORS = ("#d62728", "#9467bd", "#8c564b")
ANCHOR_COLORS = ("#1f77b4", "#2ca02c", "#ff7f0e", "#17becf", "#7f7f7f", "#bcbd22", "#e377c2")


class ReportFiles(NamedTuple):
    markdown: Path
    html: Path
    plots: list[Path]


# --- helpers over result rows --------------------------------------------------------------------


def _ok(rows: Sequence[dict]) -> list[dict]:
    return [r for r in rows if not r.get("error")]


def _codec_order(results: dict, key: str = "codecs") -> list[dict]:
    return sorted(results.get(key, []), key=lambda c: (c["kind"] != "test",))


def _colors(codecs: Sequence[dict]) -> dict[str, str]:
    out, t, a = {}, 0, 0
    for c in codecs:
        if c["kind"] == "test":
            out[c["name"]] = TEST_COLORS[t % len(TEST_COLORS)]
            t += 1
        else:
            out[c["name"]] = ANCHOR_COLORS[a % len(ANCHOR_COLORS)]
            a += 1
    return out


def series(rows: Sequence[dict], group: str, codec: str, key: str, group_key: str = "clip"):
    """Sorted (bpp, metric, q) points of one codec on one clip/image."""
    pts = [(r["bpp"], r[key], r["q"]) for r in _ok(rows)
           if r[group_key] == group and r["codec"] == codec and _finite(r.get(key))]
    return sorted(pts)


def mean_series(rows: Sequence[dict], groups: Sequence[str], codec: str, key: str,
                group_key: str = "clip"):
    """Per rate point q: mean bpp and mean metric over the groups that all have that point."""
    by_q: dict = {}
    for r in _ok(rows):
        if r["codec"] == codec and r[group_key] in groups and _finite(r.get(key)):
            by_q.setdefault(r["q"], []).append((r["bpp"], r[key]))
    pts = [(float(np.mean([p[0] for p in v])), float(np.mean([p[1] for p in v])), q)
           for q, v in by_q.items() if len(v) == len(groups)]
    return sorted(pts)


def _error_line(row: dict, limit: int = 300) -> str:
    text = row.get("error_summary") or (row.get("error") or "").strip().splitlines()[0]
    return text[:limit]


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


# --- plots ---------------------------------------------------------------------------------------


def plot_rd(path: Path, title: str, curves: list[tuple[str, list, str, bool]], ylabel: str):
    """One RD plot: x = bits per pixel (log), y = the metric; test codecs drawn bold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=90)
    for label, pts, color, bold in curves:
        if not pts:
            continue
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        ax.plot(xs, ys, marker="o", ms=5 if bold else 4, lw=2.6 if bold else 1.4, color=color,
                label=label, zorder=3 if bold else 2)
    ax.set_xscale("log")
    from matplotlib import ticker

    # Plain-number ticks at 1-2-5 steps; matplotlib's default minor labels overlap on short ranges.
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    return _finish_plot(fig, ax, path, title, "bits per pixel", ylabel)


def _finish_plot(fig, ax, path: Path, title: str, xlabel: str, ylabel: str) -> Path:
    """Labels, grid and legend; saves `fig` to `path` (folders made) and closes it."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def frame_curves(results: dict, clip: str) -> list[tuple[str, dict, str]]:
    """[(label, row, colour)] for the per-frame plot of `clip`: each test codec at its middle
    rate point, and the baseline anchor (x264 LD) at the rate nearest the first of them."""
    rows = [r for r in _ok(results.get("rows", [])) if r["clip"] == clip and r.get("psnr_y_frames")]
    codecs = _codec_order(results)
    colors = _colors(codecs)
    out: list[tuple[str, dict, str]] = []
    for c in codecs:
        pts = sorted((r for r in rows if r["codec"] == c["name"]), key=lambda r: r["q"])
        if c["kind"] == "test" and pts:
            out.append((c["label"], pts[len(pts) // 2], colors[c["name"]]))
    baseline = next((c for c in codecs if c["name"] == "x264_ld"), None)
    if out and baseline:
        target = out[0][1]["bpp"]
        pts = [r for r in rows if r["codec"] == baseline["name"]]
        if pts:
            best = min(pts, key=lambda r: abs(math.log(r["bpp"] / target)))
            out.append((baseline["label"], best, colors[baseline["name"]]))
    return out


def plot_frames(path: Path, title: str, curves: list[tuple[str, dict, str]]) -> Path:
    """PSNR-Y against frame index, one line per (label, row, colour)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 4.0), dpi=90)
    for label, row, color in curves:
        ys = row["psnr_y_frames"]
        ax.plot(range(len(ys)), ys, lw=1.6, color=color,
                label=f"{label} q{row['q']} ({row['bpp']:.3f} bpp)")
    return _finish_plot(fig, ax, path, title, "frame", "PSNR-Y (dB)")


def flicker_table(results: dict) -> tuple[list[str], list[list[str]]] | None:
    """Mean `tmad_ratio` (decode's frame-to-frame change over the source's) per codec and clip,
    averaged over rate points; None when no row has it."""
    rows = [r for r in _ok(results.get("rows", [])) if _finite(r.get("tmad_ratio"))]
    if not rows:
        return None
    clips = [c["name"] for c in results.get("clips", [])]
    table = []
    for c in _codec_order(results):
        per_clip = [[r["tmad_ratio"] for r in rows if r["clip"] == k and r["codec"] == c["name"]]
                    for k in clips]
        means = [float(np.mean(v)) if v else None for v in per_clip]
        found = [m for m in means if m is not None]
        if found:
            table.append([c["name"], *[_fmt(m) for m in means], _fmt(float(np.mean(found)))])
    return ["codec", *clips, "mean"], table


def make_plots(report_dir: Path, results: dict) -> dict[str, dict[str, str]]:
    """All RD plots; returns {metric: {clip or 'mean' or 'kodak': relative path}}."""
    out: dict[str, dict[str, str]] = {}
    rows = results.get("rows", [])
    codecs = _codec_order(results)
    colors = _colors(codecs)
    clips = [c["name"] for c in results.get("clips", [])]
    present = {k for r in _ok(rows) for k in r}
    for key in [k for k in PLOT_METRICS if k in present]:
        label = METRIC_LABELS.get(key, key)
        entry = out.setdefault(key, {})
        groups = [*clips, "mean"] if len(clips) > 1 else clips
        for g in groups:
            curves = []
            for c in codecs:
                pts = (mean_series(rows, clips, c["name"], key) if g == "mean"
                       else series(rows, g, c["name"], key))
                curves.append((c["label"], pts, colors[c["name"]], c["kind"] == "test"))
            title = f"mean over {len(clips)} clips (per rate point)" if g == "mean" else g
            p = plot_rd(report_dir / "plots" / f"{g}__{key}.png", f"{label} - {title}", curves,
                        label)
            entry[g] = _rel(p, report_dir)
    images = results.get("images")
    if images:
        icodecs = _codec_order(images)
        icolors = _colors(icodecs)
        names = [i["name"] for i in images.get("images", [])]
        for key in IMAGE_METRICS:
            curves = [(c["label"], mean_series(images["rows"], names, c["name"], key, "image"),
                       icolors[c["name"]], c["kind"] == "test") for c in icodecs]
            if not any(pts for _, pts, _, _ in curves):
                continue
            label = METRIC_LABELS.get(key, key)
            p = plot_rd(report_dir / "plots" / f"kodak__{key}.png",
                        f"{label} - Kodak, mean over {len(names)} images", curves, label)
            out.setdefault(f"image:{key}", {})["kodak"] = _rel(p, report_dir)
    for clip in clips:
        curves = frame_curves(results, clip)
        if curves:
            p = plot_frames(report_dir / "plots" / f"{clip}__frames.png",
                            f"PSNR-Y per frame - {clip}", curves)
            out.setdefault("frames", {})[clip] = _rel(p, report_dir)
    return out


def _rel(path: Path, root: Path) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


# --- tables --------------------------------------------------------------------------------------


def _bd_cell(entry: dict, overlap: bool = False) -> str:
    """'-12.3%', '-12.3%†', '—'; with `overlap`, the overlap fraction too: '-12.3% (ov 85%)'."""
    text = bdrate.BDResult(entry["bd_rate"], entry["overlap"], entry["flag"]).format()
    if overlap and entry["bd_rate"] is not None:
        text += f" (ov {100 * entry['overlap']:.0f}%)"
    return text


def bd_groups(bd: Sequence[dict], by: str = "test") -> list[tuple[str, list, list, dict]]:
    """Groups BD entries by `by` ("test"/"anchor"): (key, others, metrics, {(other, metric): e})."""
    other = "anchor" if by == "test" else "test"
    groups: dict[str, dict] = {}
    for e in bd:
        g = groups.setdefault(e[by], {"others": [], "metrics": [], "cells": {}})
        if e[other] not in g["others"]:
            g["others"].append(e[other])
        if e["metric"] not in g["metrics"]:
            g["metrics"].append(e["metric"])
        g["cells"][(e[other], e["metric"])] = e
    return [(k, g["others"], g["metrics"], g["cells"]) for k, g in groups.items()]


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(v, key: str = "") -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if not math.isfinite(v):
            return "inf"
        if key in ("bpp",):
            return f"{v:.4f}"
        if key in ("msssim_y", "msssim_rgb"):
            return f"{v:.5f}"
        if key in ("kbps", "enc_fps"):
            return f"{v:.1f}"
        return f"{v:.2f}"
    return str(v)


def _bd_sections(bd: Sequence[dict], clips: Sequence[str], by: str = "test") -> list[tuple]:
    """[(title, mean table (header, rows), [(metric, per-clip table)])] for markdown and html.

    by="test": one section per test codec, a row per anchor; by="anchor": one section per
    baseline anchor, a row per codec compared with it.
    """
    out = []
    for key, others, metrics_, cells in bd_groups(bd, by):
        first = "anchor" if by == "test" else f"codec (vs {key})"
        title = f"{key} vs each anchor" if by == "test" else f"each anchor vs {key}"
        mean_header = [first, *[METRIC_LABELS.get(m, m) for m in metrics_]]
        mean_rows = [[o, *[_bd_cell(cells[(o, m)]["mean"]) if (o, m) in cells else ""
                           for m in metrics_]] for o in others]
        per_metric = []
        for m in metrics_:
            rows = []
            for o in others:
                e = cells.get((o, m))
                if e is not None:
                    rows.append([o, *[_bd_cell(e["per_clip"][c], overlap=True)
                                      if c in e["per_clip"] else "" for c in clips],
                                 _bd_cell(e["mean"])])
            per_metric.append((m, ([first, *clips, "mean"], rows)))
        out.append((title, (mean_header, mean_rows), per_metric))
    return out


def _bd_split(results: dict) -> tuple[list[dict], list[dict]]:
    tests = {c["name"] for c in results.get("codecs", []) if c["kind"] == "test"}
    bd = results.get("bd_rate", [])
    return [e for e in bd if e["test"] in tests], [e for e in bd if e["test"] not in tests]


def render_markdown(results: dict, plots: dict) -> str:
    clips = results.get("clips", [])
    clip_names = [c["name"] for c in clips]
    tool = results.get("tool", {})
    md = ["# gan_compress rate-distortion report", ""]
    md.append(f"Generated {tool.get('date', '')} with {tool.get('ffmpeg', 'ffmpeg')} "
              f"(imageio-ffmpeg {tool.get('imageio_ffmpeg')}), {tool.get('machine', '')}; one "
              f"encode at a time, `-threads {results.get('config', {}).get('threads', 2)}`.")
    md.append("")
    md.append("Metrics are frame-exact on raw 8-bit yuv420p: PSNR of the sequence-mean MSE per "
              "plane, PSNR-YUV = (6Y+U+V)/8; MS-SSIM on Y (tf.image.ssim_multiscale, max 255, "
              "fewer renormalised scales below 176 lines; dB = -10 log10(1-ms)); VMAF / VMAF-NEG "
              "(libvmaf v0.6.1 / v0.6.1neg, mean over frames); SSIMULACRA2 on every 4th frame in "
              "RGB (BT.601 limited, BT.709 for 720-line clips). Rates are bytes on disk "
              "(elementary streams; AV1 without IVF headers; .gcv files). VVenC is fed 10-bit and "
              "its decode is rounded back to 8 bit with (x+2)>>2. BD-rate: pchip, over the common "
              "quality interval only; † = the curves overlap on less than 50 % of the smaller "
              "quality range, — = no overlap (no number); per-clip cells give the overlap "
              "(ov N%). Negative = fewer bits than the anchor.")
    md.append("")
    for s in results.get("skipped_codecs", []):
        md.append(f"- **test codec {s['codec']} skipped**: {s['reason']}")
    for e in results.get("clip_errors", []):
        md.append(f"- **clip {e['source']} could not be read**: {e['error_summary']}")
    if clips:
        md += ["", "## Clips", ""]
        md.append(_md_table(["clip", "size", "frames", "fps", "source"],
                            [[c["name"], f"{c['width']}x{c['height']}", c["frames"],
                              f"{c['fps']:.3f}", Path(c["source"]).name] for c in clips]))
        md += ["", "## Codecs", ""]
    for c in _codec_order(results) if clips else []:
        example = next((r["commands"].get("encode", [""])[0] for r in results.get("rows", [])
                        if r["codec"] == c["name"] and r["commands"].get("encode")), "")
        md.append(f"- **{c['name']}** ({c['kind']}): {c['label']} - `{example}`")
    test_bd, anchor_bd = _bd_split(results)
    for title, bd, by in (("BD-rate of the test codec against each anchor", test_bd, "test"),
                          ("BD-rate of each anchor against the baseline anchor", anchor_bd,
                           "anchor")):
        if not bd:
            continue
        md += ["", f"## {title}", ""]
        for sub, (h, rows), per_metric in _bd_sections(bd, clip_names, by):
            md += [f"### {sub}: mean over clips", "", _md_table(h, rows), ""]
            for m, (hh, rr) in per_metric:
                md += [f"#### {sub}: {METRIC_LABELS.get(m, m)} per clip", "", _md_table(hh, rr),
                       ""]
    images = results.get("images")
    if images:
        md += ["", "## Kodak (images)", "", images.get("about", ""), ""]
        ibd_test, ibd_anchor = _bd_split(images)
        for bd, by in ((ibd_test, "test"), (ibd_anchor, "anchor")):
            for sub, (h, rows), _ in _bd_sections(bd, [], by):
                md += [f"### BD-rate, {sub} (mean curve over the images)", "",
                       _md_table(h, rows), ""]
        for s in images.get("skipped_codecs", []):
            md.append(f"- **{s['codec']} skipped**: {s['reason']}")
        pts = sorted(images.get("mean_points", []), key=lambda p: (p["codec"], p["bpp"]))
        md += ["", f"Mean over {len(images.get('images', []))} images per rate point:", ""]
        md.append(_md_table(["codec", "q", "bpp", "PSNR-RGB", "MS-SSIM-RGB", "SSIMULACRA2"],
                            [[p["codec"], p["q"], _fmt(p["bpp"], "bpp"), _fmt(p.get("psnr_rgb")),
                              _fmt(p.get("msssim_rgb"), "msssim_rgb"), _fmt(p.get("ssimulacra2"))]
                             for p in pts]))
        errors = [r for r in images.get("rows", []) if r.get("error")]
        for r in errors[:20]:
            md.append(f"- error {r['image']} {r['codec']} q{r['q']} ({r['error_stage']}): "
                      f"{_error_line(r)}")
    flicker = flicker_table(results)
    if flicker:
        md += ["", "## Temporal behaviour", "",
               "Flicker: mean absolute frame-to-frame luma difference of the decode over that of "
               "the source (1 = the source's own motion; above 1 = added flicker), mean over rate "
               "points. Drift: `plots/<clip>__frames.png` (PSNR-Y of every frame).", "",
               _md_table(*flicker), ""]
    ref = results.get("reference_check")
    if ref:
        md += ["", "## Reproduction of the reference anchors", ""]
        md.append(f"{ref['points']} of {ref['reference_points']} reference points measured "
                  f"(`{ref['reference']}`).")
        if ref["points"]:
            rows = [["bytes (%)", _fmt(ref["max_abs_bytes_dev_pct"]),
                     f"{ref['bytes_within_1pct']}/{ref['points']} within 1 %"]]
            for k in ("psnr_y_seqmse", "psnr_u_seqmse", "psnr_v_seqmse", "psnr_yuv_seqmse",
                      "msssim_y", "msssim_y_db", "vmaf", "vmaf_neg", "ssimulacra2"):
                if f"max_abs_{k}_dev" in ref:
                    rows.append([k, f"{ref[f'max_abs_{k}_dev']:.2g}",
                                 f"{ref[f'{k}_within_0.05']}/{ref['points']} within 0.05"])
            md += ["", _md_table(["quantity", "max abs deviation", "within tolerance"], rows)]
    if results.get("rows"):
        md += ["", "## RD points", ""]
        md.append(_points_table(results["rows"]))
    if plots:
        md += ["", "## Plots", ""]
        for key, entry in plots.items():
            for g, p in entry.items():
                md.append(f"- {key} / {g}: [{p}]({p})")
    return "\n".join(md) + "\n"


def _points_table(all_rows: Sequence[dict]) -> str:
    header = ["clip", "codec", "q", *TABLE_KEYS]
    rows = []
    for r in all_rows:
        if r.get("error"):
            rows.append([r["clip"], r["codec"], r["q"], f"**error** ({r['error_stage']}): "
                         + _error_line(r).replace("|", "\\|")])
        else:
            rows.append([r["clip"], r["codec"], r["q"], *[_fmt(r.get(k), k) for k in TABLE_KEYS]])
    return _md_table(header, rows)


# --- HTML ----------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em;color:#222;
 max-width:1500px}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.neg{color:#1a7f37}.pos{color:#b42318}.flag{background:#fff4ce}
.plots img{width:420px;margin:2px;border:1px solid #eee}
.viewer-grid{display:flex;flex-wrap:wrap;gap:10px}
.viewer-grid figure{margin:0;font-size:.75em;display:table}
.viewer-grid figcaption{display:table-caption;caption-side:bottom}
.error{color:#b42318}
.viewer-grid img,.cmp img{image-rendering:pixelated}
.cmp{position:relative;display:inline-block;border:1px solid #999}
.cmp img{display:block}.cmp #cmpBimg{position:absolute;top:0;left:0}
.cmp .bar{position:absolute;top:0;bottom:0;width:2px;background:#ff0;pointer-events:none}
.controls label{margin-right:1em}.note{color:#666;font-size:.85em}
"""

JS = r"""
const D = JSON.parse(document.getElementById('viewer-data').textContent);
const $ = (id) => document.getElementById(id);
function opt(sel, items) {
  sel.innerHTML = '';
  for (const [v, t] of items) {
    const o = document.createElement('option');
    o.value = v; o.textContent = t; sel.appendChild(o);
  }
}
function pointsOf(clip, codec) {
  return D.points.filter(p => p.clip === clip && p.codec === codec);
}
function nearest(pts, bpp) {
  let best = null, bd = Infinity;
  for (const p of pts) {
    const d = Math.abs(Math.log(p.bpp) - Math.log(bpp));
    if (d < bd) { bd = d; best = p; }
  }
  return best;
}
function fmt(p) {
  const m = [];
  if (p.psnr_y_seqmse != null) m.push('PSNR-Y ' + p.psnr_y_seqmse.toFixed(2));
  if (p.vmaf != null) m.push('VMAF ' + p.vmaf.toFixed(1));
  if (p.ssimulacra2 != null) m.push('SSIMU2 ' + p.ssimulacra2.toFixed(1));
  return p.codec + ' q' + p.q + ' · ' + p.bpp.toFixed(4) + ' bpp · ' + p.kbps.toFixed(0) +
    ' kbps' + (m.length ? ' · ' + m.join(' · ') : '');
}
function current() {
  const clip = $('vClip').value, frame = $('vFrame').value;
  const main = pointsOf(clip, D.main).find(p => String(p.q) === $('vRate').value);
  const shown = [{key: 'original', label: 'original', src: D.clips[clip].crops[frame]}];
  if (main) for (const c of D.codecs) {
    const p = c === D.main ? main : nearest(pointsOf(clip, c), main.bpp);
    if (p && p.crops[frame]) shown.push({key: c, label: fmt(p), src: p.crops[frame]});
  }
  return shown;
}
function setImg(img, src, zoom) {
  img.onload = () => { img.width = img.naturalWidth * zoom; };
  img.src = src;
  if (img.complete && img.naturalWidth) img.width = img.naturalWidth * zoom;
}
function renderGrid() {
  const shown = current(), grid = $('vGrid'), zoom = +$('vZoom').value;
  grid.innerHTML = '';
  for (const s of shown) {
    const f = document.createElement('figure'), img = document.createElement('img');
    img.alt = s.label; setImg(img, s.src, zoom);
    const cap = document.createElement('figcaption'); cap.textContent = s.label;
    f.appendChild(img); f.appendChild(cap); grid.appendChild(f);
  }
  const keep = [$('cmpA').value, $('cmpB').value], items = shown.map(s => [s.key, s.label]);
  opt($('cmpA'), items); opt($('cmpB'), items);
  $('cmpA').value = shown.some(s => s.key === keep[0]) ? keep[0] : 'original';
  $('cmpB').value = shown.some(s => s.key === keep[1]) ? keep[1] : (shown[1] || shown[0]).key;
  renderCompare();
}
function renderCompare() {
  const shown = current(), zoom = +$('vZoom').value;
  const a = shown.find(s => s.key === $('cmpA').value) || shown[0];
  const b = shown.find(s => s.key === $('cmpB').value) || shown[0];
  setImg($('cmpAimg'), a.src, zoom); setImg($('cmpBimg'), b.src, zoom);
  slide();
}
function slide() {
  const v = +$('cmpSlider').value;
  $('cmpBimg').style.clipPath = 'inset(0 0 0 ' + v + '%)';
  $('cmpBar').style.left = v + '%';
  $('cmpLabel').textContent = 'left: ' + $('cmpA').value + ' | right: ' + $('cmpB').value;
}
function onClip() {
  const clip = $('vClip').value, c = D.clips[clip];
  opt($('vFrame'), Object.keys(c.crops).map(f => [f, 'frame ' + f]));
  opt($('vRate'), pointsOf(clip, D.main).map(
    p => [String(p.q), D.main + ' q' + p.q + ' (' + p.bpp.toFixed(4) + ' bpp)']));
  renderGrid();
}
function initViewer() {
  if (!Object.keys(D.clips).length) return;
  opt($('vClip'), Object.keys(D.clips).map(c => [c, c]));
  for (const id of ['vFrame', 'vRate', 'vZoom']) $(id).onchange = renderGrid;
  $('vClip').onchange = onClip;
  $('cmpA').onchange = renderCompare; $('cmpB').onchange = renderCompare;
  $('cmpSlider').oninput = slide;
  $('cmpToggle').onclick = () => {
    const a = $('cmpA').value; $('cmpA').value = $('cmpB').value; $('cmpB').value = a;
    renderCompare();
  };
  onClip();
}
function showMetric(m) {
  for (const d of document.querySelectorAll('.plots')) {
    d.style.display = d.dataset.metric === m ? '' : 'none';
  }
}
// For headless checks: after load, record how many images decoded (naturalWidth > 0).
function checkImages() {
  const imgs = Array.from(document.images);
  if (imgs.some(i => !i.complete)) { setTimeout(checkImages, 50); return; }
  const loaded = (f) => imgs.filter(i => f(i) && i.naturalWidth > 0).length;
  const b = document.body.dataset;
  b.imagesTotal = imgs.length; b.imagesLoaded = loaded(() => true);
  b.imagesBroken = imgs.length - b.imagesLoaded;
  b.plotsLoaded = loaded(i => i.classList.contains('plot'));
  b.cropsLoaded = loaded(i => i.closest('#vGrid'));
}
initViewer();
const sel = $('metricSel');
if (sel) { sel.onchange = () => showMetric(sel.value); showMetric(sel.value); }
window.addEventListener('load', () => setTimeout(checkImages, 0));
"""


def _h(s) -> str:
    return html.escape(str(s))


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["<table><tr>" + "".join(f"<th>{_h(h)}</th>" for h in header) + "</tr>"]
    for r in rows:
        cells = []
        for c in r:
            c = str(c)
            cls = []
            if re.match(r"^[+-]\d.*%", c):
                cls.append("neg" if c.startswith("-") else "pos")
            if "†" in c:
                cls.append("flag")
            cells.append(f"<td class='{' '.join(cls)}'>{_h(c)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(out) + "</table>"


def viewer_data(results: dict) -> dict:
    codecs = [c["name"] for c in _codec_order(results)]
    tests = [c["name"] for c in results.get("codecs", []) if c["kind"] == "test"]
    points = []
    for r in _ok(results.get("rows", [])):
        if not r.get("crops"):
            continue
        point = {k: r.get(k) for k in ("clip", "codec", "q", "bpp", "kbps", "psnr_y_seqmse",
                                       "vmaf", "ssimulacra2", "crops")}
        # JSON.parse has no Infinity/NaN (a lossless point has infinite PSNR).
        points.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                       for k, v in point.items()})
    have = {p["codec"] for p in points}
    order = [c for c in codecs if c in have]
    main = next((t for t in tests if t in have), None) or (
        "x264_ld" if "x264_ld" in have else (order[0] if order else ""))
    clips = {c["name"]: {"crops": c.get("crops", {})} for c in results.get("clips", [])
             if c.get("crops")}
    return {"main": main, "codecs": order, "points": points, "clips": clips}


def render_html(results: dict, plots: dict) -> str:
    clips = results.get("clips", [])
    clip_names = [c["name"] for c in clips]
    tool = results.get("tool", {})
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>gan_compress RD report</title><style>{CSS}</style></head><body>"]
    parts.append("<h1>gan_compress rate-distortion report</h1>")
    parts.append(f"<p class='note'>{_h(tool.get('date', ''))} · {_h(tool.get('ffmpeg', ''))} · "
                 f"{_h(tool.get('machine', ''))} · metrics frame-exact on raw 8-bit yuv420p; "
                 "BD-rate pchip over the common quality interval; † = overlap &lt; 50 % of the "
                 "smaller quality range; — = no overlap; (ov N%) = overlap of the quality "
                 "ranges. VVenC: 10-bit in, decode rounded to 8 bit "
                 "with (x+2)&gt;&gt;2. Full data: <a href='results.json'>results.json</a>, "
                 "<a href='report.md'>report.md</a>.</p>")
    for s in results.get("skipped_codecs", []):
        parts.append(f"<p><b>test codec {_h(s['codec'])} skipped</b>: {_h(s['reason'])}</p>")
    for e in results.get("clip_errors", []):
        parts.append(f"<p class='error'><b>clip {_h(e['source'])} could not be read</b>: "
                     f"{_h(e['error_summary'])}</p>")
    if clips:
        parts.append("<h2>Clips</h2>")
        parts.append(_html_table(["clip", "size", "frames", "fps"],
                                 [[c["name"], f"{c['width']}x{c['height']}", c["frames"],
                                   f"{c['fps']:.3f}"] for c in clips]))
    # BD tables
    test_bd, anchor_bd = _bd_split(results)
    for title, bd, by in (("BD-rate of the test codec vs each anchor", test_bd, "test"),
                          ("BD-rate of each anchor vs the baseline anchor", anchor_bd, "anchor")):
        if not bd:
            continue
        parts.append(f"<h2>{_h(title)}</h2>")
        for sub, (h, rows), per_metric in _bd_sections(bd, clip_names, by):
            parts.append(f"<h3>{_h(sub)}: mean over clips</h3>" + _html_table(h, rows))
            parts.append("<details><summary>per clip</summary>")
            for m, (hh, rr) in per_metric:
                parts.append(f"<h4>{_h(METRIC_LABELS.get(m, m))}</h4>" + _html_table(hh, rr))
            parts.append("</details>")
    images = results.get("images")
    if images:
        parts.append("<h2>Kodak (images)</h2>")
        parts.append(f"<p class='note'>{_h(images.get('about', ''))}</p>")
        for sk in images.get("skipped_codecs", []):
            parts.append(f"<p><b>{_h(sk['codec'])} skipped</b>: {_h(sk['reason'])}</p>")
        ibd_test, ibd_anchor = _bd_split(images)
        for bd, by in ((ibd_test, "test"), (ibd_anchor, "anchor")):
            for sub, (h, rows), _ in _bd_sections(bd, [], by):
                parts.append(f"<h3>BD-rate, {_h(sub)} (mean curve over the images)</h3>"
                             + _html_table(h, rows))
        pts = sorted(images.get("mean_points", []), key=lambda p: (p["codec"], p["bpp"]))
        parts.append("<details><summary>mean points</summary>" + _html_table(
            ["codec", "q", "bpp", "PSNR-RGB", "MS-SSIM-RGB", "SSIMULACRA2"],
            [[p["codec"], p["q"], _fmt(p["bpp"], "bpp"), _fmt(p.get("psnr_rgb")),
              _fmt(p.get("msssim_rgb"), "msssim_rgb"), _fmt(p.get("ssimulacra2"))] for p in pts])
            + "</details>")
    flicker = flicker_table(results)
    if flicker:
        parts.append("<h2>Temporal behaviour</h2><p class='note'>Flicker: mean absolute "
                     "frame-to-frame luma difference of the decode over the source's (1 = the "
                     "source's own motion), mean over rate points; drift: the 'PSNR-Y per "
                     "frame' plots below.</p>" + _html_table(*flicker))
    # plots
    if plots:
        parts.append("<h2>RD curves</h2><p class='controls'><label>metric "
                     "<select id='metricSel'>")
        for key in plots:
            name = key.split(":", 1)[-1]
            label = METRIC_LABELS.get(name, name) + (" (Kodak)" if key.startswith("image:") else "")
            parts.append(f"<option value='{_h(key)}'>{_h(label)}</option>")
        parts.append("</select></label></p>")
        for key, entry in plots.items():
            parts.append(f"<div class='plots' data-metric='{_h(key)}'>")
            ordered = sorted(entry.items(), key=lambda kv: kv[0] not in ("mean", "kodak"))
            for g, p in ordered:
                parts.append(f"<img class='plot' src='{_h(p)}' alt='{_h(key)} {_h(g)}'>")
            parts.append("</div>")
    # viewer
    data = viewer_data(results)
    if data["clips"]:
        parts.append("<h2>Side-by-side viewer</h2>")
        parts.append(
            "<p class='controls'><label>clip <select id='vClip'></select></label>"
            "<label>frame <select id='vFrame'></select></label>"
            "<label>rate point <select id='vRate'></select></label>"
            "<label>zoom <select id='vZoom'><option value='1'>1x</option>"
            "<option value='2' selected>2x</option><option value='3'>3x</option></select></label>"
            "</p><p class='note'>Each codec is shown at the rate point nearest (in log bpp) to the "
            f"chosen rate point of <b>{_h(data['main'])}</b>; crops are centred, "
            f"{results.get('config', {}).get('viewer_crop', 256)} px at most, RGB (BT.601/709).</p>"
            "<h3>Compare two</h3><p class='controls'>"
            "<label>left <select id='cmpA'></select></label>"
            "<label>right <select id='cmpB'></select></label>"
            "<button id='cmpToggle' type='button'>swap</button> "
            "<input id='cmpSlider' type='range' min='0' max='100' value='50'> "
            "<span id='cmpLabel' class='note'></span></p>"
            "<div class='cmp'><img id='cmpAimg' alt='left'><img id='cmpBimg' alt='right'>"
            "<div id='cmpBar' class='bar'></div></div>"
            "<h3>All codecs</h3><div id='vGrid' class='viewer-grid'></div>")
    rows = results.get("rows", [])
    if rows:
        errors = [r for r in rows if r.get("error")]
        parts.append(f"<h2>RD points</h2><p>{len(rows)} points, {len(errors)} failed.</p>")
        for r in errors:
            parts.append(f"<p class='error'><b>{_h(r['clip'])} {_h(r['codec'])} q{r['q']}: "
                         f"{_h(r['error_stage'])} failed</b><br><code>"
                         f"{_h(_error_line(r))}</code></p>")
        parts.append("<details><summary>all points</summary>" + _html_table(
            ["clip", "codec", "q", *TABLE_KEYS],
            [[r["clip"], r["codec"], r["q"], *[_fmt(r.get(k), k) for k in TABLE_KEYS]]
             for r in rows if not r.get("error")]) + "</details>")
    payload = json.dumps(data).replace("</", "<\\/")
    parts.append(f"<script type='application/json' id='viewer-data'>{payload}</script>")
    parts.append(f"<script>{JS}</script></body></html>")
    return "\n".join(parts)


def write_report(report_dir: str | os.PathLike, results: dict | None = None) -> ReportFiles:
    """Writes plots, report.md and index.html for `results` (default: report_dir/results.json)."""
    report_dir = Path(report_dir)
    if results is None:
        results = json.loads((report_dir / "results.json").read_text())
    plots = make_plots(report_dir, results)
    md_path = report_dir / "report.md"
    md_path.write_text(render_markdown(results, plots))
    html_path = report_dir / "index.html"
    html_path.write_text(render_html(results, plots))
    plot_files = [report_dir / p for entry in plots.values() for p in entry.values()]
    return ReportFiles(md_path, html_path, plot_files)
