"""The Python API (`gan_compress.load` -> `Codec`): images, videos, output formats, failures.

Every test uses the session's tiny model (`tiny_codec`); exactness, not quality, is checked.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import tracemalloc

import numpy as np
import pytest
from conftest import synthetic_rgb, write_synthetic_y4m

import gan_compress
from gan_compress import api
from gan_compress import bitstream as bs
from gan_compress import io as gio


def decoded_frames(codec, gcv) -> list[np.ndarray]:
    return list(codec.iter_decoded(str(gcv)))


def count_frames(path) -> int:
    with gio.open_video(path) as reader:
        return sum(1 for _ in reader)


@pytest.fixture(scope="module")
def small_gcv(tiny_codec, small_y4m, tmp_path_factory) -> str:
    """`small_y4m` (4 frames, 80x48) encoded at quality 3."""
    path = str(tmp_path_factory.mktemp("api_gcv") / "small.gcv")
    tiny_codec.compress_video(small_y4m, path, quality=3)
    return path


@pytest.fixture(scope="module")
def odd_png(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("odd") / "odd.png")
    gio.write_png(path, synthetic_rgb(0, 17, 33))
    return path


# -- images ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("height, width", [(48, 80), (17, 33), (1, 1)])
def test_compress_image_round_trip_is_the_same_for_arrays_paths_and_bytes(
    tiny_codec, tmp_path, height, width
):
    rgb = synthetic_rgb(2, height, width)
    png = str(tmp_path / "in.png")
    gio.write_png(png, rgb)

    data = tiny_codec.compress_image(rgb, quality=2)
    assert data.startswith(bs.MAGIC)
    assert tiny_codec.compress_image(png, quality=2) == data  # a path gives the same bytes

    decoded = tiny_codec.decompress_image(data)
    assert decoded.shape == (height, width, 3) and decoded.dtype == np.uint8
    gcv = tmp_path / "image.gcv"
    gcv.write_bytes(data)
    np.testing.assert_array_equal(tiny_codec.decompress_image(str(gcv)), decoded)
    np.testing.assert_array_equal(tiny_codec.decompress_image(bytearray(data)), decoded)
    # The container adds nothing to the coding: same pixels as coding the frame directly.
    packet = tiny_codec.encode_frame(rgb, 2, 0)
    np.testing.assert_array_equal(tiny_codec.decode_packet(packet), decoded)


def test_higher_quality_spends_more_bytes_on_the_same_image(tiny_codec):
    rgb = synthetic_rgb(1, 64, 64)
    sizes = [len(tiny_codec.compress_image(rgb, quality=q)) for q in (1, tiny_codec.num_qualities)]
    assert sizes[0] < sizes[1]


@pytest.mark.parametrize(
    "image",
    [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8)],
    ids=["float32", "grey", "rgba"],
)
def test_compress_image_refuses_anything_but_hxwx3_uint8(tiny_codec, image):
    with pytest.raises(ValueError, match=r"\[H, W, 3\] uint8"):
        tiny_codec.compress_image(image)


@pytest.mark.parametrize("quality", [0, 7, -1])
def test_quality_outside_the_model_range_is_refused_with_the_range(tiny_codec, quality):
    with pytest.raises(ValueError, match=rf"quality must be in 1\.\.6, got {quality}"):
        tiny_codec.compress_image(synthetic_rgb(0, 16, 16), quality=quality)


# -- videos ---------------------------------------------------------------------------------------


def test_compress_video_stats_match_the_written_file_and_its_header(tiny_codec, small_y4m,
                                                                    tmp_path):
    out = str(tmp_path / "two.gcv")
    stats = tiny_codec.compress_video(small_y4m, out, quality=4, frames=2)
    assert (stats.frames, stats.width, stats.height, stats.fps) == (2, 80, 48, 25)
    assert stats.bytes == os.path.getsize(out)
    assert stats.bpp == pytest.approx(8 * stats.bytes / (80 * 48 * 2))
    with bs.ContainerReader(out, expected_fingerprint=tiny_codec.fingerprint) as reader:
        assert reader.header.num_frames == 2
        assert reader.header.model_name == tiny_codec.name
        assert [p.quality for p in reader] == [4, 4]


def test_one_frame_video_decodes_to_a_single_png_and_a_one_frame_y4m(tiny_codec, tmp_path):
    clip = write_synthetic_y4m(str(tmp_path / "one.y4m"), 1)
    gcv = str(tmp_path / "one.gcv")
    assert tiny_codec.compress_video(clip, gcv).frames == 1
    (expected,) = decoded_frames(tiny_codec, gcv)

    png = str(tmp_path / "one_out.png")
    assert tiny_codec.decompress_video(gcv, png).frames == 1
    np.testing.assert_array_equal(gio.read_image(png), expected)
    y4m = str(tmp_path / "one_out.y4m")
    tiny_codec.decompress_video(gcv, y4m)
    assert count_frames(y4m) == 1
    assert sorted(os.listdir(tmp_path)) == ["one.gcv", "one.y4m", "one_out.png", "one_out.y4m"]


def test_decode_to_y4m_is_the_decoded_frames_in_yuv420(tiny_codec, small_gcv, tmp_path):
    expected = decoded_frames(tiny_codec, small_gcv)
    out = str(tmp_path / "out.y4m")
    assert tiny_codec.decompress_video(small_gcv, out).frames == 4
    with gio.open_video(out) as reader:
        assert (reader.info.width, reader.info.height, reader.info.fps) == (80, 48, 25)
        frames = list(reader)
    assert len(frames) == 4
    for got, rgb in zip(frames, expected, strict=True):
        want = gio.rgb_to_yuv420(rgb, reader.info.color)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_decode_to_mkv_has_every_frame_close_to_the_y4m(tiny_codec, small_gcv, tmp_path):
    mkv, y4m = str(tmp_path / "out.mkv"), str(tmp_path / "out.y4m")
    tiny_codec.decompress_video(small_gcv, mkv)
    tiny_codec.decompress_video(small_gcv, y4m)
    with gio.open_video(mkv) as a, gio.open_video(y4m) as b:
        assert (a.info.width, a.info.height, a.info.fps) == (80, 48, 25)
        pairs = list(zip(a, b, strict=True))
    assert len(pairs) == 4
    for lossy, exact in pairs:  # crf 12: near-lossless, and no range or matrix mix-up
        assert np.abs(lossy.y.astype(int) - exact.y).mean() < 3


@pytest.mark.parametrize("name, written", [
    ("f_%03d.png", ["f_001.png", "f_002.png", "f_003.png", "f_004.png"]),
    ("f.png", ["f_00001.png", "f_00002.png", "f_00003.png", "f_00004.png"]),
])
def test_decode_to_png_writes_one_exact_file_per_frame(tiny_codec, small_gcv, tmp_path, name,
                                                      written):
    expected = decoded_frames(tiny_codec, small_gcv)
    assert tiny_codec.decompress_video(small_gcv, str(tmp_path / name)).frames == 4
    assert sorted(os.listdir(tmp_path)) == written
    for path, rgb in zip(written, expected, strict=True):
        np.testing.assert_array_equal(gio.read_image(tmp_path / path), rgb)


def test_odd_size_decodes_to_png_and_refuses_420_outputs_with_a_clear_message(
    tiny_codec, odd_png, tmp_path
):
    gcv = str(tmp_path / "odd.gcv")
    assert tiny_codec.compress_video(odd_png, gcv).frames == 1
    out = str(tmp_path / "odd_out.png")
    tiny_codec.decompress_video(gcv, out)
    assert gio.read_image(out).shape == (17, 33, 3)
    for ext in ("y4m", "mkv", "mp4"):
        target = str(tmp_path / f"odd_out.{ext}")
        with pytest.raises(ValueError) as info:
            tiny_codec.decompress_video(gcv, target)
        assert str(info.value) == (f"{target}: {ext} output is 4:2:0 and needs an even size, "
                                   "the video is 33x17; decode to .png")
    assert sorted(os.listdir(tmp_path)) == ["odd.gcv", "odd_out.png"]


def test_decoding_with_another_models_fingerprint_is_refused_naming_both(tiny_codec,
                                                                        small_gcv, tmp_path):
    other_fp = bytes(31) + b"\x01"
    forged = str(tmp_path / "forged.gcv")
    with bs.ContainerReader(small_gcv) as reader:
        header = dataclasses.replace(reader.header, model_fingerprint=other_fp, num_frames=0)
        with bs.ContainerWriter(forged, header) as writer:
            for packet in reader:
                writer.write(packet)
    with pytest.raises(bs.FingerprintMismatchError) as info:
        next(tiny_codec.iter_decoded(forged))
    message = str(info.value)
    assert message.startswith(f"{forged}: model fingerprint mismatch")
    assert other_fp.hex()[:12] in message and tiny_codec.fingerprint.hex()[:12] in message
    with pytest.raises(bs.FingerprintMismatchError):
        tiny_codec.decompress_video(forged, str(tmp_path / "out.y4m"))
    assert not (tmp_path / "out.y4m").exists()


# -- failures leave nothing behind ----------------------------------------------------------------


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()],
                         ids=["exception", "ctrl-c"])
def test_encode_interrupted_inside_the_frame_loop_leaves_no_output(tiny_codec, small_y4m,
                                                                   tmp_path, monkeypatch, exc):
    seen = []
    original = api.Codec.encode_frame

    def encode_frame(self, rgb, quality, frame_index):
        seen.append(frame_index)
        if frame_index == 3:
            raise exc
        return original(self, rgb, quality, frame_index)

    monkeypatch.setattr(api.Codec, "encode_frame", encode_frame)
    with pytest.raises(type(exc)):
        tiny_codec.compress_video(small_y4m, str(tmp_path / "out.gcv"))
    assert seen == [0, 1, 2, 3]
    assert os.listdir(tmp_path) == []  # neither the .gcv nor its temporary file


@pytest.mark.parametrize("name", ["out.y4m", "out.mkv", "out_%02d.png"])
def test_decode_interrupted_after_some_frames_leaves_no_output(tiny_codec, small_gcv, tmp_path,
                                                              monkeypatch, name):
    original = api.Codec.decode_packet

    def decode_packet(self, packet, *args):
        if packet.frame_index == 2:
            raise KeyboardInterrupt
        return original(self, packet, *args)

    monkeypatch.setattr(api.Codec, "decode_packet", decode_packet)
    with pytest.raises(KeyboardInterrupt):
        tiny_codec.decompress_video(small_gcv, str(tmp_path / name))
    assert os.listdir(tmp_path) == []


def test_input_that_yields_no_frames_leaves_no_empty_gcv(tiny_codec, small_y4m, tmp_path,
                                                         monkeypatch):
    open_video = gio.open_video
    monkeypatch.setattr(api.gio, "open_video",
                        lambda path, **kw: open_video(path, max_frames=0, **kw))
    with pytest.raises(gio.EmptyVideoError, match="no frames to encode"):
        tiny_codec.compress_video(small_y4m, str(tmp_path / "out.gcv"))
    assert os.listdir(tmp_path) == []


# -- memory ---------------------------------------------------------------------------------------


def _peak_python_bytes(fn) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_long_video_encode_and_decode_keep_peak_memory_flat(tiny_codec, tmp_path):
    """Peak Python memory (numpy buffers included) for 300 frames vs 60 frames of 64x64.

    Keeping every frame (12 KiB RGB, 6 KiB YUV) or decoded output alive would add 1.4-2.9 MB
    for the 240 extra frames; TF's per-call garbage stays far below 1 MiB.
    """
    clip = write_synthetic_y4m(str(tmp_path / "long.y4m"), 300, width=64, height=64)
    tiny_codec.compress_video(clip, str(tmp_path / "warm.gcv"), frames=2)  # trace first
    short, long = str(tmp_path / "short.gcv"), str(tmp_path / "long.gcv")

    encode_60 = _peak_python_bytes(lambda: tiny_codec.compress_video(clip, short, frames=60))
    encode_300 = _peak_python_bytes(lambda: tiny_codec.compress_video(clip, long))
    decode_60 = _peak_python_bytes(
        lambda: tiny_codec.decompress_video(short, str(tmp_path / "short.y4m")))
    decode_300 = _peak_python_bytes(
        lambda: tiny_codec.decompress_video(long, str(tmp_path / "long_out.y4m")))

    assert count_frames(str(tmp_path / "long_out.y4m")) == 300
    assert encode_300 - encode_60 < 1 << 20, (encode_60, encode_300)
    assert decode_300 - decode_60 < 1 << 20, (decode_60, decode_300)


# -- loading --------------------------------------------------------------------------------------


def test_load_names_the_path_when_it_is_missing_or_not_a_model(tmp_path):
    with pytest.raises(api.ModelLoadError, match=f"{tmp_path / 'nope'}: model not found"):
        gan_compress.load(tmp_path / "nope")
    with pytest.raises(api.ModelLoadError, match=r"not a gan_compress model \(no config.json\)"):
        gan_compress.load(tmp_path)
