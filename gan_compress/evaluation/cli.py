"""`gan-compress eval`: RD sweep of gan_compress against conventional anchors, and the report.

    gan-compress eval --report reports/rd [--clips carphone cars ...] [--model DIR]
                      [--anchors x264,x265,svtav1,vvenc] [--quick] [--images]

Writes into the report directory: `results.json` (every encode, metric and command),
`plots/*.png`, `report.md` (BD-rate tables with overlap flags) and `index.html` (static; plots,
tables and a side-by-side crop viewer). The main CLI wires `add_arguments` / `run` in as its `eval`
subcommand; `python -m gan_compress.evaluation.cli ...` runs it standalone. One run at a time
per report directory: a second one exits with code 2 naming the first's pid (`report_lock`).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import sys
from pathlib import Path

QUICK_FRAMES = 12
QUICK_CLIPS = ("carphone_qcif_60f", "cars_320x240_30f")
QUICK_IMAGES = 3


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the `eval` options to `parser`."""
    parser.add_argument("--report", required=True, type=Path, metavar="DIR",
                        help="output directory (results.json, plots/, report.md, index.html)")
    parser.add_argument("--clips", nargs="+", metavar="CLIP",
                        help="clip files or eval clip names (default: every clip in "
                             "$GAN_COMPRESS_DATA/video/eval; --quick: carphone and cars)")
    parser.add_argument("--model", metavar="DIR", help="model/export directory for gan_compress")
    parser.add_argument("--anchors", default="all",
                        help="comma-separated anchors or aliases: x264_ld, x265_ld, x265_veryslow, "
                             "svtav1_p6, vvenc_medium; x264, x265 (both), svtav1, vvenc, all, none "
                             "(default: all)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: first {QUICK_FRAMES} frames of {len(QUICK_CLIPS)} small "
                             f"clips (and {QUICK_IMAGES} Kodak images with --images)")
    parser.add_argument("--frames", type=int, metavar="N",
                        help="use the first N frames of each clip")
    parser.add_argument("--in-process", action="store_true",
                        help="run gan_compress through the Python API in this process (one model "
                             "load per sweep; same bytes and decodes as the CLI) instead of one "
                             "CLI process per file")
    parser.add_argument("--anchors-only", action="store_true",
                        help="do not run gan_compress (conventional anchors only)")
    parser.add_argument("--codec-cmd", metavar="CMD",
                        help="command running the gan_compress CLI (default: the gan-compress next "
                             "to this Python, else `python -m gan_compress`)")
    parser.add_argument("--qualities", type=_int_list, metavar="LIST",
                        help="gan_compress quality levels, e.g. 1,3,6 (default: all, from "
                             "`gan-compress info --json`)")
    parser.add_argument("--gop", type=_int_list, metavar="LIST",
                        help="intra periods of a video model to sweep as separate curves, e.g. "
                             "1,12,-1 (1: I-only, -1: only the first frame intra); with 1 in the "
                             "list, the report adds each GOP's BD-rate against I-only "
                             "(default: the CLI's default GOP)")
    parser.add_argument("--intra-decision", choices=("rd", "fixed"),
                        help="how a video model places I-frames (gan-compress encode "
                             "--intra_decision; default: the CLI's, rd); fixed is named in the "
                             "codec names (gan_compress_gop12_fixed)")
    parser.add_argument("--intra-quality-offset", type=int,
                        help="I-frames this many quality levels above the P-frames (gan-compress "
                             "encode --intra_quality_offset; default: the CLI's); named in the "
                             "codec names (gan_compress_gop12_io1)")
    parser.add_argument("--search-radius", type=int,
                        help="P-frame encoder block-search range in pixels (gan-compress encode "
                             "--search_radius; default: the model's); named in the codec names "
                             "(gan_compress_gop12_sr32)")
    parser.add_argument("--metrics", default="psnr,msssim,vmaf,ssimulacra2",
                        help="metric groups: psnr, msssim, vmaf, ssimulacra2 (default: all)")
    parser.add_argument("--images", action="store_true",
                        help="also run the Kodak image sweep (JPEG, WebP, x265 4:4:4, AV1 4:4:4)")
    parser.add_argument("--images-only", action="store_true", help="only the Kodak image sweep")
    parser.add_argument("--image-dir", type=Path, metavar="DIR",
                        help="directory of PNGs for the image sweep (default: Kodak)")
    parser.add_argument("--image-anchors", default="all",
                        help="comma-separated: jpeg, webp, x265_444, av1_444 (default: all)")
    parser.add_argument("--reference", type=Path, metavar="JSON",
                        help="reference anchors to compare with (default: "
                             "$GAN_COMPRESS_DATA/reference/anchors_eval.json when present)")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference comparison")
    parser.add_argument("--resume", action="store_true",
                        help="reuse successful points already in DIR/results.json")
    parser.add_argument("--report-only", action="store_true",
                        help="only re-render plots/report.md/index.html from DIR/results.json")
    parser.add_argument("--threads", type=int, default=2,
                        help="encoder/libvmaf threads (default 2)")
    parser.add_argument("--viewer-crop", type=int, default=256, metavar="PX",
                        help="side of the centred crops in the viewer (default 256)")
    parser.add_argument("--keep-work", action="store_true", help="keep the raw decodes in DIR/work")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


LOCK_NAME = ".eval.lock"


class ReportBusyError(RuntimeError):
    """Another `gan-compress eval` holds the report directory."""


@contextlib.contextmanager
def report_lock(report_dir: Path):
    """Holds an exclusive lock on `report_dir` (a `flock` on DIR/.eval.lock, released by the
    kernel however the process ends) for one run: two runs on one directory would delete each
    other's work files. Raises ReportBusyError naming the holder's pid if the lock is taken."""
    path = report_dir / LOCK_NAME
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise ReportBusyError(f"{report_dir} is in use by another gan-compress eval (pid "
                                  f"{holder}); wait for it to finish or choose another "
                                  f"--report") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)


def run(args: argparse.Namespace) -> int:
    """Runs the sweep(s) and writes the report; returns a process exit code."""
    report_dir: Path = args.report
    with contextlib.ExitStack() as stack:
        try:
            report_dir.mkdir(parents=True, exist_ok=True)
            stack.enter_context(report_lock(report_dir))
        except (ReportBusyError, OSError) as e:
            _log(f"error: {e}")
            return 2
        return _run_locked(args, report_dir)


def _run_locked(args: argparse.Namespace, report_dir: Path) -> int:
    import shlex

    from gan_compress.evaluation import anchors, clips, codecs, images, report, sweep

    results_path = report_dir / "results.json"
    if args.report_only:
        if not results_path.exists():
            _log(f"error: {results_path} does not exist")
            return 2
        files = report.write_report(report_dir)
        _log(f"wrote {files.markdown} and {files.html}")
        return 0

    try:
        if args.gop and any(g == 0 or g < -1 for g in args.gop):
            raise ValueError(f"--gop values must be >= 1 or -1, got {args.gop}")
        if args.gop and len(set(args.gop)) != len(args.gop):
            raise ValueError(f"--gop lists a value twice: {args.gop}")
        anchor_list = anchors.resolve(args.anchors)
        image_anchors = images.resolve_image_anchors(args.image_anchors)
        clip_specs = args.clips or (list(QUICK_CLIPS) if args.quick else None)
        clip_paths = clips.resolve_clips(clip_specs)
    except ValueError as e:
        _log(f"error: {e}")
        return 2
    frames = args.frames or (QUICK_FRAMES if args.quick else None)
    metric_groups = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    reference = None if args.no_reference else (args.reference or clips.default_reference())

    test_codecs = []
    if not args.anchors_only:
        command = shlex.split(args.codec_cmd) if args.codec_cmd else None
        for gop in args.gop or [None]:
            if args.in_process:
                from gan_compress import registry

                test_codecs.append(codecs.InProcessCodec(
                    args.model or registry.DEFAULT_MODEL, name="gan_compress", gop=gop,
                    qualities=args.qualities, intra_decision=args.intra_decision,
                    intra_quality_offset=args.intra_quality_offset,
                    search_radius=args.search_radius))
            else:
                test_codecs.append(codecs.GanCompressCodec(
                    model=args.model, command=command, qualities=args.qualities, gop=gop,
                    intra_decision=args.intra_decision,
                    intra_quality_offset=args.intra_quality_offset,
                    search_radius=args.search_radius))

    results: dict = {}
    if not args.images_only:
        config = sweep.SweepConfig(
            report_dir=report_dir, clips=tuple(clip_paths), anchors=tuple(anchor_list),
            metrics=metric_groups, max_frames=frames, threads=args.threads,
            viewer_crop=args.viewer_crop, resume=args.resume, keep_work=args.keep_work,
            reference=reference,
        )  # fmt: skip
        results = sweep.run_sweep(config, test_codecs, progress=not args.no_progress, log=_log)
    elif results_path.exists():
        results = json.loads(results_path.read_text())
    if args.images or args.images_only:
        if args.image_dir:
            image_paths = sorted(args.image_dir.glob("*.png"))
        else:
            image_paths = clips.default_kodak()
        if args.quick:
            image_paths = image_paths[:QUICK_IMAGES]
        results["images"] = images.run_image_sweep(
            image_paths, report_dir, image_anchors, test_codecs, progress=not args.no_progress,
            resume=args.resume, log=_log)
    results.setdefault("tool", sweep.tool_info())
    results_path.write_text(json.dumps(results, indent=1))
    files = report.write_report(report_dir, results)

    rows = results.get("rows", [])
    errors = [r for r in rows if r.get("error")]
    _log(f"{len(rows)} video points ({len(errors)} failed); report: {files.html}")
    ref = results.get("reference_check")
    if ref and ref.get("points"):
        _log(f"reference: {ref['points']} points, max |bytes dev| "
             f"{ref['max_abs_bytes_dev_pct']:.3f} %, max |PSNR-Y dev| "
             f"{ref.get('max_abs_psnr_y_seqmse_dev', float('nan')):.3f} dB, max |VMAF dev| "
             f"{ref.get('max_abs_vmaf_dev', float('nan')):.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gan-compress eval", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
