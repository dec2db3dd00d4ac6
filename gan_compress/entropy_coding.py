"""Client-side range coding for the transform-only model (no model weights needed).

A stock `tensorflow_model_server` has no tensorflow-compression ops, so the transform-only
SavedModel (`export_lib.TransformModule`) returns integer symbols and scale indexes, and this
module turns them into the SAME strings the full codec writes, using TFC's range-coding ops and
the coding tables exported beside the model (`assets/coding_tables.npz`).

Tables (all int32 numpy arrays, as produced by TFC's entropy models after `finalize()`):
  z_cdf [Cz, L], z_cdf_offset [Cz]     per-channel tables of the factorized prior of z
  y_cdf [S, L'], y_cdf_offset [S]      one table per scale index (S = num_scales)
  z_quantization_offset [Cz] float32   z_hat = z_symbols + offset (applied by the server)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_compression as tfc

TABLES_FILENAME = "coding_tables.npz"
PFRAME_TABLES_FILENAME = "pframe_coding_tables.npz"  # video models: the P-frame bottlenecks
PFRAME_CODERS = ("motion", "residual")  # key prefixes of the P-frame tables


def z_tables_of(z_entropy_model) -> tuple:
    """(cdf, cdf_offset, quantization_offset or None) numpy arrays of a `compression=True`
    factorized-prior entropy model: what `z_model_from_tables` needs to rebuild it without
    TFC's eager table estimation (several seconds per bottleneck)."""
    offset = z_entropy_model.quantization_offset
    return (z_entropy_model.cdf.numpy(), z_entropy_model.cdf_offset.numpy(),
            None if offset is None else offset.numpy())


def z_model_from_tables(tables: tuple, channels: int) -> tfc.ContinuousBatchedEntropyModel:
    """The z entropy model (coding rank 3, `channels` = hyper-latent channels) from tables
    read back from a finalized model of the SAME weights (`z_tables_of`)."""
    cdf, cdf_offset, offset = tables
    return tfc.ContinuousBatchedEntropyModel(
        prior=None, coding_rank=3, compression=True, cdf=cdf, cdf_offset=cdf_offset,
        prior_shape=[channels], bottleneck_dtype=tf.float32,
        quantization_offset=offset, offset_heuristic=offset is not None,
    )


class CodingTables(NamedTuple):
    z_cdf: np.ndarray
    z_cdf_offset: np.ndarray
    y_cdf: np.ndarray
    y_cdf_offset: np.ndarray
    z_quantization_offset: np.ndarray

    def save(self, path: str) -> None:
        with open(path, "wb") as f:
            np.savez(f, **self._asdict())

    @classmethod
    def load(cls, path: str) -> CodingTables:
        with np.load(path) as d:
            return cls(**{k: d[k] for k in cls._fields})

    def prefixed(self, prefix: str) -> dict[str, np.ndarray]:
        """{f"{prefix}_{field}": table}: several coders' tables in one npz or signature."""
        return {f"{prefix}_{k}": v for k, v in self._asdict().items()}

    @classmethod
    def from_prefixed(cls, tables, prefix: str) -> CodingTables:
        """Inverse of `prefixed`: any mapping with the `{prefix}_{field}` keys."""
        return cls(**{k: np.asarray(tables[f"{prefix}_{k}"]) for k in cls._fields})


def tables_from_codec(codec) -> CodingTables:
    """Reads the tables of a finalized `IFrameCodec` or `pframe.LatentCoder` (anything with
    `y_entropy_model` and `z_entropy_model`)."""
    y_em, z_em = codec.y_entropy_model, codec.z_entropy_model
    return CodingTables(
        z_cdf=z_em.cdf.numpy(),
        z_cdf_offset=z_em.cdf_offset.numpy(),
        y_cdf=y_em.cdf.numpy(),
        y_cdf_offset=y_em.cdf_offset.numpy(),
        z_quantization_offset=np.asarray(z_em.quantization_offset.numpy(), np.float32),
    )


class RangeCoder:
    """Encodes/decodes y and z symbols of a batch of frames, one string per frame."""

    def __init__(self, tables: CodingTables):
        self.t = tables
        self._z_cdf = tf.constant(tables.z_cdf)
        self._z_off = tf.constant(tables.z_cdf_offset)
        self._y_cdf = tf.constant(tables.y_cdf)
        self._y_off = tf.constant(tables.y_cdf_offset)

    def encode_z(self, z_symbols: np.ndarray) -> list[bytes]:
        """z_symbols `[N, h, w, Cz]` int32 (= round(z - quantization_offset))."""
        z = tf.convert_to_tensor(z_symbols, tf.int32)
        n, cz = tf.shape(z)[0], tf.shape(z)[-1]
        symbols = tf.reshape(z, [n, -1, cz]) - self._z_off
        handle = tfc.create_range_encoder([n], self._z_cdf)
        handle = tfc.entropy_encode_channel(handle, symbols)
        return list(tfc.entropy_encode_finalize(handle).numpy())

    def decode_z(self, strings, z_shape) -> np.ndarray:
        """strings `[N]`, z_shape (h, w) -> z_symbols `[N, h, w, Cz]` int32."""
        strings = tf.constant(list(strings), tf.string)
        h, w = int(z_shape[0]), int(z_shape[1])
        cz = self.t.z_cdf_offset.shape[0]
        handle = tfc.create_range_decoder(strings, self._z_cdf)
        handle, symbols = tfc.entropy_decode_channel(handle, [h, w, cz], tf.int32)
        ok = tfc.entropy_decode_finalize(handle)
        _check(ok, "z")
        symbols = symbols + self._z_off
        return tf.reshape(symbols, [len(strings), h, w, cz]).numpy()

    def encode_y(self, y_symbols: np.ndarray, scale_indexes: np.ndarray) -> list[bytes]:
        """y_symbols (= round(y - mu)) and scale_indexes, both `[N, h, w, M]` int32."""
        idx = tf.convert_to_tensor(scale_indexes, tf.int32)
        symbols = tf.convert_to_tensor(y_symbols, tf.int32) - tf.gather(self._y_off, idx)
        handle = tfc.create_range_encoder(tf.shape(idx)[:1], self._y_cdf)
        handle = tfc.entropy_encode_index(handle, idx, symbols)
        return list(tfc.entropy_encode_finalize(handle).numpy())

    def decode_y(self, strings, scale_indexes: np.ndarray) -> np.ndarray:
        """strings `[N]`, scale_indexes `[N, h, w, M]` int32 -> y_symbols `[N, h, w, M]` int32."""
        strings = tf.constant(list(strings), tf.string)
        idx = tf.convert_to_tensor(scale_indexes, tf.int32)
        handle = tfc.create_range_decoder(strings, self._y_cdf)
        handle, symbols = tfc.entropy_decode_index(handle, idx, tf.shape(idx)[1:], tf.int32)
        _check(tfc.entropy_decode_finalize(handle), "y")
        return (symbols + tf.gather(self._y_off, idx)).numpy()


def _check(ok, what):
    if not bool(tf.reduce_all(ok).numpy()):
        raise ValueError(f"range decoder sanity check failed for the {what} string (corrupt data)")


def pframe_tables(pcodec) -> dict[str, CodingTables]:
    """{"motion": tables, "residual": tables} of a finalized `PFrameCodec`."""
    return {"motion": tables_from_codec(pcodec.motion_coder),
            "residual": tables_from_codec(pcodec.residual_coder)}
