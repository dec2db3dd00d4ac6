"""The one model registry: shipped model names -> directories, and fingerprint look-up.

Shipped models live in `gan_compress/assets/models/<name>/`:

    config.json      the Config the weights belong to (architecture in `model`)
    weights.npz      every trainable codec variable, float16, keys `w000`, `w001`, ... in the
                     codec's own variable order (`IFrameCodec.trainable_variables`)
    fingerprint.txt  hex sha256 of the architecture and the float32 weights as loaded
    z_tables.npz     range-coding tables of z (rebuilt when missing or stale)
    MODEL_CARD.md    data, licences, commands, steps, wall time, figures

`.gcv` files record the fingerprint of the model that wrote them; `decode` and `info` find the
shipped model with that fingerprint without loading TensorFlow (`find_by_fingerprint`).
"""

from __future__ import annotations

import os

MODELS_DIR = os.path.join(os.path.dirname(__file__), "assets", "models")
DEFAULT_MODEL = "small-gan"
FINGERPRINT_NAME = "fingerprint.txt"


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
