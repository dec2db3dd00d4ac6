"""Convolution stages and residual blocks.

All layers take and return `[B, H, W, C]` float32 tensors (NHWC). Nothing here knows about
entropy coding, files or training loops.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_compression as tfc


class AnalysisDownStage(tf.keras.layers.Layer):
    """Stride-2 convolution followed by GDN (Balle et al. 2016) or ReLU.

    `[B, H, W, Cin] -> [B, ceil(H/2), ceil(W/2), filters]`.
    """

    def __init__(self, filters: int, kernel_size: int, activation: str | None, **kwargs):
        super().__init__(**kwargs)
        self.conv = tf.keras.layers.Conv2D(filters, kernel_size, strides=2, padding="same")
        if activation == "gdn":
            self.act = tfc.GDN(inverse=False, name="gdn")
        elif activation == "relu":
            self.act = tf.keras.layers.ReLU()
        else:
            self.act = None

    def call(self, x):
        x = self.conv(x)
        return self.act(x) if self.act is not None else x


class SynthesisUpStage(tf.keras.layers.Layer):
    """Stride-2 transposed convolution followed by inverse GDN or ReLU.

    `[B, H, W, Cin] -> [B, 2H, 2W, filters]`.
    """

    def __init__(self, filters: int, kernel_size: int, activation: str | None, **kwargs):
        super().__init__(**kwargs)
        self.conv = tf.keras.layers.Conv2DTranspose(
            filters, kernel_size, strides=2, padding="same"
        )
        if activation == "igdn":
            self.act = tfc.GDN(inverse=True, name="igdn")
        elif activation == "relu":
            self.act = tf.keras.layers.ReLU()
        else:
            self.act = None

    def call(self, x):
        x = self.conv(x)
        return self.act(x) if self.act is not None else x


class ResidualBlock(tf.keras.layers.Layer):
    """HiFiC generator block: conv3x3 -> ReLU -> conv3x3, plus the identity. Shape-preserving."""

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = tf.keras.layers.Conv2D(filters, 3, padding="same", activation="relu")
        self.conv2 = tf.keras.layers.Conv2D(filters, 3, padding="same")

    def call(self, x):
        return x + self.conv2(self.conv1(x))


def pad_to_multiple(x: tf.Tensor, multiple: int) -> tf.Tensor:
    """Pads `[B, H, W, C]` at the bottom/right by edge replication to a multiple of `multiple`.

    Replication (not zeros) keeps the padded area cheap to code: it continues the border.
    """
    shape = tf.shape(x)
    pad_h = (-shape[1]) % multiple
    pad_w = (-shape[2]) % multiple
    # SYMMETRIC needs pad <= size; repeat the last row/column instead, which works for any size.
    x = tf.concat([x, tf.repeat(x[:, -1:, :, :], pad_h, axis=1)], axis=1)
    x = tf.concat([x, tf.repeat(x[:, :, -1:, :], pad_w, axis=2)], axis=2)
    return x
