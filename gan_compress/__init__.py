"""gan_compress: a GAN-based learned video codec and video-enhancement toolkit.

Public API (imports TensorFlow lazily, so `import gan_compress` stays fast for the CLI's `info`):

    codec = gan_compress.load("path/to/export_or_model_dir")   # or load() for the shipped model
    codec.compress_video("in.y4m", "out.gcv", quality=3)
    codec.decompress_video("out.gcv", "out.y4m")
    data = codec.compress_image(rgb_uint8, quality=3); rgb = codec.decompress_image(data)
"""

__version__ = "0.1.0"
__all__ = ["load", "__version__"]


def load(path=None, **kwargs):
    """Loads a codec (see `gan_compress.api.load`)."""
    from gan_compress.api import load as _load

    return _load(path, **kwargs)
