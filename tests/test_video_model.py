"""A video model (I-frame + P-frame codec) through `gan_compress.load`, the container and the
CLI: GOP structure in the file, exact decoding, seeking from the nearest I-frame, info by frame
type, and clear refusals. Weights are a tiny model after a few steps (plumbing, not quality).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_synthetic_y4m

from gan_compress import bitstream as bs
from gan_compress import cli
from gan_compress import io as gio


@pytest.fixture(scope="module")
def clip7(tmp_path_factory) -> str:
    return write_synthetic_y4m(str(tmp_path_factory.mktemp("clip7") / "clip.y4m"), 7, 72, 40)


def _all_frames(path):
    with gio.open_video(path) as reader:
        return list(reader.frames_rgb())


def test_a_video_model_codes_gops_and_decodes_exactly_what_it_predicted_from(
        video_codec, clip7, tmp_path):
    assert video_codec.supports_inter and video_codec.default_intra_period == 12
    gcv = str(tmp_path / "v.gcv")
    stats = video_codec.compress_video(clip7, gcv, quality=2, intra_period=3,
                                       intra_decision="fixed")
    assert stats.frames == 7
    with bs.ContainerReader(gcv) as reader:
        assert reader.header.intra_period == 3
        types = [p.frame_type for p in reader]
        assert [e.frame_index for e in reader.index] == [0, 3, 6]
    assert types == [bs.FrameType.I, bs.FrameType.P, bs.FrameType.P] * 2 + [bs.FrameType.I]
    decoded = list(video_codec.iter_decoded(gcv))
    assert len(decoded) == 7 and decoded[0].shape == (40, 72, 3)
    # the encoder's own reconstructions (gop.GopEncoder) are what the decoder gives
    from gan_compress.gop import GopEncoder

    enc = GopEncoder(video_codec._model, video_codec._pframe, 2, 3)
    for src, dec in zip(_all_frames(clip7), decoded, strict=True):
        np.testing.assert_array_equal(enc.encode(src)[1], dec)
    # seeking: frames 4..5 come out the same as in a full decode (entered at I-frame 3)
    part = list(video_codec.iter_decoded(gcv, start=4, count=2))
    assert len(part) == 2
    np.testing.assert_array_equal(part[0], decoded[4])
    np.testing.assert_array_equal(part[1], decoded[5])


def test_an_intra_quality_offset_codes_i_frames_higher_and_still_decodes_exactly(
        video_codec, clip7, tmp_path):
    """`intra_quality_offset` 1 codes each I-frame one level above the P-frames (the level is
    in each packet, so decoders need nothing new), capped at the top level; the decoder gives
    the encoder's reconstructions; a negative offset is refused."""
    from gan_compress.gop import GopEncoder

    top = video_codec.num_qualities
    for quality, want_i in ((2, 3), (top, top)):
        gcv = str(tmp_path / f"o{quality}.gcv")
        video_codec.compress_video(clip7, gcv, quality=quality, intra_period=3,
                                   intra_decision="fixed", intra_quality_offset=1)
        with bs.ContainerReader(gcv) as reader:
            levels = [(p.frame_type.name, p.quality) for p in reader]
        assert levels == [("I", want_i), ("P", quality), ("P", quality)] * 2 + [("I", want_i)]
        enc = GopEncoder(video_codec._model, video_codec._pframe, quality, 3,
                         intra_quality_offset=1)
        for src, dec in zip(_all_frames(clip7), video_codec.iter_decoded(gcv), strict=True):
            np.testing.assert_array_equal(enc.encode(src)[1], dec)
    with pytest.raises(ValueError, match="intra quality offset"):
        video_codec.compress_video(clip7, str(tmp_path / "bad.gcv"), quality=2,
                                   intra_period=3, intra_quality_offset=-1)
    assert not (tmp_path / "bad.gcv").exists()


def test_gop_minus_one_makes_only_the_first_frame_intra_and_info_reports_bits_per_type(
        capsys, video_model_dir, clip7, tmp_path):
    gcv = tmp_path / "v.gcv"
    code = cli.main(["encode", clip7, str(gcv), "--model", video_model_dir, "--gop", "-1",
                     "--intra_decision", "fixed", "--quiet"])
    assert code == 0
    capsys.readouterr()
    assert cli.main(["info", str(gcv), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frame_types"] == {"I": 1, "P": 6}
    assert info["key_frames"] == [0]
    assert info["header"]["intra_period"] == 0
    assert set(info["bits_per_pixel_by_type"]) == {"I", "P"}
    assert cli.main(["info", str(gcv)]) == 0
    text = capsys.readouterr().out
    assert "1 I, 6 P" in text and "per type   I " in text


def test_rd_cost_is_bits_per_pixel_plus_lambda_times_mse():
    from gan_compress.gop import rd_cost

    frame = np.zeros((4, 8, 3), np.uint8)
    recon = np.full((4, 8, 3), 2, np.uint8)
    assert rd_cost(frame, frame, 4, 0.01) == pytest.approx(8 * 4 / 32)
    assert rd_cost(frame, recon, 4, 0.01) == pytest.approx(1.0 + 0.01 * 4.0)


def test_the_rd_intra_decision_keeps_the_cheaper_coding_restarts_the_gop_and_decodes_exactly(
        video_codec, clip7, tmp_path, monkeypatch):
    """With "rd", each scheduled P-frame is also coded as an I-frame and the lower
    `gop.rd_cost` wins. Here the cost is scripted so that the I-frame wins only at the second
    decision (frame 2): the GOP of 3 restarts there (I P I P P I P), the seek index lists
    every I-frame, and the decoder gives the encoder's reconstructions, also when seeking."""
    from gan_compress import gop

    real_cost, calls = gop.rd_cost, []

    def scripted(frame, recon, num_bytes, lam):
        assert real_cost(frame, recon, num_bytes, lam) >= 0.0
        calls.append(None)
        decision, is_intra_candidate = divmod(len(calls) - 1, 2)
        return 0.0 if (is_intra_candidate and decision == 1) else 1.0

    monkeypatch.setattr(gop, "rd_cost", scripted)
    gcv = str(tmp_path / "rd.gcv")
    video_codec.compress_video(clip7, gcv, quality=2, intra_period=3, intra_decision="rd")
    with bs.ContainerReader(gcv) as reader:
        types = "".join(p.frame_type.name for p in reader)
        keys = [e.frame_index for e in reader.index]
    assert types == "IPIPPIP" and keys == [0, 2, 5]
    assert len(calls) == 2 * 5  # scheduled P-frames 1, 2, 3, 4 and 6 (5: a scheduled I)
    decoded = list(video_codec.iter_decoded(gcv))
    enc = gop.GopEncoder(video_codec._model, video_codec._pframe, 2, 3,
                         intra_decision="rd")
    calls.clear()
    for src, dec in zip(_all_frames(clip7), decoded, strict=True):
        np.testing.assert_array_equal(enc.encode(src)[1], dec)
    part = list(video_codec.iter_decoded(gcv, start=3, count=2))
    np.testing.assert_array_equal(part[0], decoded[3])
    np.testing.assert_array_equal(part[1], decoded[4])
    with pytest.raises(ValueError, match="intra_decision"):
        video_codec.compress_video(clip7, gcv, quality=2, intra_period=3, intra_decision="x")


def test_decode_start_and_frames_output_only_the_requested_frames(
        capsys, video_model_dir, video_codec, clip7, tmp_path):
    gcv, y4m = tmp_path / "v.gcv", tmp_path / "part.y4m"
    assert cli.main(["encode", clip7, str(gcv), "--model", video_model_dir, "--gop", "4",
                     "--quiet"]) == 0
    assert cli.main(["decode", str(gcv), str(y4m), "--model", video_model_dir,
                     "--start", "5", "--frames", "2", "--quiet"]) == 0
    full = list(video_codec.iter_decoded(str(gcv)))
    with gio.open_video(str(y4m)) as reader:
        got = list(reader)
        color = reader.info.color
    assert len(got) == 2
    np.testing.assert_array_equal(got[0].y, gio.rgb_to_yuv420(full[5], color).y)
    bad = cli.main(["decode", str(gcv), str(tmp_path / "x.y4m"), "--model", video_model_dir,
                    "--start", "7"])
    assert bad == 2
    err = capsys.readouterr().err
    assert "--start 7 is past the last frame (6)" in err
    assert not (tmp_path / "x.y4m").exists()


def test_a_p_frame_stream_is_refused_clearly_by_an_iframe_only_model(
        video_codec, tiny_codec, clip7, tmp_path):
    gcv = str(tmp_path / "v.gcv")
    video_codec.compress_video(clip7, gcv, quality=1, intra_period=2, frames=3)
    with pytest.raises(bs.BitstreamError) as e:
        # the fingerprint differs first; a P-capable stream never decodes with the I model
        list(tiny_codec.iter_decoded(gcv))
    assert gcv in str(e.value)
    with pytest.raises(ValueError, match="codes I-frames only"):
        tiny_codec.compress_video(clip7, str(tmp_path / "i.gcv"), intra_period=2)


def test_the_video_model_fingerprint_covers_the_pframe_weights(video_codec, video_model_dir):
    from gan_compress import export_lib

    config = video_codec.config
    with_p = export_lib.fingerprint(config, video_codec._model, video_codec._pframe)
    without = export_lib.fingerprint(config, video_codec._model)
    assert video_codec.fingerprint.hex() == with_p != without
    v = video_codec._pframe.trainable_variables[0]
    saved = v.numpy()
    try:
        v.assign(saved + 1e-3)
        assert export_lib.fingerprint(config, video_codec._model, video_codec._pframe) != with_p
    finally:
        v.assign(saved)


@pytest.mark.parametrize("damage, message", [
    ("three strings", "frame 1: malformed P-frame packet (expected 3 shapes of rank 2 and 4 "
                      "strings)"),
    ("p in all-intra", "frame 1: a P-frame in an all-intra stream"),
])
def test_a_malformed_p_frame_stream_is_a_clear_error_naming_the_file_and_frame(
        video_codec, clip7, tmp_path, damage, message):
    gcv = tmp_path / "v.gcv"
    video_codec.compress_video(clip7, str(gcv), quality=3, intra_period=4, frames=3,
                               intra_decision="fixed")
    with bs.ContainerReader(str(gcv)) as reader:
        packets = list(reader)
        header = reader.header
    if damage == "three strings":
        packets[1] = dataclasses.replace(packets[1], strings=packets[1].strings[:3])
    else:
        header = dataclasses.replace(header, intra_period=1)
    out = tmp_path / "broken.gcv"
    with bs.ContainerWriter(str(out), header) as writer:
        for q in packets:
            writer.write(q)
    with pytest.raises(bs.BitstreamError) as e:
        list(video_codec.iter_decoded(str(out)))
    assert str(out) in str(e.value) and message in str(e.value)


# -- golden files: a P-frame stream made once, decoded on every machine since -------------------

GOLDEN = Path(__file__).parent / "golden"
# sha256 of the 5 decoded frames (I P P I P, 72x40, quality 2) of `tiny_video_gop3.gcv`, made
# with the shipped-form tiny video model in `golden/tiny_video` (20 I-frame and 20 P-frame
# training steps). Changes only with a deliberate change of the decoder's arithmetic or format.
GOLDEN_GOP_DECODED_SHA256 = "aa6f48cb5765fa5284fb287f18551c862bf739dec798644add931fc817947f56"


def test_the_golden_p_frame_stream_decodes_to_the_recorded_frames_on_this_machine():
    import hashlib

    import gan_compress

    codec = gan_compress.load(str(GOLDEN / "tiny_video"))
    assert codec.supports_inter
    stream = str(GOLDEN / "tiny_video_gop3.gcv")
    with bs.ContainerReader(stream) as reader:
        assert [p.frame_type.name for p in reader.iter_packets()] == ["I", "P", "P", "I", "P"]
    frames = list(codec.iter_decoded(stream))
    assert len(frames) == 5 and frames[0].shape == (40, 72, 3)
    digest = hashlib.sha256(b"".join(f.tobytes() for f in frames)).hexdigest()
    assert digest == GOLDEN_GOP_DECODED_SHA256
    # entering at the second GOP's I-frame gives the same frames as decoding from the start
    tail = list(codec.iter_decoded(stream, start=3))
    assert all(np.array_equal(a, b) for a, b in zip(tail, frames[3:], strict=True))


def test_tracing_is_not_counted_in_the_first_frames_entropy_decoding_budget(monkeypatch):
    # Decoding the tiny golden frames takes milliseconds; tracing the entropy decoders takes
    # far longer than the 0.2 s allowed here. A codec that traced them inside the budget
    # refused valid streams as corrupt whenever the machine was busy.
    import gan_compress
    from gan_compress import framecoder

    monkeypatch.setattr(framecoder, "DECODE_BUDGET_BASE_S", 0.2)
    monkeypatch.setattr(framecoder, "DECODE_BUDGET_PER_SYMBOL_S", 0.0)
    codec = gan_compress.load(str(GOLDEN / "tiny_video"))  # a fresh load: nothing traced yet
    frames = list(codec.iter_decoded(str(GOLDEN / "tiny_video_gop3.gcv")))
    assert len(frames) == 5


def test_a_second_load_finalizes_the_p_frame_coders_from_cached_tables_and_codes_alike(
        video_codec, video_model_dir):
    """The P-frame z tables (TFC estimates them eagerly: about 20 s per load of the small
    model) are cached beside the weights by the first load and reused by the next."""
    import gan_compress
    from gan_compress import loading

    cache = Path(video_model_dir) / loading.PFRAME_TABLES_CACHE
    assert cache.exists()
    again = gan_compress.load(video_model_dir)
    made, cached = video_codec._pframe.z_tables(), again._pframe.z_tables()
    assert sorted(made) == sorted(cached) == ["motion", "residual"]
    for name in made:
        for a, b in zip(made[name], cached[name], strict=True):
            np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (2, 1, 40, 72, 3)).astype(np.uint8)
    a, recon_a = video_codec._pframe.compress(frames[1], frames[0], 2)
    b, recon_b = again._pframe.compress(frames[1], frames[0], 2)
    for s, t in zip(a[:4], b[:4], strict=True):
        assert s.numpy()[0] == t.numpy()[0]
    np.testing.assert_array_equal(recon_a.numpy(), recon_b.numpy())
    # (stale and unreadable caches: tests/test_table_cache.py)
