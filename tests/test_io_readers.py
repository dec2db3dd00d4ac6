"""Readers: frame-exact against ffmpeg's own decode, metadata, streaming, all input kinds."""

from __future__ import annotations

import fractions
import tracemalloc

import numpy as np
import pytest
from conftest_io import (
    REPO,
    TRAIN,
    assert_frames_equal,
    ffmpeg,
    ffmpeg_decode,
    needs_data,
    random_yuv420,
    split_frames,
    write_raw_y4m,
)
from PIL import Image

from gan_compress import io as gio


@needs_data
@pytest.mark.parametrize(
    "name, max_frames",
    [
        ("cisco_vt_2people_320x192_9f.mkv", None),  # FFV1
        ("park_joy_480x270_10f.mkv", None),  # FFV1
        ("sparks_480x270_5f.mkv", None),  # FFV1
        ("bus_stop_qcif_30f.mkv", None),  # H.264 in Matroska
        ("bikes_640x272.mp4", 40),  # H.264 in MP4
    ],
)
def test_pyav_planes_equal_ffmpeg_rawvideo_decode(name, max_frames):
    path = TRAIN / name
    with gio.open_video(path, max_frames=max_frames) as reader:
        ours = reader.read()
        w, h = reader.info.width, reader.info.height
    assert_frames_equal(ours, ffmpeg_decode(path, w, h, max_frames=max_frames))


@needs_data
def test_container_info_matches_manifest():
    with gio.open_video(TRAIN / "foreman_cif_300f.mkv") as r:
        assert (r.info.width, r.info.height) == (352, 288)
        assert r.info.fps == fractions.Fraction(30000, 1001)
        assert r.info.pix_fmt == "yuv420p"
        assert r.info.num_frames is None  # Matroska stores no frame count
        assert r.info.color == gio.ColorSpec("bt601", "limited")
    with gio.open_video(TRAIN / "bottle_detection_640x360.mp4") as r:
        assert r.info.fps == fractions.Fraction(179, 6)
        assert r.info.num_frames == 1189
    with gio.open_video(TRAIN / "car_detection_768x432.mp4") as r:  # tagged smpte170m
        assert r.info.color == gio.ColorSpec("bt601", "limited")
        assert r.info.fps == fractions.Fraction(25, 2)
    with gio.open_video(TRAIN / "zhling_office_720p_19f.mkv") as r:  # untagged, 720 lines
        assert r.info.color == gio.ColorSpec("bt709", "limited")
        assert len(r.read()) == 19


@needs_data
def test_y4m_reader_on_ffmpeg_written_y4m(tmp_path):
    src = TRAIN / "park_joy_480x270_10f.mkv"
    y4m = tmp_path / "park.y4m"
    ffmpeg("-i", str(src), "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", str(y4m))
    with gio.open_video(y4m) as r:
        assert isinstance(r, gio.Y4MReader)
        assert (r.info.width, r.info.height, r.info.num_frames) == (480, 270, 10)
        assert r.info.fps == 50
        ours = r.read()
    assert_frames_equal(ours, ffmpeg_decode(src, 480, 270))


def test_y4m_444_and_mono_from_ffmpeg(tmp_path):
    p444, pgray = tmp_path / "a444.y4m", tmp_path / "gray.y4m"
    src = ["-f", "lavfi", "-i", "testsrc=s=64x48:r=10:d=0.5"]
    ffmpeg(*src, "-pix_fmt", "yuv444p", "-f", "yuv4mpegpipe", str(p444))
    ffmpeg(*src, "-pix_fmt", "gray", "-f", "yuv4mpegpipe", str(pgray))
    theirs444 = split_frames(ffmpeg("-i", str(p444), "-f", "rawvideo", "-"), 64, 48, "yuv444p")
    with gio.open_video(p444) as r:
        assert r.info.pix_fmt == "yuv444p" and r.info.num_frames == 5
        assert_frames_equal(list(r.frames_yuv444()), theirs444)
        # iteration gives 4:2:0 by 2x2 chroma averaging
        for f420, f444 in zip(r, theirs444, strict=True):
            np.testing.assert_array_equal(f420.y, f444.y)
            np.testing.assert_array_equal(f420.u, gio.chroma_downsample(f444.u))
        # RGB from the full 4:4:4 planes
        rgb = next(r.frames_rgb())
        np.testing.assert_array_equal(rgb, gio.yuv444_to_rgb(theirs444[0], r.info.color))
    with gio.open_video(pgray) as r:
        assert r.info.pix_fmt == "gray"
        assert r.info.color.range == "full"  # ffmpeg tags grey y4m XCOLORRANGE=FULL
        f = next(iter(r))
        assert f.u.shape == (24, 32) and np.all(f.u == 128) and np.all(f.v == 128)
        luma = split_frames(ffmpeg("-i", str(pgray), "-f", "rawvideo", "-"), 64, 48, "gray")
        np.testing.assert_array_equal(f.y, luma[0])
        rgb = next(r.frames_rgb())
        np.testing.assert_array_equal(rgb[..., 0], luma[0])  # full-range grey: R = G = B = Y
        np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])


def test_y4m_header_tags(tmp_path):
    frame = bytes(8 * 4 * 3 // 2)
    p = write_raw_y4m(
        tmp_path / "t.y4m",
        "YUV4MPEG2 W8 H4 F30000:1001 It A128:117 C420mpeg2 XCOLORRANGE=FULL XFOO=bar",
        [frame] * 3,
    )
    info = gio.open_video(p).info
    assert info.fps == fractions.Fraction(30000, 1001)
    assert info.sample_aspect == fractions.Fraction(128, 117)
    assert info.color == gio.ColorSpec("bt601", "full")
    assert info.num_frames == 3
    # frame headers may carry parameters; A0:0 means unknown aspect; no C means 420jpeg
    p2 = write_raw_y4m(
        tmp_path / "u.y4m", "YUV4MPEG2 W8 H720 F25:1 A0:0", [bytes(8 * 720 * 3 // 2)] * 2,
        frame_marker=b"FRAME Ixyz\n",
    )  # fmt: skip
    info2 = gio.open_video(p2).info
    assert info2.sample_aspect is None and info2.pix_fmt == "yuv420p"
    assert info2.color == gio.ColorSpec("bt709", "limited") and info2.num_frames == 2


def test_raw_yuv_reader(tmp_path):
    frames = random_yuv420(np.random.default_rng(0), 4, 16, 8)
    p = tmp_path / "clip.yuv"
    p.write_bytes(b"".join(f.y.tobytes() + f.u.tobytes() + f.v.tobytes() for f in frames))
    with gio.open_video(p, width=16, height=8, fps="24000/1001") as r:
        assert isinstance(r, gio.RawYUVReader)
        assert r.info.num_frames == 4 and r.info.fps == fractions.Fraction(24000, 1001)
        assert_frames_equal(r.read(), frames)


def test_read_image_modes(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    np.testing.assert_array_equal(gio.read_image(tmp_path / "a.png"), rgb)
    Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(gio.read_image(tmp_path / "rgba.png"), rgb)  # alpha dropped
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    g = gio.read_image(tmp_path / "grey.png")
    assert g.shape == (10, 14, 3) and np.all(g == rgb[..., :1])
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    np.testing.assert_array_equal(gio.read_image(tmp_path / "grey16.png")[..., 1], rgb[..., 0])
    yy, xx = np.mgrid[0:32, 0:48]
    smooth = np.stack([xx * 5, yy * 7, 255 - xx * 5], -1).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "a.jpg", quality=95)
    j = gio.read_image(tmp_path / "a.jpg")
    assert j.shape == smooth.shape and j.dtype == np.uint8
    assert np.abs(j.astype(int) - smooth).mean() < 3  # lossy, but the same picture


@needs_data
def test_image_as_one_frame_video():
    path = TRAIN.parent.parent / "images" / "kodak" / "kodim03.png"
    with gio.open_video(path) as r:
        assert isinstance(r, gio.ImageReader)
        assert (r.info.width, r.info.height, r.info.num_frames) == (768, 512, 1)
        frames = list(r.frames_rgb())
        assert len(frames) == 1
        np.testing.assert_array_equal(frames[0], np.asarray(Image.open(path).convert("RGB")))
        (yuv,) = r.read()
        assert yuv.y.shape == (512, 768) and yuv.u.shape == (256, 384)
    assert len(list(gio.iterate_frames(path))) == 1


def test_reiteration_max_frames_read(tmp_path):
    frames = random_yuv420(np.random.default_rng(1), 6, 8, 8)
    p = tmp_path / "c.y4m"
    with gio.Y4MWriter(p, 8, 8, 25) as w:
        for f in frames:
            w.write(f)
    r = gio.open_video(p)
    assert_frames_equal(r.read(2), frames[:2])
    assert_frames_equal(list(r), frames)  # iterating again starts at frame 0
    r.max_frames = 3
    assert_frames_equal(r.read(), frames[:3])
    rgb = list(gio.iterate_frames(p, max_frames=2))
    assert len(rgb) == 2
    np.testing.assert_array_equal(rgb[1], gio.yuv420_to_rgb(frames[1], r.info.color))


def _peak_bytes_while_iterating(reader) -> int:
    tracemalloc.start()
    try:
        n = sum(1 for _ in reader)
        return n, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_y4m_streams_without_growing_memory(tmp_path):
    w, h, n = 352, 288, 80  # 12 MB of frames
    p = tmp_path / "long.y4m"
    frame = bytes(w * h * 3 // 2)
    write_raw_y4m(p, f"YUV4MPEG2 W{w} H{h} F25:1 C420jpeg", [frame] * n)
    count, peak = _peak_bytes_while_iterating(gio.open_video(p))
    assert count == n
    assert peak < 4 * len(frame), peak  # a few frames, not the whole file


@needs_data
def test_container_streams_without_growing_memory():
    reader = gio.open_video(TRAIN / "bikes_640x272.mp4", max_frames=120)
    count, peak = _peak_bytes_while_iterating(reader)
    assert count == 120
    assert peak < 6 * 640 * 272 * 3 // 2, peak


def test_path_kinds():
    assert gio.is_video_path("a/B.MKV") and gio.is_video_path("x.y4m")
    assert gio.is_video_path("x.yuv") and not gio.is_video_path("x.png")
    assert gio.is_image_path("k.JPG") and gio.is_image_path("k.png")
    assert not gio.is_image_path("k.mp4")


def test_bundled_sample_clip():
    import hashlib

    path = REPO / "samples" / "foreman_cif_30f.mkv"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == "55c83b338468f0de5c937cf8f53937cb664c71289b71b5289581928062f4306e"
    assert digest in (REPO / "samples" / "README.md").read_text()
    assert path.stat().st_size <= 5_000_000
    with gio.open_video(path) as r:
        assert (r.info.width, r.info.height) == (352, 288)
        assert r.info.fps == fractions.Fraction(30000, 1001)
        frames = r.read()
    assert len(frames) == 30
    raw = b"".join(p.tobytes() for f in frames for p in f)
    assert hashlib.md5(raw).hexdigest() == "777c73199a0ac469dad2242a17408a3b"
