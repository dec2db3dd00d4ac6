"""Convolution stages and residual blocks.

All layers take and return `[B, H, W, C]` float32 tensors (NHWC). Nothing here knows about
entropy coding, files or training loops.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_compression as tfc


class GDN(tf.keras.layers.Layer):
    """Simplified generalized divisive normalization (Johnston et al. 2019), or its inverse.

    `y_c = x_c / (beta_c + sum_j gamma_jc |x_j|)`; the inverse multiplies instead of dividing.
    `[B, H, W, C] -> [B, H, W, C]`. beta and gamma use TFC's `GDNParameter` reparameterization
    (bounded below, well-conditioned gradients near zero).

    Why not `tfc.GDN`: its `call` picks its branch with `self.alpha == 1` on a tensor, which is
    an element-wise comparison (-> `abs(x)`) when TF's tensor equality is on and an identity
    comparison (-> the signed `x ** alpha`) when it is off. Whether it is on depended on how the
    process was started (`absl.app.run` or not), so the trained, exported and CLI networks
    differed. This layer always uses `|x|` and contains no data-dependent branch.
    """

    def __init__(self, inverse: bool = False, gamma_init: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.inverse = bool(inverse)
        self.gamma_init = float(gamma_init)

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.beta_parameter = tfc.GDNParameter(tf.ones([c]), name="beta", minimum=1e-6)
        self.gamma_parameter = tfc.GDNParameter(
            self.gamma_init * tf.eye(c), name="gamma", minimum=0.0
        )
        super().build(input_shape)

    def call(self, x):
        beta = tf.cast(self.beta_parameter(), x.dtype)
        gamma = tf.cast(self.gamma_parameter(), x.dtype)
        norm = tf.nn.bias_add(tf.nn.conv2d(tf.abs(x), gamma[None, None], 1, "VALID"), beta)
        return x * norm if self.inverse else x / norm


class AnalysisDownStage(tf.keras.layers.Layer):
    """Stride-2 convolution followed by GDN (Balle et al. 2016) or ReLU.

    `[B, H, W, Cin] -> [B, ceil(H/2), ceil(W/2), filters]`.
    """

    def __init__(self, filters: int, kernel_size: int, activation: str | None, **kwargs):
        super().__init__(**kwargs)
        self.conv = tf.keras.layers.Conv2D(filters, kernel_size, strides=2, padding="same")
        if activation == "gdn":
            self.act = GDN(inverse=False, name="gdn")
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
            self.act = GDN(inverse=True, name="igdn")
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
