"""Conditional PatchGAN discriminator with spectral normalization (HiFiC, Mentzer et al. 2020).

The discriminator sees an image and the quantized latent it was decoded from: `y_hat` is
projected to a few channels, upsampled 16x (nearest) and concatenated to the image, so it judges
"is this a plausible image FOR THIS latent", not just "is this a plausible image".
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from gan_compress.configs import ModelConfig
from gan_compress.layers.spectral_norm import SNConv2D


class DiscriminatorOutput(NamedTuple):
    """logits: `[B, h, w, 1]` float32 per-patch real/fake logits (h = H / 2**n for n conv layers).
    features: intermediate activations, used for the feature-matching loss."""

    logits: tf.Tensor
    features: tuple[tf.Tensor, ...]


class ConditionalPatchDiscriminator(tf.keras.Model):
    """`(x [B, H, W, 3] in [0, 1], y_hat [B, H/16, W/16, M]) -> DiscriminatorOutput`."""

    def __init__(self, cfg: ModelConfig, **kwargs):
        super().__init__(name="discriminator", **kwargs)
        self.latent_proj = tf.keras.layers.Conv2D(cfg.disc_latent_channels, 3, padding="same")
        self.upsample = tf.keras.layers.UpSampling2D(16, interpolation="nearest")
        # All stride 2 (HiFiC keeps the last at stride 1): 4x cheaper last layer on CPU.
        self.convs = [
            SNConv2D(c, 4, strides=2, name=f"conv{i}")
            for i, c in enumerate(cfg.disc_channels)
        ]
        self.out = SNConv2D(1, 1, name="logits")

    def call(self, x, y_hat, training=False, context=None) -> DiscriminatorOutput:
        """`context`: optional `[B, H, W, C]` in [0, 1] image-sized conditioning (the P-frame
        discriminator sees the prediction: it judges "is this a plausible frame GIVEN this
        warped reference", which rewards carrying the reference's texture over)."""
        cond = tf.nn.leaky_relu(self.latent_proj(tf.stop_gradient(y_hat)), 0.2)
        cond = self.upsample(cond)[:, : tf.shape(x)[1], : tf.shape(x)[2], :]
        parts = [x * 2.0 - 1.0]
        if context is not None:
            parts.append(tf.stop_gradient(context) * 2.0 - 1.0)
        h = tf.concat(parts + [cond], axis=-1)
        features = []
        for conv in self.convs:
            h = tf.nn.leaky_relu(conv(h, training=training), 0.2)
            features.append(h)
        logits = self.out(h, training=training)
        return DiscriminatorOutput(logits, tuple(features))
