"""Reproducible evaluation of decoder-side networks, for references that must not drift.

A P-frame is predicted from the decoded previous frame, so encoder and decoder must hold the
same reference, byte for byte, on any machine and thread count. float32 convolutions do not
give that: oneDNN and Eigen split their sums by thread, and an I-frame decoded on 1 core
differed from one decoded on 2 cores in 1 byte of 190,080 (`benchmarks/determinism.py`). Two
tools here:

- `exact_hyper_synthesis`: integer fixed point held in float64 (exact in any summation order;
  used for the entropy parameters, where one flipped index makes a stream undecodable).
- `run_float64`: a layer stack evaluated in float64 with the float32 weights. Reordered sums
  then differ by about 1e-16 relative, so a uint8 output can change only where a value lies
  within ~1e-12 of a rounding boundary (never seen in `tests/test_pframe.py`'s thread-count
  test); the float32 difference is ~1e-6, a million times more often.

Shapes: NHWC. Supported layers: Conv2D, Conv2DTranspose (stride 1 or 2, "same"), ReLU, our
`GDN`, `AnalysisDownStage`, `SynthesisUpStage`, `ResidualBlock`, and Keras Sequentials of them.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from gan_compress.layers.blocks import GDN, AnalysisDownStage, ResidualBlock, SynthesisUpStage

# Fixed point of the exact path: values are integers in units of 2^-FRAC_BITS held in
# float64, which adds and multiplies integers exactly below 2^53 in any order.
FRAC_BITS = 16
ACT_LIMIT = 128.0  # layer inputs are clipped to +-128 (real units) before each convolution


def _conv(layer, h, kernel, strides):
    if isinstance(layer, tf.keras.layers.Conv2DTranspose):
        shape = tf.shape(h)
        out_shape = tf.stack([shape[0], strides * shape[1], strides * shape[2],
                              tf.shape(kernel)[2]])
        return tf.nn.conv2d_transpose(h, kernel, out_shape, strides=strides, padding="SAME")
    return tf.nn.conv2d(h, kernel, strides=strides, padding="SAME")


def exact_hyper_synthesis(layers, z_hat):
    """A conv/transposed-conv stack with ReLUs between layers (none after the last) in exact
    fixed-point arithmetic: `z_hat` float32 -> float64 output at scale 2^FRAC_BITS (integers).

    Each layer: input a (integer, scale F = 2^FRAC_BITS, clipped to +-ACT_LIMIT), kernel
    W = round(w * F), bias round(b * F^2); out = conv(a, W) + bias at scale F^2 is exact
    because every product and partial sum is an integer below 2^53 (`check_exactness` proves
    the bound from the weights), whatever the summation order; then floor(out / F + 1/2) back
    to scale F (exact: F is a power of two), then ReLU.
    """
    f = float(2**FRAC_BITS)
    h = tf.round(tf.cast(z_hat, tf.float64) * f)
    for i, layer in enumerate(layers):
        h = tf.clip_by_value(h, -ACT_LIMIT * f, ACT_LIMIT * f)
        kernel = tf.round(tf.cast(layer.kernel, tf.float64) * f)
        bias = tf.round(tf.cast(layer.bias, tf.float64) * f * f)
        h = _conv(layer, h, kernel, layer.strides[0])
        h = tf.floor((h + bias) / f + 0.5)
        if i < len(layers) - 1:
            h = tf.nn.relu(h)
    return h


def check_exactness(layers) -> float:
    """Largest possible partial sum (in units) of `exact_hyper_synthesis` over every layer and
    output channel: sum |W| * ACT_LIMIT * F + |bias|. Raises ValueError unless below 2^52."""
    f = float(2**FRAC_BITS)
    worst = 0.0
    for layer in layers:
        k = np.round(layer.kernel.numpy().astype(np.float64) * f)
        b = np.round(layer.bias.numpy().astype(np.float64) * f * f)
        out_axis = 2 if isinstance(layer, tf.keras.layers.Conv2DTranspose) else 3
        l1 = np.abs(k).sum(axis=tuple(a for a in range(4) if a != out_axis))
        worst = max(worst, float(np.max(l1 * ACT_LIMIT * f + np.abs(b))))
    if worst >= 2.0**52:
        raise ValueError(f"hyper-synthesis weights too large for exact fixed point: "
                         f"partial sums up to {worst:.3g} >= 2^52")
    return worst


def _keras_conv64(layer, h):
    kernel = tf.cast(layer.kernel, tf.float64)
    h = _conv(layer, h, kernel, layer.strides[0])
    if layer.use_bias:
        h = tf.nn.bias_add(h, tf.cast(layer.bias, tf.float64))
    act = tf.keras.activations.serialize(layer.activation)
    if act == "relu":
        h = tf.nn.relu(h)
    elif act != "linear":
        raise TypeError(f"run_float64: activation {act!r} of {layer.name} not supported")
    return h


def run_float64(layer, h: tf.Tensor) -> tf.Tensor:
    """Evaluates `layer` (see the module docstring for what is supported) in float64:
    `h` any float dtype -> float64 result of the same function as `layer(h)`."""
    h = tf.cast(h, tf.float64)
    if isinstance(layer, tf.keras.Sequential):
        for sub in layer.layers:
            h = run_float64(sub, h)
        return h
    if isinstance(layer, (tf.keras.layers.Conv2D, tf.keras.layers.Conv2DTranspose)):
        return _keras_conv64(layer, h)
    if isinstance(layer, tf.keras.layers.ReLU):
        return tf.nn.relu(h)
    if isinstance(layer, GDN):
        beta = tf.cast(layer.beta_parameter(), tf.float64)
        gamma = tf.cast(layer.gamma_parameter(), tf.float64)
        norm = tf.nn.bias_add(tf.nn.conv2d(tf.abs(h), gamma[None, None], 1, "VALID"), beta)
        return h * norm if layer.inverse else h / norm
    if isinstance(layer, (AnalysisDownStage, SynthesisUpStage)):
        h = run_float64(layer.conv, h)
        return run_float64(layer.act, h) if layer.act is not None else h
    if isinstance(layer, ResidualBlock):
        return h + run_float64(layer.conv2, run_float64(layer.conv1, h))
    raise TypeError(f"run_float64: layer type {type(layer).__name__} not supported")
