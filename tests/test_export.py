"""SavedModel export (`export_lib`, `export.py`): reload equals the in-memory model, the
transform-only model runs on stock TensorFlow, TF Serving's version layout, atomic exports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, synthetic_rgb

import gan_compress
from gan_compress import api, export_lib
from gan_compress.entropy_coding import TABLES_FILENAME, CodingTables, tables_from_codec
from gan_compress.transform_client import TransformClient

SAVED_MODEL_CLI = Path(sys.executable).parent / "saved_model_cli"


def _env() -> dict[str, str]:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


@pytest.fixture(scope="module")
def client(tiny_exports) -> TransformClient:
    return TransformClient.from_export_dir(tiny_exports.transforms_dir)


@pytest.fixture(scope="module")
def reloaded(tiny_exports):
    """`gan_compress.load` of the full-codec export's BASE dir (it picks the version)."""
    return gan_compress.load(tiny_exports.codec_base)


# -- full codec -----------------------------------------------------------------------------------


def test_reloaded_export_has_the_fingerprint_and_config_of_the_in_memory_model(reloaded,
                                                                              tiny_codec):
    assert reloaded.fingerprint == tiny_codec.fingerprint
    assert reloaded.config == tiny_codec.config
    assert reloaded.name == tiny_codec.name


def test_reloaded_export_writes_the_same_bytes_and_decodes_the_same_frames(reloaded, tiny_codec,
                                                                           small_y4m, tmp_path):
    ours, theirs = str(tmp_path / "memory.gcv"), str(tmp_path / "export.gcv")
    tiny_codec.compress_video(small_y4m, ours, quality=5)
    reloaded.compress_video(small_y4m, theirs, quality=5)
    assert Path(ours).read_bytes() == Path(theirs).read_bytes()
    # Each decodes the other's file (same fingerprint) to identical frames.
    for a, b in zip(reloaded.iter_decoded(ours), tiny_codec.iter_decoded(theirs), strict=True):
        np.testing.assert_array_equal(a, b)


def test_export_assets_hold_config_fingerprint_card_and_coding_tables(tiny_exports, tiny_codec):
    for version_dir in (tiny_exports.codec_dir, tiny_exports.transforms_dir):
        assets = Path(version_dir, "assets")
        assert json.loads((assets / "config.json").read_text()) == json.loads(
            tiny_codec.config.to_json())
        assert (assets / "fingerprint.txt").read_text() == tiny_codec.fingerprint.hex()
    assert Path(tiny_exports.codec_dir, "assets", "MODEL_CARD.md").read_text() == "# tiny"
    tables = CodingTables.load(os.path.join(tiny_exports.transforms_dir, "assets",
                                            TABLES_FILENAME))
    for got, want in zip(tables, tables_from_codec(tiny_codec._model), strict=True):
        np.testing.assert_array_equal(got, want)


def test_load_refuses_the_transform_only_export_as_a_codec(tiny_exports):
    with pytest.raises(api.ModelLoadError, match="not a full-codec SavedModel"):
        gan_compress.load(tiny_exports.transforms_base)


# -- transform-only model -------------------------------------------------------------------------


@pytest.mark.parametrize("height, width, quality", [(48, 80, 1), (17, 33, 6)])
def test_transform_client_strings_are_byte_identical_to_the_full_codec(
    client, tiny_codec, height, width, quality
):
    frames = np.stack([synthetic_rgb(i, height, width) for i in range(2)])
    coded = client.compress(list(frames), quality)
    assert coded.image_shape == (height, width)
    decoded = client.decompress(coded.y_strings, coded.z_strings, coded.image_shape, quality)
    assert decoded.shape == (2, height, width, 3) and decoded.dtype == np.uint8
    for i, rgb in enumerate(frames):
        packet = tiny_codec.encode_frame(rgb, quality, i)
        assert (coded.y_strings[i], coded.z_strings[i]) == packet.strings
        assert packet.shapes == (coded.image_shape, coded.y_shape, coded.z_shape)
        np.testing.assert_array_equal(decoded[i], tiny_codec.decode_packet(packet))


_STOCK_TF_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf

model = tf.saved_model.load(sys.argv[1])
after_load = sorted(m for m in ("tensorflow_compression", "gan_compress") if m in sys.modules)
frames = np.load(sys.argv[2])
q = np.int32(3)
a = model.analyze(frames, q)
p = model.entropy_parameters(a["z_symbols"], q)
s = model.synthesize(a["y_symbols"], a["z_symbols"], np.array(frames.shape[1:3], np.int32), q)
after_calls = sorted(m for m in ("tensorflow_compression", "gan_compress") if m in sys.modules)
np.savez(sys.argv[3], y=a["y_symbols"].numpy(), z=a["z_symbols"].numpy(),
         idx=a["scale_indexes"].numpy(), idx2=p["scale_indexes"].numpy(),
         frames=s["frames"].numpy())
print(json.dumps({"after_load": after_load, "after_calls": after_calls}))
"""


@pytest.mark.slow
def test_transform_only_export_runs_in_a_process_without_tensorflow_compression(
    tiny_exports, client, tiny_codec, tmp_path
):
    frames = np.stack([synthetic_rgb(5, 40, 72)])
    np.save(tmp_path / "frames.npy", frames)
    proc = subprocess.run(
        [sys.executable, "-c", _STOCK_TF_SCRIPT, tiny_exports.transforms_dir,
         tmp_path / "frames.npy", tmp_path / "out.npz"],
        capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"after_load": [],
                                                                 "after_calls": []}
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(out["idx"], out["idx2"])  # decoder side = encoder side
    # The server's symbols, range-coded here, are the full codec's strings ...
    packet = tiny_codec.encode_frame(frames[0], 3, 0)
    assert client.coder.encode_y(out["y"], out["idx"])[0] == packet.strings[0]
    assert client.coder.encode_z(out["z"])[0] == packet.strings[1]
    # ... and its synthesis is the full codec's decoded frame.
    np.testing.assert_array_equal(out["frames"][0], tiny_codec.decode_packet(packet))


def _signatures(text: str) -> dict[str, dict[str, dict[str, str]]]:
    """`saved_model_cli show --all` text -> {signature: {"inputs"|"outputs": {name: dtype}}}."""
    sigs: dict[str, dict[str, dict[str, str]]] = {}
    current, kind, name = None, None, None
    for line in text.splitlines():
        line = line.strip()
        if m := re.fullmatch(r"signature_def\['(\w+)'\]:", line):
            current = sigs.setdefault(m[1], {"inputs": {}, "outputs": {}})
        elif (m := re.fullmatch(r"(inputs|outputs)\['(\w+)'\] tensor_info:", line)) and current:
            kind, name = m[1], m[2]
        elif (m := re.fullmatch(r"dtype: (DT_\w+)", line)) and name:
            current[kind][name] = m[1]
            name = None
        elif line.startswith("Concrete Functions"):
            break
    return sigs


# Stock `saved_model_cli show --all` loads the functions too, and the full codec's use the
# range-coding ops of tensorflow_compression, which TF only knows once that package is
# imported: so the full codec is shown by the same CLI with the ops loaded first.
_SAVED_MODEL_CLI_WITH_TFC = (
    "import sys, tensorflow_compression\n"
    "from tensorflow.python.tools.saved_model_cli import main\n"
    "sys.argv[0] = 'saved_model_cli'\n"
    "main()\n"
)


@pytest.mark.slow
def test_saved_model_cli_shows_the_served_signatures_of_both_exports(tiny_exports):
    commands = {
        "transforms": [SAVED_MODEL_CLI, "show", "--dir", tiny_exports.transforms_dir, "--all"],
        "codec": [sys.executable, "-c", _SAVED_MODEL_CLI_WITH_TFC, "show", "--dir",
                  tiny_exports.codec_dir, "--all"],
    }
    procs = {which: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=_env())
             for which, cmd in commands.items()}  # concurrently: each imports TensorFlow
    shown, functions = {}, {}
    for which, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        shown[which] = _signatures(out)
        functions[which] = set(re.findall(r"Function Name: '(\w+)'", out))
    u8, i32, s = "DT_UINT8", "DT_INT32", "DT_STRING"
    codec = shown["codec"]
    assert codec["compress"] == {
        "inputs": {"frames": u8, "quality": i32},
        "outputs": {"y_strings": s, "z_strings": s, "image_shape": i32, "y_shape": i32,
                    "z_shape": i32}}
    assert codec["decompress"] == codec["serving_default"] == {
        "inputs": {"y_strings": s, "z_strings": s, "image_shape": i32, "quality": i32},
        "outputs": {"frames": u8}}
    assert {"compress", "decompress"} <= functions["codec"]
    transforms = shown["transforms"]
    assert transforms["analyze"] == {
        "inputs": {"frames": u8, "quality": i32},
        "outputs": {"y_symbols": i32, "z_symbols": i32, "scale_indexes": i32}}
    assert transforms["entropy_parameters"] == {
        "inputs": {"z_symbols": i32, "quality": i32}, "outputs": {"scale_indexes": i32}}
    assert transforms["synthesize"] == transforms["serving_default"] == {
        "inputs": {"y_symbols": i32, "z_symbols": i32, "image_shape": i32, "quality": i32},
        "outputs": {"frames": u8}}
    assert {"analyze", "entropy_parameters", "synthesize"} <= functions["transforms"]


# -- versions and failures ------------------------------------------------------------------------


def test_second_export_gets_version_2_beside_a_killed_exports_leftovers(tiny_exports,
                                                                       tiny_codec, tmp_path):
    base = tmp_path / "transforms"
    shutil.copytree(tiny_exports.transforms_base, base)
    (base / ".2.partial-k1ll3d").mkdir()  # what a SIGKILLed export leaves: hidden, not a version
    path = export_lib.export_transforms(tiny_codec._model, tiny_codec.config, str(base))
    assert path == str(base / "2")
    assert sorted(os.listdir(base)) == [".2.partial-k1ll3d", "1", "2"]
    assert os.path.exists(base / "2" / "saved_model.pb")
    assert (base / "2" / "assets" / "fingerprint.txt").read_text() == tiny_codec.fingerprint.hex()


def test_export_refuses_to_overwrite_an_existing_version(tiny_exports, tiny_codec):
    before = sorted(os.listdir(tiny_exports.codec_base))
    with pytest.raises(FileExistsError, match="1 already exists; pick another --version"):
        export_lib.export_codec(tiny_codec._model, tiny_codec.config, tiny_exports.codec_base,
                                version=1)
    assert sorted(os.listdir(tiny_exports.codec_base)) == before == ["1"]


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()],
                         ids=["error", "ctrl-c"])
@pytest.mark.parametrize("export", [export_lib.export_codec, export_lib.export_transforms],
                         ids=["codec", "transforms"])
def test_failed_export_leaves_no_version_dir(export, exc, tiny_codec, tmp_path, monkeypatch):
    def save(obj, export_dir, signatures=None, options=None):
        Path(export_dir, "saved_model.pb").write_bytes(b"half written")
        raise exc

    monkeypatch.setattr(export_lib.tf.saved_model, "save", save)
    base = tmp_path / "exports"
    with pytest.raises(type(exc)):
        export(tiny_codec._model, tiny_codec.config, str(base))
    assert os.listdir(base) == []  # no "1", no hidden temporary dir
    with pytest.raises(api.ModelLoadError):
        gan_compress.load(base)


@pytest.fixture(scope="module")
def unfinalized_model(tiny_codec):
    """A fresh tiny `IFrameCodec` with its variables built, never finalized."""
    from gan_compress.models.iframe import IFrameCodec

    model = IFrameCodec(tiny_codec.config.model)
    model.build_for_shape()
    return model


def test_export_refuses_an_unfinalized_model_and_writes_nothing(unfinalized_model, tiny_codec,
                                                                tmp_path):
    for export in (export_lib.export_codec, export_lib.export_transforms):
        with pytest.raises(ValueError, match=r"finalized codec \(call codec.finalize\(\)\)"):
            export(unfinalized_model, tiny_codec.config, str(tmp_path / "exports"))
    assert os.listdir(tmp_path) == []


def test_fingerprint_does_not_depend_on_keras_layer_numbering(unfinalized_model, tiny_codec):
    """A second instance in one process gets layer names like `conv2d_23`; the fingerprint (in
    every `.gcv` header) must not change, or files are refused by the model that wrote them."""
    from gan_compress.models.iframe import IFrameCodec

    config = tiny_codec.config
    a, b = unfinalized_model, IFrameCodec(config.model)
    b.build_for_shape()
    b.set_weights(a.get_weights())
    assert [v.name for v in a.weights] != [v.name for v in b.weights]
    assert export_lib.fingerprint(config, a) == export_lib.fingerprint(config, b)
    b.log_gain.assign_add(np.full(b.log_gain.shape, 1e-3, np.float32))
    assert export_lib.fingerprint(config, a) != export_lib.fingerprint(config, b)


def test_fingerprint_covers_architecture_and_weights_but_not_training_settings(
        tiny_codec, unfinalized_model):
    import dataclasses

    config = tiny_codec.config
    base = export_lib.fingerprint(config, unfinalized_model)
    edited = dataclasses.replace(
        config, train=dataclasses.replace(config.train, log_every=7, lr=1.0),
        data=dataclasses.replace(config.data, crop_size=96))
    assert export_lib.fingerprint(edited, unfinalized_model) == base
    other_arch = dataclasses.replace(
        config, model=dataclasses.replace(config.model, scale_min=0.2))
    assert export_lib.fingerprint(other_arch, unfinalized_model) != base


# -- export.py ------------------------------------------------------------------------------------


@pytest.mark.parametrize("flags, message", [
    (["--model_dir=m"], "give --model_base_path, --export_dir and/or --ship_to"),
    (["--model_dir=m", "--export_dir=e", "--version=0"], "--version must be a positive integer"),
    (["--export_dir=e"], "give one of --model_dir, --model"),
    (["--model_dir=m", "--model=small-gan", "--model_base_path=b"],
     "give one of --model_dir, --model"),
])
def test_export_script_rejects_bad_flags_before_loading_anything(flags, message):
    proc = subprocess.run([sys.executable, "export.py", *flags], cwd=REPO, capture_output=True,
                          text=True, env=_env(), timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr
