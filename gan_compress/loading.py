"""Model loading and the shipped form: `load(path)` -> `api.Codec`.

A model is an I-frame codec, or a video model (I- and P-frame codecs; `registry.MODEL_TYPES`).
It loads from a shipped model name or folder (float16 `weights.npz`, and `pframe_weights.npz`
for a video model), a training model_dir (config.json + checkpoints) or a full-codec
SavedModel; `save_shipped_model` writes the shipped form.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import zipfile
from typing import TYPE_CHECKING

import numpy as np

from gan_compress import registry
from gan_compress.configs import Config
from gan_compress.registry import SHIPPED_PFRAME_WEIGHTS, SHIPPED_WEIGHTS, Networks

if TYPE_CHECKING:
    from gan_compress.api import Codec

CONFIG_NAME = "config.json"


class ModelLoadError(ValueError):
    """The model path is missing or not a gan_compress model; the message names the path."""


def _read_config(path: str) -> Config:
    with open(path) as f:
        return Config.from_json(f.read())


def load_networks(model_dir: str, config: Config) -> Networks:
    """The finalized networks of the model in `model_dir` (shipped form or training run), as
    `registry.build_networks` makes them for its type (`registry.model_type_of`)."""
    import tensorflow as tf

    nets = registry.build_networks(registry.model_type_of(model_dir, config), config)
    weights = os.path.join(model_dir, SHIPPED_WEIGHTS)
    if os.path.exists(weights):
        load_shipped_weights(nets.iframe, weights)
        if nets.pframe is not None:
            load_shipped_weights(nets.pframe, os.path.join(model_dir, SHIPPED_PFRAME_WEIGHTS))
    else:
        ckpt_path = tf.train.latest_checkpoint(model_dir)
        if ckpt_path is None:
            raise ModelLoadError(f"{model_dir}: no checkpoint found")
        # read(), not restore(): restore() adds a save_counter that a codec-only checkpoint
        # written by save_codec_checkpoint() (Checkpoint.write) lacks, and the match assertion
        # then fails.
        parts = {"model": nets.iframe}
        if nets.pframe is not None:
            parts["pmodel"] = nets.pframe
        status = tf.train.Checkpoint(**parts).read(ckpt_path)
        status.expect_partial().assert_existing_objects_matched()
    _finalize_with_cache(nets.iframe, model_dir, TABLES_CACHE)
    if nets.pframe is not None:
        _finalize_with_cache(nets.pframe, model_dir, PFRAME_TABLES_CACHE)
    return nets


TABLES_CACHE = "z_tables.npz"  # z coding tables cached beside the weights they were made from
PFRAME_TABLES_CACHE = "pframe_z_tables.npz"  # the same for a video model's two P-frame coders


def load_shipped_weights(model, path: str) -> None:
    """Assigns the float16 arrays of a shipped `weights.npz` (keys w000.. in the codec's
    variable order) to the float32 variables; refuses a count or shape mismatch."""
    variables = model.trainable_variables
    with np.load(path) as d:
        keys = sorted(k for k in d.files if k.startswith("w"))
        if len(keys) != len(variables):
            raise ModelLoadError(f"{path}: {len(keys)} arrays for {len(variables)} variables "
                                 "of this architecture")
        for key, v in zip(keys, variables, strict=True):
            value = d[key]
            if tuple(value.shape) != tuple(v.shape):
                raise ModelLoadError(f"{path}: {key} has shape {value.shape}, the "
                                     f"architecture needs {tuple(v.shape)}")
            v.assign(value.astype(np.float32))


def _save_float16(model, path: str) -> None:
    arrays = {f"w{i:03d}": v.numpy().astype(np.float16)
              for i, v in enumerate(model.trainable_variables)}
    np.savez(path, **arrays)


def save_shipped_model(model, config: Config, out_dir: str, card: str = "",
                       pmodel=None) -> str:
    """Writes a model in the shipped form (see `gan_compress.registry`): float16 weights,
    config, fingerprint of the weights as they load back, z tables and the model card.
    The folder is built beside `out_dir` and renamed into place. Returns the fingerprint."""
    import shutil

    from gan_compress.export_lib import fingerprint
    from gan_compress.registry import FINGERPRINT_NAME

    out_dir = os.path.abspath(out_dir)
    tmp = f"{out_dir}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    _save_float16(model, os.path.join(tmp, SHIPPED_WEIGHTS))
    if pmodel is not None:
        _save_float16(pmodel, os.path.join(tmp, SHIPPED_PFRAME_WEIGHTS))
    with open(os.path.join(tmp, CONFIG_NAME), "w") as f:
        f.write(config.to_json())
    loaded = load_networks(tmp, config)  # the float16-rounded weights, finalized
    fp = fingerprint(config, *loaded)
    with open(os.path.join(tmp, FINGERPRINT_NAME), "w") as f:
        f.write(fp + "\n")
    if card:
        with open(os.path.join(tmp, "MODEL_CARD.md"), "w") as f:
            f.write(card)
    if os.path.exists(out_dir):
        old = f"{out_dir}.old-{os.getpid()}"
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)
    return fp


def _weights_sha(model) -> str:
    import hashlib

    h = hashlib.sha256()
    for v in model.trainable_variables:
        h.update(np.ascontiguousarray(v.numpy()).tobytes())
    return h.hexdigest()


def _read_tables(d) -> dict[str, tuple]:
    """{coder name: (cdf, cdf_offset, offset or None)} from a cache file's arrays; the name ""
    (keys without a prefix) is a single-coder model's (the I-frame codec)."""
    names = [str(n) for n in d["names"]] if "names" in d.files else [""]
    out = {}
    for name in names:
        p = f"{name}_" if name else ""
        offset = d[p + "quantization_offset"] if bool(d[p + "has_offset"]) else None
        out[name] = (d[p + "cdf"], d[p + "cdf_offset"], offset)
    return out


def _table_arrays(named: dict[str, tuple]) -> dict[str, np.ndarray]:
    """The inverse of `_read_tables`: the arrays to save."""
    arrays = {} if list(named) == [""] else {"names": np.array(sorted(named))}
    for name, (cdf, cdf_offset, offset) in named.items():
        p = f"{name}_" if name else ""
        arrays.update({p + "cdf": cdf, p + "cdf_offset": cdf_offset,
                       p + "has_offset": offset is not None,
                       p + "quantization_offset": offset if offset is not None else np.zeros(0)})
    return arrays


def _finalize_with_cache(model, model_dir: str, cache_name: str) -> None:
    """finalize(), reusing z's coding tables cached beside the checkpoint when they were made
    from exactly these weights (the eager table estimation costs several seconds per
    bottleneck and load). `model.z_tables()` is one (cdf, cdf_offset, offset or None) tuple
    (the I-frame codec) or a dict of them by coder (the P-frame codec: "motion", "residual")."""
    sha = _weights_sha(model)
    path = os.path.join(model_dir, cache_name)
    named = None
    try:
        with np.load(path) as d:
            if str(d["weights_sha"]) == sha:
                named = _read_tables(d)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        # no cache, or an unreadable one (empty, truncated, not an npz): rebuild it
        named = None
    if named is not None:
        model.finalize(named[""] if list(named) == [""] else named)
        return
    model.finalize()
    made = model.z_tables()
    arrays = _table_arrays(made if isinstance(made, dict) else {"": made})
    tmp = f"{path}.partial-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, weights_sha=sha, **arrays)
        os.replace(tmp, path)
    except OSError:  # read-only model dir: no cache, just slower loads
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _resolve_saved_model(path: str) -> str | None:
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = sorted((int(d) for d in os.listdir(path) if d.isdigit()), reverse=True) if \
        os.path.isdir(path) else []
    for v in versions:
        p = os.path.join(path, str(v))
        if os.path.exists(os.path.join(p, "saved_model.pb")):
            return p
    return None


class _SavedModelCodec:
    """Adapter giving a loaded full-codec SavedModel the `compress`/`decompress` of IFrameCodec."""

    def __init__(self, loaded, eager: bool = False):
        self._m = loaded
        self.eager = eager  # calls leave TensorFlow (gRPC): never trace them into a graph

    def compress(self, frames, quality):
        from gan_compress.models.iframe import CompressedFrames

        out = self._m.compress(frames, quality)
        return CompressedFrames(out["y_strings"], out["z_strings"], out["image_shape"],
                                out["y_shape"], out["z_shape"], quality)

    def decompress(self, y_strings, z_strings, image_shape, quality):
        return self._m.decompress(y_strings, z_strings, image_shape, quality)["frames"]


def load(path: str | None = None, name: str | None = None) -> Codec:
    """Loads a codec: a shipped model name (default `registry.DEFAULT_MODEL`), a training
    model_dir, a shipped-model folder, or a full-codec SavedModel (version or base dir)."""

    try:
        path, shipped = registry.resolve(None if path is None else os.fspath(path))
    except registry.UnknownModelError as e:
        raise ModelLoadError(str(e)) from None
    import tensorflow as tf
    import tensorflow_compression  # noqa: F401  (registers the range-coding ops)

    from gan_compress.api import Codec
    from gan_compress.export_lib import fingerprint

    saved = _resolve_saved_model(path)
    if saved is not None:
        cfg_path = os.path.join(saved, "assets", CONFIG_NAME)
        fp_path = os.path.join(saved, "assets", "fingerprint.txt")
        if not (os.path.exists(cfg_path) and os.path.exists(fp_path)):
            raise ModelLoadError(f"{saved}: SavedModel without gan_compress assets")
        config = _read_config(cfg_path)
        loaded = tf.saved_model.load(saved)
        if not hasattr(loaded, "compress"):
            raise ModelLoadError(f"{saved}: not a full-codec SavedModel (no compress signature)")
        with open(fp_path) as f:
            fp = f.read().strip()
        return Codec(_SavedModelCodec(loaded), config, fp,
                     name or f"{config.model.name}-{config.preset}")
    cfg_path = os.path.join(path, CONFIG_NAME)
    if not os.path.exists(cfg_path):
        raise ModelLoadError(f"{path}: not a gan_compress model (no {CONFIG_NAME})")
    config = _read_config(cfg_path)
    nets = load_networks(path, config)
    return Codec(nets.iframe, config, fingerprint(config, *nets),
                 name or shipped or f"{config.model.name}-{config.preset}", pframe=nets.pframe)


def load_for_stream(gcv_path: str, model: str | None = None) -> Codec:
    """The codec that decodes `gcv_path`: `model` if given, else the shipped model whose
    fingerprint the stream's header records. Raises ModelLoadError naming the file, the
    stream's model and the shipped ones when none matches."""

    if model is not None:
        return load(model)
    try:
        return load(registry.model_for_stream(gcv_path))
    except registry.UnknownModelError as e:
        raise ModelLoadError(str(e)) from None


def save_codec_checkpoint(model, config: Config, out_dir: str) -> str:
    """Writes the codec's weights only (no discriminator/optimizers) and its config: the form
    a shipped model takes. Returns the checkpoint prefix."""
    import tensorflow as tf

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, CONFIG_NAME), "w") as f:
        f.write(dataclasses.replace(config).to_json())
    ckpt = tf.train.Checkpoint(model=model)
    prefix = ckpt.write(os.path.join(out_dir, "codec"))
    with open(os.path.join(out_dir, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "codec"\nall_model_checkpoint_paths: "codec"\n')
    return prefix
