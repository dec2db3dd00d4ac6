"""SavedModel export: the full codec (needs TFC ops) and the transform-only model (stock ops).

Layout (TF Serving's): `<base>/<integer version>/saved_model.pb`, `variables/`, `assets/`:
  assets/config.json        the Config the model was built from
  assets/fingerprint.txt    hex sha256 of the config and the codec's weights (in .gcv headers)
  assets/MODEL_CARD.md      what it is, how it was trained, figures
  assets/coding_tables.npz  (transform-only) range-coding tables for the client

Full codec signatures (`CodecModule`):
  compress(frames uint8 [N, H, W, 3], quality int32 []) ->
      {y_strings [N] string, z_strings [N] string, image_shape [2], y_shape [2], z_shape [2]}
  decompress(y_strings [N] string, z_strings [N] string, image_shape int32 [2], quality int32 [])
      -> {frames uint8 [N, H, W, 3]}
  model_info() -> {fingerprint string [], config string [] (JSON)}: what a remote client
      writes into `.gcv` headers and checks streams against

Transform-only signatures (`TransformModule`), stock TensorFlow ops only:
  analyze(frames uint8 [N, H, W, 3], quality int32 []) ->
      {y_symbols int32 [N, h, w, M], z_symbols int32 [N, h/4, w/4, Cz],
       scale_indexes int32 [N, h, w, M]}
  entropy_parameters(z_symbols int32, quality int32 []) -> {scale_indexes int32 [N, h, w, M]}
  synthesize(y_symbols int32, z_symbols int32, image_shape int32 [2], quality int32 [])
      -> {frames uint8 [N, H, W, 3]}
  model_info() -> as above
  coding_tables() -> {z_cdf, z_cdf_offset, y_cdf, y_cdf_offset int32, z_quantization_offset
      float32}: the client's range-coding tables (also in assets/coding_tables.npz)

Video models (an I-frame and a P-frame codec; `VideoCodecModule`, `VideoTransformModule`) code
I-frames as above, but decode them through the reproducible reference path, and `compress` /
`analyze` also return `reconstruction` uint8 [N, H, W, 3], the next P-frame's reference. They add:
  p_compress(frames uint8 [N, H, W, 3], references uint8 [N, H, W, 3], quality) ->
      {motion_y, motion_z, residual_y, residual_z string [N], image_shape [2],
       reconstruction uint8 [N, H, W, 3]}
  p_decompress(motion_y, motion_z, residual_y, residual_z string [N], references, image_shape,
      quality) -> {frames uint8 [N, H, W, 3]}
and, transform-only (stock ops; the client range-codes with the `motion_*` / `residual_*`
tables of `coding_tables`, also in assets/pframe_coding_tables.npz):
  p_analyze(frames, references, quality) -> {motion_y_symbols, motion_z_symbols,
      motion_scale_indexes, residual_y_symbols, residual_z_symbols, residual_scale_indexes
      int32, reconstruction uint8}
  p_entropy_parameters(motion_z_symbols, residual_z_symbols, quality) ->
      {motion_scale_indexes, residual_scale_indexes int32}
  p_synthesize(motion_y_symbols, motion_z_symbols, residual_y_symbols, residual_z_symbols,
      references, image_shape, quality) -> {frames uint8 [N, H, W, 3]}
Each P-frame's reference is the reconstruction of the frame before it (`gop.GopEncoder`).

`export_for_serving` writes both under one model base path, TF Serving's multi-model layout:
  <base>/<name>/<version>/              the full codec
  <base>/<name>-transforms/<version>/   the transform-only model
  <base>/models.config                  TF Serving model config listing every model under base
  <base>/batching.config                TF Serving batching parameters
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from gan_compress.configs import Config
from gan_compress.entropy_coding import (
    PFRAME_TABLES_FILENAME,
    TABLES_FILENAME,
    pframe_tables,
    tables_from_codec,
)

FRAMES = tf.TensorSpec([None, None, None, 3], tf.uint8, name="frames")
QUALITY = tf.TensorSpec([], tf.int32, name="quality")
STRINGS = tf.TensorSpec([None], tf.string)
SHAPE2 = tf.TensorSpec([2], tf.int32)
SYMBOLS = tf.TensorSpec([None, None, None, None], tf.int32)


# v3: entropy parameters in exact fixed point (`IFrameCodec.entropy_parameters`); streams of
# v2 used float32 and are refused rather than risk different scale indexes.
FINGERPRINT_VERSION = b"gan_compress fingerprint v3"


def fingerprint(config: Config, codec, pcodec=None) -> str:
    """Hex sha256 of the architecture (`config.model`) and every trainable codec variable
    (dtype, shape, bytes), in the model's own order. Training, data and loss settings are left
    out: the same weights with an edited `log_every` are the same decoder.

    `pcodec`: the P-frame codec of a video model (left out of I-frame-only models, whose
    fingerprints are therefore unchanged by its existence).

    The coding tables are left out too: finalize() derives them deterministically from these
    weights, and whether they were rebuilt or read from a cache must not change the fingerprint.
    Variable names are left out on purpose: Keras numbers unnamed layers per process
    (`conv2d_7` after six other convolutions were built), so a name-based hash of the same
    model differed between processes. The order of `codec.weights` comes from the code alone.
    """
    arch = json.dumps(dataclasses.asdict(config.model), sort_keys=True)
    h = hashlib.sha256(FINGERPRINT_VERSION + b"\n" + arch.encode())
    variables = list(codec.trainable_variables)
    if pcodec is not None:  # a video model: the P-frame codec's architecture and weights too
        parch = dataclasses.asdict(config.pframe)
        for key, default in (("flow_scale", 1.0), ("motion_search_radius", 0),
                             ("motion_latent_scale", 1.0)):
            if parch.get(key) == default:  # added later: hashed only when not the default
                del parch[key]
        h.update(b"\npframe\n" + json.dumps(parch, sort_keys=True).encode())
        variables += list(pcodec.trainable_variables)
    for v in variables:
        h.update(v.dtype.name.encode())
        value = np.ascontiguousarray(v.numpy())
        h.update(np.asarray(value.shape, np.int64).tobytes())
        h.update(value.tobytes())
    return h.hexdigest()


class _InfoMixin:
    def _set_info(self, codec, config: Config | None, pcodec=None):
        """Constants behind `model_info`: config JSON and fingerprint ("{}" and "" without a
        config, e.g. a module built only to trace signatures)."""
        if config is None:
            self._info_config, self._info_fingerprint = tf.constant("{}"), tf.constant("")
        else:
            self._info_config = tf.constant(config.to_json())
            self._info_fingerprint = tf.constant(fingerprint(config, codec, pcodec))

    @tf.function(input_signature=[])
    def model_info(self):
        return {"fingerprint": tf.identity(self._info_fingerprint),
                "config": tf.identity(self._info_config)}


class CodecModule(_InfoMixin, tf.Module):
    """The full codec with range coding (TFC ops inside the graph)."""

    def __init__(self, codec, config: Config | None = None, pcodec=None):
        super().__init__(name="gan_compress_codec")
        if not codec.finalized:
            raise ValueError("export needs a finalized codec (call codec.finalize())")
        self.codec = codec
        self._set_info(codec, config, pcodec)

    @staticmethod
    def _outputs(c) -> dict:
        """A `CompressedFrames` -> the `compress` signature's outputs."""
        return {"y_strings": c.y_strings, "z_strings": c.z_strings,
                "image_shape": c.image_shape, "y_shape": c.y_shape, "z_shape": c.z_shape}

    @tf.function(input_signature=[FRAMES, QUALITY])
    def compress(self, frames, quality):
        return self._outputs(self.codec.compress(frames, quality))

    @tf.function(input_signature=[STRINGS, STRINGS, SHAPE2, QUALITY])
    def decompress(self, y_strings, z_strings, image_shape, quality):
        return {"frames": self.codec.decompress(y_strings, z_strings, image_shape, quality)}


class TransformModule(_InfoMixin, tf.Module):
    """Analysis/synthesis transforms only: servable by a stock tensorflow_model_server."""

    def __init__(self, codec, config: Config | None = None, pcodec=None):
        super().__init__(name="gan_compress_transforms")
        if not codec.finalized:
            raise ValueError("export needs a finalized codec (call codec.finalize())")
        self.codec = codec
        self.z_offset = tf.constant(codec.z_entropy_model.quantization_offset.numpy())
        self._tables = {k: tf.constant(v) for k, v in tables_from_codec(codec)._asdict().items()}
        self._set_info(codec, config, pcodec)

    @tf.function(input_signature=[])
    def coding_tables(self):
        return {k: tf.identity(v) for k, v in self._tables.items()}

    def _z_hat(self, z_symbols):
        return tf.cast(z_symbols, tf.float32) + self.z_offset

    def _analysis(self, frames, quality):
        """-> (the `analyze` outputs, mu float32): `IFrameCodec.encode_latents`, stock ops."""
        y_symbols, z_symbols, scale_index, mu = self.codec.encode_latents(frames, quality)
        return {"y_symbols": y_symbols, "z_symbols": z_symbols,
                "scale_indexes": tf.cast(scale_index, tf.int32)}, mu

    @tf.function(input_signature=[FRAMES, QUALITY])
    def analyze(self, frames, quality):
        return self._analysis(frames, quality)[0]

    @tf.function(input_signature=[SYMBOLS, QUALITY])
    def entropy_parameters(self, z_symbols, quality):
        _, scale_index = self.codec.entropy_parameters(self._z_hat(z_symbols))
        return {"scale_indexes": tf.cast(scale_index, tf.int32)}

    @tf.function(input_signature=[SYMBOLS, SYMBOLS, SHAPE2, QUALITY])
    def synthesize(self, y_symbols, z_symbols, image_shape, quality):
        mu, _ = self.codec.entropy_parameters(self._z_hat(z_symbols))
        frames = self.codec.synthesize_latents(y_symbols, mu, quality, image_shape)
        return {"frames": frames}


REFERENCES = tf.TensorSpec([None, None, None, 3], tf.uint8, name="references")


def _check_pframe(pcodec):
    if not pcodec.finalized:
        raise ValueError("export needs a finalized P-frame codec (call pcodec.finalize())")


class VideoCodecModule(CodecModule):
    """The full codec of a video model (I- and P-frame codecs), as `api.Codec` codes GOPs:
    I-frames decode through the reproducible reference path (`synthesize_reference`), so a
    reconstruction is the next P-frame's reference on either side, byte for byte."""

    def __init__(self, codec, pcodec, config: Config | None = None):
        _check_pframe(pcodec)
        super().__init__(codec, config, pcodec)
        self.pcodec = pcodec

    def _reference(self, y_strings, z_strings, image_shape, quality):
        symbols, mu = self.codec.decode_latents(y_strings, z_strings, image_shape)
        return self.codec.synthesize_reference(symbols, mu, quality, image_shape)

    @tf.function(input_signature=[FRAMES, QUALITY])
    def compress(self, frames, quality):
        c = self.codec.compress(frames, quality)
        recon = self._reference(c.y_strings, c.z_strings, c.image_shape, c.quality)
        return {**self._outputs(c), "reconstruction": recon}

    @tf.function(input_signature=[STRINGS, STRINGS, SHAPE2, QUALITY])
    def decompress(self, y_strings, z_strings, image_shape, quality):
        quality = self.codec._check_quality(quality)
        return {"frames": self._reference(y_strings, z_strings, image_shape, quality)}

    @tf.function(input_signature=[FRAMES, REFERENCES, QUALITY])
    def p_compress(self, frames, references, quality):
        c, recon = self.pcodec.compress(frames, references, quality)
        return {"motion_y": c.motion_y, "motion_z": c.motion_z, "residual_y": c.residual_y,
                "residual_z": c.residual_z, "image_shape": c.image_shape,
                "reconstruction": recon}

    @tf.function(input_signature=[STRINGS, STRINGS, STRINGS, STRINGS, REFERENCES, SHAPE2,
                                  QUALITY])
    def p_decompress(self, motion_y, motion_z, residual_y, residual_z, references,
                     image_shape, quality):
        return {"frames": self.pcodec.decompress(motion_y, motion_z, residual_y, residual_z,
                                                 references, image_shape, quality)}


class VideoTransformModule(TransformModule):
    """Transform-only model of a video model: the I-frame signatures (I-frames synthesized
    through the reference path, `analyze` also returning the reconstruction) plus P-frame
    ones, stock TensorFlow ops only. Per P-frame and bottleneck (motion, residual) the client
    range-codes y and z symbols with the tables of `coding_tables` (`motion_*`, `residual_*`)."""

    def __init__(self, codec, pcodec, config: Config | None = None):
        _check_pframe(pcodec)
        super().__init__(codec, config, pcodec)
        self.pcodec = pcodec
        for name, tables in pframe_tables(pcodec).items():
            self._tables.update({k: tf.constant(v) for k, v in tables.prefixed(name).items()})

    @tf.function(input_signature=[FRAMES, QUALITY])
    def analyze(self, frames, quality):
        out, mu = self._analysis(frames, quality)
        out["reconstruction"] = self.codec.synthesize_reference(
            out["y_symbols"], mu, quality, tf.shape(frames)[1:3])
        return out

    @tf.function(input_signature=[SYMBOLS, SYMBOLS, SHAPE2, QUALITY])
    def synthesize(self, y_symbols, z_symbols, image_shape, quality):
        quality = self.codec._check_quality(quality)
        mu, _ = self.codec.entropy_parameters(self._z_hat(z_symbols))
        return {"frames": self.codec.synthesize_reference(y_symbols, mu, quality, image_shape)}

    @tf.function(input_signature=[FRAMES, REFERENCES, QUALITY])
    def p_analyze(self, frames, references, quality):
        motion, residual, recon = self.pcodec.quantize(frames, references, quality)
        out = {"reconstruction": recon}
        for name, s in (("motion", motion), ("residual", residual)):
            out.update({f"{name}_y_symbols": s.y_symbols, f"{name}_z_symbols": s.z_symbols,
                        f"{name}_scale_indexes": s.scale_indexes})
        return out

    @tf.function(input_signature=[SYMBOLS, SYMBOLS, QUALITY])
    def p_entropy_parameters(self, motion_z_symbols, residual_z_symbols, quality):
        p = self.pcodec
        return {
            "motion_scale_indexes": tf.cast(
                p.motion_coder.entropy_parameters(motion_z_symbols)[1], tf.int32),
            "residual_scale_indexes": tf.cast(
                p.residual_coder.entropy_parameters(residual_z_symbols)[1], tf.int32),
        }

    @tf.function(input_signature=[SYMBOLS, SYMBOLS, SYMBOLS, SYMBOLS, REFERENCES, SHAPE2,
                                  QUALITY])
    def p_synthesize(self, motion_y_symbols, motion_z_symbols, residual_y_symbols,
                     residual_z_symbols, references, image_shape, quality):
        return {"frames": self.pcodec.synthesize_symbols(
            motion_y_symbols, motion_z_symbols, residual_y_symbols, residual_z_symbols,
            references, image_shape, quality)}


def _next_version(base: str) -> int:
    if not os.path.isdir(base):
        return 1
    versions = [int(d) for d in os.listdir(base) if d.isdigit()]
    return max(versions, default=0) + 1


def _save(module, signatures, base: str, version: int | None, assets: dict[str, bytes]) -> str:
    """Saves into a temp dir beside the target and renames it, so a version dir is complete."""
    version = version if version is not None else _next_version(base)
    target = os.path.join(base, str(version))
    if os.path.exists(target):
        raise FileExistsError(f"{target} already exists; pick another --version")
    os.makedirs(base, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{version}.partial-", dir=base)
    try:
        tf.saved_model.save(module, tmp, signatures=signatures)
        os.makedirs(os.path.join(tmp, "assets"), exist_ok=True)
        for name, data in assets.items():
            with open(os.path.join(tmp, "assets", name), "wb") as f:
                f.write(data)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _assets(codec, config: Config, model_card: str, pcodec) -> dict[str, bytes]:
    return {
        "config.json": config.to_json().encode(),
        "fingerprint.txt": fingerprint(config, codec, pcodec).encode(),
        "MODEL_CARD.md": model_card.encode(),
    }


def export_codec(codec, config: Config, base: str, version: int | None = None,
                 model_card: str = "", pcodec=None) -> str:
    """Writes the full codec SavedModel; returns its version directory. `pcodec`: the P-frame
    codec of a video model (adds `p_compress`, `p_decompress`)."""
    module = CodecModule(codec, config) if pcodec is None else VideoCodecModule(
        codec, pcodec, config)
    sigs = {"compress": module.compress, "decompress": module.decompress,
            "model_info": module.model_info, "serving_default": module.decompress}
    if pcodec is not None:
        sigs.update(p_compress=module.p_compress, p_decompress=module.p_decompress)
    return _save(module, sigs, base, version, _assets(codec, config, model_card, pcodec))


def export_transforms(codec, config: Config, base: str, version: int | None = None,
                      model_card: str = "", pcodec=None) -> str:
    """Writes the transform-only SavedModel plus the client's coding tables (and, for a video
    model, `p_analyze`, `p_entropy_parameters`, `p_synthesize` and the P-frame tables)."""
    module = TransformModule(codec, config) if pcodec is None else VideoTransformModule(
        codec, pcodec, config)
    assets = _assets(codec, config, model_card, pcodec)
    assets[TABLES_FILENAME] = _npz_bytes(tables_from_codec(codec)._asdict())
    sigs = {"analyze": module.analyze, "entropy_parameters": module.entropy_parameters,
            "synthesize": module.synthesize, "model_info": module.model_info,
            "coding_tables": module.coding_tables, "serving_default": module.synthesize}
    if pcodec is not None:
        assets[PFRAME_TABLES_FILENAME] = _npz_bytes(
            {k: v for name, t in pframe_tables(pcodec).items()
             for k, v in t.prefixed(name).items()})
        sigs.update(p_analyze=module.p_analyze, p_entropy_parameters=module.p_entropy_parameters,
                    p_synthesize=module.p_synthesize)
    return _save(module, sigs, base, version, assets)


TRANSFORMS_SUFFIX = "-transforms"
BATCHING_CONFIG = """\
max_batch_size { value: 8 }
batch_timeout_micros { value: 2000 }
max_enqueued_batches { value: 64 }
num_batch_threads { value: 2 }
"""


def serving_model_config(base: str) -> str:
    """TF Serving's model config (text proto) for every model folder under `base`."""
    names = sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))
                   and not d.startswith("."))
    entries = "".join(
        f'  config {{\n    name: "{n}"\n    base_path: "{os.path.abspath(os.path.join(base, n))}"'
        f'\n    model_platform: "tensorflow"\n  }}\n' for n in names)
    return f"model_config_list {{\n{entries}}}\n"


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.partial-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def export_for_serving(codec, config: Config, base: str, name: str, version: int | None = None,
                       model_card: str = "", pcodec=None) -> tuple[str, str]:
    """Writes `<base>/<name>/<v>` (full codec), `<base>/<name>-transforms/<v>`, and refreshes
    `<base>/models.config` and `<base>/batching.config`. Both versions get the same number
    (one more than the highest of either when `version` is None). Returns the two dirs."""
    codec_base = os.path.join(base, name)
    transforms_base = os.path.join(base, name + TRANSFORMS_SUFFIX)
    if version is None:
        version = max(_next_version(codec_base), _next_version(transforms_base))
    codec_dir = export_codec(codec, config, codec_base, version, model_card, pcodec)
    transforms_dir = export_transforms(codec, config, transforms_base, version, model_card,
                                       pcodec)
    _write_atomic(os.path.join(base, "models.config"), serving_model_config(base))
    _write_atomic(os.path.join(base, "batching.config"), BATCHING_CONFIG)
    return codec_dir, transforms_dir
