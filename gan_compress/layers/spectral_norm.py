"""Spectrally normalised 2-D convolution (Miyato et al. 2018).

The kernel is stored unnormalised and divided by its largest singular value on every call,
estimated with one power iteration whose vector `u` persists across steps. `u` is updated only
when `training=True`, with MEAN aggregation so the update is well defined inside a
`tf.distribute` replica context (all replicas compute the same value).
"""

from __future__ import annotations

import tensorflow as tf


class SNConv2D(tf.keras.layers.Layer):
    """`[B, H, W, Cin] -> [B, H', W', filters]`, like Conv2D with `padding="same"`."""

    def __init__(self, filters: int, kernel_size: int, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides

    def build(self, input_shape):
        cin = int(input_shape[-1])
        k = self.kernel_size
        self.kernel = self.add_weight(
            "kernel", [k, k, cin, self.filters], initializer="glorot_uniform"
        )
        self.bias = self.add_weight("bias", [self.filters], initializer="zeros")
        self.u = self.add_weight(
            "u",
            [1, self.filters],
            initializer=tf.keras.initializers.RandomNormal(),
            trainable=False,
            synchronization=tf.VariableSynchronization.ON_WRITE,
            aggregation=tf.VariableAggregation.MEAN,
        )

    def call(self, x, training=False):
        w = tf.reshape(self.kernel, [-1, self.filters])  # [k*k*cin, filters]
        u = tf.stop_gradient(self.u)
        v = tf.math.l2_normalize(tf.matmul(u, w, transpose_b=True))  # [1, k*k*cin]
        u_new = tf.math.l2_normalize(tf.matmul(v, w))  # [1, filters]
        u_new, v = tf.stop_gradient(u_new), tf.stop_gradient(v)
        sigma = tf.squeeze(tf.matmul(tf.matmul(v, w), u_new, transpose_b=True))
        if training:
            self.u.assign(u_new)
        kernel = self.kernel / sigma
        y = tf.nn.conv2d(x, kernel, self.strides, "SAME")
        return tf.nn.bias_add(y, self.bias)
