"""Scale-space warp (`gan_compress.layers.warp`): shifts and blurs it must reproduce exactly."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from gan_compress.layers import warp
from gan_compress.layers.warp import gaussian_blur, scale_space_volume, scale_space_warp


def _image(h=24, w=32, c=3, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (1, h, w, c)).astype(np.float32)


def _flow(h, w, dx, dy, s) -> tf.Tensor:
    return tf.constant(np.broadcast_to(np.float32([dx, dy, s]), (1, h, w, 3)).copy())


def test_a_global_integer_shift_moves_every_interior_pixel_by_it():
    x = _image()
    out = scale_space_warp(tf.constant(x), _flow(24, 32, 3.0, -2.0, 0.0)).numpy()
    # out[i, j] = x[i - 2, j + 3] where that source is inside the frame
    np.testing.assert_allclose(out[0, 2:, :-3], x[0, :-2, 3:], atol=1e-6)


def test_a_fractional_shift_of_a_linear_ramp_is_exact():
    h, w = 16, 20
    ramp = np.broadcast_to(np.arange(w, dtype=np.float32)[None, None, :, None] * 0.05,
                           (1, h, w, 1)).copy()
    out = scale_space_warp(tf.constant(ramp), _flow(h, w, 1.25, 0.5, 0.0)).numpy()
    np.testing.assert_allclose(out[0, :-1, :-2, 0], ramp[0, :-1, :-2, 0] + 1.25 * 0.05,
                               atol=1e-5)


def test_blur_levels_equal_scipy_gaussian_filters_and_interpolate_linearly():
    x = _image(20, 28, 2)
    sigma0 = 1.5
    vol = scale_space_volume(tf.constant(x), levels=3, sigma0=sigma0).numpy()
    for k, sigma in ((1, sigma0), (2, 2 * sigma0), (3, 4 * sigma0)):
        radius = int(np.ceil(3 * sigma))
        want = ndimage.gaussian_filter(x[0], (sigma, sigma, 0), mode="reflect",
                                       truncate=radius / sigma)
        np.testing.assert_allclose(vol[0, :, :, k], want, atol=1e-5)
    # no motion, s = 1.5: halfway between levels 1 and 2
    out = scale_space_warp(tf.constant(x), _flow(20, 28, 0.0, 0.0, 1.5), levels=3).numpy()
    np.testing.assert_allclose(out[0], 0.5 * (vol[0, :, :, 1] + vol[0, :, :, 2]), atol=1e-5)


def test_zero_flow_is_the_identity_and_s_is_clipped_to_the_levels():
    x = _image(9, 7, 3)
    np.testing.assert_allclose(scale_space_warp(tf.constant(x), _flow(9, 7, 0, 0, 0)).numpy(), x,
                               atol=1e-6)
    top = scale_space_volume(tf.constant(x), levels=2).numpy()[:, :, :, 2]
    out = scale_space_warp(tf.constant(x), _flow(9, 7, 0, 0, 9.0), levels=2).numpy()
    np.testing.assert_allclose(out, top, atol=1e-6)


@pytest.mark.parametrize("size", [(1, 1), (3, 2)])
def test_blur_works_on_frames_smaller_than_its_kernel(size):
    x = _image(*size, 1)
    out = gaussian_blur(tf.constant(x), 6.0).numpy()
    want = ndimage.gaussian_filter(x[0], (6.0, 6.0, 0), mode="reflect", truncate=18 / 6.0)
    np.testing.assert_allclose(out[0], want, atol=1e-5)


def test_the_warp_passes_gradients_to_the_flow_and_the_image():
    x = tf.Variable(_image(12, 12, 3))
    flow = tf.Variable(_flow(12, 12, 0.3, -0.6, 0.7))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(scale_space_warp(x, flow) * tf.constant(_image(12, 12, 3, seed=1)))
    gx, gf = tape.gradient(loss, [x, flow])
    assert np.all(np.isfinite(gf.numpy())) and np.abs(gf.numpy()).sum() > 0
    for ch in range(3):
        assert np.abs(gf.numpy()[..., ch]).sum() > 0, f"no gradient for flow channel {ch}"
    assert np.abs(gx.numpy()).sum() > 0


@pytest.mark.parametrize("dx, dy", [(5, -3), (-13, 9), (0, 0)])
def test_block_motion_search_finds_a_known_global_shift(dx, dy):
    """A texture (smoothed noise: every block unambiguous) shifted by (dx, dy): every block
    away from the border gets the displacement that points back into the reference (the
    warp's convention: the prediction at p samples the reference at p + (dx, dy))."""
    from gan_compress.layers.motion_search import block_motion_search

    rng = np.random.default_rng(3)
    big = ndimage.gaussian_filter(rng.uniform(size=(160, 160, 3)), (1.5, 1.5, 0))
    big = ((big - big.min()) / (big.max() - big.min())).astype(np.float32)
    ref = big[16:144, 16:144]
    cur = big[16 + dy: 144 + dy, 16 + dx: 144 + dx]
    flow = block_motion_search(tf.constant(cur[None]), tf.constant(ref[None]), radius=16).numpy()
    inner = flow[0, 24:104, 24:104]
    assert np.all(inner[..., 0] == dx) and np.all(inner[..., 1] == dy), (
        np.unique(inner[..., 0]), np.unique(inner[..., 1]))


@pytest.mark.parametrize("dtype, atol", [(tf.float64, 1e-13), (tf.float32, 2e-6)])
def test_long_kernels_as_a_matrix_product_give_the_convolution_s_blur(dtype, atol):
    x = tf.constant(np.random.default_rng(3).uniform(0, 1, (2, 37, 50, 3)), dtype)
    sigma = 12.0  # 73 taps: the banded-matrix form (and longer than the frame is high)
    assert 2 * int(np.ceil(3 * sigma)) + 1 >= warp.MATMUL_MIN_TAPS
    conv = warp._blur_conv(x, warp.gaussian_kernel(sigma, dtype))
    out = warp.gaussian_blur(x, sigma)
    assert out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), conv.numpy(), atol=atol)
