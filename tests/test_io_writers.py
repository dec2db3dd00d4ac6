"""Writers: what we write is what ffmpeg (and our readers) decode; writes are atomic."""

from __future__ import annotations

import fractions
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest_io import (
    REPO,
    assert_frames_equal,
    ffmpeg,
    ffmpeg_decode,
    random_yuv420,
    split_frames,
)

from gan_compress import io as gio


def _smooth_rgb(n, h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return [
        np.stack(
            [
                128 + 100 * np.sin((xx + 3 * t) / 9),
                128 + 100 * np.cos(yy / 7),
                128 + 60 * np.sin((xx + yy) / 13),
            ],
            -1,
        ).astype(np.uint8)
        for t in range(n)
    ]


def _leftovers(directory) -> list[str]:
    return sorted(os.listdir(directory))


def test_y4m_writer_ffmpeg_decodes_identical_planes(tmp_path):
    frames = random_yuv420(np.random.default_rng(0), 5, 48, 32)
    p = tmp_path / "out.y4m"
    with gio.Y4MWriter(p, 48, 32, fractions.Fraction(30000, 1001)) as w:
        for f in frames:
            w.write(f)
    header = p.read_bytes().split(b"\n", 1)[0]
    assert header == b"YUV4MPEG2 W48 H32 F30000:1001 Ip A1:1 C420jpeg XCOLORRANGE=LIMITED"
    assert_frames_equal(ffmpeg_decode(p, 48, 32), frames)
    with gio.open_video(p) as r:  # and our own reader
        assert r.info.fps == fractions.Fraction(30000, 1001) and r.info.num_frames == 5
        assert_frames_equal(r.read(), frames)
    assert _leftovers(tmp_path) == ["out.y4m"]


def test_y4m_writer_full_range_tag_read_by_ffmpeg(tmp_path):
    p = tmp_path / "full.y4m"
    rgb = _smooth_rgb(2, 16, 16)
    with gio.Y4MWriter(p, 16, 16, 25, color=gio.ColorSpec("bt601", "full")) as w:
        for f in rgb:
            w.write_rgb(f)
    assert b"XCOLORRANGE=FULL" in p.read_bytes()[:100]
    # ffmpeg honours the tag: converting to full-range yuvj420p leaves the planes unchanged
    plain = ffmpeg("-i", str(p), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-")
    j = ffmpeg("-i", str(p), "-f", "rawvideo", "-pix_fmt", "yuvj420p", "-")
    assert plain == j
    assert gio.open_video(p).info.color == gio.ColorSpec("bt601", "full")


def test_ffmpeg_writer_ffv1_is_lossless_and_tagged(tmp_path):
    frames = random_yuv420(np.random.default_rng(1), 4, 64, 48)
    p = tmp_path / "lossless.mkv"
    color = gio.ColorSpec("bt709", "full")
    with gio.FFmpegVideoWriter(p, 64, 48, "24000/1001", codec="ffv1", color=color) as w:
        for f in frames:
            w.write(f)
    with gio.open_video(p) as r:
        assert r.info.color == color
        assert r.info.fps == fractions.Fraction(24000, 1001)
        assert_frames_equal(r.read(), frames)
    assert _leftovers(tmp_path) == ["lossless.mkv"]


def test_ffmpeg_writer_x264_mp4(tmp_path):
    rgb = _smooth_rgb(12, 64, 96)
    p = tmp_path / "lossy.mp4"
    color = gio.ColorSpec("bt601", "limited")
    with gio.FFmpegVideoWriter(p, 96, 64, 25, crf=12, color=color) as w:
        for f in rgb:
            w.write_rgb(f)
    with gio.open_video(p) as r:
        assert (r.info.width, r.info.height, r.info.fps, r.info.num_frames) == (96, 64, 25, 12)
        assert r.info.color == color
        decoded = list(r.frames_rgb())
    assert len(decoded) == 12
    mse = np.mean([(a.astype(float) - b) ** 2 for a, b in zip(decoded, rgb, strict=True)])
    assert 10 * np.log10(255**2 / mse) > 35


def test_write_video_dispatch(tmp_path):
    yuv = random_yuv420(np.random.default_rng(2), 3, 32, 16)
    info = gio.VideoInfo("", 32, 16, fractions.Fraction(25), 3, "yuv420p", gio.ColorSpec())
    assert gio.write_video(tmp_path / "a.y4m", yuv, info) == 3
    assert_frames_equal(gio.open_video(tmp_path / "a.y4m").read(), yuv)
    assert gio.write_video(tmp_path / "a.mkv", iter(yuv), info, codec="ffv1") == 3
    assert_frames_equal(gio.open_video(tmp_path / "a.mkv").read(), yuv)
    # RGB frames are converted with info.color; PNG patterns number from 1
    rgb = [gio.yuv420_to_rgb(f, info.color) for f in yuv]
    assert gio.write_video(tmp_path / "f_%03d.png", yuv, info) == 3
    for i, expected in enumerate(rgb, 1):
        np.testing.assert_array_equal(gio.read_image(tmp_path / f"f_{i:03d}.png"), expected)
    smooth = _smooth_rgb(2, 16, 32)
    assert gio.write_video(tmp_path / "b.y4m", smooth, info) == 2
    expected = [gio.rgb_to_yuv420(f, info.color) for f in smooth]
    assert_frames_equal(gio.open_video(tmp_path / "b.y4m").read(), expected)
    with pytest.raises(ValueError, match="not a frame pattern"):
        gio.write_video(tmp_path / "single.png", yuv, info)


def test_png_round_trip(tmp_path):
    rgb = np.random.default_rng(3).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    gio.write_png(tmp_path / "x.png", rgb)
    np.testing.assert_array_equal(gio.read_image(tmp_path / "x.png"), rgb)
    gio.write_png(tmp_path / "f.png", rgb / 255.0)  # float in [0, 1]
    np.testing.assert_array_equal(gio.read_image(tmp_path / "f.png"), rgb)
    paths = gio.write_png_frames(str(tmp_path / "s_%02d.png"), [rgb, rgb[::-1]])
    assert [os.path.basename(p) for p in paths] == ["s_01.png", "s_02.png"]
    assert _leftovers(tmp_path) == ["f.png", "s_01.png", "s_02.png", "x.png"]
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        gio.write_png(tmp_path / "bad.png", np.zeros((4, 4, 2), np.uint8))


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("kind", ["y4m", "mp4", "png"])
def test_writers_leave_nothing_on_exception(tmp_path, kind):
    frames = random_yuv420(np.random.default_rng(4), 3, 32, 16)
    target = tmp_path / f"out.{kind}"
    with pytest.raises(Boom):
        if kind == "y4m":
            with gio.Y4MWriter(target, 32, 16, 25) as w:
                w.write(frames[0])
                raise Boom
        elif kind == "mp4":
            with gio.FFmpegVideoWriter(target, 32, 16, 25) as w:
                w.write(frames[0])
                raise Boom
        else:

            def gen():
                yield gio.yuv420_to_rgb(frames[0])
                raise Boom

            gio.write_png(target, next(gen()))
            os.unlink(target)
            info = gio.VideoInfo("", 32, 16, fractions.Fraction(25), 3, "yuv420p", gio.ColorSpec())
            gio.write_video(tmp_path / "p_%d.png", gen(), info)
    # nothing: a PNG sequence appears all at once or not at all
    assert _leftovers(tmp_path) == []


def test_failed_overwrite_keeps_old_file(tmp_path):
    target = tmp_path / "keep.y4m"
    target.write_bytes(b"old contents")
    with pytest.raises(Boom):
        with gio.Y4MWriter(target, 16, 16, 25) as w:
            w.write_rgb(np.zeros((16, 16, 3), np.uint8))
            raise Boom
    assert target.read_bytes() == b"old contents"
    assert _leftovers(tmp_path) == ["keep.y4m"]


def test_unclosed_writers_are_discarded(tmp_path):
    w = gio.Y4MWriter(tmp_path / "a.y4m", 16, 16, 25)
    w.write_rgb(np.zeros((16, 16, 3), np.uint8))
    f = gio.FFmpegVideoWriter(tmp_path / "b.mp4", 16, 16, 25)
    f.write_rgb(np.zeros((16, 16, 3), np.uint8))
    # while open only hidden temporaries exist (ffmpeg may not have created its file yet)
    assert ".a.y4m." in " ".join(_leftovers(tmp_path))
    assert all(n.startswith(".") and ".partial-" in n for n in _leftovers(tmp_path))
    del w, f  # never closed: garbage collection removes the temporaries
    assert _leftovers(tmp_path) == []


def test_zero_frames_or_ffmpeg_failure_leave_nothing(tmp_path):
    with pytest.raises(gio.EmptyVideoError, match="no frames were written"):
        with gio.Y4MWriter(tmp_path / "e.y4m", 16, 16, 25):
            pass
    with pytest.raises(gio.EmptyVideoError, match="no frames were written"):
        with gio.FFmpegVideoWriter(tmp_path / "e.mp4", 16, 16, 25):
            pass
    with pytest.raises(gio.VideoError, match=r"bad\.mkv: ffmpeg"):
        with gio.FFmpegVideoWriter(tmp_path / "bad.mkv", 16, 16, 25, codec="nosuchcodec") as w:
            w.write_rgb(np.zeros((16, 16, 3), np.uint8))
    assert _leftovers(tmp_path) == []
    with pytest.raises(gio.UnsupportedFormatError, match="odd.y4m: 4:2:0 needs"):
        gio.Y4MWriter(tmp_path / "odd.y4m", 15, 16, 25)


def test_killed_writer_leaves_no_complete_looking_file(tmp_path):
    script = textwrap.dedent(
        """
        import sys, numpy as np
        from gan_compress import io as gio
        w = gio.Y4MWriter(sys.argv[1], 64, 64, 25)
        for i in range(10**6):
            w.write_rgb(np.full((64, 64, 3), i % 256, np.uint8))
            if i == 5:
                print("writing", flush=True)
        """
    )
    target = tmp_path / "killed.y4m"
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(target)],
        stdout=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout.readline().strip() == b"writing"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not target.exists()
    leftovers = _leftovers(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].startswith(f".killed.y4m.partial-{proc.pid}-")
    assert gio.clean_stale_partials(target) == [str(tmp_path / leftovers[0])]
    assert _leftovers(tmp_path) == []


def test_ffmpeg_exe_is_imageio_ffmpegs():
    import imageio_ffmpeg

    exe = gio.ffmpeg_exe()
    assert exe == imageio_ffmpeg.get_ffmpeg_exe() and os.access(exe, os.X_OK)
    out = split_frames(
        ffmpeg("-f", "lavfi", "-i", "color=c=black:s=16x16:d=0.04", "-frames:v", "1",
               "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"),
        16, 16,
    )  # fmt: skip
    assert out[0].y.max() == 16  # limited-range black
