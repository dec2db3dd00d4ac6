"""Client for the transform-only model: entropy coding here, transforms in the (stock) server.

`TransformClient` takes anything with the three signatures of `export_lib.TransformModule`:
a SavedModel loaded in-process (`tf.saved_model.load(dir)`), or an adapter that forwards each
call to TensorFlow Serving over gRPC. It produces exactly the strings of the full codec's
`compress`, so its packets go into the same `.gcv` files.

    client = TransformClient.from_export_dir("exports/small_transforms/1")
    coded = client.compress(frames_uint8, quality=3)
    frames = client.decompress(coded.y_strings, coded.z_strings, coded.image_shape, quality=3)

A video model's export adds P-frames: `p_compress(frames, references, quality)` gives the four
strings of each frame (motion y/z, residual y/z) and its reconstruction, the next frame's
reference; `p_decompress` inverts it. The strings are those of `PFrameCodec.compress`.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from gan_compress.entropy_coding import (
    PFRAME_CODERS,
    PFRAME_TABLES_FILENAME,
    TABLES_FILENAME,
    CodingTables,
    RangeCoder,
)


class ClientCompressed(NamedTuple):
    """I-frames: one (y, z) string pair per frame; `reconstruction` `[N, H, W, 3]` uint8 from a
    video model's export (the P-frame reference), None from an image model's."""

    y_strings: list[bytes]
    z_strings: list[bytes]
    image_shape: tuple[int, int]
    y_shape: tuple[int, int]
    z_shape: tuple[int, int]
    reconstruction: np.ndarray | None = None


class ClientPCompressed(NamedTuple):
    """P-frames: four strings per frame and the reconstruction `[N, H, W, 3]` uint8."""

    motion_y: list[bytes]
    motion_z: list[bytes]
    residual_y: list[bytes]
    residual_z: list[bytes]
    image_shape: tuple[int, int]
    reconstruction: np.ndarray


def _z_shape(image_shape) -> tuple[int, int]:
    h, w = int(image_shape[0]), int(image_shape[1])
    return (h + 63) // 64, (w + 63) // 64


class TransformClient:
    """`transforms`: callables `analyze`, `entropy_parameters`, `synthesize` (and `p_analyze`,
    `p_entropy_parameters`, `p_synthesize` for a video model) returning dicts. `pframe_tables`:
    {"motion": tables, "residual": tables} of a video model, else None."""

    def __init__(self, transforms, tables: CodingTables,
                 pframe_tables: dict[str, CodingTables] | None = None):
        self.t = transforms
        self.coder = RangeCoder(tables)
        self.pcoders = {name: RangeCoder(t) for name, t in (pframe_tables or {}).items()}

    @classmethod
    def from_tables_dict(cls, transforms, tables) -> TransformClient:
        """From the `coding_tables` signature's outputs (a mapping of numpy arrays)."""
        tables = {k: np.asarray(v) for k, v in tables.items()}
        ptables = None
        if all(f"{name}_z_cdf" in tables for name in PFRAME_CODERS):
            ptables = {name: CodingTables.from_prefixed(tables, name) for name in PFRAME_CODERS}
        return cls(transforms, CodingTables(**{k: tables[k] for k in CodingTables._fields}),
                   ptables)

    @classmethod
    def from_export_dir(cls, path: str) -> TransformClient:
        import tensorflow as tf

        loaded = tf.saved_model.load(path)
        tables = CodingTables.load(os.path.join(path, "assets", TABLES_FILENAME))
        ptables, ppath = None, os.path.join(path, "assets", PFRAME_TABLES_FILENAME)
        if os.path.exists(ppath):
            with np.load(ppath) as d:
                ptables = {name: CodingTables.from_prefixed(d, name) for name in PFRAME_CODERS}
        return cls(loaded, tables, ptables)

    @property
    def supports_inter(self) -> bool:
        return bool(self.pcoders)

    def compress(self, frames: np.ndarray, quality: int) -> ClientCompressed:
        """frames `[N, H, W, 3]` uint8 -> one (y, z) string pair per frame."""
        frames = np.asarray(frames, np.uint8)  # a list of frames has no .shape
        out = self.t.analyze(frames, np.int32(quality))
        y = np.asarray(out["y_symbols"])
        z = np.asarray(out["z_symbols"])
        idx = np.asarray(out["scale_indexes"])
        recon = out.get("reconstruction")
        return ClientCompressed(
            y_strings=self.coder.encode_y(y, idx),
            z_strings=self.coder.encode_z(z),
            image_shape=(int(frames.shape[1]), int(frames.shape[2])),
            y_shape=(int(y.shape[1]), int(y.shape[2])),
            z_shape=(int(z.shape[1]), int(z.shape[2])),
            reconstruction=None if recon is None else np.asarray(recon),
        )

    def decompress(self, y_strings, z_strings, image_shape, quality: int) -> np.ndarray:
        """-> `[N, H, W, 3]` uint8. Two server calls: entropy parameters, then synthesis."""
        z = self.coder.decode_z(z_strings, _z_shape(image_shape))
        idx = np.asarray(self.t.entropy_parameters(z, np.int32(quality))["scale_indexes"])
        y = self.coder.decode_y(y_strings, idx)
        out = self.t.synthesize(y, z, np.asarray(image_shape, np.int32), np.int32(quality))
        return np.asarray(out["frames"])

    def _require_inter(self):
        if not self.pcoders:
            raise ValueError("this transform-only model has no P-frame signatures (an image "
                             "model's export); P-frames need a video model's")

    def p_compress(self, frames: np.ndarray, references: np.ndarray,
                   quality: int) -> ClientPCompressed:
        """frames, references `[N, H, W, 3]` uint8 (each frame's reference: the reconstruction
        of the frame before it) -> four strings per frame and the reconstructions."""
        self._require_inter()
        frames = np.asarray(frames, np.uint8)
        out = self.t.p_analyze(frames, np.asarray(references, np.uint8), np.int32(quality))
        strings = {}
        for name, coder in self.pcoders.items():
            strings[f"{name}_y"] = coder.encode_y(np.asarray(out[f"{name}_y_symbols"]),
                                                  np.asarray(out[f"{name}_scale_indexes"]))
            strings[f"{name}_z"] = coder.encode_z(np.asarray(out[f"{name}_z_symbols"]))
        return ClientPCompressed(image_shape=(int(frames.shape[1]), int(frames.shape[2])),
                                 reconstruction=np.asarray(out["reconstruction"]), **strings)

    def p_decompress(self, motion_y, motion_z, residual_y, residual_z, references: np.ndarray,
                     image_shape, quality: int) -> np.ndarray:
        """-> `[N, H, W, 3]` uint8. Two server calls: both bottlenecks' entropy parameters,
        then warp and synthesis."""
        self._require_inter()
        zs = _z_shape(image_shape)
        mz = self.pcoders["motion"].decode_z(motion_z, zs)
        rz = self.pcoders["residual"].decode_z(residual_z, zs)
        idx = self.t.p_entropy_parameters(mz, rz, np.int32(quality))
        my = self.pcoders["motion"].decode_y(motion_y, np.asarray(idx["motion_scale_indexes"]))
        ry = self.pcoders["residual"].decode_y(residual_y,
                                               np.asarray(idx["residual_scale_indexes"]))
        out = self.t.p_synthesize(my, mz, ry, rz, np.asarray(references, np.uint8),
                                  np.asarray(image_shape, np.int32), np.int32(quality))
        return np.asarray(out["frames"])
