"""Does coding the I-frames of a GOP at a higher quality level pay off? (x264's ipratio)

    .venv/bin/python benchmarks/intra_offset.py [--model small-video]
        [--clips carphone_qcif_60f,cars_320x240_30f] [--frames 24] [--qualities 1,2,3,4]
        [--offsets 0,1] [--gop 12]

For each eval clip, the first `--frames` frames are coded in memory with `gop.GopEncoder`
(adaptive intra, the CLI's default) at each quality level, once per I-frame quality offset
(`gan-compress encode --intra_quality_offset`), and the script prints bits per pixel, mean
PSNR-Y (BT.601 luma of the RGB frames, 0..255) and the frame types, then the BD-rate (PSNR-Y,
`bjontegaard`, Akima) of each offset against the first one. Negative = the offset saves bits.
The bytes are the coded strings' (no container overhead, the same for every offset).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

LUMA = np.array([0.299, 0.587, 0.114])


def code_clip(codec, frames, quality: int, gop: int, offset: int) -> tuple[float, float, str]:
    """-> (bits per pixel, mean PSNR-Y in dB, frame types) of `frames` coded as one stream."""
    from gan_compress.gop import INTRA_RD, GopEncoder

    enc = GopEncoder(codec._model, codec._pframe, quality, gop, codec._gop(), INTRA_RD, offset)
    h, w = frames[0].shape[:2]
    bits, psnrs, types = 0, [], ""
    for frame in frames:
        coded, recon = enc.encode(frame)
        bits += 8 * coded.num_bytes
        types += coded.frame_type
        mse = np.mean((frame.astype(np.float64) @ LUMA - recon.astype(np.float64) @ LUMA) ** 2)
        psnrs.append(10.0 * np.log10(255.0 ** 2 / max(mse, 1e-10)))
    return bits / (h * w * len(frames)), float(np.mean(psnrs)), types


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="small-video")
    p.add_argument("--clips", default="carphone_qcif_60f,cars_320x240_30f")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--qualities", default="1,2,3,4")
    p.add_argument("--offsets", default="0,1")
    p.add_argument("--gop", type=int, default=12)
    args = p.parse_args(argv)

    import bjontegaard
    from pframe_diagnostics import clip_frames

    import gan_compress
    from gan_compress.evaluation import clips

    codec = gan_compress.load(args.model)
    if not codec.supports_inter:
        raise SystemExit(f"{args.model}: an I-frame-only model; this needs a video model")
    qualities = [int(q) for q in args.qualities.split(",")]
    offsets = [int(o) for o in args.offsets.split(",")]
    print(f"model {codec.name}, GOP {args.gop}, adaptive intra, first {args.frames} frames\n")
    print("| clip | offset | q | bpp | PSNR-Y (dB) | frame types |")
    print("|---|---|---|---|---|---|")
    summary = []
    for path in clips.resolve_clips(args.clips.split(",")):
        frames = clip_frames(str(path), args.frames)
        curves = {}
        for offset in offsets:
            points = []
            for q in qualities:
                bpp, psnr, types = code_clip(codec, frames, q, args.gop, offset)
                points.append((bpp, psnr))
                print(f"| {path.stem} | {offset} | {q} | {bpp:.4f} | {psnr:.2f} | {types} |",
                      flush=True)
            curves[offset] = np.array(points)
        base = curves[offsets[0]]
        for offset in offsets[1:]:
            c = curves[offset]
            rate = bjontegaard.bd_rate(base[:, 0], base[:, 1], c[:, 0], c[:, 1], method="akima")
            summary.append(f"| {path.stem} | {offset} vs {offsets[0]} | {rate:+.1f} % |")
    print("\n| clip | offset | BD-rate PSNR-Y |\n|---|---|---|")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
