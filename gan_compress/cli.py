"""The `gan-compress` command line (also `python -m gan_compress`).

  gan-compress encode INPUT OUTPUT.gcv [--model DIR] [--quality N] [--frames N] [--gop N]
  gan-compress decode INPUT.gcv OUTPUT(.y4m|.mkv|.mp4|.png) [--model DIR] [--start N] [--frames N]
  gan-compress info INPUT.gcv [--json]
  gan-compress eval --report DIR [...]            (see `gan-compress eval --help`)
  gan-compress demo [--model DIR] [--out DIR]     (Quick start: the sample clip vs x264)

Errors print one line on stderr and exit with code 2; no traceback, no partial output
(every writer is temp-file-and-rename, a PNG sequence appears all at once). An existing output
is refused unless `-y/--overwrite` is given (`-n` never overwrites); the output may never be the
input. SIGINT exits 130 and SIGTERM 143, both with nothing written. TensorFlow's log lines are
hidden unless `--verbose`.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys

EXIT_USAGE = 2


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM, unwinding like KeyboardInterrupt (exit 143)."""


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("-y", "--overwrite", action="store_true",
                   help="overwrite an existing output (default: refuse)")
    g.add_argument("-n", "--no_overwrite", action="store_true",
                   help="never overwrite an existing output (the default; exits with code 2)")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's log lines")
    p.add_argument("--server", metavar="HOST:PORT",
                   help="code on a TF Serving-compatible server (`gan-compress serve` or a "
                   "tensorflow_model_server with TFC's ops); --model is then the served name")
    p.add_argument("--server_timeout", type=float, default=120.0,
                   help="deadline of each request to --server, seconds")


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gan-compress",
        description="GAN-based learned video codec: encode, decode, inspect and evaluate.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    e = sub.add_parser("encode", help="encode a video or image into a .gcv file")
    e.add_argument("input", help="video (.y4m .mkv .mp4 .avi .webm .mov .yuv) or image (.png .jpg)")
    e.add_argument("output", help="output .gcv file")
    e.add_argument("--model", help="shipped model name (`gan-compress models` lists them; "
                   "default: small-video, with P-frames, for an input of more than one frame, "
                   "small-gan for a single image; small-mse: highest PSNR) or a model dir / "
                   "export")
    e.add_argument("--quality", type=int, default=3, help="quality level, 1 = lowest rate")
    e.add_argument("--frames", type=int, help="encode at most N frames")
    e.add_argument("--gop", type=int, default=None,
                   help="frames per group of pictures: an I-frame every N frames, P-frames "
                   "between; -1 = only the first frame intra; 1 = all intra (default: 12 for a "
                   "video model, 1 for an I-frame-only model)")
    e.add_argument("--intra_period", type=int, default=None, help=argparse.SUPPRESS)
    e.add_argument("--intra_decision", choices=("rd", "fixed"), default="rd",
                   help="rd (default): a scheduled P-frame is also coded as an I-frame and the "
                   "cheaper in rate + lambda * distortion is kept (scene cuts, motion the "
                   "P-frames cannot follow; the GOP restarts there; about 2x encode time); "
                   "fixed: I-frames exactly every --gop frames")
    e.add_argument("--intra_quality_offset", type=int, default=None,
                   help="code the I-frames of a stream with P-frames this many quality levels "
                   "above --quality (capped at the top level; they are the references of "
                   "their GOP; default: gan_compress.gop.DEFAULT_INTRA_QUALITY_OFFSET)")
    e.add_argument("--search_radius", type=int, default=None,
                   help="P-frame encoder: block-motion search range in pixels, 4..128 (like "
                   "x264's --merange; default: the model's, 16 for small-video); wider finds "
                   "fast motion in large frames at some encode time; decoders need nothing new")
    e.add_argument("--width", type=int, help="raw .yuv input: width")
    e.add_argument("--height", type=int, help="raw .yuv input: height")
    e.add_argument("--fps", help="raw .yuv input: frame rate, e.g. 30000/1001")
    e.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    _add_output_flags(e)

    d = sub.add_parser("decode", help="decode a .gcv file")
    d.add_argument("input", help="input .gcv file")
    d.add_argument("output", help="output .y4m, .mkv, .mp4 or .png (frame pattern for video)")
    d.add_argument("--model", help="model dir or export (default: the shipped model whose "
                   "fingerprint the stream records)")
    d.add_argument("--start", type=int, default=0,
                   help="first frame to output (decoding starts at the I-frame before it)")
    d.add_argument("--frames", type=int, help="output at most N frames")
    d.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    _add_output_flags(d)

    i = sub.add_parser("info", help="print a .gcv file's header, frames and bitrate")
    i.add_argument("input", help="input .gcv file")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.add_argument("--max_rows", type=int, default=50, help="frames listed in the table")

    sv = sub.add_parser("serve", help="serve SavedModels over TF Serving's gRPC API")
    sv.add_argument("--model_base_path", required=True,
                    help="folder of models (export.py --model_base_path): <name>/<version>/")
    sv.add_argument("--port", type=int, default=8500, help="gRPC port (0: pick a free one)")
    sv.add_argument("--host", default="0.0.0.0", help="address to listen on")
    sv.add_argument("--threads", type=int, default=8, help="request threads")
    sv.add_argument("--max_message_mb", type=int, default=256,
                    help="largest request or response, MiB (larger: RESOURCE_EXHAUSTED)")
    sv.add_argument("--poll_seconds", type=float, default=1.0,
                    help="how often new version folders are looked for")
    sv.add_argument("--tls_cert", help="PEM certificate chain: serve over TLS")
    sv.add_argument("--tls_key", help="PEM private key of --tls_cert")
    sv.add_argument("--verbose", action="store_true", help="show TensorFlow's log lines")

    m = sub.add_parser("models", help="list the shipped models: type, qualities, fingerprint")
    m.add_argument("--json", action="store_true", help="machine-readable output")

    sub.add_parser("demo", help="the bundled-sample demo against x264 (see `demo --help`)",
                   add_help=False)

    ev = sub.add_parser("eval", help="RD sweep against x264/x265/SVT-AV1/VVenC and a report")
    from gan_compress.evaluation.cli import add_arguments

    add_arguments(ev)
    return p


def _cmd_info(args) -> int:
    from gan_compress import bitstream as bs

    _check_input(args.input)
    from gan_compress import registry

    summary = bs.describe(args.input)
    summary["shipped_model"] = registry.find_by_fingerprint(
        summary["header"]["model_fingerprint"])
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(bs.format_info(summary, max_rows=args.max_rows))
    sys.stdout.flush()  # a closed pipe raises here, inside main's handlers
    return 0


def _cmd_models(args) -> int:
    from gan_compress import registry

    rows = registry.describe_shipped()
    if args.json:
        print(json.dumps([r._asdict() for r in rows], indent=2))
        return 0
    print(f"{'name':<14} {'type':<6} {'qualities':>9}  {'fingerprint':<12}  description")
    for r in rows:
        image_default, video_default = (registry.default_model(video=v) for v in (False, True))
        default = (" (default)" if r.name == image_default == video_default else
                   " (default for images)" if r.name == image_default else
                   " (default for video)" if r.name == video_default else "")
        print(f"{r.name:<14} {r.model_type:<6} {r.qualities:>9}  {r.fingerprint[:12]:<12}  "
              f"{registry.MODEL_TYPES[r.model_type].description}{default}")
    return 0


def _check_input(path: str) -> None:
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory, not a file")


def _check_output(args) -> None:
    """Before any work: the output's directory exists and is writable, the output is not the
    input, and an existing output is only replaced with `-y`. Also removes stale temporary
    files of this output left by killed runs (`.<name>.partial-<pid>...`)."""
    path, source = args.output, args.input
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CLIError(f"{path}: output directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CLIError(f"{path}: output directory {directory} is not writable")
    first = path
    if "%" in path:
        try:
            first = path % 1
        except (TypeError, ValueError):
            raise CLIError(f"{path}: not a frame pattern with one integer field such as "
                           "frame_%05d.png") from None
    same = os.path.abspath(first) == os.path.abspath(source)
    if not same and os.path.exists(first):
        try:
            same = os.path.samefile(first, source)
        except OSError:
            same = False
    if same:
        raise CLIError(f"{path}: the output is the input file; choose another output name")
    if os.path.exists(first) and not args.overwrite:
        how = "-n: never overwrite" if args.no_overwrite else "pass -y to overwrite it"
        raise CLIError(f"{first}: output exists ({how})")
    from gan_compress.io import clean_stale_partials

    clean_stale_partials(path)


def _quiet_tensorflow(verbose: bool) -> None:
    """Hides TensorFlow's C++ and Python log lines unless `verbose` (call before importing it;
    repeated after import for the Python loggers)."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if "absl.logging" in sys.modules:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)


def _load_codec(model, verbose: bool = False):
    _quiet_tensorflow(verbose)
    from gan_compress import api

    codec = api.load(model)
    _quiet_tensorflow(verbose)
    return codec


def _cmd_serve(args) -> int:
    if not os.path.isdir(args.model_base_path):
        raise CLIError(f"{args.model_base_path}: model base path is not a directory")
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be in 0..65535, got {args.port}")
    if args.threads < 1 or args.max_message_mb < 1 or args.poll_seconds <= 0:
        raise CLIError("--threads, --max_message_mb and --poll_seconds must be positive")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise CLIError("--tls_cert and --tls_key go together")
    for path in (args.tls_cert, args.tls_key):
        if path:
            _check_input(path)
    _quiet_tensorflow(args.verbose)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from gan_compress.serving.server import Server

    server = Server(args.model_base_path, args.port, args.host, args.threads,
                    args.max_message_mb << 20, args.poll_seconds, args.tls_cert, args.tls_key)
    server.start()
    names = server.repo.names()
    print(f"serving {len(names)} model(s) from {args.model_base_path} on {args.host}:"
          f"{server.port}: " + ", ".join(f"{n} (versions {server.repo.versions(n)})"
                                          for n in names), flush=True)
    try:
        server.wait()
    except (KeyboardInterrupt, Terminated):  # Ctrl-C, docker stop, systemd: a clean stop
        print("gan-compress serve: stopping", file=sys.stderr, flush=True)
    finally:
        server.stop()
    return 0


def _remote_codec(args, name: str):
    from gan_compress.serving.client import ServingClient

    if args.server_timeout <= 0:
        raise CLIError(f"--server_timeout must be positive, got {args.server_timeout}")
    _quiet_tensorflow(args.verbose)
    return ServingClient(args.server, timeout=args.server_timeout).codec(name)


def _check_quality_before_load(model: str | None, quality: int) -> None:
    from gan_compress import registry

    try:
        path, _ = registry.resolve(model)
    except registry.UnknownModelError as e:
        raise CLIError(str(e)) from None
    cfg_path = os.path.join(path, "config.json")
    if not os.path.isfile(cfg_path):
        return  # an export or other layout: checked after loading
    with open(cfg_path) as f:
        n = int(json.load(f)["model"]["num_qualities"])
    if quality > n:
        raise CLIError(f"--quality must be in 1..{n}, got {quality}")


def _cmd_encode(args) -> int:
    _check_input(args.input)
    if not args.output.lower().endswith(".gcv"):
        raise CLIError(f"{args.output}: the output of encode must be a .gcv file")
    _check_output(args)
    if args.quality < 1:
        raise CLIError(f"--quality must be >= 1, got {args.quality}")
    if args.frames is not None and args.frames < 1:
        raise CLIError(f"--frames must be >= 1, got {args.frames}")
    if args.intra_quality_offset is not None and args.intra_quality_offset < 0:
        raise CLIError(f"--intra_quality_offset must be >= 0, got {args.intra_quality_offset}")
    if args.search_radius is not None and not 4 <= args.search_radius <= 128:
        raise CLIError(f"--search_radius must be in 4..128 pixels, got {args.search_radius}")
    if args.intra_period is not None:  # the older spelling of --gop
        if args.intra_period < 1:
            raise CLIError(f"--intra_period must be >= 1, got {args.intra_period}")
        args.gop = args.gop if args.gop is not None else args.intra_period
    if args.gop is not None and (args.gop == 0 or args.gop < -1):
        raise CLIError(f"--gop must be >= 1 or -1 (only the first frame intra), got {args.gop}")
    input_path = args.input
    if input_path.lower().endswith(".yuv"):
        if not (args.width and args.height and args.fps):
            raise CLIError(f"{input_path}: raw .yuv input needs --width, --height and --fps")
    raw = {"width": args.width, "height": args.height, "fps": args.fps}
    raw = {k: v for k, v in raw.items() if v is not None}
    from gan_compress import io as gio

    # Open the input (header and first frame) and check the quality against the model's
    # config before the seconds it takes to load the model.
    with gio.open_video(input_path, **raw) as reader:
        num_frames = reader.info.num_frames
    from gan_compress import registry

    # without --model: the video model for more than one frame, the image model otherwise
    video = (num_frames is None or num_frames > 1) and args.frames != 1
    model = args.model or registry.default_model(video or args.gop not in (None, 1))
    if args.server:
        codec = _remote_codec(args, model)
    else:
        _check_quality_before_load(model, args.quality)
        codec = _load_codec(model, args.verbose)
    if args.quality > codec.num_qualities:
        raise CLIError(f"--quality must be in 1..{codec.num_qualities}, got {args.quality}")
    intra_period = None if args.gop is None else (0 if args.gop == -1 else args.gop)
    if intra_period not in (None, 1) and not getattr(codec, "supports_inter", False):
        raise CLIError(f"model {codec.name} codes I-frames only: --gop must be 1, got {args.gop}")
    stats = codec.compress_video(
        input_path, args.output, quality=args.quality, frames=args.frames,
        intra_period=intra_period, progress=not args.quiet, raw_options=raw,
        intra_decision=args.intra_decision, intra_quality_offset=args.intra_quality_offset,
        search_radius=args.search_radius,
    )
    if not args.quiet:
        print(f"{args.output}: {stats.summary('encoded')}")
    return 0


def _cmd_decode(args) -> int:
    _check_input(args.input)
    if not args.output.lower().endswith((".y4m", ".mkv", ".mp4", ".png")):
        raise CLIError(f"{args.output}: output must be .y4m, .mkv, .mp4 or .png")
    _check_output(args)
    if args.start < 0:
        raise CLIError(f"--start must be >= 0, got {args.start}")
    if args.frames is not None and args.frames < 1:
        raise CLIError(f"--frames must be >= 1, got {args.frames}")
    from gan_compress import api
    from gan_compress import bitstream as bs

    # Validate the container (magic, version, sizes, every packet's CRC and shapes: one
    # streaming read) before loading TensorFlow, so a bad file fails at once, writes nothing.

    with bs.ContainerReader(args.input) as reader:
        api.check_frame_size(args.input, reader.header.width, reader.header.height)
        for packet in reader:  # CRCs, and shapes against the header (no TensorFlow yet)
            api.check_packet(packet, reader.header, args.input)
        if args.start >= reader.num_frames:
            raise CLIError(f"{args.input}: --start {args.start} is past the last frame "
                           f"({reader.num_frames - 1})")
    if args.server:
        codec = _remote_codec(args, args.model or reader.header.model_name)
    else:
        if args.model is None:
            from gan_compress import registry

            args.model = registry.model_for_stream(args.input)
        codec = _load_codec(args.model, args.verbose)
    stats = codec.decompress_video(args.input, args.output, progress=not args.quiet,
                                   start=args.start, frames=args.frames)
    if not args.quiet:
        print(f"{args.output}: {stats.summary('decoded')}")
    return 0


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that are the user's input problem (message only, exit 2)."""
    from gan_compress import bitstream as bs
    from gan_compress.io import VideoError

    errors: list[type[BaseException]] = [CLIError, bs.BitstreamError, VideoError, ValueError]
    if "gan_compress.serving.client" in sys.modules:
        errors.append(sys.modules["gan_compress.serving.client"].ServingError)
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        errors.append(tf.errors.InvalidArgumentError)
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "eval":
        from gan_compress.evaluation.cli import main as eval_main

        return eval_main(argv[1:])
    if argv and argv[0] == "demo":
        from gan_compress.demo import main as demo_main

        return demo_main(argv[1:])
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed usage / help
        return int(e.code or 0)
    handlers = {"encode": _cmd_encode, "decode": _cmd_decode, "info": _cmd_info,
                "serve": _cmd_serve, "models": _cmd_models}
    _quiet_tensorflow(getattr(args, "verbose", False))
    previous = _install_sigterm()
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print("gan-compress: interrupted; no output was written", file=sys.stderr)
        return 130
    except Terminated:
        print("gan-compress: terminated (SIGTERM); no output was written", file=sys.stderr)
        return 143
    except BrokenPipeError:
        # The reader of our stdout went away (`... | head -1`): silence the final flush.
        with _suppress_os_error():
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"gan-compress {args.command}: error: output pipe closed", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print(f"gan-compress {args.command}: error: {_os_error_line(e, args)}",
              file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 - classified below
        if isinstance(e, _user_errors()):
            print(f"gan-compress {args.command}: error: {_one_line(e)}", file=sys.stderr)
            return EXIT_USAGE
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _suppress_os_error():
    import contextlib

    return contextlib.suppress(OSError, ValueError)


def _install_sigterm():
    """SIGTERM (timeout, docker stop, systemd) unwinds like Ctrl-C, so every atomic writer
    removes its temporary file. Returns the previous handler (None off the main thread)."""
    def handler(signum, frame):
        raise Terminated()

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. main() called from a worker thread)
        return None


_WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG, errno.EIO}


def _os_error_line(e: OSError, args) -> str:
    """One line naming the user's file (not our hidden temporary one) and the problem."""
    reason = e.strerror or str(e)
    filename = os.fspath(e.filename) if isinstance(e.filename, str | os.PathLike) else None
    inp, out = getattr(args, "input", None), getattr(args, "output", None)
    if filename and inp and os.path.abspath(filename) == os.path.abspath(inp):
        return f"{inp}: cannot read: {reason}"
    if out and (e.errno in _WRITE_ERRNOS or e.errno == errno.EACCES or filename is None
                or ".partial-" in os.path.basename(filename)):
        return f"{out}: cannot write: {reason}"
    return f"{filename}: {reason}" if filename else reason


def _one_line(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e) or type(e).__name__
    first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    if "sanity check failed" in text.lower():
        return f"corrupt entropy-coded data ({first[:160]})"
    return first


def console_main() -> None:
    code = main()
    api = sys.modules.get("gan_compress.api")
    if api is not None and api.stuck_decoders():
        # A range decoder is spinning on corrupt data in a thread that cannot be cancelled;
        # outputs are already cleaned up, so leave without waiting for it (or for TF teardown).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
