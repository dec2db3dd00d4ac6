"""The `gan-compress` command line: encode/decode/info, every user error, processes and imports.

Most tests call `cli.main([...])` in-process with the model loader memoised (loading and
finalizing a model takes tens of seconds); tests about processes run `python -m gan_compress`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from conftest import REPO, synthetic_rgb

from gan_compress import api, cli
from gan_compress import bitstream as bs
from gan_compress import io as gio

CONSOLE_SCRIPT = Path(sys.executable).parent / "gan-compress"
_LOADED: dict[str, api.Codec] = {}


class Result(NamedTuple):
    code: int
    out: str
    err: str


def run_cli(capsys, *argv) -> Result:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return Result(code, out, err)


def run_process(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=timeout)


@pytest.fixture
def model_loads(monkeypatch, tiny_model_dir, tiny_codec) -> list[str]:
    """Memoises `cli._load_codec` (the tiny model is already loaded); returns the paths asked."""
    _LOADED.setdefault(tiny_model_dir, tiny_codec)
    asked = []

    def load(model, verbose=False):
        asked.append(model)
        if model not in _LOADED:
            _LOADED[model] = api.load(model)
        return _LOADED[model]

    monkeypatch.setattr(cli, "_load_codec", load)
    return asked


@pytest.fixture(scope="module")
def small_gcv(tiny_codec, small_y4m, tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("cli_gcv") / "small.gcv")
    tiny_codec.compress_video(small_y4m, path, quality=3)
    return path


@pytest.fixture(scope="module")
def other_model_dir(tiny_codec, tmp_path_factory) -> str:
    """A model dir with the tiny config but freshly initialised weights (another fingerprint)."""
    from gan_compress.models.iframe import IFrameCodec

    model = IFrameCodec(tiny_codec.config.model)
    model.build_for_shape()
    path = str(tmp_path_factory.mktemp("other_model"))
    api.save_codec_checkpoint(model, tiny_codec.config, path)
    return path


def assert_user_error(result: Result, command: str, *needles: str) -> str:
    """Exit 2, nothing on stdout, exactly one stderr line with the needles, no traceback."""
    assert result.code == 2, result
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"gan-compress {command}: error: ")
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


# -- processes ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_encode_and_decode_in_separate_processes_match_in_process_decoding(
    tmp_path, tiny_model_dir, tiny_codec, sample_clip
):
    gcv = tmp_path / "clip.gcv"
    encode = run_process(sys.executable, "-m", "gan_compress", "encode", sample_clip, gcv,
                         "--model", tiny_model_dir, "--quality", "2", "--frames", "3")
    assert encode.returncode == 0, encode.stderr
    assert f"{gcv}: encoded 3 frame(s) 352x288" in encode.stdout
    pattern = tmp_path / "dec_%03d.png"
    decode = run_process(sys.executable, "-m", "gan_compress", "decode", gcv, pattern,
                         "--model", tiny_model_dir, "--quiet")
    assert decode.returncode == 0, decode.stderr
    assert decode.stdout == ""

    # This process loaded the same model dir: same fingerprint (checked) and same frames.
    expected = list(tiny_codec.iter_decoded(str(gcv)))
    assert len(expected) == 3
    assert sorted(p.name for p in tmp_path.glob("dec_*")) == [
        "dec_001.png", "dec_002.png", "dec_003.png"]
    for i, rgb in enumerate(expected, start=1):
        np.testing.assert_array_equal(gio.read_image(str(pattern) % i), rgb)
    # And encoding is deterministic across processes: byte-identical files.
    here = tmp_path / "here.gcv"
    tiny_codec.compress_video(sample_clip, str(here), quality=2, frames=3)
    assert here.read_bytes() == gcv.read_bytes()


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "gan_compress"], [str(CONSOLE_SCRIPT)]], ids=["python -m", "script"])
def test_help_lists_the_commands_and_encode_help_lists_its_options(command):
    top = run_process(*command, "--help", timeout=60)
    assert top.returncode == 0, top.stderr
    assert top.stdout.startswith("usage: gan-compress")
    for name in ("encode", "decode", "info"):
        assert f"    {name} " in top.stdout
    encode = run_process(*command, "encode", "--help", timeout=60)
    assert encode.returncode == 0, encode.stderr
    for option in ("--model", "--quality", "--frames", "--gop"):
        assert option in encode.stdout


def test_user_error_in_a_real_process_is_one_stderr_line_and_exit_code_2(small_gcv, tmp_path):
    data = Path(small_gcv).read_bytes()
    cut = tmp_path / "cut.gcv"
    cut.write_bytes(data[:-10])
    proc = run_process(CONSOLE_SCRIPT, "decode", cut, tmp_path / "out.y4m", timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"gan-compress decode: error: {cut}: truncated")
    assert os.listdir(tmp_path) == ["cut.gcv"]


def test_info_runs_without_importing_tensorflow(small_gcv):
    script = (
        "import json, sys\n"
        "from gan_compress import cli\n"
        "code = cli.main(['info', sys.argv[1], '--json'])\n"
        "heavy = sorted(m for m in ('tensorflow', 'tensorflow_compression') if m in sys.modules)\n"
        "print(json.dumps({'code': code, 'heavy': heavy}))\n"
    )
    proc = run_process(sys.executable, "-c", script, small_gcv, timeout=60)
    assert proc.returncode == 0, proc.stderr
    *info_lines, last = proc.stdout.strip().splitlines()
    assert json.loads(last) == {"code": 0, "heavy": []}
    assert json.loads("\n".join(info_lines))["header"]["num_frames"] == 4


# -- info -----------------------------------------------------------------------------------------


def test_info_prints_header_per_frame_sizes_and_bitrate(capsys, small_gcv, tiny_codec):
    result = run_cli(capsys, "info", small_gcv)
    assert result.code == 0 and result.err == ""
    text = result.out
    with bs.ContainerReader(small_gcv) as reader:
        sizes = [p.size for p in reader.packet_sizes()]
    assert f"model      {tiny_codec.name}  fingerprint {tiny_codec.fingerprint.hex()[:12]}" in text
    assert "video      80x48  25/1 fps" in text
    assert "frames     4 (4 I)" in text
    bpp = 8 * os.path.getsize(small_gcv) / (80 * 48 * 4)
    assert f"rate       {bpp:.4f} bpp" in text
    rows = text.split("type  quality")[1].splitlines()[1:]  # after the table's header row
    assert [row.split() for row in rows] == [
        [str(i), "I", "3", f"{size:,}"] for i, size in enumerate(sizes)]


def test_info_json_is_parseable_with_frame_count_and_bpp(capsys, small_gcv):
    result = run_cli(capsys, "info", small_gcv, "--json")
    assert result.code == 0
    summary = json.loads(result.out)
    assert summary["header"]["num_frames"] == len(summary["frames"]) == 4
    size = os.path.getsize(small_gcv)
    assert summary["total_bytes"] == size
    assert summary["bits_per_pixel"] == pytest.approx(8 * size / (80 * 48 * 4))
    assert summary["kbps"] == pytest.approx(8 * size / (4 / 25) / 1000)


# -- encode / decode in-process -------------------------------------------------------------------


def test_encode_prints_a_summary_and_decode_writes_the_decoded_frames(capsys, model_loads,
                                                                      tiny_model_dir, tiny_codec,
                                                                      small_y4m, tmp_path):
    gcv, y4m = tmp_path / "out.gcv", tmp_path / "out.y4m"
    enc = run_cli(capsys, "encode", small_y4m, gcv, "--model", tiny_model_dir, "--frames", "3")
    assert enc.code == 0
    assert enc.out.startswith(f"{gcv}: encoded 3 frame(s) 80x48: {gcv.stat().st_size:,} bytes")
    dec = run_cli(capsys, "decode", gcv, y4m, "--model", tiny_model_dir, "--quiet")
    assert dec == Result(0, "", "")
    assert model_loads == [tiny_model_dir, tiny_model_dir]
    expected = list(tiny_codec.iter_decoded(str(gcv)))
    with gio.open_video(y4m) as reader:
        frames = list(reader)
    assert len(frames) == len(expected) == 3
    np.testing.assert_array_equal(frames[2].y, gio.rgb_to_yuv420(expected[2], reader.info.color).y)


def test_odd_size_png_encodes_and_decodes_to_an_exact_png(capsys, model_loads, tiny_model_dir,
                                                          tiny_codec, tmp_path):
    src, gcv, out = tmp_path / "odd.png", tmp_path / "odd.gcv", tmp_path / "odd_out.png"
    gio.write_png(str(src), synthetic_rgb(4, 17, 33))
    assert run_cli(capsys, "encode", src, gcv, "--model", tiny_model_dir, "--quiet").code == 0
    assert run_cli(capsys, "decode", gcv, out, "--model", tiny_model_dir, "--quiet").code == 0
    decoded = gio.read_image(str(out))
    assert decoded.shape == (17, 33, 3)
    np.testing.assert_array_equal(decoded, next(tiny_codec.iter_decoded(str(gcv))))

    refused = run_cli(capsys, "decode", gcv, tmp_path / "odd.y4m", "--model", tiny_model_dir)
    assert_user_error(refused, "decode", "odd.y4m: y4m output is 4:2:0 and needs an even size",
                      "33x17", "decode to .png")
    assert sorted(os.listdir(tmp_path)) == ["odd.gcv", "odd.png", "odd_out.png"]


def test_raw_yuv_with_its_geometry_encodes(capsys, model_loads, tiny_model_dir, tmp_path):
    frame = gio.rgb_to_yuv420(synthetic_rgb(0, 48, 64), gio.ColorSpec.for_size(64, 48))
    raw = tmp_path / "clip.yuv"
    raw.write_bytes(b"".join(p.tobytes() for p in frame) * 2)
    result = run_cli(capsys, "encode", raw, tmp_path / "clip.gcv", "--model", tiny_model_dir,
                     "--width", "64", "--height", "48", "--fps", "30000/1001", "--quiet")
    assert result.code == 0, result.err
    with bs.ContainerReader(str(tmp_path / "clip.gcv")) as reader:
        h = reader.header
    assert (h.width, h.height, h.fps_num, h.fps_den, h.num_frames) == (64, 48, 30000, 1001, 2)


# -- errors ---------------------------------------------------------------------------------------


def _make_inputs(d: Path, small_y4m: str, small_gcv: str, tiny_codec) -> None:
    shutil.copy(small_y4m, d / "clip.y4m")
    shutil.copy(small_gcv, d / "clip.gcv")
    (d / "text.mp4").write_text("this is not a video\n")
    (d / "raw.yuv").write_bytes(bytes(64 * 48 * 3 // 2))
    data = Path(small_gcv).read_bytes()
    (d / "truncated.gcv").write_bytes(data[: len(data) // 2])
    with bs.ContainerReader(small_gcv) as reader:
        packet = list(reader.packet_sizes())[1]
    flipped = bytearray(data)  # a byte in the middle of packet 1's entropy-coded strings
    flipped[packet.offset + packet.size - 4 - packet.payload_bytes // 2] ^= 0x40
    (d / "flipped.gcv").write_bytes(bytes(flipped))
    (d / "odd.gcv").write_bytes(tiny_codec.compress_image(synthetic_rgb(0, 17, 33)))
    (d / "existing.gcv").write_bytes(b"keep me")
    (d / "existing.y4m").write_bytes(b"keep me")
    (d / "bomb.png").write_bytes(_png_header_only(100_000, 100_000))


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares `width` x `height` (a decompression bomb's shape)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


ERROR_CASES = {
    # id: (argv, words the message must contain)
    "missing input": (["encode", "{d}/missing.y4m", "{d}/out.gcv"],
                      ["{d}/missing.y4m: no such file"]),
    "text named .mp4": (["encode", "{d}/text.mp4", "{d}/out.gcv"],
                        ["{d}/text.mp4: not a readable video file"]),
    "output not .gcv": (["encode", "{d}/clip.y4m", "{d}/out.mp4"],
                        ["{d}/out.mp4: the output of encode must be a .gcv file"]),
    "output dir missing": (["encode", "{d}/clip.y4m", "{d}/no_dir/out.gcv"],
                           ["{d}/no_dir/out.gcv: output directory", "does not exist"]),
    "quality 0": (["encode", "{d}/clip.y4m", "{d}/out.gcv", "--quality", "0"],
                  ["--quality must be >= 1, got 0"]),
    "quality 99": (["encode", "{d}/clip.y4m", "{d}/out.gcv", "--quality", "99"],
                   ["--quality must be in 1..6, got 99"]),
    "frames 0": (["encode", "{d}/clip.y4m", "{d}/out.gcv", "--frames", "0"],
                 ["--frames must be >= 1, got 0"]),
    "intra quality offset -1": (["encode", "{d}/clip.y4m", "{d}/out.gcv",
                                 "--intra_quality_offset", "-1"],
                                ["--intra_quality_offset must be >= 0, got -1"]),
    "search radius 1000": (["encode", "{d}/clip.y4m", "{d}/out.gcv", "--search_radius", "1000"],
                           ["--search_radius must be in 4..128 pixels, got 1000"]),
    "gop 2 on an I-frame model": (["encode", "{d}/clip.y4m", "{d}/out.gcv", "--gop", "2"],
                                  ["codes I-frames only: --gop must be 1, got 2"]),
    "gop 0": (["encode", "{d}/clip.y4m", "{d}/out.gcv", "--gop", "0"],
              ["--gop must be >= 1 or -1 (only the first frame intra), got 0"]),
    "raw yuv without geometry": (["encode", "{d}/raw.yuv", "{d}/out.gcv", "--width", "64"],
                                 ["{d}/raw.yuv: raw .yuv input needs --width, --height and --fps"]),
    "decode missing input": (["decode", "{d}/missing.gcv", "{d}/out.y4m"],
                             ["{d}/missing.gcv: no such file"]),
    "decode truncated": (["decode", "{d}/truncated.gcv", "{d}/out.y4m"],
                         ["{d}/truncated.gcv: truncated at byte"]),
    "decode flipped byte": (["decode", "{d}/flipped.gcv", "{d}/out.y4m"],
                            ["{d}/flipped.gcv: CRC mismatch in packet 1", "corrupt"]),
    "decode not a gcv": (["decode", "{d}/text.mp4", "{d}/out.y4m"],
                         ["{d}/text.mp4: not a .gcv container"]),
    "decode to .avi": (["decode", "{d}/clip.gcv", "{d}/out.avi"],
                       ["{d}/out.avi: output must be .y4m, .mkv, .mp4 or .png"]),
    "decode odd size to y4m": (["decode", "{d}/odd.gcv", "{d}/out.y4m"],
                               ["{d}/out.y4m: y4m output is 4:2:0", "33x17"]),
    "decode odd size to mkv": (["decode", "{d}/odd.gcv", "{d}/out.mkv"],
                               ["{d}/out.mkv: mkv output is 4:2:0", "33x17"]),
    "decode output dir missing": (["decode", "{d}/clip.gcv", "{d}/no_dir/f_%03d.png"],
                                  ["{d}/no_dir/f_%03d.png: output directory"]),
    "encode over an existing output": (["encode", "{d}/clip.y4m", "{d}/existing.gcv"],
                                       ["{d}/existing.gcv: output exists", "-y"]),
    "encode -n over an existing output": (["encode", "{d}/clip.y4m", "{d}/existing.gcv", "-n"],
                                          ["{d}/existing.gcv: output exists", "-n"]),
    "decode over an existing output": (["decode", "{d}/clip.gcv", "{d}/existing.y4m"],
                                       ["{d}/existing.y4m: output exists"]),
    "encode output is the input": (["encode", "{d}/clip.gcv", "{d}/clip.gcv", "-y"],
                                   ["{d}/clip.gcv: the output is the input file"]),
    "decode output is the input": (["decode", "{d}/existing.y4m", "{d}/existing.y4m", "-y"],
                                   ["{d}/existing.y4m: the output is the input file"]),
    "decompression bomb png": (["encode", "{d}/bomb.png", "{d}/out.gcv"],
                               ["{d}/bomb.png: image size", "is above the maximum"]),
    "fps 1/0": (["encode", "{d}/raw.yuv", "{d}/out.gcv", "--width", "64", "--height", "48",
                 "--fps", "1/0"], ["frame rate must be a positive number", "'1/0'"]),
    "info missing input": (["info", "{d}/missing.gcv"], ["{d}/missing.gcv: no such file"]),
    "info truncated": (["info", "{d}/truncated.gcv"], ["{d}/truncated.gcv: truncated"]),
    "info flipped byte": (["info", "{d}/flipped.gcv"], ["{d}/flipped.gcv: CRC mismatch"]),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_user_error_exits_2_with_one_line_naming_the_problem_and_writes_nothing(
    case, capsys, model_loads, tiny_model_dir, tiny_codec, small_y4m, small_gcv, tmp_path
):
    _make_inputs(tmp_path, small_y4m, small_gcv, tiny_codec)
    before = sorted(os.listdir(tmp_path))
    argv, needles = ERROR_CASES[case]
    argv = [a.format(d=tmp_path) for a in argv]
    if argv[0] != "info":
        argv += ["--model", tiny_model_dir]
    result = run_cli(capsys, *argv)  # with the progress bar on: it must not have started
    assert_user_error(result, argv[0], *(n.format(d=tmp_path) for n in needles))
    assert sorted(os.listdir(tmp_path)) == before  # no output, no temporary file
    assert (tmp_path / "existing.gcv").read_bytes() == b"keep me"
    assert (tmp_path / "existing.y4m").read_bytes() == b"keep me"


@pytest.mark.parametrize("name", ["text.mp4", "truncated.gcv", "flipped.gcv", "bomb.png"])
def test_bad_inputs_are_reported_before_the_model_is_loaded(name, capsys, model_loads,
                                                            tiny_codec, small_y4m, small_gcv,
                                                            tmp_path):
    _make_inputs(tmp_path, small_y4m, small_gcv, tiny_codec)
    command = "decode" if name.endswith(".gcv") else "encode"
    out = tmp_path / ("out.gcv" if command == "encode" else "out.y4m")
    result = run_cli(capsys, command, tmp_path / name, out, "--model", "/no/such/model")
    assert_user_error(result, command, f"{tmp_path / name}: ")
    assert model_loads == []


def test_decode_with_another_model_is_refused_naming_both_fingerprints(
    capsys, model_loads, other_model_dir, tiny_codec, small_gcv, tmp_path
):
    if other_model_dir not in _LOADED:  # a model dir in the shipped form loads
        _LOADED[other_model_dir] = api.load(other_model_dir)
    other = _LOADED[other_model_dir]
    assert other.fingerprint != tiny_codec.fingerprint
    gcv = tmp_path / "clip.gcv"
    shutil.copy(small_gcv, gcv)
    result = run_cli(capsys, "decode", gcv, tmp_path / "out.y4m", "--model", other_model_dir)
    line = assert_user_error(result, "decode", f"{gcv}: model fingerprint mismatch",
                             tiny_codec.fingerprint.hex()[:12], other.fingerprint.hex()[:12])
    assert repr(tiny_codec.name) in line
    assert os.listdir(tmp_path) == ["clip.gcv"]


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), RuntimeError("bug")],
                         ids=["ctrl-c", "exception"])
def test_encode_interrupted_on_frame_3_leaves_no_output(exc, capsys, model_loads, monkeypatch,
                                                        tiny_model_dir, small_y4m, tmp_path):
    original = api.Codec.encode_frame

    def encode_frame(self, rgb, quality, frame_index):
        if frame_index == 3:
            raise exc
        return original(self, rgb, quality, frame_index)

    monkeypatch.setattr(api.Codec, "encode_frame", encode_frame)
    argv = ["encode", small_y4m, tmp_path / "out.gcv", "--model", tiny_model_dir, "--quiet"]
    if isinstance(exc, KeyboardInterrupt):
        result = run_cli(capsys, *argv)
        assert result.code == 130
        assert "interrupted; no output was written" in result.err
    else:  # a bug is not a user error: it propagates (with its traceback)
        with pytest.raises(RuntimeError, match="bug"):
            cli.main([str(a) for a in argv])
    assert os.listdir(tmp_path) == []


# -- outputs, signals and filesystem faults -------------------------------------------------------


def test_overwrite_flag_replaces_an_existing_output(capsys, model_loads, tiny_model_dir,
                                                    small_y4m, tmp_path):
    out = tmp_path / "out.gcv"
    out.write_bytes(b"old")
    result = run_cli(capsys, "encode", small_y4m, out, "--model", tiny_model_dir, "--quiet", "-y")
    assert result.code == 0, result.err
    with bs.ContainerReader(str(out)) as reader:
        assert reader.num_frames == 4


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporary_files_of_killed_runs_are_removed_and_live_ones_kept(
        capsys, model_loads, tiny_model_dir, small_y4m, tmp_path):
    stale = tmp_path / f".out.gcv.partial-{_dead_pid()}-0badcafe"
    live = tmp_path / f".out.gcv.partial-{os.getpid()}-0000beef"
    stale.write_bytes(b"half a file")
    live.write_bytes(b"another run, still going")
    result = run_cli(capsys, "encode", small_y4m, tmp_path / "out.gcv", "--model",
                     tiny_model_dir, "--quiet")
    assert result.code == 0, result.err
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, "out.gcv"])


@pytest.mark.parametrize("name", ["out.y4m", "out.mkv", "f_%02d.png"])
def test_sigterm_during_decode_exits_143_and_leaves_nothing(name, capsys, model_loads,
                                                            monkeypatch, tiny_model_dir,
                                                            small_gcv, tmp_path):
    import signal

    original = api.Codec.decode_packet

    def decode_packet(self, packet, *args):
        if packet.frame_index == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, packet, *args)

    monkeypatch.setattr(api.Codec, "decode_packet", decode_packet)
    before = signal.getsignal(signal.SIGTERM)
    result = run_cli(capsys, "decode", small_gcv, tmp_path / name, "--model", tiny_model_dir)
    assert result.code == 143
    assert "terminated (SIGTERM); no output was written" in result.err
    assert os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is restored


@pytest.mark.parametrize("err", ["ENOSPC", "EROFS", "EACCES"])
@pytest.mark.parametrize("command", ["encode", "decode-y4m", "decode-png"])
def test_filesystem_faults_are_one_line_naming_the_output_and_leave_nothing(
        err, command, capsys, model_loads, monkeypatch, tiny_model_dir, small_y4m, small_gcv,
        tmp_path):
    import errno

    from gan_compress.io import images

    code = getattr(errno, err)
    real_open = open

    def failing_open(file, mode="r", *args, **kwargs):
        # Writes to our hidden temporary files fail the way a full / read-only disk does.
        if "w" in mode and ".partial-" in os.fspath(file):
            raise OSError(code, os.strerror(code), os.fspath(file))
        return real_open(file, mode, *args, **kwargs)

    real_os_open = os.open

    def failing_os_open(path, flags, *args, **kwargs):
        if flags & os.O_WRONLY and ".partial-" in os.fspath(path):
            raise OSError(code, os.strerror(code), os.fspath(path))
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", failing_os_open)
    monkeypatch.setattr(images, "open", failing_open, raising=False)
    if command == "encode":
        out, argv = tmp_path / "out.gcv", ["encode", small_y4m]
    else:
        out = tmp_path / ("out.y4m" if command == "decode-y4m" else "f_%02d.png")
        argv = ["decode", small_gcv]
    result = run_cli(capsys, *argv, out, "--model", tiny_model_dir, "--quiet")
    line = assert_user_error(result, argv[0], f"{out}: cannot write", os.strerror(code))
    assert ".partial-" not in line
    assert os.listdir(tmp_path) == []


def test_info_into_a_closed_pipe_is_one_line_and_exit_2(small_gcv):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, "-m", "gan_compress", "info", small_gcv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env)
    proc.stdout.close()  # like `| head -0`: the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 2
    assert err.strip().splitlines() == ["gan-compress info: error: output pipe closed"]


def test_a_real_encode_prints_no_tensorflow_lines_unless_verbose(small_y4m, tiny_model_dir,
                                                                 tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    argv = [sys.executable, "-m", "gan_compress", "encode", small_y4m, str(tmp_path / "a.gcv"),
            "--model", tiny_model_dir, "--quiet"]
    quiet = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    loud = subprocess.run(argv[:5] + [str(tmp_path / "b.gcv")] + argv[6:] + ["--verbose"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert loud.returncode == 0, loud.stderr
    assert "tensorflow" in loud.stderr.lower()


def _rewrite(src: str, dst: str, edit) -> None:
    """Copies a .gcv through the container writer (CRCs and offsets recomputed), passing each
    packet through `edit(packet) -> packet`."""
    with bs.ContainerReader(src) as reader:
        header, packets = reader.header, [edit(p) for p in reader]
    with bs.ContainerWriter(dst, header) as writer:
        for p in packets:
            writer.write(p)


@pytest.mark.parametrize("edit,needle", [
    (lambda p: dataclasses.replace(p, shapes=((2048, 2048), (128, 128), (32, 32))),
     "frame 1: the packet's frame size 2048x2048 differs from the sequence header's 80x48"),
    (lambda p: dataclasses.replace(p, shapes=(p.shapes[0], (40, 40), p.shapes[2])),
     "frame 1: latent shapes"),
    (lambda p: dataclasses.replace(p, quality=9), "frame 1: quality 9 is outside model"),
    (lambda p: dataclasses.replace(p, shapes=p.shapes[:2]), "frame 1: malformed I-frame packet"),
], ids=["frame size", "latent shape", "quality", "missing shape"])
def test_crafted_packets_with_valid_crcs_are_refused_naming_file_and_frame(
        edit, needle, capsys, model_loads, tiny_model_dir, small_gcv, tmp_path):
    crafted = str(tmp_path / "crafted.gcv")
    _rewrite(small_gcv, crafted, lambda p: edit(p) if p.frame_index == 1 else p)
    result = run_cli(capsys, "decode", crafted, tmp_path / "out.y4m", "--model", tiny_model_dir,
                     "--quiet")
    assert_user_error(result, "decode", f"{crafted}: {needle}")
    assert os.listdir(tmp_path) == ["crafted.gcv"]


def _spinning_z_string(codec) -> bytes:
    """A z string on which TFC's range decoder never finishes: its first four bytes put the
    decoder's point exactly on the lower bound of channel 0's escape interval, and the implicit
    zeros after them keep the Elias-gamma loop of the overflow decode reading 0 forever."""
    cdf = codec._model.z_entropy_model.cdf.numpy()  # rows [-precision, cdf...], concatenated
    starts = np.flatnonzero(cdf < 0)
    row = cdf[starts[0]:starts[1]]
    precision, escape_low = int(-row[0]), int(row[-2])
    return (escape_low << (32 - precision)).to_bytes(4, "big")


def test_a_range_decoder_that_never_finishes_ends_within_its_budget_as_a_clean_error(
        tiny_codec, tiny_model_dir, small_gcv, tmp_path):
    crafted = str(tmp_path / "spin.gcv")
    z = _spinning_z_string(tiny_codec)
    _rewrite(small_gcv, crafted, lambda p: dataclasses.replace(
        p, strings=(p.strings[0], z)) if p.frame_index == 1 else p)
    out = tmp_path / "out.y4m"
    # A real process: the spinning op cannot be cancelled, the CLI leaves it behind on exit.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "gan_compress", "decode", crafted, str(out), "--model",
         tiny_model_dir, "--quiet"], capture_output=True, text=True, cwd=REPO, env=env,
        timeout=240)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    budget = api.entropy_decode_budget(48, 80, tiny_codec.config.model.latent_channels
                                       + tiny_codec.config.model.hyper_latent_channels)
    assert lines[0] == (f"gan-compress decode: error: {crafted}: frame 1: corrupt entropy-coded "
                        f"data (the range decoder did not finish within {budget:.1f} s)")
    assert sorted(os.listdir(tmp_path)) == ["spin.gcv"]


@pytest.mark.parametrize("argv,needle", [
    (["--model_base_path", "/nonexistent/models"], "/nonexistent/models: model base path is not"),
    (["--model_base_path", ".", "--port", "70000"], "--port must be in 0..65535"),
    (["--model_base_path", ".", "--tls_cert", "c.pem"], "--tls_cert and --tls_key go together"),
])
def test_serve_rejects_bad_arguments_before_loading_anything(argv, needle, capsys):
    result = run_cli(capsys, "serve", *argv)
    assert_user_error(result, "serve", needle)


def test_a_server_that_is_not_there_is_one_line_and_exit_2(capsys, small_y4m, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_cli(capsys, "encode", small_y4m, tmp_path / "a.gcv", "--server",
                     f"127.0.0.1:{port}", "--server_timeout", "5", "--quiet")
    assert_user_error(result, "encode", f"127.0.0.1:{port}: Predict", "UNAVAILABLE")
    assert os.listdir(tmp_path) == []
