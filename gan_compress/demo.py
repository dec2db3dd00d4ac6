"""The demo (Quick start, command 1): gan_compress next to x264 on the bundled sample clip.

For every quality level of the model: encode -> .gcv -> decode, and measure bitrate, PSNR,
MS-SSIM and VMAF on the raw yuv420p frames (the same metric code as `gan-compress eval`).
x264 (low-delay, CRF ladder, through imageio-ffmpeg's ffmpeg) runs on the same frames. Prints a
table with x264 at about the same bitrate as each level, and writes `rd.png` (RD curves) and
`side_by_side.png` (original | gan_compress | x264 at the nearest bitrate) to the output dir.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

# an evaluation clip: in no training set, so the demo shows held-out figures
REPO_SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "cars_320x240_30f.mkv"
X264_LADDER = (20, 24, 28, 32, 36, 40, 44, 48)


def _metrics(ref, dist_path: Path, work: Path, tag: str):
    from gan_compress.evaluation import ffmpeg as ff
    from gan_compress.evaluation import metrics as m

    raw = work / f"{tag}.yuv"
    ff.decode_to_raw(dist_path, raw)
    dist = ff.RawVideo(raw, ref.width, ref.height, ff.count_frames(raw, ref.width, ref.height),
                       ref.fps)
    return m.video_metrics(ref, dist, ("psnr", "msssim", "vmaf")), raw


def _frame_rgb(raw: Path, width: int, height: int, index: int = 0):
    import numpy as np

    from gan_compress import io as gio

    n = width * height
    with open(raw, "rb") as f:
        f.seek(index * n * 3 // 2)
        buf = np.frombuffer(f.read(n * 3 // 2), np.uint8)
    y = buf[:n].reshape(height, width)
    u = buf[n: n + n // 4].reshape(height // 2, width // 2)
    v = buf[n + n // 4:].reshape(height // 2, width // 2)
    return gio.yuv420_to_rgb(gio.YUVFrame(y, u, v), gio.ColorSpec.for_size(width, height))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gan-compress demo", description=__doc__.splitlines()[0])
    p.add_argument("--input", default=str(REPO_SAMPLE), help="clip (default: bundled sample)")
    p.add_argument("--model", help="model name, dir or export (default: what `encode` uses "
                   "without --model: small-video for a clip, small-gan for one frame)")
    p.add_argument("--out", default="demo_out", help="where rd.png and side_by_side.png go")
    p.add_argument("--frames", type=int, default=30, help="frames of the clip to use")
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from gan_compress import api, registry
    from gan_compress.evaluation import anchors
    from gan_compress.evaluation import ffmpeg as ff

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gan_compress_demo_") as tmp:
        work = Path(tmp)
        w, h = ff.probe_size(args.input)
        ref_raw = work / "ref.yuv"
        ff.decode_to_raw(args.input, ref_raw, max_frames=args.frames)
        n = ff.count_frames(ref_raw, w, h)
        ref = ff.RawVideo(ref_raw, w, h, n, ff.probe_fps(args.input))
        print(f"sample: {args.input} ({w}x{h}, {n} frames at {float(ref.fps):.3f} fps)")
        rows = []

        model = args.model or registry.default_model(video=n > 1)
        try:
            codec = api.load(model)
        except api.ModelLoadError as e:
            codec = None
            print(f"gan_compress model not available ({e}); showing x264 only")
        else:
            print(f"model: {model} (default GOP of `gan-compress encode`)")
        if codec is not None:
            y4m = work / "ref.y4m"
            ff.run([ff.ffmpeg_exe(), "-v", "error", "-y", *ref.input_args(), str(y4m)])
            for q in range(1, codec.num_qualities + 1):
                gcv = work / f"q{q}.gcv"
                t0 = time.perf_counter()
                st = codec.compress_video(str(y4m), str(gcv), quality=q)
                t_enc = time.perf_counter() - t0
                dec = work / f"q{q}.y4m"
                t0 = time.perf_counter()
                codec.decompress_video(str(gcv), str(dec))
                t_dec = time.perf_counter() - t0
                met, raw = _metrics(ref, dec, work, f"gc{q}")
                rows.append({"codec": "gan_compress", "setting": f"quality {q}",
                             "bytes": st.bytes, "raw": raw, **met,
                             "fps": f"{n / t_enc:.1f}/{n / t_dec:.1f}"})
                print(f"  gan_compress quality {q}: {st.bpp:.4f} bpp", flush=True)

        x264 = anchors.resolve("x264_ld")[0]
        for crf in X264_LADDER:
            es = work / f"x264_{crf}.h264"
            t0 = time.perf_counter()
            ff.run(x264.encode_command(ref, crf, es))
            t_enc = time.perf_counter() - t0
            met, raw = _metrics(ref, es, work, f"x264_{crf}")
            rows.append({"codec": "x264", "setting": f"crf {crf}", "bytes": es.stat().st_size,
                         "raw": raw, **met, "fps": f"{n / t_enc:.1f}/-"})

        pixels = w * h * n
        for r in rows:
            r["bpp"] = 8.0 * r["bytes"] / pixels
            r["kbps"] = 8.0 * r["bytes"] * float(ref.fps) / n / 1000.0
        ours = [r for r in rows if r["codec"] == "gan_compress"]
        xs = [r for r in rows if r["codec"] == "x264"]

        hdr = (f"{'codec':13s} {'setting':10s} {'kbps':>8s} {'bpp':>7s} {'PSNR-Y':>7s} "
               f"{'PSNR':>6s} {'MS-SSIM':>8s} {'VMAF':>6s} {'VMAF-NEG':>8s} {'enc/dec fps':>11s}")
        print("\n" + hdr)
        print("-" * len(hdr))

        def line(r):
            return (f"{r['codec']:13s} {r['setting']:10s} {r['kbps']:8.1f} {r['bpp']:7.4f} "
                    f"{r['psnr_y_seqmse']:7.2f} {r['psnr_yuv_seqmse']:6.2f} {r['msssim_y']:8.4f} "
                    f"{r['vmaf']:6.2f} {r['vmaf_neg']:8.2f} {r['fps']:>11s}")

        for r in ours:
            near = min(xs, key=lambda x: abs(np.log(x["bytes"] / r["bytes"])))
            print(line(r))
            print(line(near) + "  <- x264, nearest bitrate")
        if not ours:
            for r in xs:
                print(line(r))
        print("(PSNR = (6Y+U+V)/8; MS-SSIM on Y; VMAF / VMAF-NEG from libvmaf v0.6.1)")

        fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
        for ax, key, label in zip(axes, ("psnr_yuv_seqmse", "msssim_y", "vmaf_neg"),
                                  ("PSNR-YUV (dB)", "MS-SSIM (Y)", "VMAF-NEG"), strict=True):
            for group, style in ((ours, "o-"), (xs, "s--")):
                if group:
                    g = sorted(group, key=lambda r: r["bpp"])
                    ax.plot([r["bpp"] for r in g], [r[key] for r in g], style,
                            label=g[0]["codec"])
            ax.set_xlabel("bits per pixel")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.suptitle(f"{Path(args.input).name}: gan_compress vs x264 (low delay)")
        fig.tight_layout()
        fig.savefig(out / "rd.png", dpi=100)
        plt.close(fig)

        shown = n // 2  # a frame inside the GOP (frame 0 is an I-frame in every codec)
        panels = [(f"original, frame {shown}", ref_raw)]
        if ours:
            mid = ours[len(ours) // 2]
            near = min(xs, key=lambda x: abs(np.log(x["bytes"] / mid["bytes"])))
            panels += [(f"{Path(model).name} {mid['setting']} ({mid['bpp']:.3f} bpp)", mid["raw"]),
                       (f"x264 {near['setting']} ({near['bpp']:.3f} bpp)", near["raw"])]
        else:
            panels += [(f"x264 {xs[3]['setting']} ({xs[3]['bpp']:.3f} bpp)", xs[3]["raw"])]
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.6))
        for ax, (title, raw) in zip(np.atleast_1d(axes), panels, strict=True):
            ax.imshow(_frame_rgb(raw, w, h, shown), interpolation="nearest")
            ax.set_title(title)
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(out / "side_by_side.png", dpi=100)
        plt.close(fig)
    print(f"\nwrote {out / 'rd.png'} and {out / 'side_by_side.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
