"""Every bad input gives a VideoError whose message names the file and the problem."""

from __future__ import annotations

import re

import pytest
from conftest_io import ffmpeg, write_raw_y4m

from gan_compress import io as gio


def _raises(exc_type, path, problem: str, **kwargs):
    """open_video + read everything must raise `exc_type` with '<path>: ...<problem>...'."""
    with pytest.raises(exc_type) as info:
        with gio.open_video(path, **kwargs) as reader:
            reader.read()
    msg = str(info.value)
    assert msg.startswith(f"{path}: "), msg
    assert re.search(problem, msg), msg
    assert isinstance(info.value, gio.VideoError) and isinstance(info.value, ValueError)
    return info.value


def test_text_file_renamed_mp4(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 20)
    _raises(gio.VideoError, str(p), "not a readable video file")


def test_garbage_image(tmp_path):
    p = tmp_path / "photo.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    _raises(gio.VideoError, str(p), "not a readable image")
    with pytest.raises(gio.VideoError, match=re.escape(str(p))):
        gio.read_image(p)


def test_truncated_y4m_partial_last_frame(tmp_path):
    frame = bytes(16 * 8 * 3 // 2)
    p = write_raw_y4m(tmp_path / "cut.y4m", "YUV4MPEG2 W16 H8 F25:1 C420jpeg", [frame] * 3)
    with open(p, "ab") as f:
        f.write(b"FRAME\n" + frame[:50])
    err = _raises(gio.TruncatedVideoError, p, r"truncated: frame 3 has 50 of 192 bytes")
    assert "partial last frame" in str(err)


def test_truncated_y4m_inside_frame_header(tmp_path):
    p = write_raw_y4m(tmp_path / "cut2.y4m", "YUV4MPEG2 W16 H8 F25:1", [bytes(192)])
    with open(p, "ab") as f:
        f.write(b"FRA")
    _raises(gio.TruncatedVideoError, p, "truncated: file ends inside the header of frame 1")


def test_y4m_bad_frame_marker(tmp_path):
    p = write_raw_y4m(tmp_path / "bad.y4m", "YUV4MPEG2 W16 H8 F25:1", [bytes(192)] * 2)
    with open(p, "ab") as f:
        f.write(b"FRAMX\n" + bytes(192))
    _raises(gio.VideoError, p, "frame 2: expected a FRAME marker")


def test_zero_frames(tmp_path):
    p = write_raw_y4m(tmp_path / "empty.y4m", "YUV4MPEG2 W16 H8 F25:1 C420jpeg", [])
    _raises(gio.EmptyVideoError, p, "no frames")
    raw = tmp_path / "empty.yuv"
    raw.write_bytes(b"")
    _raises(gio.EmptyVideoError, str(raw), "zero frames", width=16, height=8)
    mkv = tmp_path / "zero.mkv"
    lavfi = ["-f", "lavfi", "-i", "color=c=red:s=64x48:d=1"]
    ffmpeg(*lavfi, "-frames:v", "0", "-c:v", "ffv1", str(mkv))
    _raises(gio.EmptyVideoError, str(mkv), "no video frames")
    avi = tmp_path / "zero.avi"
    ffmpeg(*lavfi, "-frames:v", "0", "-c:v", "ffv1", str(avi))
    _raises(gio.EmptyVideoError, str(avi), "no frames")
    audio = tmp_path / "sound.mkv"
    ffmpeg("-f", "lavfi", "-i", "sine=d=0.2", str(audio))
    _raises(gio.EmptyVideoError, str(audio), "no video stream")


@pytest.mark.parametrize("chroma", ["420p10", "422", "411", "444alpha", "mono16"])
def test_unsupported_y4m_pixel_format(tmp_path, chroma):
    p = write_raw_y4m(tmp_path / f"c{chroma}.y4m", f"YUV4MPEG2 W16 H8 F25:1 C{chroma}", [])
    _raises(gio.UnsupportedFormatError, p, f"unsupported y4m pixel format C{chroma}")


def test_unsupported_container_pixel_format(tmp_path):
    p = tmp_path / "ten_bit.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x48:d=0.2", "-pix_fmt", "yuv420p10le",
           "-c:v", "ffv1", str(p))  # fmt: skip
    _raises(gio.UnsupportedFormatError, str(p), "unsupported pixel format yuv420p10le")


def test_odd_sized_420(tmp_path):
    p = write_raw_y4m(tmp_path / "odd.y4m", "YUV4MPEG2 W33 H24 F25:1 C420jpeg", [])
    _raises(gio.UnsupportedFormatError, p, "odd size 33x24 is not allowed for 4:2:0")
    mkv = tmp_path / "odd.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=33x25:d=0.2", "-pix_fmt", "yuv420p",
           "-c:v", "ffv1", str(mkv))  # fmt: skip
    _raises(gio.UnsupportedFormatError, str(mkv), "odd size 33x25 is not allowed for 4:2:0")
    raw = tmp_path / "odd.yuv"
    raw.write_bytes(bytes(100))
    _raises(gio.UnsupportedFormatError, str(raw), "odd size 15x9", width=15, height=9)
    # 4:4:4 may be odd-sized: RGB works, 4:2:0 iteration explains itself
    odd444 = write_raw_y4m(tmp_path / "odd444.y4m", "YUV4MPEG2 W3 H3 F25:1 C444", [bytes(27)])
    assert next(gio.open_video(odd444).frames_rgb()).shape == (3, 3, 3)
    _raises(gio.UnsupportedFormatError, odd444, "odd size 3x3 cannot be given as 4:2:0")


@pytest.mark.parametrize("name", ["gone.mp4", "gone.y4m", "gone.yuv", "gone.png", "gone.mkv"])
def test_missing_file(tmp_path, name):
    p = str(tmp_path / name)
    err = _raises(gio.VideoNotFoundError, p, "no such file", width=16, height=8)
    assert isinstance(err, FileNotFoundError)
    with pytest.raises(FileNotFoundError, match="no such file"):
        gio.read_image(p)


def test_directory_is_not_a_video(tmp_path):
    d = tmp_path / "clips.mkv"
    d.mkdir()
    _raises(gio.VideoError, str(d), "is a directory")


def test_raw_yuv_needs_size(tmp_path):
    p = tmp_path / "clip.yuv"
    p.write_bytes(bytes(192 * 2))
    _raises(gio.VideoError, str(p), r"raw \.yuv has no header: pass width= and height=")
    _raises(gio.TruncatedVideoError, str(p), "not a multiple", width=10, height=10)


def test_y4m_bad_headers(tmp_path):
    p = write_raw_y4m(tmp_path / "nosize.y4m", "YUV4MPEG2 W16 F25:1", [])
    _raises(gio.VideoError, p, "lacks W .* or H")
    p = write_raw_y4m(tmp_path / "badw.y4m", "YUV4MPEG2 Wx H8", [])
    _raises(gio.VideoError, p, "bad y4m header field 'Wx'")
    p = tmp_path / "sig.y4m"
    p.write_bytes(b"YUV4MPEG3 W16 H8\n")
    _raises(gio.VideoError, str(p), "no YUV4MPEG2 signature")
    p = tmp_path / "nonl.y4m"
    p.write_bytes(b"YUV4MPEG2 W16 H8")
    _raises(gio.TruncatedVideoError, str(p), "ends inside the y4m header")
