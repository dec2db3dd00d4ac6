"""Encoder-side block motion search: a classical displacement estimate for the motion encoder.

A learned motion encoder has to discover motion estimation from the rate-distortion loss alone,
which took DVC a pretrained optical-flow network and which did not happen in thousands of CPU
training steps here (docs/TRAINING.md, session 7). The encoder has both frames, so it can
measure motion directly: this module finds, for every `block` x `block` block of the current
frame, the integer displacement into the reference with the lowest mean absolute luma
difference (coarse-to-fine: a full search at 1/4 resolution over blocks of 2 * block pixels,
then +-2 px per block at full resolution,
with a small bias towards zero motion so flat areas stay still). The P-frame codec feeds the
result to its motion encoder beside the two frames (`pframe.motion_search_radius`); the flow
that is coded and decoded is still the learned motion decoder's, so the decoder never runs
this search and the bitstream is unchanged.

Shapes: frames `[N, H, W, 3]` float32 in [0, 1], H and W multiples of `8 * block`. Output
`[N, H, W, 2]` float32 (dx, dy) in pixels, constant over each block, the warp's convention
(the prediction at p samples the reference at p + (dx, dy); `gan_compress.layers.warp`).
"""

from __future__ import annotations

import tensorflow as tf

COARSE = 4  # resolution factor of the first search stage
REFINE = 2  # +- pixels of the full-resolution refinement
ZERO_BIAS = 0.0002  # cost added per pixel of displacement (luma in [0, 1]): prefer still blocks


def _luma(x: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(x * tf.constant([0.299, 0.587, 0.114], x.dtype), axis=-1,
                         keepdims=True)


def _shifted(image: tf.Tensor, dy: int, dx: int, radius: int) -> tf.Tensor:
    """image `[N, H + 2r, W + 2r, C]` (edge-padded by r) -> the `[N, H, W, C]` window whose
    pixel p is the unpadded image at p + (dx, dy), borders clamped."""
    h = tf.shape(image)[1] - 2 * radius
    w = tf.shape(image)[2] - 2 * radius
    return image[:, radius + dy: radius + dy + h, radius + dx: radius + dx + w, :]


def _edge_pad(image: tf.Tensor, r: int) -> tf.Tensor:
    h, w = tf.shape(image)[1], tf.shape(image)[2]
    rows = tf.clip_by_value(tf.range(-r, h + r), 0, h - 1)
    cols = tf.clip_by_value(tf.range(-r, w + r), 0, w - 1)
    return tf.gather(tf.gather(image, rows, axis=1), cols, axis=2)


def _full_search(cur, ref, radius: int, block: int):
    """Exhaustive integer search: -> (dy, dx) `[N, h/block, w/block]` int32 per block."""
    padded = _edge_pad(ref, radius)
    costs, offsets = [], []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            sad = tf.abs(cur - _shifted(padded, dy, dx, radius))
            pooled = tf.nn.avg_pool2d(sad, block, block, "VALID")[..., 0]
            costs.append(pooled + ZERO_BIAS * float(abs(dx) + abs(dy)))
            offsets.append((dy, dx))
    best = tf.argmin(tf.stack(costs, axis=-1), axis=-1, output_type=tf.int32)
    table = tf.constant(offsets, tf.int32)
    return tf.gather(table[:, 0], best), tf.gather(table[:, 1], best)


def _upsample_blocks(v: tf.Tensor, block: int) -> tf.Tensor:
    """`[N, h, w]` -> `[N, h * block, w * block]` (each value repeated over its block)."""
    return tf.repeat(tf.repeat(v, block, axis=1), block, axis=2)


def _sample(image, flow_y, flow_x):
    """image `[N, H, W, C]` at integer offsets `[N, H, W]` (clamped to the frame)."""
    n, h, w = tf.shape(image)[0], tf.shape(image)[1], tf.shape(image)[2]
    yy, xx = tf.meshgrid(tf.range(h), tf.range(w), indexing="ij")
    y = tf.clip_by_value(yy[None] + flow_y, 0, h - 1)
    x = tf.clip_by_value(xx[None] + flow_x, 0, w - 1)
    b = tf.broadcast_to(tf.range(n)[:, None, None], tf.shape(y))
    return tf.gather_nd(image, tf.stack([b, y, x], axis=-1))


def block_motion_search(frame: tf.Tensor, reference: tf.Tensor, radius: int = 16,
                        block: int = 8) -> tf.Tensor:
    """Block displacements of `frame` into `reference` (module docstring): `[N, H, W, 2]`
    float32 (dx, dy) in pixels, |dx|, |dy| <= radius + REFINE. No gradient."""
    cur = tf.stop_gradient(_luma(tf.cast(frame, tf.float32)))
    ref = tf.stop_gradient(_luma(tf.cast(reference, tf.float32)))
    # stage 1: full search at 1/COARSE resolution, blocks of block/COARSE pixels there
    small_cur = tf.nn.avg_pool2d(cur, COARSE, COARSE, "VALID")
    small_ref = tf.nn.avg_pool2d(ref, COARSE, COARSE, "VALID")
    # (blocks twice as large in the coarse stage: more texture per block, fewer false matches)
    cy, cx = _full_search(small_cur, small_ref, max(1, radius // COARSE), 2 * block // COARSE)
    cy, cx = _upsample_blocks(cy * COARSE, 2 * block), _upsample_blocks(cx * COARSE, 2 * block)
    # stage 2: +-REFINE pixels around the coarse vector, at full resolution
    costs, deltas = [], []
    for dy in range(-REFINE, REFINE + 1):
        for dx in range(-REFINE, REFINE + 1):
            fy, fx = cy + dy, cx + dx
            sad = tf.abs(cur - _sample(ref, fy, fx))
            pooled = tf.nn.avg_pool2d(sad, block, block, "VALID")[..., 0]
            length = tf.cast(tf.abs(fy) + tf.abs(fx), tf.float32)[:, ::block, ::block]
            costs.append(pooled + ZERO_BIAS * length)
            deltas.append((dy, dx))
    best = tf.argmin(tf.stack(costs, axis=-1), axis=-1, output_type=tf.int32)
    table = tf.constant(deltas, tf.int32)
    fy = cy + _upsample_blocks(tf.gather(table[:, 0], best), block)
    fx = cx + _upsample_blocks(tf.gather(table[:, 1], best), block)
    return tf.cast(tf.stack([fx, fy], axis=-1), tf.float32)
