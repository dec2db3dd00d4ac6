"""The one model registry: model types -> network factories, shipped model names ->
directories, and fingerprint look-up. train.py (through the trainer), export.py,
`gan_compress.load()` and the CLI all build and find models here.

Model types (`MODEL_TYPES`, built by `build_networks`):

    image   an I-frame codec (`models.iframe.IFrameCodec`): every frame intra
    video   the I-frame codec plus a P-frame codec (`models.pframe.PFrameCodec`): GOPs of an
            I-frame and P-frames predicted by scale-space flow from the frame before

Shipped models live in `gan_compress/assets/models/<name>/`:

    config.json      the Config the weights belong to (architecture in `model`)
    weights.npz      every trainable codec variable, float16, keys `w000`, `w001`, ... in the
                     codec's own variable order (`IFrameCodec.trainable_variables`)
    pframe_weights.npz  (video models only) the P-frame codec's, in the same form
    fingerprint.txt  hex sha256 of the architecture and the float32 weights as loaded
    z_tables.npz     range-coding tables of z (rebuilt when missing or stale)
    pframe_z_tables.npz  (video models only) the same for the P-frame codec's two coders
    MODEL_CARD.md    data, licences, commands, steps, wall time, figures

`.gcv` files record the fingerprint of the model that wrote them; `decode` and `info` find the
shipped model with that fingerprint without loading TensorFlow (`find_by_fingerprint`).
"""

from __future__ import annotations

import os
from typing import NamedTuple

MODELS_DIR = os.path.join(os.path.dirname(__file__), "assets", "models")
DEFAULT_MODEL = "small-gan"
# the default for inputs of more than one frame, when it ships (else DEFAULT_MODEL)
DEFAULT_VIDEO_MODEL = "small-video"
FINGERPRINT_NAME = "fingerprint.txt"


SHIPPED_WEIGHTS = "weights.npz"
SHIPPED_PFRAME_WEIGHTS = "pframe_weights.npz"
IMAGE, VIDEO = "image", "video"


class ModelType(NamedTuple):
    name: str
    description: str
    inter: bool  # whether it codes P-frames


MODEL_TYPES = {
    IMAGE: ModelType(IMAGE, "I-frame codec (every frame intra)", False),
    VIDEO: ModelType(VIDEO, "I- and P-frame codecs (GOPs, scale-space-flow prediction)", True),
}


class Networks(NamedTuple):
    """The networks of one model: `iframe` an IFrameCodec, `pframe` a PFrameCodec or None."""

    iframe: object
    pframe: object | None


def build_networks(model_type: str, config) -> Networks:
    """The factory of every model type: its networks for `config` (a `configs.Config`), with
    their variables created and untrained. Call inside a `tf.distribute` scope to place them."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown model type {model_type!r}; choose one of "
                         f"{sorted(MODEL_TYPES)}")
    from gan_compress.models.iframe import IFrameCodec

    iframe = IFrameCodec(config.model)
    iframe.build_for_shape()
    pframe = None
    if MODEL_TYPES[model_type].inter:
        from gan_compress.models.pframe import PFrameCodec

        pframe = PFrameCodec(config.model, config.pframe)
        pframe.build_for_shape()
    return Networks(iframe, pframe)


def model_type_for_stage(stage: str) -> str:
    """The model type a training stage trains: `video` for pframe_* stages, else `image`."""
    return VIDEO if stage.startswith("pframe") else IMAGE


def model_type_of(model_dir: str, config) -> str:
    """The type of the model in `model_dir`: shipped form (P-frame weights or not), or a
    training run (its stage)."""
    if os.path.exists(os.path.join(model_dir, SHIPPED_WEIGHTS)):
        return VIDEO if os.path.exists(os.path.join(model_dir, SHIPPED_PFRAME_WEIGHTS)) \
            else IMAGE
    return model_type_for_stage(config.train.stage)


class UnknownModelError(ValueError):
    """A model name that is neither shipped nor a path; the message lists the shipped ones."""


def shipped_models() -> dict[str, str]:
    """{name: directory} of every shipped model (a folder with config.json)."""
    if not os.path.isdir(MODELS_DIR):
        return {}
    out = {}
    for name in sorted(os.listdir(MODELS_DIR)):
        path = os.path.join(MODELS_DIR, name)
        if os.path.isfile(os.path.join(path, "config.json")):
            out[name] = path
    return out


def default_model(video: bool) -> str:
    """The shipped model used without `--model`: `DEFAULT_VIDEO_MODEL` (P-frames) for an input
    of more than one frame when it is shipped, else `DEFAULT_MODEL`."""
    if video and DEFAULT_VIDEO_MODEL in shipped_models():
        return DEFAULT_VIDEO_MODEL
    return DEFAULT_MODEL


def resolve(name_or_path: str | None) -> tuple[str, str | None]:
    """-> (directory, shipped name or None). None means the default shipped model; a shipped
    name maps to its folder; anything else must be an existing path (model_dir, export)."""
    models = shipped_models()
    key = DEFAULT_MODEL if name_or_path is None else os.fspath(name_or_path)
    if key in models:
        return models[key], key
    if os.path.exists(key):
        return key, None
    known = ", ".join(models) or "none installed"
    raise UnknownModelError(
        f"{key}: model not found: give a shipped model name ({known}) or a model directory")


class ShippedModel(NamedTuple):
    name: str
    model_type: str  # a key of MODEL_TYPES
    qualities: int
    fingerprint: str
    path: str


def describe_shipped() -> list[ShippedModel]:
    """Every shipped model with its type, number of quality levels and fingerprint (read from
    its folder, without TensorFlow)."""
    import json

    out = []
    for name, path in shipped_models().items():
        with open(os.path.join(path, "config.json")) as f:
            qualities = int(json.load(f)["model"]["num_qualities"])
        out.append(ShippedModel(name, model_type_of(path, None), qualities,
                                shipped_fingerprint(path) or "", path))
    return out


def shipped_fingerprint(path: str) -> str | None:
    try:
        with open(os.path.join(path, FINGERPRINT_NAME)) as f:
            return f.read().strip()
    except OSError:
        return None


def find_by_fingerprint(fingerprint: bytes | str) -> str | None:
    """The shipped model name whose fingerprint matches, or None."""
    fp = fingerprint.hex() if isinstance(fingerprint, bytes | bytearray) else str(fingerprint)
    for name, path in shipped_models().items():
        if shipped_fingerprint(path) == fp:
            return name
    return None


def model_for_stream(gcv_path: str) -> str:
    """The shipped model name whose fingerprint the `.gcv` header records; UnknownModelError
    (naming the file, the stream's model and the shipped ones) when there is none."""
    from gan_compress import bitstream as bs

    with bs.ContainerReader(gcv_path) as reader:
        header = reader.header
    found = find_by_fingerprint(header.model_fingerprint)
    if found is None:
        known = ", ".join(shipped_models()) or "none installed"
        raise UnknownModelError(
            f"{gcv_path}: made by model {header.model_name!r} (fingerprint "
            f"{header.model_fingerprint.hex()[:12]}), which is none of the shipped models "
            f"({known}); pass --model with that model's directory")
    return found
