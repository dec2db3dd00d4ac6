"""Building blocks shared by the codecs: convolution stages, residual blocks, padding."""

from gan_compress.layers.blocks import (
    AnalysisDownStage,
    ResidualBlock,
    SynthesisUpStage,
    pad_to_multiple,
)

__all__ = ["ResidualBlock", "SynthesisUpStage", "AnalysisDownStage", "pad_to_multiple"]
