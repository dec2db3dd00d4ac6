"""Colour conversion: exact known values, round-trip bounds, and agreement with ffmpeg."""

from __future__ import annotations

import numpy as np
import pytest
from conftest_io import ffmpeg, split_frames
from PIL import Image

from gan_compress import io as gio

SPECS = [gio.ColorSpec(m, r) for m in ("bt601", "bt709") for r in ("limited", "full")]
FFMPEG_RANGE = {"limited": "tv", "full": "pc"}


def _all_colours(step=3) -> np.ndarray:
    v = np.arange(0, 256, step, dtype=np.uint8)
    v = np.union1d(v, [255]).astype(np.uint8)
    r, g, b = np.meshgrid(v, v, v, indexing="ij")
    return np.stack([r, g, b], -1).reshape(-1, len(v), 3)


def test_colorspec_validation_and_defaults():
    assert gio.ColorSpec.for_size(1280, 720) == gio.ColorSpec("bt709", "limited")
    assert gio.ColorSpec.for_size(720, 576) == gio.ColorSpec("bt601", "limited")
    with pytest.raises(ValueError, match="matrix"):
        gio.ColorSpec("bt2020", "limited")
    with pytest.raises(ValueError, match="range"):
        gio.ColorSpec("bt709", "tv")


@pytest.mark.parametrize(
    "spec, rgb, yuv",
    [
        (gio.ColorSpec("bt601", "limited"), (255, 255, 255), (235, 128, 128)),
        (gio.ColorSpec("bt601", "limited"), (0, 0, 0), (16, 128, 128)),
        (gio.ColorSpec("bt601", "limited"), (255, 0, 0), (81, 90, 240)),
        (gio.ColorSpec("bt601", "limited"), (0, 0, 255), (41, 240, 110)),
        (gio.ColorSpec("bt709", "limited"), (255, 0, 0), (63, 102, 240)),
        (gio.ColorSpec("bt709", "limited"), (0, 255, 0), (173, 42, 26)),
        (gio.ColorSpec("bt709", "full"), (255, 255, 255), (255, 128, 128)),
        (gio.ColorSpec("bt601", "full"), (255, 0, 0), (76, 85, 255)),
    ],
)
def test_known_values(spec, rgb, yuv):
    img = np.broadcast_to(np.array(rgb, np.uint8), (2, 2, 3))
    f = gio.rgb_to_yuv420(img, spec)
    assert (int(f.y[0, 0]), int(f.u[0, 0]), int(f.v[0, 0])) == yuv
    assert np.abs(gio.yuv420_to_rgb(f, spec).astype(int) - img).max() <= 1  # 8-bit rounding


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_444_uint8_round_trip(spec):
    rgb = _all_colours()
    back = gio.yuv444_to_rgb(gio.rgb_to_yuv444(rgb, spec), spec)
    err = np.abs(back.astype(int) - rgb)
    # full range: 8-bit Y'CbCr holds every RGB colour to within one level; limited range
    # squeezes 256 levels into 219 (Y) / 224 (C), so two levels
    assert err.max() <= (1 if spec.range == "full" else 2)
    assert err.mean() < 0.45


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_float_round_trip_is_exact(spec):
    rgb = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
    back = gio.yuv_float_to_rgb_float(gio.rgb_to_yuv_float(rgb, spec), spec)
    np.testing.assert_allclose(back, rgb, atol=2e-5)


def _smooth(h=64, w=96):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack(
        [
            0.5 + 0.4 * np.sin(xx / 11 + yy / 17),
            0.5 + 0.4 * np.cos(yy / 9),
            0.5 + 0.3 * np.sin((xx - yy) / 15),
        ],
        -1,
    )


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_420_round_trip_on_smooth_content(spec):
    rgb = np.rint(_smooth() * 255).astype(np.uint8)
    back = gio.yuv420_to_rgb(gio.rgb_to_yuv420(rgb, spec), spec)
    err = np.abs(back.astype(int) - rgb)
    # inside, chroma resampling of a smooth signal costs at most a few levels; the outermost
    # two pixels are worse because the upsampler repeats the edge sample
    assert err[2:-2, 2:-2].max() <= 3 and err.mean() < 0.6, (err.max(), err.mean())
    f = gio.yuv420_to_rgb_float(gio.rgb_to_yuv420(_smooth(), spec), spec)
    assert f.dtype == np.float32 and 0 <= f.min() and f.max() <= 1
    assert np.abs(f - _smooth())[2:-2, 2:-2].max() < 3 / 255


def test_chroma_resampling():
    rng = np.random.default_rng(0)
    c = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    s = c.astype(int).reshape(3, 2, 4, 2).sum(axis=(1, 3))
    np.testing.assert_array_equal(gio.chroma_downsample(c), (s + 2) // 4)
    np.testing.assert_allclose(gio.chroma_downsample(c.astype(np.float32)), s / 4)
    # centred bilinear: constants stay constant, linear ramps stay linear away from the edges
    np.testing.assert_array_equal(gio.chroma_upsample(np.full((3, 4), 77)), 77)
    ramp = np.tile(np.arange(8, dtype=np.float32) * 8, (4, 1))  # samples at x = 2k + 0.5
    up = gio.chroma_upsample(ramp)
    assert up.shape == (8, 16)
    np.testing.assert_allclose(up[:, 1:-1], np.tile(np.arange(1, 15) * 4.0 - 2.0, (8, 1)))
    np.testing.assert_array_equal(up[:, 0], 0)  # edge sample repeated
    f444 = gio.YUVFrame(c, c, 255 - c)
    f420 = gio.yuv444_to_yuv420(f444)
    assert f420.u.shape == (3, 4) and f420.y is c
    assert gio.yuv420_to_yuv444(f420).u.shape == (6, 8)
    with pytest.raises(ValueError, match="even"):
        gio.rgb_to_yuv420(np.zeros((3, 4, 3), np.uint8))


def _ffmpeg_rgb_to_yuv(tmp_path, rgb, spec, pix_fmt):
    Image.fromarray(rgb).save(tmp_path / "in.png")
    vf = (
        f"scale=out_color_matrix={spec.matrix}:out_range={FFMPEG_RANGE[spec.range]}"
        ":flags=accurate_rnd+full_chroma_int+bitexact"
    )
    raw = ffmpeg("-i", str(tmp_path / "in.png"), "-vf", vf, "-pix_fmt", pix_fmt,
                 "-f", "rawvideo", "-")  # fmt: skip
    return split_frames(raw, rgb.shape[1], rgb.shape[0], pix_fmt)[0]


def _ffmpeg_yuv_to_rgb(frame, spec, pix_fmt):
    h, w = frame.y.shape
    vf = (
        f"scale=in_color_matrix={spec.matrix}:in_range={FFMPEG_RANGE[spec.range]}"
        ":flags=accurate_rnd+full_chroma_int+bitexact"
    )
    raw = ffmpeg("-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{w}x{h}", "-i", "-",
                 "-vf", vf, "-pix_fmt", "rgb24", "-f", "rawvideo", "-",
                 input=b"".join(p.tobytes() for p in frame))  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(h, w, 3)


def _blocks(rng, n, size, lo=0, hi=256, channels=3):
    shape = (n, n, channels) if channels else (n, n)
    cells = rng.integers(lo, hi, shape)
    k = np.ones((size, size, 1) if channels else (size, size), int)
    return np.kron(cells, k).astype(np.uint8)


def _interior(a, block):
    """Pixels at least a quarter block away from every block edge."""
    h, w = a.shape[:2]
    m = block // 4
    keep_y = (np.arange(h) % block >= m) & (np.arange(h) % block < block - m)
    keep_x = (np.arange(w) % block >= m) & (np.arange(w) % block < block - m)
    return a[keep_y][:, keep_x]


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_matrices_match_ffmpeg(tmp_path, spec):
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    # RGB -> 4:4:4 Y'CbCr: every pixel within one level of swscale
    theirs = _ffmpeg_rgb_to_yuv(tmp_path, noise, spec, "yuv444p")
    for a, b in zip(gio.rgb_to_yuv444(noise, spec), theirs, strict=True):
        assert np.abs(a.astype(int) - b).max() <= 1
    # 4:4:4 Y'CbCr -> RGB
    yuv = gio.YUVFrame(*(rng.integers(16, 236, (32, 48), dtype=np.uint8) for _ in range(3)))
    assert np.abs(gio.yuv444_to_rgb(yuv, spec).astype(int) - _ffmpeg_yuv_to_rgb(yuv, spec,
                  "yuv444p")).max() <= 1  # fmt: skip
    # 4:2:0 both ways on flat 16x16 patches (chroma filters differ, so only patch interiors)
    patches = _blocks(rng, 4, 16)
    theirs = _ffmpeg_rgb_to_yuv(tmp_path, patches, spec, "yuv420p")
    ours = gio.rgb_to_yuv420(patches, spec)
    assert np.abs(ours.y.astype(int) - theirs.y).max() <= 1
    for a, b in ((ours.u, theirs.u), (ours.v, theirs.v)):
        assert np.abs(_interior(a, 8).astype(int) - _interior(b, 8)).max() <= 1
    flat = gio.YUVFrame(
        _blocks(rng, 4, 16, 16, 236, None),
        _blocks(rng, 4, 8, 16, 241, None),
        _blocks(rng, 4, 8, 16, 241, None),
    )
    diff = gio.yuv420_to_rgb(flat, spec).astype(int) - _ffmpeg_yuv_to_rgb(flat, spec, "yuv420p")
    assert np.abs(_interior(diff, 16)).max() <= 1
