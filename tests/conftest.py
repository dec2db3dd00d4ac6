"""Shared fixtures: a `tiny` model trained for two steps on the bundled sample clip.

The tiny model is built once per test session (about 15 s on 2 cores) and reused by the codec,
export, API and CLI tests. Its weights are barely trained: tests check exactness and plumbing,
never quality.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

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
def sample_clip() -> str:
    return str(SAMPLE_CLIP)
