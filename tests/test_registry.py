"""Shipped models: the registry, float16 storage, fingerprints and model look-up by stream."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import synthetic_rgb

from gan_compress import api, registry


@pytest.fixture(scope="module")
def _shipped_root(tiny_codec, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    api.save_shipped_model(tiny_codec._model, tiny_codec.config, str(root / "tiny-a"), "# card")
    return root


@pytest.fixture()
def shipped_dir(_shipped_root, monkeypatch):
    """A models folder holding the tiny model shipped as `tiny-a`; the registry points at it."""
    root = _shipped_root
    monkeypatch.setattr(registry, "MODELS_DIR", str(root))
    monkeypatch.setattr(registry, "DEFAULT_MODEL", "tiny-a")
    return root


def test_a_shipped_model_loads_by_name_with_the_fingerprint_it_records(shipped_dir):
    codec = api.load("tiny-a")
    assert codec.name == "tiny-a"
    with open(shipped_dir / "tiny-a" / registry.FINGERPRINT_NAME) as f:
        assert codec.fingerprint.hex() == f.read().strip()
    assert api.load().fingerprint == codec.fingerprint  # the default
    with np.load(shipped_dir / "tiny-a" / registry.SHIPPED_WEIGHTS) as d:
        assert all(d[k].dtype == np.float16 for k in d.files)


def test_float16_storage_changes_the_weights_by_at_most_float16_rounding(shipped_dir,
                                                                         tiny_codec):
    codec = api.load("tiny-a")
    for a, b in zip(tiny_codec._model.trainable_variables, codec._model.trainable_variables,
                    strict=True):
        np.testing.assert_array_equal(a.numpy().astype(np.float16).astype(np.float32), b.numpy())


def test_decode_finds_the_shipped_model_from_the_streams_fingerprint(shipped_dir, tmp_path):
    codec = api.load("tiny-a")
    gcv = tmp_path / "x.gcv"
    gcv.write_bytes(codec.compress_image(synthetic_rgb(0, 48, 80), quality=2))
    found = api.load_for_stream(str(gcv))
    assert found.fingerprint == codec.fingerprint and found.name == "tiny-a"


def test_a_stream_of_an_unknown_model_is_refused_naming_file_and_models(shipped_dir, tmp_path,
                                                                        tiny_codec):
    gcv = tmp_path / "other.gcv"
    gcv.write_bytes(tiny_codec.compress_image(synthetic_rgb(0, 48, 80), quality=2))
    # tiny_codec's float32 weights differ from the float16-rounded shipped copy
    with pytest.raises(api.ModelLoadError) as e:
        api.load_for_stream(str(gcv))
    assert str(gcv) in str(e.value) and "tiny-a" in str(e.value)


def test_an_unknown_model_name_is_refused_listing_the_shipped_ones(shipped_dir):
    with pytest.raises(api.ModelLoadError, match="tiny-a"):
        api.load("no-such-model")


def test_the_repository_ships_small_mse_and_small_gan_within_20_mb_and_all_within_40():
    models = registry.shipped_models()
    assert {"small-mse", "small-gan"} <= set(models)
    assert registry.DEFAULT_MODEL == "small-gan"
    sizes = {}
    for name, path in models.items():
        sizes[name] = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
        assert os.path.exists(os.path.join(path, "MODEL_CARD.md"))
        assert registry.shipped_fingerprint(path)
    assert sizes["small-mse"] + sizes["small-gan"] <= 20 * 2**20, sizes
    assert sum(sizes.values()) <= 40 * 2**20, sizes


@pytest.mark.slow
def test_each_shipped_models_weights_hash_to_its_recorded_fingerprint():
    for name, path in registry.shipped_models().items():
        codec = api.load(name)
        assert codec.fingerprint.hex() == registry.shipped_fingerprint(path), name


def _cli(capsys, *argv):
    from gan_compress import cli

    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_decode_without_model_uses_the_shipped_model_the_stream_names(
        shipped_dir, tmp_path, capsys):
    codec = api.load("tiny-a")
    gcv = tmp_path / "x.gcv"
    gcv.write_bytes(codec.compress_image(synthetic_rgb(0, 48, 80), quality=2))
    code, _, err = _cli(capsys, "decode", gcv, tmp_path / "x.png", "--quiet")
    assert code == 0, err
    assert (tmp_path / "x.png").exists()
    code, out, _ = _cli(capsys, "info", gcv)
    assert code == 0 and "shipped model tiny-a" in out


def test_cli_decode_of_an_unknown_models_stream_is_refused_in_one_line(
        shipped_dir, tmp_path, capsys, tiny_codec):
    gcv = tmp_path / "y.gcv"
    gcv.write_bytes(tiny_codec.compress_image(synthetic_rgb(0, 48, 80), quality=2))
    code, out, err = _cli(capsys, "decode", gcv, tmp_path / "y.png")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert str(gcv) in err and "tiny-a" in err and "--model" in err
    assert not (tmp_path / "y.png").exists()


@pytest.mark.parametrize("args, needle", [
    (["--model", "no-such-model"], "no-such-model: model not found"),
    (["--quality", "7"], "--quality must be in 1..6, got 7"),
])
def test_cli_encode_refuses_a_bad_model_or_quality_before_loading(
        shipped_dir, tmp_path, capsys, monkeypatch, small_y4m, args, needle):
    from gan_compress import cli

    monkeypatch.setattr(cli, "_load_codec", lambda m: pytest.fail("model was loaded"))
    code, _, err = _cli(capsys, "encode", small_y4m, tmp_path / "o.gcv", *args)
    assert code == 2 and needle in err, err
    assert not (tmp_path / "o.gcv").exists()


def test_each_model_type_builds_its_networks_and_an_unknown_type_is_refused():
    from gan_compress import configs

    cfg = configs.get_preset("tiny")
    image = registry.build_networks(registry.IMAGE, cfg)
    video = registry.build_networks(registry.VIDEO, cfg)
    assert image.pframe is None and image.iframe.trainable_variables
    assert video.pframe is not None and video.pframe.trainable_variables
    assert registry.model_type_for_stage("pframe_gan") == registry.VIDEO
    assert registry.model_type_for_stage("gan") == registry.IMAGE
    with pytest.raises(ValueError, match="unknown model type 'audio'"):
        registry.build_networks("audio", cfg)


def test_a_shipped_video_model_loads_as_one_and_the_cli_lists_each_models_type(
        shipped_dir, video_codec, capsys):
    import json

    from gan_compress import cli

    api.save_shipped_model(video_codec._model, video_codec.config,
                           str(shipped_dir / "tiny-video"), pmodel=video_codec._pframe)
    try:
        loaded = api.load("tiny-video")
        assert loaded.supports_inter and not api.load("tiny-a").supports_inter
        assert cli.main(["models", "--json"]) == 0
        listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
        assert {n: m["model_type"] for n, m in listed.items()} == {"tiny-a": "image",
                                                                  "tiny-video": "video"}
        assert listed["tiny-video"]["fingerprint"] == loaded.fingerprint.hex()
        assert listed["tiny-a"]["qualities"] == video_codec.num_qualities
    finally:
        import shutil

        shutil.rmtree(shipped_dir / "tiny-video")


def test_encode_without_model_uses_the_video_model_for_video_and_the_image_model_for_images(
        shipped_dir, tmp_path, capsys, monkeypatch, small_y4m):
    import shutil
    from pathlib import Path

    from gan_compress.bitstream import info

    shutil.copytree(Path(__file__).parent / "golden" / "tiny_video", shipped_dir / "tiny-v",
                    dirs_exist_ok=True)
    monkeypatch.setattr(registry, "DEFAULT_VIDEO_MODEL", "tiny-v")
    # (fixed I-frames: whether "rd" keeps a P-frame depends on the tiny weights)
    code, _, err = _cli(capsys, "encode", small_y4m, tmp_path / "v.gcv", "--frames", "3",
                        "--intra_decision", "fixed", "--quiet")
    assert code == 0, err
    video = info.describe(tmp_path / "v.gcv")
    assert video["header"]["model_name"] == "tiny-v"
    assert video["header"]["intra_period"] == 12
    assert [f["type"] for f in video["frames"]] == ["I", "P", "P"]
    code, _, err = _cli(capsys, "encode", small_y4m, tmp_path / "i.gcv", "--frames", "1",
                        "--quiet")
    assert code == 0, err
    assert info.describe(tmp_path / "i.gcv")["header"]["model_name"] == "tiny-a"
    monkeypatch.setattr(registry, "DEFAULT_VIDEO_MODEL", "not-shipped")
    assert registry.default_model(video=True) == "tiny-a"


def test_the_models_table_marks_the_default_model(shipped_dir, capsys):
    # no video model is shipped here, so the image default is the default for everything
    code, out, _ = _cli(capsys, "models")
    assert code == 0
    (line,) = [x for x in out.splitlines() if x.startswith("tiny-a")]
    assert line.endswith("(default)") and "image" in line
