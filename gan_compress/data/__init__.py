"""tf.data input pipelines on top of `gan_compress.io`.

- `build_inputs(config, input_context)`: the infinite training dataset, `[B, T, S, S, 3]`
  float32 in [0, 1] (`pipeline.py`).
- `decode_cache_warmup(config)`: decode the training files into the frame cache (`cache.py`).
"""

from gan_compress.data.cache import CachedClip, cache_root, ensure_cached
from gan_compress.data.pipeline import (
    SAMPLE_WEIGHTINGS,
    build_inputs,
    decode_cache_warmup,
    list_input_files,
    shard_files,
)

__all__ = [
    "SAMPLE_WEIGHTINGS",
    "CachedClip",
    "build_inputs",
    "cache_root",
    "decode_cache_warmup",
    "ensure_cached",
    "list_input_files",
    "shard_files",
]
