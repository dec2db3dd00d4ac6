"""Scale-space warping (Agustsson et al., "Scale-Space Flow for End-to-End Optimized Video
Compression", CVPR 2020): the prediction of a P-frame from the decoded reference frame.

The reference is blurred into a Gaussian scale-space volume: level 0 is the frame itself,
level k >= 1 the frame blurred with sigma0 * 2^(k-1). A flow field (dx, dy, s) then samples the
volume trilinearly: bilinearly in space at (x + dx, y + dy), linearly across levels at s. Where
the motion is unpredictable (occlusions, noise) the flow decoder can pick a blurred level
instead of a wrong sharp one, which is cheaper to correct with the residual.

Shapes: images `[N, H, W, C]` float32 (or float64: the P-frame decoder's reproducible path,
computed in the image's dtype throughout); flow `[N, H, W, 3]` float32 with dx, dy in pixels
(positive = sample to the right / below) and s in levels, clipped to [0, levels]. Source
positions outside the frame are clamped to its border.
"""

from __future__ import annotations

import math

import tensorflow as tf


def gaussian_kernel(sigma: float, dtype=tf.float32) -> tf.Tensor:
    """1-D normalized Gaussian taps `[2r + 1]`, r = ceil(3 sigma)."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = tf.range(-radius, radius + 1, dtype=dtype)
    k = tf.exp(-0.5 * tf.square(x / sigma))
    return k / tf.reduce_sum(k)


def _mirror_index(size, r: int) -> tf.Tensor:
    """Source index of each of `size + 2r` padded samples: mirrored with the edge repeated
    (scipy's mode "reflect"), for any size (tf.pad's SYMMETRIC needs r <= size)."""
    idx = tf.range(-r, size + r) % (2 * size)
    return tf.where(idx < size, idx, 2 * size - 1 - idx)


def _symmetric_pad(x: tf.Tensor, r: int, axis: int) -> tf.Tensor:
    """Pads `r` samples on both sides of `axis` as `_mirror_index` says."""
    return tf.gather(x, _mirror_index(tf.shape(x)[axis], r), axis=axis)


# Kernels longer than this are applied as a banded matrix product instead of a depthwise
# convolution: the same sums, but float64 depthwise convolutions run on a slow generic path
# (sigma 24 at 720p: 2.1 s against 0.3 s for the two matrix products).
MATMUL_MIN_TAPS = 26


def _blur_matrix(k: tf.Tensor, size) -> tf.Tensor:
    """`[size, size]` matrix M with (M v)[o] = sum_j k[j] * v_padded[o + j], v_padded being v
    mirror-padded as `_symmetric_pad` does: the 1-D blur along one axis as a product."""
    taps = int(k.shape[0])
    idx = _mirror_index(size, (taps - 1) // 2)
    rows = tf.repeat(tf.range(size), taps)
    cols = tf.gather(idx, rows + tf.tile(tf.range(taps), [size]))
    return tf.scatter_nd(tf.stack([rows, cols], axis=-1), tf.tile(k, [size]), [size, size])


def gaussian_blur(image: tf.Tensor, sigma: float) -> tf.Tensor:
    """Separable Gaussian blur of `[N, H, W, C]` (edge-repeating mirror padding)."""
    k = gaussian_kernel(sigma, image.dtype)
    taps = int(k.shape[0])
    if taps >= MATMUL_MIN_TAPS:
        shape = tf.shape(image)
        out = tf.einsum("hH,nHwc->nhwc", _blur_matrix(k, shape[1]), image)
        return tf.einsum("wW,nhWc->nhwc", _blur_matrix(k, shape[2]), out)
    return _blur_conv(image, k)


def _blur_conv(image: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
    """The separable blur with 1-D taps `k` as two depthwise convolutions."""
    taps = int(k.shape[0])
    r = (taps - 1) // 2
    channels = int(image.shape[-1])
    out = image
    for axis, kshape in ((1, [taps, 1, 1, 1]), (2, [1, taps, 1, 1])):
        kernel = tf.tile(tf.reshape(k, kshape), [1, 1, channels, 1])
        out = tf.nn.depthwise_conv2d(_symmetric_pad(out, r, axis), kernel, [1, 1, 1, 1],
                                     "VALID")
    return out


def scale_space_volume(image: tf.Tensor, levels: int = 5, sigma0: float = 1.5) -> tf.Tensor:
    """`[N, H, W, C]` -> `[N, H, W, levels + 1, C]`: the frame and `levels` blurred copies
    (sigma0 * 2^(k-1) for level k)."""
    stack = [image] + [gaussian_blur(image, sigma0 * 2.0 ** (k - 1))
                       for k in range(1, levels + 1)]
    return tf.stack(stack, axis=3)


def scale_space_warp(image: tf.Tensor, flow: tf.Tensor, levels: int = 5,
                     sigma0: float = 1.5) -> tf.Tensor:
    """Warps `image` `[N, H, W, C]` by `flow` `[N, H, W, 3]` (dx, dy, s): trilinear sampling of
    its scale-space volume. Returns `[N, H, W, C]`; differentiable in `image` and `flow`."""
    volume = scale_space_volume(image, levels, sigma0)
    dtype = image.dtype
    flow = tf.cast(flow, dtype)
    shape = tf.shape(image)
    n, h, w = shape[0], shape[1], shape[2]
    yy, xx = tf.meshgrid(tf.range(h, dtype=dtype), tf.range(w, dtype=dtype), indexing="ij")
    x = tf.clip_by_value(xx[None] + flow[..., 0], 0.0, tf.cast(w - 1, dtype))
    y = tf.clip_by_value(yy[None] + flow[..., 1], 0.0, tf.cast(h - 1, dtype))
    s = tf.clip_by_value(flow[..., 2], 0.0, float(levels))
    x0, y0, s0 = tf.floor(x), tf.floor(y), tf.floor(s)
    fx, fy, fs = x - x0, y - y0, s - s0
    x0, y0, s0 = (tf.cast(v, tf.int32) for v in (x0, y0, s0))
    x1 = tf.minimum(x0 + 1, w - 1)
    y1 = tf.minimum(y0 + 1, h - 1)
    s1 = tf.minimum(s0 + 1, levels)
    b = tf.broadcast_to(tf.range(n)[:, None, None], tf.shape(x0))

    def at(yi, xi, si):
        return tf.gather_nd(volume, tf.stack([b, yi, xi, si], axis=-1))

    out = 0.0
    for si, ws in ((s0, 1.0 - fs), (s1, fs)):
        for yi, wy in ((y0, 1.0 - fy), (y1, fy)):
            for xi, wx in ((x0, 1.0 - fx), (x1, fx)):
                out += at(yi, xi, si) * (ws * wy * wx)[..., None]
    return out
