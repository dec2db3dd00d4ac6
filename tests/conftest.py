"""Shared fixtures: a `tiny` model trained for two steps on the bundled sample clip.

The tiny model is built once per test session (about 15 s on 2 cores) and reused by the codec,
export, API and CLI tests. Its weights are barely trained: tests check exactness and plumbing,
never quality.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import NamedTuple

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]
SAMPLE_CLIP = REPO / "samples" / "foreman_cif_30f.mkv"
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


def tiny_config(cache_dir: str):
    from gan_compress import configs

    cfg = configs.get_preset("tiny")
    data = dataclasses.replace(
        cfg.data, train_globs=(str(SAMPLE_CLIP),), cache_dir=cache_dir, seed=0,
        deterministic=True,
    )
    return dataclasses.replace(cfg, data=data)


@pytest.fixture(scope="session")
def frame_cache_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("frame_cache"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, frame_cache_dir) -> str:
    """A model_dir (config.json + checkpoint) of the tiny preset after 2 MSE steps."""
    from gan_compress.training.trainer import Trainer

    model_dir = str(tmp_path_factory.mktemp("tiny_model"))
    trainer = Trainer(tiny_config(frame_cache_dir), model_dir)
    trainer.train(steps=2)
    return model_dir


@pytest.fixture(scope="session")
def tiny_codec(tiny_model_dir):
    """`gan_compress.load()` of the tiny model (finalized, ready to code)."""
    import gan_compress

    return gan_compress.load(tiny_model_dir)


@pytest.fixture(scope="session")
def video_model_dir(tmp_path_factory, frame_cache_dir, tiny_model_dir) -> str:
    """A tiny pframe_mse run dir: the I-frame codec of `tiny_model_dir`, P-frame codec 1 step
    on 3-frame clips."""
    from gan_compress.training.trainer import Trainer

    root = tmp_path_factory.mktemp("video_model")
    base = tiny_config(frame_cache_dir)
    cfg = dataclasses.replace(
        base, data=dataclasses.replace(base.data, clip_length=3),
        train=dataclasses.replace(base.train, stage="pframe_mse", steps=1))
    Trainer(cfg, str(root / "video"), init_from=tiny_model_dir).train()
    return str(root / "video")


@pytest.fixture(scope="session")
def video_codec(video_model_dir):
    """`gan_compress.load()` of the tiny video model (I- and P-frame codecs, finalized)."""
    import gan_compress

    return gan_compress.load(video_model_dir)


@pytest.fixture(scope="session")
def sample_clip() -> str:
    return str(SAMPLE_CLIP)


class TinyExports(NamedTuple):
    """Version-1 exports of the tiny model, full codec and transform-only: base and version dirs."""

    codec_base: str
    codec_dir: str
    transforms_base: str
    transforms_dir: str


@pytest.fixture(scope="session")
def tiny_exports(tiny_codec, tmp_path_factory) -> TinyExports:
    """`export_lib.export_codec` and `export_transforms` of `tiny_codec`'s model (about 40 s)."""
    from gan_compress import export_lib

    root = tmp_path_factory.mktemp("tiny_exports")
    model, config = tiny_codec._model, tiny_codec.config
    codec_base, transforms_base = str(root / "codec"), str(root / "codec_transforms")
    return TinyExports(
        codec_base, export_lib.export_codec(model, config, codec_base, model_card="# tiny"),
        transforms_base, export_lib.export_transforms(model, config, transforms_base),
    )


def synthetic_rgb(index: int, height: int, width: int) -> np.ndarray:
    """A smooth gradient with a square moving 3 px per frame: `[H, W, 3]` uint8."""
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1),
                    (xx + yy) * 127 // max(width + height - 2, 1)], axis=-1).astype(np.uint8)
    x0 = (3 * index) % max(width - 16, 1)
    rgb[8:24, x0:x0 + 16] = (230, 40, 40)
    return rgb


def write_synthetic_y4m(path: str, frames: int, width: int = 80, height: int = 48) -> str:
    """Writes `frames` frames of `synthetic_rgb` as 4:2:0 y4m at 25 fps; returns `path`."""
    from gan_compress import io as gio

    with gio.Y4MWriter(path, width, height, 25) as writer:
        for i in range(frames):
            writer.write_rgb(synthetic_rgb(i, height, width))
    return path


@pytest.fixture(scope="session")
def small_y4m(tmp_path_factory) -> str:
    """A 4-frame 80x48 synthetic y4m (not a multiple of 64: the codec pads)."""
    return write_synthetic_y4m(str(tmp_path_factory.mktemp("small_y4m") / "small.y4m"), 4)
