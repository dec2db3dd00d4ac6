"""Client for the transform-only model: entropy coding here, transforms in the (stock) server.

`TransformClient` takes anything with the three signatures of `export_lib.TransformModule`:
a SavedModel loaded in-process (`tf.saved_model.load(dir)`), or an adapter that forwards each
call to TensorFlow Serving over gRPC. It produces exactly the strings of the full codec's
`compress`, so its packets go into the same `.gcv` files.

    client = TransformClient.from_export_dir("exports/small_transforms/1")
    y_strings, z_strings, shapes = client.compress(frames_uint8, quality=3)
    frames = client.decompress(y_strings, z_strings, image_shape, quality=3)
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from gan_compress.entropy_coding import TABLES_FILENAME, CodingTables, RangeCoder


class ClientCompressed(NamedTuple):
    y_strings: list[bytes]
    z_strings: list[bytes]
    image_shape: tuple[int, int]
    y_shape: tuple[int, int]
    z_shape: tuple[int, int]


class TransformClient:
    """`transforms`: callables `analyze`, `entropy_parameters`, `synthesize` returning dicts."""

    def __init__(self, transforms, tables: CodingTables):
        self.t = transforms
        self.coder = RangeCoder(tables)

    @classmethod
    def from_export_dir(cls, path: str) -> TransformClient:
        import tensorflow as tf

        loaded = tf.saved_model.load(path)
        tables = CodingTables.load(os.path.join(path, "assets", TABLES_FILENAME))
        return cls(loaded, tables)

    def compress(self, frames: np.ndarray, quality: int) -> ClientCompressed:
        """frames `[N, H, W, 3]` uint8 -> one (y, z) string pair per frame."""
        frames = np.asarray(frames, np.uint8)  # a list of frames has no .shape
        out = self.t.analyze(frames, np.int32(quality))
        y = np.asarray(out["y_symbols"])
        z = np.asarray(out["z_symbols"])
        idx = np.asarray(out["scale_indexes"])
        return ClientCompressed(
            y_strings=self.coder.encode_y(y, idx),
            z_strings=self.coder.encode_z(z),
            image_shape=(int(frames.shape[1]), int(frames.shape[2])),
            y_shape=(int(y.shape[1]), int(y.shape[2])),
            z_shape=(int(z.shape[1]), int(z.shape[2])),
        )

    def decompress(self, y_strings, z_strings, image_shape, quality: int) -> np.ndarray:
        """-> `[N, H, W, 3]` uint8. Two server calls: entropy parameters, then synthesis."""
        h, w = int(image_shape[0]), int(image_shape[1])
        z_shape = ((h + 63) // 64, (w + 63) // 64)
        z = self.coder.decode_z(z_strings, z_shape)
        idx = np.asarray(self.t.entropy_parameters(z, np.int32(quality))["scale_indexes"])
        y = self.coder.decode_y(y_strings, idx)
        out = self.t.synthesize(y, z, np.array([h, w], np.int32), np.int32(quality))
        return np.asarray(out["frames"])
