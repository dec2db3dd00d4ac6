"""The `gan-compress` command line: encode/decode/info, every user error, processes and imports.

Most tests call `cli.main([...])` in-process with the model loader memoised (loading and
finalizing a model takes tens of seconds); tests about processes run `python -m gan_compress`.
"""

from __future__ import annotations

import json
import os
import shutil
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

    def load(model):
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
    for option in ("--model", "--quality", "--frames", "--intra_period"):
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
    "intra_period 2": (["encode", "{d}/clip.y4m", "{d}/out.gcv", "--intra_period", "2"],
                       ["codes I-frames only: --intra_period must be 1, got 2"]),
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


@pytest.mark.parametrize("name", ["text.mp4", "truncated.gcv", "flipped.gcv"])
def test_bad_inputs_are_reported_before_the_model_is_loaded(name, capsys, model_loads,
                                                            tiny_codec, small_y4m, small_gcv,
                                                            tmp_path):
    _make_inputs(tmp_path, small_y4m, small_gcv, tiny_codec)
    command = "encode" if name.endswith(".mp4") else "decode"
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
