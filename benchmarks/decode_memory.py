"""Peak memory of decoding long clips: a stream with P-frames must decode in flat memory.

Encodes one CIF clip (352x288, a textured pattern panning 2 px per frame) with a video model
and GOP, then decodes its first N frames for each N in `--frames` with `gan-compress decode`
in a fresh process, and prints each process's peak RSS (`ru_maxrss`) and decode speed. The
decoder holds one reference frame whatever the clip's length, so the peak for 1,000 frames
should equal the one for 30 (the ratio is printed).

  .venv/bin/python benchmarks/decode_memory.py                    # tiny golden video model
  .venv/bin/python benchmarks/decode_memory.py --model runs/small_pframe_mse --frames 30,1000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
DEFAULT_MODEL = os.path.join(REPO, "tests", "golden", "tiny_video")


def _frames(n: int, height: int, width: int):
    """A fixed random texture panning 2 px per frame: uint8 `[H, W, 3]` frames."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height, width + 2 * n, 3), dtype=np.uint8)
    for i in range(n):
        yield texture[:, 2 * i: 2 * i + width]


def _decode_peak_rss(gcv: str, model: str, frames: int, out: str) -> tuple[int, float]:
    """(peak RSS bytes, seconds) of `gan-compress decode` of the first `frames` frames."""
    cmd = [sys.executable, "-m", "gan_compress", "decode", gcv, out, "--model", model,
           "--frames", str(frames), "--overwrite"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"decode failed: {proc.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss * 1024, seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=DEFAULT_MODEL, help="a video model (name or folder)")
    p.add_argument("--frames", default="30,1000", help="clip lengths to decode")
    p.add_argument("--size", default="352x288", help="WxH")
    p.add_argument("--gop", type=int, default=12)
    p.add_argument("--quality", type=int, default=3)
    args = p.parse_args(argv)
    lengths = sorted(int(n) for n in args.frames.split(","))
    width, height = (int(v) for v in args.size.split("x"))

    import gan_compress
    from gan_compress import io as gio

    codec = gan_compress.load(args.model)
    if not codec.supports_inter:
        raise SystemExit(f"{args.model}: an I-frame-only model; this needs a video model")
    with tempfile.TemporaryDirectory() as d:
        src, gcv = os.path.join(d, "clip.y4m"), os.path.join(d, "clip.gcv")
        with gio.Y4MWriter(src, width, height, 30) as writer:
            for rgb in _frames(lengths[-1], height, width):
                writer.write_rgb(rgb)
        t0 = time.perf_counter()
        stats = codec.compress_video(src, gcv, quality=args.quality, intra_period=args.gop,
                                     intra_decision="fixed",
                                     progress=True)
        print(f"encoded {stats.frames} frames {width}x{height} GOP {args.gop} q{args.quality} "
              f"with {codec.name}: {stats.bpp:.4f} bpp, "
              f"{stats.frames / (time.perf_counter() - t0):.1f} frames/s")
        print("\n| frames decoded | peak RSS (MB) | decode frames/s (incl. start-up) |")
        print("|---|---|---|")
        peaks = {}
        for n in lengths:
            peak, seconds = _decode_peak_rss(gcv, args.model, n, os.path.join(d, "out.y4m"))
            peaks[n] = peak
            print(f"| {n} | {peak / 2**20:.1f} | {n / seconds:.1f} |")
        print(f"\npeak RSS {lengths[-1]} frames / {lengths[0]} frames: "
              f"{peaks[lengths[-1]] / peaks[lengths[0]]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
