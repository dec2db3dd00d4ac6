"""What a P-frame codec's motion does on real frame pairs: is the prediction better than a copy?

    .venv/bin/python benchmarks/pframe_diagnostics.py [--model small-video]
        [--clips cars_320x240_30f,carphone_qcif_60f] [--pairs 8] [--qualities 1,3,6]

For each eval clip, the first `--pairs` consecutive frame pairs (t-1, t) go through the P-frame
codec's training-mode forward pass (`PFrameCodec.__call__`, noise-free quantization) with the
*source* frame t-1 as the reference, and the script prints, per quality level (means over the
pairs, PSNR on RGB in [0, 1]):

- `copy`: PSNR of frame t against frame t-1 (what zero motion and no residual would give);
- `pred`: PSNR of the motion-compensated prediction (warp of t-1 through the decoded flow);
- `search`: PSNR of the encoder's block-matching field alone as a prediction (warp of t-1 by
  `block_motion_search` at the model's `motion_search_radius`, no blur, on the frame's top-left
  multiple of 64 pixels; no bits counted): what the motion path could reach if it passed the
  search through, for comparison with `pred`;
- `recon`: PSNR of the reconstruction (prediction plus decoded residual);
- bits per pixel of the motion and of the residual (entropy-model estimates);
- the mean |dx|, |dy| of the flow in pixels and the mean blur level s of the scale-space warp.

A prediction no better than `copy` means the motion path has not learned; a `recon` below the
I-frame codec's PSNR at the same quality means P-frames cost quality (see docs/TRAINING.md).
`--search_radius R` overrides the model's block-search radius (an encoder-side setting: the
bitstream and decoder do not depend on it).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def clip_frames(path: str, count: int) -> list[np.ndarray]:
    """The first `count` frames of a video file as `[H, W, 3]` uint8 RGB."""
    from gan_compress import io as gio

    out = []
    with gio.open_video(path) as reader:
        for frame in reader:
            out.append(gio.yuv420_to_rgb(frame, reader.info.color))
            if len(out) == count:
                break
    return out


def search_prediction_psnr(ref: np.ndarray, cur: np.ndarray, radius: int) -> float:
    """PSNR of `ref` warped by the block-matching field of (cur, ref) against `cur` (uint8
    `[H, W, 3]`), on the top-left crop whose sides are multiples of 64."""
    import tensorflow as tf

    from gan_compress.layers import warp
    from gan_compress.layers.motion_search import block_motion_search

    h, w = cur.shape[0] // 64 * 64, cur.shape[1] // 64 * 64
    x = tf.constant(cur[None, :h, :w], tf.float32) / 255.0
    r = tf.constant(ref[None, :h, :w], tf.float32) / 255.0
    field = block_motion_search(x, r, radius=radius)
    pred = warp.scale_space_warp(r, tf.concat([field, tf.zeros_like(field[..., :1])], -1))
    return _psnr(pred.numpy(), x.numpy())


def diagnose(pframe, frames: list[np.ndarray], qualities: list[int]) -> list[dict]:
    """One dict of means per quality (1-based) over the consecutive pairs of `frames`."""
    import tensorflow as tf

    radius = pframe.encoder_search_radius
    search = [search_prediction_psnr(ref, cur, radius) if radius > 0 else float("nan")
              for ref, cur in zip(frames[:-1], frames[1:], strict=True)]

    rows = []
    for q in qualities:
        acc: dict[str, list[float]] = {}
        for ref, cur in zip(frames[:-1], frames[1:], strict=True):
            x = tf.constant(cur[None], tf.float32) / 255.0
            r = tf.constant(ref[None], tf.float32) / 255.0
            out = pframe(x, r, tf.constant([q - 1]), training=False)
            flow = out.flow.numpy()[0]
            pixels = float(cur.shape[0] * cur.shape[1])
            values = {
                "copy": _psnr(r.numpy(), x.numpy()),
                "pred": _psnr(out.prediction.numpy(), x.numpy()),
                "recon": _psnr(np.clip(out.x_hat.numpy(), 0, 1), x.numpy()),
                "bpp_motion": float(out.bits_motion[0]) / pixels,
                "bpp_residual": float(out.bits_residual[0]) / pixels,
                "dx": float(np.abs(flow[..., 0]).mean()),
                "dy": float(np.abs(flow[..., 1]).mean()),
                "s": float(flow[..., 2].mean()),
            }
            for k, v in values.items():
                acc.setdefault(k, []).append(v)
        rows.append({"q": q, "search": float(np.mean(search)),
                     **{k: float(np.mean(v)) for k, v in acc.items()}})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="small-video", help="a video model (name or folder)")
    p.add_argument("--clips", default="cars_320x240_30f,carphone_qcif_60f,mobile_cif_30f")
    p.add_argument("--pairs", type=int, default=8, help="consecutive frame pairs per clip")
    p.add_argument("--qualities", default="1,3,6")
    p.add_argument("--search_radius", type=int, default=None,
                   help="override the model's encoder-side block-search radius (pixels)")
    args = p.parse_args(argv)

    import gan_compress
    from gan_compress.evaluation import clips

    codec = gan_compress.load(args.model)
    if not codec.supports_inter:
        raise SystemExit(f"{args.model}: an I-frame-only model; this needs a video model")
    qualities = [int(q) for q in args.qualities.split(",")]
    pframe = codec._pframe
    with pframe.search_radius(args.search_radius):
        _print_table(codec.name, pframe, clips.resolve_clips(args.clips.split(",")), args.pairs,
                     qualities)
    return 0


def _print_table(name: str, pframe, paths, pairs: int, qualities: list[int]) -> None:
    print(f"model {name}; reference = the source previous frame; means over "
          f"{pairs} pairs; block-search radius {pframe.encoder_search_radius} px\n")
    print("| clip | q | copy PSNR | search PSNR | prediction PSNR | recon PSNR | bpp motion "
          "| bpp residual | mean abs dx, dy (px) | mean blur s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        frames = clip_frames(str(path), pairs + 1)
        for row in diagnose(pframe, frames, qualities):
            print(f"| {path.stem} | {row['q']} | {row['copy']:.2f} | {row['search']:.2f} | "
                  f"{row['pred']:.2f} | "
                  f"{row['recon']:.2f} | {row['bpp_motion']:.3f} | {row['bpp_residual']:.3f} | "
                  f"{row['dx']:.2f}, {row['dy']:.2f} | {row['s']:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
