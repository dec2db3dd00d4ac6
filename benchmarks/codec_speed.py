"""Encode/decode speed and peak memory of gan_compress at 480p and 720p, next to x264 and x265.

    .venv/bin/python benchmarks/codec_speed.py [--frames 30] [--quality 3] [--model DIR]
                                               [--codec-cmd "CMD"] [--json reports/speed.json]

For each clip (480p: seeking_720x480_60f, 720p: cockatoo_720p_60f; first `--frames` frames):
- x264 and x265 (preset medium, the LD anchor settings at CRF 28, `-threads 2`) encode and
  decode fps, timed in the same run on the same raw input;
- gan_compress through its CLI (`gan-compress encode/decode`, as a user runs it): wall-clock fps
  including process start and model load, and a steady-state fps that removes that fixed cost
  (`(N - 2) / (t(N frames) - t(2 frames))`), and the peak RSS of the CLI process;
- our encode/decode fps as ratios to x264's and x265's.
gan_compress is skipped with a message while its CLI is not usable. Peak RSS is the child's
`ru_maxrss`, measured by a small wrapper process around each command.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from gan_compress.evaluation import anchors, clips, codecs, ffmpeg

CLIPS = {"480p": "seeking_720x480_60f", "720p": "cockatoo_720p_60f"}

# Runs argv[1:], prints {"seconds", "peak_rss_mb", "returncode", "stderr"} of that child.
_WRAPPER = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
print(json.dumps({"seconds": dt, "peak_rss_mb": rss, "returncode": p.returncode,
                  "stderr": p.stderr[-2000:]}))
"""


def measure(cmd: list[str]) -> dict:
    """Wall time and peak RSS (MB) of one command, run by a wrapper process."""
    out = subprocess.run([sys.executable, "-c", _WRAPPER, *map(str, cmd)], capture_output=True,
                         text=True, check=True)
    res = json.loads(out.stdout)
    if res["returncode"] != 0:
        raise RuntimeError(f"{shlex.join(map(str, cmd))} exited {res['returncode']}:\n"
                           f"{res['stderr']}")
    return res


def ffmpeg_speed(anchor: anchors.Anchor, clip: clips.Clip, work: Path, q: int) -> dict:
    stream = work / f"{clip.name}.{anchor.name}.{anchor.ext}"
    enc = measure(anchor.encode_command(clip.raw, q, stream, threads=2))
    dec = measure(anchor.decode_command(stream, work / "dec.yuv"))
    (work / "dec.yuv").unlink()
    return {
        "codec": anchor.name, "setting": anchor.setting, "q": q,
        "enc_fps": clip.frames / enc["seconds"], "dec_fps": clip.frames / dec["seconds"],
        "enc_peak_rss_mb": enc["peak_rss_mb"], "bytes": anchor.stream_bytes(stream),
    }  # fmt: skip


def gan_speed(codec: codecs.GanCompressCodec, clip: clips.Clip, short: clips.Clip, work: Path,
              quality: int) -> dict:
    def run(c: clips.Clip) -> tuple[dict, dict, int]:
        gcv = work / f"{c.name}.gcv"
        model = ["--model", codec.model] if codec.model else []
        enc = measure([*codec.command, "encode", c.y4m(work), gcv, "--quality", quality,
                       "--frames", c.frames, *model])
        dec = measure([*codec.command, "decode", gcv, work / f"{c.name}.dec.y4m", *model])
        return enc, dec, gcv.stat().st_size

    enc_n, dec_n, size = run(clip)
    enc_2, dec_2, _ = run(short)
    n_extra = clip.frames - short.frames

    def steady(t_n: float, t_2: float) -> float | None:
        return n_extra / (t_n - t_2) if t_n > t_2 else None

    return {
        "codec": "gan_compress", "quality": quality, "bytes": size,
        "enc_fps_wall": clip.frames / enc_n["seconds"],
        "dec_fps_wall": clip.frames / dec_n["seconds"],
        "enc_fps": steady(enc_n["seconds"], enc_2["seconds"]),
        "dec_fps": steady(dec_n["seconds"], dec_2["seconds"]),
        "enc_seconds": enc_n["seconds"], "dec_seconds": dec_n["seconds"],
        "startup_seconds_est": enc_2["seconds"] - 2 * (enc_n["seconds"] - enc_2["seconds"]) / max(
            n_extra, 1),
        "enc_peak_rss_mb": enc_n["peak_rss_mb"], "dec_peak_rss_mb": dec_n["peak_rss_mb"],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=30, help="frames per clip (default 30)")
    parser.add_argument("--quality", type=int, default=3, help="gan_compress quality (default 3)")
    parser.add_argument("--model", help="gan_compress model/export directory")
    parser.add_argument("--codec-cmd", help="command running the gan_compress CLI")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    gan = codecs.GanCompressCodec(model=args.model,
                                  command=shlex.split(args.codec_cmd) if args.codec_cmd else None)
    ok, reason = gan.available()
    if not ok:
        print(f"gan_compress: skipped - {reason}")
    results: dict = {"frames": args.frames, "ffmpeg": ffmpeg.ffmpeg_version(), "clips": {}}
    eval_dir = clips.data_dir() / "video" / "eval"
    with tempfile.TemporaryDirectory(prefix="codec_speed_") as tmp:
        work = Path(tmp)
        for label, name in CLIPS.items():
            src = eval_dir / f"{name}.mkv"
            clip = clips.prepare_clip(src, work, max_frames=args.frames)
            entry: dict = {"clip": name, "width": clip.width, "height": clip.height,
                           "frames": clip.frames}
            entry["x264"] = ffmpeg_speed(anchors.ANCHORS["x264_ld"], clip, work, 28)
            entry["x265"] = ffmpeg_speed(anchors.ANCHORS["x265_ld"], clip, work, 28)
            if ok:
                short = clips.prepare_clip(src, work, max_frames=2, name=f"{name}_2f")
                try:
                    g = gan_speed(gan, clip, short, work, args.quality)
                    for ref in ("x264", "x265"):
                        for kind in ("enc", "dec"):
                            ours = g[f"{kind}_fps"] or g[f"{kind}_fps_wall"]
                            g[f"{kind}_speed_vs_{ref}"] = ours / entry[ref][f"{kind}_fps"]
                    entry["gan_compress"] = g
                except RuntimeError as e:
                    entry["gan_compress"] = {"error": str(e)}
            results["clips"][label] = entry
            _print_entry(label, entry)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


def _print_entry(label: str, e: dict) -> None:
    print(f"\n{label}: {e['clip']} ({e['width']}x{e['height']}, {e['frames']} frames)")
    for name in ("x264", "x265"):
        r = e[name]
        print(f"  {name:13s} medium crf{r['q']}: encode {r['enc_fps']:8.1f} fps, "
              f"decode {r['dec_fps']:8.1f} fps, peak RSS {r['enc_peak_rss_mb']:.0f} MB")
    g = e.get("gan_compress")
    if g is None:
        return
    if "error" in g:
        lines = g["error"].strip().splitlines()
        print(f"  gan_compress: failed - {lines[-1] if lines else 'unknown error'}")
        return
    steady = (f"{g['enc_fps']:.2f}" if g["enc_fps"] else "n/a",
              f"{g['dec_fps']:.2f}" if g["dec_fps"] else "n/a")
    print(f"  gan_compress  q{g['quality']}: encode {steady[0]} fps steady "
          f"({g['enc_fps_wall']:.2f} wall), decode {steady[1]} fps steady "
          f"({g['dec_fps_wall']:.2f} wall), peak RSS enc {g['enc_peak_rss_mb']:.0f} MB / "
          f"dec {g['dec_peak_rss_mb']:.0f} MB")
    print(f"  ratios: encode {g['enc_speed_vs_x264']:.4f}x x264, {g['enc_speed_vs_x265']:.4f}x "
          f"x265; decode {g['dec_speed_vs_x264']:.4f}x x264, {g['dec_speed_vs_x265']:.4f}x x265")


if __name__ == "__main__":
    sys.exit(main())
