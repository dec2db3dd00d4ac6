"""Full-reference video metrics on raw 8-bit yuv420p, frame-exact.

All functions take two `RawVideo`s (reference, distorted) of the same geometry and frame count;
a different frame count raises `FrameCountMismatchError` - frames are never dropped or aligned.

- `psnr_yuv`: PSNR per plane of the sequence-mean MSE (what ffmpeg's psnr filter prints as its
  summary), and `psnr_yuv_seqmse` = (6 Y + U + V) / 8.
- `msssim_y`: `tf.image.ssim_multiscale` on the luma plane, `max_val=255`, mean over frames. It
  needs the short side >= 11 * 2**(scales-1), so below 176 lines it uses fewer scales with the
  first power factors renormalised to sum to 1; also given in dB as -10 log10(1 - ms).
- `temporal` (with `psnr`): `psnr_y_frames`, the PSNR-Y of every frame (drift across a GOP),
  and `tmad_ratio`, the mean absolute frame-to-frame luma difference of the decode over that
  of the reference (flicker: above 1 the decode changes more between frames than the source).
- `vmaf`: ffmpeg's libvmaf with the built-in `vmaf_v0.6.1` and `vmaf_v0.6.1neg` models, mean of
  the per-frame scores (JSON log).
- `ssimulacra2`: the `ssimulacra2` package on RGB PNGs of every 4th frame (0, 4, 8, ...) converted
  with BT.601 limited range (BT.709 for 720-line and taller video), mean over those frames.

These are the definitions used for `data/reference/anchors_eval.json`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from gan_compress.evaluation import ffmpeg
from gan_compress.evaluation.ffmpeg import RawVideo

MSSSIM_POWER_FACTORS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003
MSSSIM_FILTER_SIZE = 11
ALL_METRICS = ("psnr", "msssim", "vmaf", "ssimulacra2")
# Keys each metric group writes into a result row; `higher is better` for all of them.
METRIC_KEYS = {
    "psnr": ("psnr_y_seqmse", "psnr_u_seqmse", "psnr_v_seqmse", "psnr_yuv_seqmse"),
    "msssim": ("msssim_y", "msssim_y_db"),
    "vmaf": ("vmaf", "vmaf_neg"),
    "ssimulacra2": ("ssimulacra2",),
}
METRIC_LABELS = {
    "psnr_y_seqmse": "PSNR-Y (dB)",
    "psnr_u_seqmse": "PSNR-U (dB)",
    "psnr_v_seqmse": "PSNR-V (dB)",
    "psnr_yuv_seqmse": "PSNR-YUV 6:1:1 (dB)",
    "msssim_y": "MS-SSIM-Y",
    "msssim_y_db": "MS-SSIM-Y (dB)",
    "vmaf": "VMAF",
    "vmaf_neg": "VMAF-NEG",
    "ssimulacra2": "SSIMULACRA2",
    "frames": "PSNR-Y per frame",
    "psnr_rgb": "PSNR-RGB (dB)",
    "msssim_rgb": "MS-SSIM-RGB",
    "msssim_rgb_db": "MS-SSIM-RGB (dB)",
}


class FrameCountMismatchError(ValueError):
    """The distorted video does not have exactly as many frames as the reference."""


def check_same_frames(ref: RawVideo, dist: RawVideo) -> None:
    """Raises `FrameCountMismatchError` unless both files hold the same whole number of frames."""
    if (ref.width, ref.height) != (dist.width, dist.height):
        raise FrameCountMismatchError(
            f"size mismatch: reference {ref.width}x{ref.height}, decoded {dist.width}x{dist.height}"
        )
    n_ref = ffmpeg.count_frames(ref.path, ref.width, ref.height)
    n_dist = ffmpeg.count_frames(dist.path, dist.width, dist.height)
    if n_ref != n_dist or n_ref != ref.frames:
        raise FrameCountMismatchError(
            f"frame count mismatch: the reference {ref.path.name} has {n_ref} frames but the "
            f"decode {dist.path.name} has {n_dist}; metrics are frame-exact and frames are never "
            "dropped or aligned - check the encoder/decoder frame handling "
            "(e.g. -fps_mode passthrough)"
        )


def read_planes(raw: RawVideo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Memory-mapped planes: Y `[N, H, W]`, U and V `[N, H/2, W/2]`, uint8."""
    w, h = raw.width, raw.height
    data = np.memmap(raw.path, dtype=np.uint8, mode="r").reshape(-1, raw.frame_bytes)
    y = data[:, : w * h].reshape(-1, h, w)
    u = data[:, w * h : w * h * 5 // 4].reshape(-1, h // 2, w // 2)
    v = data[:, w * h * 5 // 4 :].reshape(-1, h // 2, w // 2)
    return y, u, v


def psnr_from_mse(mse: float, peak: float = 255.0) -> float:
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def _plane_mse(a: np.ndarray, b: np.ndarray, chunk: int = 16) -> float:
    total = 0.0
    for i in range(0, a.shape[0], chunk):
        d = a[i : i + chunk].astype(np.float64) - b[i : i + chunk].astype(np.float64)
        total += float(np.sum(d * d))
    return total / a.size


def psnr_yuv(ref: RawVideo, dist: RawVideo) -> dict[str, float]:
    """PSNR of the sequence-mean MSE for Y, U, V, and the 6:1:1 weighted PSNR-YUV (dB)."""
    check_same_frames(ref, dist)
    out = {}
    for name, a, b in zip("yuv", read_planes(ref), read_planes(dist), strict=True):
        out[f"psnr_{name}_seqmse"] = psnr_from_mse(_plane_mse(a, b))
    out["psnr_yuv_seqmse"] = (
        6 * out["psnr_y_seqmse"] + out["psnr_u_seqmse"] + out["psnr_v_seqmse"]
    ) / 8
    return out


def temporal(ref: RawVideo, dist: RawVideo, chunk: int = 16) -> dict[str, object]:
    """Per-frame PSNR-Y (list of floats, dB) and the flicker ratio `tmad_ratio` (None for 1 frame).

    tmad = mean over t >= 1 of mean |Y_t - Y_{t-1}|, on the decode and on the reference.
    """
    check_same_frames(ref, dist)
    ya, yb = read_planes(ref)[0], read_planes(dist)[0]
    frames, tmad_ref, tmad_dist = [], 0.0, 0.0
    prev_a = prev_b = None
    for i in range(0, ya.shape[0], chunk):
        a = ya[i : i + chunk].astype(np.float64)
        b = yb[i : i + chunk].astype(np.float64)
        frames += [round(psnr_from_mse(float(np.mean((fa - fb) ** 2))), 3)
                   for fa, fb in zip(a, b, strict=True)]
        if prev_a is not None:
            a, b = np.concatenate([prev_a, a]), np.concatenate([prev_b, b])
        tmad_ref += float(np.abs(np.diff(a, axis=0)).sum())
        tmad_dist += float(np.abs(np.diff(b, axis=0)).sum())
        prev_a, prev_b = a[-1:], b[-1:]
    ratio = tmad_dist / tmad_ref if len(frames) > 1 and tmad_ref > 0 else None
    return {"psnr_y_frames": frames, "tmad_ratio": ratio}


def msssim_scales(height: int, width: int) -> int:
    """Number of MS-SSIM scales that fit: short side // 2**(n-1) >= 11, at most 5."""
    n = len(MSSSIM_POWER_FACTORS)
    short = min(height, width)
    while n > 1 and short // 2 ** (n - 1) < MSSSIM_FILTER_SIZE:
        n -= 1
    return n


def msssim_power_factors(scales: int) -> list[float]:
    pf = np.asarray(MSSSIM_POWER_FACTORS[:scales], dtype=np.float64)
    return (pf / pf.sum()).tolist()


def msssim_db(ms: float) -> float:
    return math.inf if ms >= 1.0 else -10.0 * math.log10(1.0 - ms)


def msssim_frames(ref: np.ndarray, dist: np.ndarray, batch: int = 8) -> tuple[np.ndarray, int]:
    """Per-image MS-SSIM of `[N, H, W, C]` uint8 arrays (max_val 255); returns (values, scales)."""
    import tensorflow as tf

    scales = msssim_scales(ref.shape[1], ref.shape[2])
    pf = msssim_power_factors(scales)
    vals = []
    for i in range(0, ref.shape[0], batch):
        a = tf.convert_to_tensor(np.asarray(ref[i : i + batch]), dtype=tf.float32)
        b = tf.convert_to_tensor(np.asarray(dist[i : i + batch]), dtype=tf.float32)
        vals.append(tf.image.ssim_multiscale(a, b, 255.0, power_factors=pf).numpy())
    return np.concatenate(vals).astype(np.float64), scales


def msssim_y(ref: RawVideo, dist: RawVideo) -> dict[str, float]:
    """Mean over frames of luma MS-SSIM, in linear and dB form, and the number of scales used."""
    check_same_frames(ref, dist)
    y_ref, y_dist = read_planes(ref)[0], read_planes(dist)[0]
    vals, scales = msssim_frames(y_ref[..., None], y_dist[..., None])
    ms = float(np.mean(vals))
    return {"msssim_y": ms, "msssim_y_db": msssim_db(ms), "msssim_scales": scales}


def vmaf_filter(log_path: str | os.PathLike, threads: int = 2) -> str:
    """libvmaf filter string: vmaf_v0.6.1 as `vmaf` and vmaf_v0.6.1neg as `vmaf_neg`, JSON log."""
    # `\\:` survives the filtergraph parser as `\:`, which the model option parser needs.
    models = "version=vmaf_v0.6.1\\\\:name=vmaf|version=vmaf_v0.6.1neg\\\\:name=vmaf_neg"
    log = str(log_path).replace("\\", "/").replace(":", "\\\\:")
    return f"[0:v][1:v]libvmaf=model={models}:log_fmt=json:log_path={log}:n_threads={threads}"


def vmaf(ref: RawVideo, dist: RawVideo, threads: int = 2) -> dict[str, float]:
    """Mean per-frame VMAF (v0.6.1) and VMAF-NEG (v0.6.1neg) from ffmpeg's libvmaf."""
    check_same_frames(ref, dist)
    with tempfile.TemporaryDirectory(prefix="vmaf_") as tmp:
        log = Path(tmp) / "vmaf.json"
        cmd = [ffmpeg.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error"]
        cmd += dist.input_args() + ref.input_args()  # libvmaf: main (distorted) first
        cmd += ["-lavfi", vmaf_filter(log, threads), "-f", "null", "-"]
        ffmpeg.run(cmd)
        frames = json.loads(log.read_text())["frames"]
    if len(frames) != ref.frames:
        raise FrameCountMismatchError(f"libvmaf scored {len(frames)} frames, expected {ref.frames}")
    return {
        "vmaf": float(np.mean([f["metrics"]["vmaf"] for f in frames])),
        "vmaf_neg": float(np.mean([f["metrics"]["vmaf_neg"] for f in frames])),
    }


def vmaf_images(ref_png: str | os.PathLike, dist_png: str | os.PathLike,
                threads: int = 2) -> dict[str, float]:
    """VMAF (v0.6.1) and VMAF-NEG (v0.6.1neg) of one still image pair: both converted by
    ffmpeg to BT.601 YUV 4:4:4 (the models read luma only, so 4:4:4 scores as 4:2:0 would and
    odd sizes work)."""
    with tempfile.TemporaryDirectory(prefix="vmaf_") as tmp:
        log = Path(tmp) / "vmaf.json"
        graph = ("[0:v]format=yuv444p[d];[1:v]format=yuv444p[r];"
                 + vmaf_filter(log, threads).replace("[0:v][1:v]", "[d][r]", 1))
        cmd = [ffmpeg.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error",
               "-i", str(dist_png), "-i", str(ref_png), "-lavfi", graph, "-f", "null", "-"]
        ffmpeg.run(cmd)
        frame = json.loads(log.read_text())["frames"][0]["metrics"]
    return {"vmaf": float(frame["vmaf"]), "vmaf_neg": float(frame["vmaf_neg"])}


def ssimulacra2_pngs(ref_pngs: Iterable[Path], dist_pngs: Iterable[Path]) -> list[float]:
    """SSIMULACRA2 score of each (reference, distorted) PNG pair."""
    from ssimulacra2 import compute_ssimulacra2

    return [
        float(compute_ssimulacra2(str(a), str(b)))
        for a, b in zip(ref_pngs, dist_pngs, strict=True)
    ]


def ssimulacra2_video(
    ref: RawVideo,
    dist: RawVideo,
    *,
    step: int = 4,
    ref_png_dir: str | os.PathLike | None = None,
) -> dict[str, float | int | str]:
    """Mean SSIMULACRA2 over frames 0, step, 2*step, ... on RGB (BT.601/709 limited).

    `ref_png_dir` caches the reference PNGs across calls (they are made once per clip).
    """
    check_same_frames(ref, dist)
    matrix = ffmpeg.rgb_matrix_for_height(ref.height)
    with tempfile.TemporaryDirectory(prefix="ssimu2_") as tmp:
        if ref_png_dir is None:
            ref_pngs = ffmpeg.raw_to_pngs(ref, Path(tmp) / "ref", step=step, matrix=matrix)
        else:
            ref_png_dir = Path(ref_png_dir)
            want = [ref_png_dir / f"f_{i:05d}.png" for i in range(0, ref.frames, step)]
            if not all(p.exists() for p in want):
                ffmpeg.raw_to_pngs(ref, ref_png_dir, step=step, matrix=matrix)
            ref_pngs = want
        dist_pngs = ffmpeg.raw_to_pngs(dist, Path(tmp) / "dist", step=step, matrix=matrix)
        scores = ssimulacra2_pngs(ref_pngs, dist_pngs)
    return {
        "ssimulacra2": float(np.mean(scores)),
        "ssimulacra2_matrix": f"{matrix} limited",
        "ssimulacra2_frames": len(scores),
    }


def video_metrics(
    ref: RawVideo,
    dist: RawVideo,
    metrics: Iterable[str] = ALL_METRICS,
    *,
    threads: int = 2,
    ssimulacra2_step: int = 4,
    ref_png_dir: str | os.PathLike | None = None,
) -> dict[str, float | int | str]:
    """All requested metric groups (`psnr`, `msssim`, `vmaf`, `ssimulacra2`) for one decode."""
    metrics = list(metrics)
    unknown = set(metrics) - set(ALL_METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; known: {ALL_METRICS}")
    check_same_frames(ref, dist)
    out: dict[str, float | int | str] = {}
    if "psnr" in metrics:
        out.update(psnr_yuv(ref, dist))
        out.update(temporal(ref, dist))
    if "msssim" in metrics:
        out.update(msssim_y(ref, dist))
    if "vmaf" in metrics:
        out.update(vmaf(ref, dist, threads=threads))
    if "ssimulacra2" in metrics:
        out.update(ssimulacra2_video(ref, dist, step=ssimulacra2_step, ref_png_dir=ref_png_dir))
    return out


# --- RGB images ---------------------------------------------------------------------------------


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """`[H, W, 3]` uint8 RGB of an image file."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def image_metrics(ref_png: str | os.PathLike, dist_png: str | os.PathLike) -> dict[str, float]:
    """RGB PSNR (MSE over all three channels), RGB MS-SSIM (dB too), SSIMULACRA2, VMAF and
    VMAF-NEG of two PNGs."""
    a, b = load_rgb(ref_png), load_rgb(dist_png)
    if a.shape != b.shape:
        raise ValueError(f"image size mismatch: {ref_png} {a.shape} vs {dist_png} {b.shape}")
    d = a.astype(np.float64) - b.astype(np.float64)
    ms_vals, scales = msssim_frames(a[None], b[None])
    ms = float(ms_vals[0])
    return {
        "psnr_rgb": psnr_from_mse(float(np.mean(d * d))),
        "msssim_rgb": ms,
        "msssim_rgb_db": msssim_db(ms),
        "msssim_scales": scales,
        "ssimulacra2": ssimulacra2_pngs([Path(ref_png)], [Path(dist_png)])[0],
        **vmaf_images(ref_png, dist_png),
    }
