"""Metrics: hand-computed PSNR, perfect scores on identical input, frame-count refusal, helpers."""

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from gan_compress.evaluation import anchors, clips, ffmpeg, metrics
from gan_compress.evaluation.ffmpeg import RawVideo

CARPHONE = clips.data_dir() / "video" / "eval" / "carphone_qcif_60f.mkv"
needs_data = pytest.mark.skipif(not CARPHONE.exists(), reason=f"shared data not found: {CARPHONE}")


def _write_yuv(path: Path, frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Path:
    with open(path, "wb") as f:
        for y, u, v in frames:
            for plane in (y, u, v):
                f.write(np.asarray(plane, dtype=np.uint8).tobytes())
    return path


def _raw(path: Path, w: int, h: int, n: int) -> RawVideo:
    return RawVideo(path, w, h, n, Fraction(25))


def test_psnr_is_of_the_sequence_mean_mse_per_plane(tmp_path):
    w, h = 4, 4
    y0, u0, v0 = np.full((h, w), 100), np.full((h // 2, w // 2), 128), np.full((h // 2, w // 2), 90)
    ref = _write_yuv(tmp_path / "ref.yuv", [(y0, u0, v0), (y0, u0, v0)])
    # Y: frame 0 exact, frame 1 off by 3 everywhere -> sequence MSE (0 + 9) / 2 = 4.5
    # U: off by 1 -> MSE 1; V: off by 2 -> MSE 4.
    dist = _write_yuv(tmp_path / "dist.yuv", [(y0, u0 + 1, v0 - 2), (y0 + 3, u0 + 1, v0 - 2)])
    out = metrics.psnr_yuv(_raw(ref, w, h, 2), _raw(dist, w, h, 2))
    psnr_y = 10 * math.log10(255**2 / 4.5)  # 41.5987 dB; a per-frame mean would be infinite
    psnr_u = 10 * math.log10(255**2 / 1.0)  # 48.1308 dB
    psnr_v = 10 * math.log10(255**2 / 4.0)  # 42.1102 dB
    assert out["psnr_y_seqmse"] == pytest.approx(psnr_y, abs=1e-9)
    assert out["psnr_u_seqmse"] == pytest.approx(psnr_u, abs=1e-9)
    assert out["psnr_v_seqmse"] == pytest.approx(psnr_v, abs=1e-9)
    assert out["psnr_yuv_seqmse"] == pytest.approx((6 * psnr_y + psnr_u + psnr_v) / 8, abs=1e-9)


@needs_data
def test_identical_clips_score_perfectly(tmp_path):
    clip = clips.prepare_clip(CARPHONE, tmp_path, max_frames=8, crop=(96, 64, 40, 40))
    out = metrics.video_metrics(clip.raw, clip.raw)
    assert math.isinf(out["psnr_y_seqmse"])
    assert out["msssim_y"] == pytest.approx(1.0, abs=1e-6)
    assert out["msssim_scales"] == 3  # 64 lines: 64 // 4 >= 11 > 64 // 8
    assert out["vmaf"] > 99.0 and out["vmaf_neg"] > 99.0
    assert out["ssimulacra2"] == pytest.approx(100.0, abs=1e-6)
    assert out["ssimulacra2_frames"] == 2  # frames 0 and 4 of 8


def test_a_frame_count_mismatch_is_refused_with_a_clear_message(tmp_path):
    w, h = 16, 16
    frame = (np.zeros((h, w)), np.zeros((h // 2, w // 2)), np.zeros((h // 2, w // 2)))
    ref = _raw(_write_yuv(tmp_path / "ref.yuv", [frame] * 3), w, h, 3)
    dist = _raw(_write_yuv(tmp_path / "dist.yuv", [frame] * 2), w, h, 3)
    for fn in (metrics.psnr_yuv, metrics.msssim_y, metrics.vmaf, metrics.video_metrics):
        with pytest.raises(metrics.FrameCountMismatchError, match="frame count mismatch") as e:
            fn(ref, dist)
        assert "has 3 frames" in str(e.value) and "has 2" in str(e.value)
        assert "never dropped or aligned" in str(e.value)


def test_msssim_uses_fewer_renormalised_scales_below_176_lines():
    assert metrics.msssim_scales(144, 176) == 4
    assert metrics.msssim_scales(176, 176) == 5
    assert metrics.msssim_scales(720, 1280) == 5
    pf = metrics.msssim_power_factors(4)
    assert sum(pf) == pytest.approx(1.0)
    assert pf[0] / pf[1] == pytest.approx(0.0448 / 0.2856)


def test_vvenc_10_bit_decode_is_rounded_with_x_plus_2_shift_2(tmp_path):
    w, h = 2, 2  # one frame = 4 + 1 + 1 samples
    samples = np.array([0, 1, 2, 5, 1021, 1023], dtype="<u2")
    dec = tmp_path / "dec.yuv10"
    samples.tofile(dec)
    out = anchors.read_decoded_as_8bit(anchors.ANCHORS["vvenc_medium"], dec, tmp_path / "o.yuv",
                                       w, h)
    assert np.fromfile(out, np.uint8).tolist() == [0, 0, 1, 1, 255, 255]


def test_ivf_payload_excludes_file_and_frame_headers(tmp_path):
    header = b"DKIF" + (0).to_bytes(2, "little") + (32).to_bytes(2, "little") + bytes(24)
    frames = [b"\x12\x00abc", b"defgh"]
    body = b"".join(len(f).to_bytes(4, "little") + bytes(8) + f for f in frames)
    path = tmp_path / "x.ivf"
    path.write_bytes(header + body)
    assert ffmpeg.ivf_payload_bytes(path) == 10


def test_per_frame_psnr_and_flicker_ratio_are_hand_computed(tmp_path):
    w, h = 4, 4
    grey = [np.full((h, w), v) for v in (100, 110, 100)]  # source moves by 10 levels per frame
    u, v = np.full((h // 2, w // 2), 128), np.full((h // 2, w // 2), 128)
    ref = _write_yuv(tmp_path / "ref.yuv", [(y, u, v) for y in grey])
    # decode: frame 0 exact, frame 1 off by +5 (105), frame 2 off by -5 (95)
    dist = _write_yuv(tmp_path / "dist.yuv", [(grey[0], u, v), (grey[1] - 5, u, v),
                                              (grey[2] - 5, u, v)])
    out = metrics.temporal(_raw(ref, w, h, 3), _raw(dist, w, h, 3), chunk=2)  # spans chunks
    assert math.isinf(out["psnr_y_frames"][0])
    assert out["psnr_y_frames"][1:] == [pytest.approx(10 * math.log10(255**2 / 25), abs=1e-3)] * 2
    # source |diffs| 10, 10; decode |105-100| = 5, |95-105| = 10 -> (5 + 10) / (10 + 10)
    assert out["tmad_ratio"] == pytest.approx(0.75, abs=1e-12)
    one_ref = _write_yuv(tmp_path / "one_ref.yuv", [(grey[0], u, v)])
    one_dist = _write_yuv(tmp_path / "one_dist.yuv", [(grey[1], u, v)])
    one = metrics.temporal(_raw(one_ref, w, h, 1), _raw(one_dist, w, h, 1))
    assert one["tmad_ratio"] is None and len(one["psnr_y_frames"]) == 1
