"""RD sweep: failures are recorded, a fake test codec gets BD-rates, the reference reproduces."""

import dataclasses
import json
import os
from pathlib import Path

import pytest

from gan_compress.evaluation import anchors, cli, clips, codecs, ffmpeg, sweep

CARPHONE = clips.data_dir() / "video" / "eval" / "carphone_qcif_60f.mkv"
REFERENCE = clips.data_dir() / "reference" / "anchors_eval.json"
pytestmark = pytest.mark.skipif(not CARPHONE.exists(), reason=f"shared data not found: {CARPHONE}")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    """A 96x64, 6-frame crop of carphone as a .y4m file (lossless)."""
    out = tmp_path_factory.mktemp("clip") / "tiny_96x64.y4m"
    ffmpeg.run([ffmpeg.ffmpeg_exe(), "-v", "error", "-y", "-i", str(CARPHONE), "-vf",
                "crop=96:64:40:40", "-frames:v", "6", "-f", "yuv4mpegpipe", str(out)])
    return out


def _x264(ladder) -> anchors.Anchor:
    return anchors.with_ladder(anchors.ANCHORS["x264_ld"], ladder)


def test_a_failing_anchor_encoder_is_recorded_not_a_crash(tiny_clip, tmp_path):
    broken = dataclasses.replace(
        anchors.ANCHORS["x264_ld"], name="broken", args=("-c:v", "libx264", "-no-such-option", "1"),
        ladder=(30,))
    config = sweep.SweepConfig(report_dir=tmp_path, clips=(tiny_clip,),
                               anchors=(broken, _x264((26, 34))), metrics=("psnr",))
    results = sweep.run_sweep(config, progress=False, log=lambda s: None)

    on_disk = json.loads((tmp_path / "results.json").read_text())
    bad = [r for r in on_disk["rows"] if r["codec"] == "broken"]
    assert len(bad) == 1
    assert bad[0]["error_stage"] == "encode"
    assert "exited with" in bad[0]["error"] and "no-such-option" in bad[0]["error"]
    assert "-no-such-option" in bad[0]["commands"]["encode"][0]
    good = [r for r in results["rows"] if r["codec"] == "x264_ld"]
    assert [r["error"] for r in good] == [None, None]
    assert all(r["psnr_y_seqmse"] > 25 and r["bytes"] > 0 for r in good)


class _DropsAFrame(codecs.FfmpegCodec):
    """A broken test codec whose decoder loses the last frame."""

    def decode(self, encoded, clip, out_raw):
        decoded = super().decode(encoded, clip, out_raw)
        data = decoded.path.read_bytes()
        decoded.path.write_bytes(data[: -clip.raw.frame_bytes])
        return decoded


def test_a_fake_test_codec_gets_bd_rates_and_a_frame_loss_is_an_error(tiny_clip, tmp_path):
    # x265 LD posing as the test codec against x264 LD, both on overlapping CRF ladders.
    fake = codecs.FfmpegCodec(anchors.with_ladder(anchors.ANCHORS["x265_ld"], (24, 29, 34)),
                              name="fake_x265", label="x265 posing as the test codec")
    lossy = _DropsAFrame(_x264((30,)), name="drops_frame")
    config = sweep.SweepConfig(report_dir=tmp_path, clips=(tiny_clip,),
                               anchors=(_x264((24, 29, 34)),), metrics=("psnr", "msssim"))
    results = sweep.run_sweep(config, [fake, lossy], progress=False, log=lambda s: None)

    assert {c["name"]: c["kind"] for c in results["codecs"]} == {
        "fake_x265": "test", "drops_frame": "test", "x264_ld": "anchor"}
    dropped = [r for r in results["rows"] if r["codec"] == "drops_frame"]
    assert dropped[0]["error_stage"] == "metrics"
    assert "frame count mismatch" in dropped[0]["error"]
    entry = next(e for e in results["bd_rate"]
                 if e["test"] == "fake_x265" and e["anchor"] == "x264_ld"
                 and e["metric"] == "psnr_y_seqmse")
    cell = entry["per_clip"]["tiny_96x64"]
    assert isinstance(cell["bd_rate"], float)  # x265's option-string SEI dominates tiny clips
    assert cell["flag"] in ("ok", "low-overlap")
    assert entry["mean"]["n_clips"] == 1


def test_cli_quick_run_writes_results_and_report(tiny_clip, tmp_path):
    rc = cli.main(["--report", str(tmp_path), "--clips", str(tiny_clip), "--anchors", "x264",
                   "--anchors-only", "--metrics", "psnr", "--frames", "4", "--no-progress",
                   "--no-reference"])
    assert rc == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["rows"]) == 4 and all(r["frames"] == 4 for r in results["rows"])
    assert "-crf 23" in results["rows"][0]["commands"]["encode"][0]
    for name in ("report.md", "index.html", "plots/tiny_96x64__psnr_y_seqmse.png"):
        assert (tmp_path / name).exists(), name


def test_a_second_run_on_a_report_directory_in_use_exits_2_and_touches_nothing(
        tiny_clip, tmp_path, capsys):
    argv = ["--report", str(tmp_path), "--clips", str(tiny_clip), "--anchors", "x264",
            "--anchors-only", "--metrics", "psnr", "--frames", "2", "--no-progress",
            "--no-reference"]
    with cli.report_lock(tmp_path):  # as a running eval holds it
        assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "in use by another gan-compress eval" in err
    assert f"pid {os.getpid()}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [cli.LOCK_NAME]
    assert cli.main(argv) == 0  # released: the next run goes ahead
    assert (tmp_path / "results.json").exists()


def test_reproduces_the_reference_anchor_carphone_x264_crf28(tmp_path):
    ref = next(e for e in json.loads(REFERENCE.read_text())["encodes"]
               if e["clip"] == "carphone_qcif_60f" and e["codec"] == "x264_ld" and e["q"] == 28)
    config = sweep.SweepConfig(report_dir=tmp_path, clips=(CARPHONE,), anchors=(_x264((28,)),),
                               reference=REFERENCE)
    results = sweep.run_sweep(config, progress=False, log=lambda s: None)
    (row,) = results["rows"]
    assert row["error"] is None
    assert abs(row["bytes"] - ref["bytes"]) / ref["bytes"] < 0.01
    for key in ("psnr_y_seqmse", "psnr_u_seqmse", "psnr_v_seqmse", "psnr_yuv_seqmse",
                "msssim_y", "msssim_y_db", "vmaf", "vmaf_neg", "ssimulacra2"):
        assert row[key] == pytest.approx(ref[key], abs=0.05), key
    assert row["msssim_scales"] == ref["msssim_scales"] == 4
    assert row["ssimulacra2_frames"] == ref["ssimulacra2_frames"]
    check = results["reference_check"]
    assert check["points"] == 1 and check["max_abs_bytes_dev_pct"] < 1.0


class _LateQualities(codecs.FfmpegCodec):
    """Knows its qualities only after a first encode, like gan_compress (`info --json`)."""

    def qualities(self):
        return None

    def discover_qualities(self, encoded):
        assert encoded.path.exists()
        return list(self.anchor.ladder)


def test_qualities_discovered_after_the_first_encode_and_resume_reuses_points(tiny_clip, tmp_path):
    late = _LateQualities(_x264((1, 30, 45)), name="late")  # the sweep always starts at 1
    config = sweep.SweepConfig(report_dir=tmp_path, clips=(tiny_clip,), anchors=(),
                               metrics=("psnr",))
    first = sweep.run_sweep(config, [late], progress=False, log=lambda s: None)
    assert [r["q"] for r in first["rows"]] == [1, 30, 45]
    resumed = sweep.run_sweep(dataclasses.replace(config, resume=True),
                              [_LateQualities(_x264((1, 30, 45)), name="late")],
                              progress=False, log=lambda s: None)
    assert [r["q"] for r in resumed["rows"]] == [1, 30, 45]
    assert [r["enc_seconds"] for r in resumed["rows"]] == [r["enc_seconds"] for r in first["rows"]]


def test_a_gop_sweep_names_each_intra_period_and_rates_inter_coding_against_i_only(tmp_path):
    gop12 = codecs.GanCompressCodec(model="m", command=["gc"], gop=12)
    intra = codecs.GanCompressCodec(model="m", command=["gc"], gop=1)
    assert (gop12.name, intra.name) == ("gan_compress_gop12", "gan_compress_intra")
    assert gop12.setting == "gc --model m --gop 12"
    assert codecs.GanCompressCodec(command=["gc"], gop=-1).name == "gan_compress_gop_inf"
    fixed = codecs.GanCompressCodec(model="m", command=["gc"], gop=12, intra_decision="fixed")
    assert fixed.name == "gan_compress_gop12_fixed" and "fixed I-frames" in fixed.label
    assert fixed.setting == "gc --model m --gop 12 --intra_decision fixed"
    rd = codecs.GanCompressCodec(model="m", command=["gc"], gop=1, intra_decision="rd")
    assert rd.name == "gan_compress_intra" and rd.setting == "gc --model m --gop 1"
    offset = codecs.GanCompressCodec(model="m", command=["gc"], gop=12, intra_quality_offset=1)
    assert offset.name == "gan_compress_gop12_io1" and "I-frames +1 levels" in offset.label
    assert offset.setting == "gc --model m --gop 12 --intra_quality_offset 1"
    # an I-only stream has no P-frames to anchor or search: both are dropped, not named
    assert codecs.GanCompressCodec(model="m", command=["gc"], gop=1, intra_quality_offset=1,
                                   search_radius=32).name == "gan_compress_intra"
    wide = codecs.GanCompressCodec(model="m", command=["gc"], gop=12, search_radius=32)
    assert wide.name == "gan_compress_gop12_sr32" and "search +-32 px" in wide.label
    assert wide.setting == "gc --model m --gop 12 --search_radius 32"

    # Synthetic rows: GOP 12 needs 40 % fewer bits than I-only at every quality.
    rows = []
    for q, (rate, psnr) in enumerate([(0.1, 30.0), (0.2, 33.0), (0.4, 36.0), (0.8, 39.0)], 1):
        for name, scale in (("gan_compress_intra", 1.0), ("gan_compress_gop12", 0.6)):
            rows.append({"clip": "c", "codec": name, "q": q, "bpp": rate * scale,
                         "psnr_y_seqmse": psnr, "error": None})
    results = {"rows": rows, "clips": [{"name": "c"}],
               "codecs": [{**intra.to_json(), "kind": "test"}, {**gop12.to_json(), "kind": "test"}]}
    (entry,) = sweep.bd_summary(results, ["psnr_y_seqmse"])
    assert (entry["test"], entry["anchor"]) == ("gan_compress_gop12", "gan_compress_intra")
    assert entry["mean"]["bd_rate"] == pytest.approx(-40.0, abs=0.01)

    assert cli.main(["--report", str(tmp_path), "--gop", "12,0", "--anchors", "none"]) == 2


def test_an_in_process_gop_sweep_codes_p_frames_and_records_drift(tiny_clip, tmp_path):
    from gan_compress.bitstream import info

    model = str(Path(__file__).parent / "golden" / "tiny_video")
    test = [codecs.InProcessCodec(model, name="gan_compress", gop=g, qualities=[2],
                                  intra_decision="fixed") for g in (1, 3)]
    config = sweep.SweepConfig(report_dir=tmp_path, clips=(tiny_clip,), anchors=(),
                               metrics=("psnr",), keep_work=True)
    results = sweep.run_sweep(config, test, progress=False, log=lambda s: None)
    rows = {r["codec"]: r for r in results["rows"]}
    assert [r["error"] for r in rows.values()] == [None, None]
    intra, gop3 = rows["gan_compress_intra"], rows["gan_compress_gop3_fixed"]
    assert "--gop 3 --intra_decision fixed" in gop3["commands"]["encode"][0]
    types = {name: [f["type"] for f in info.describe(tmp_path / r["stream"])["frames"]]
             for name, r in rows.items()}
    assert types == {"gan_compress_intra": ["I"] * 6,
                     "gan_compress_gop3_fixed": ["I", "P", "P"] * 2}
    # the first frame of each GOP is the same I-frame, so its PSNR matches I-only coding
    assert gop3["psnr_y_frames"][0] == intra["psnr_y_frames"][0]
    assert gop3["psnr_y_frames"][3] == intra["psnr_y_frames"][3]
    assert len(gop3["psnr_y_frames"]) == 6 and gop3["tmad_ratio"] > 0
