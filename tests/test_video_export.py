"""SavedModel export of a video model (I- and P-frame codecs): the full codec's P-frame
signatures and the transform-only model with client-side range coding code a GOP to exactly the
bytes and reconstructions of in-process coding (`gop.GopEncoder`), and the transform-only model
runs on stock TensorFlow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import NamedTuple

import numpy as np
import pytest
from conftest import synthetic_rgb

from gan_compress import export_lib, gop
from gan_compress.entropy_coding import PFRAME_TABLES_FILENAME
from gan_compress.transform_client import TransformClient

HEIGHT, WIDTH, QUALITY, NUM_FRAMES = 40, 72, 2, 4  # not multiples of 64: the codecs pad


class VideoExports(NamedTuple):
    codec_dir: str
    transforms_dir: str


@pytest.fixture(scope="module")
def video_exports(video_codec, tmp_path_factory) -> VideoExports:
    base = tmp_path_factory.mktemp("video_export")
    args = (video_codec._model, video_codec.config)
    codec_dir = export_lib.export_codec(*args, str(base / "codec"), pcodec=video_codec._pframe)
    transforms_dir = export_lib.export_transforms(*args, str(base / "transforms"),
                                                  pcodec=video_codec._pframe)
    return VideoExports(codec_dir, transforms_dir)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [synthetic_rgb(i, HEIGHT, WIDTH) for i in range(NUM_FRAMES)]


@pytest.fixture(scope="module")
def in_process(video_codec, frames) -> list[tuple[gop.CodedFrame, np.ndarray]]:
    """One GOP (I P P P) coded by `GopEncoder`, the in-process reference."""
    encoder = gop.GopEncoder(video_codec._model, video_codec._pframe, QUALITY, gop=-1)
    return [encoder.encode(f) for f in frames]


def test_the_full_codec_export_codes_a_gop_to_the_in_process_bytes_and_references(
        video_exports, frames, in_process):
    import tensorflow as tf

    model = tf.saved_model.load(video_exports.codec_dir)
    q = np.int32(QUALITY)
    reference = None
    for i, (frame, (coded, recon)) in enumerate(zip(frames, in_process, strict=True)):
        if i == 0:
            out = model.compress(frame[None], q)
            strings = (out["y_strings"], out["z_strings"])
            decoded = model.decompress(*strings, out["image_shape"], q)["frames"]
        else:
            out = model.p_compress(frame[None], reference[None], q)
            strings = tuple(out[k] for k in ("motion_y", "motion_z", "residual_y",
                                             "residual_z"))
            decoded = model.p_decompress(*strings, reference[None], out["image_shape"],
                                         q)["frames"]
        assert coded.frame_type == ("I" if i == 0 else "P")
        assert tuple(s.numpy()[0] for s in strings) == coded.strings, f"frame {i}"
        np.testing.assert_array_equal(out["reconstruction"].numpy()[0], recon)
        np.testing.assert_array_equal(decoded.numpy()[0], recon)
        reference = recon


def test_the_transform_client_codes_a_gop_to_the_in_process_bytes_and_references(
        video_exports, frames, in_process):
    client = TransformClient.from_export_dir(video_exports.transforms_dir)
    assert client.supports_inter
    reference = None
    for i, (frame, (coded, recon)) in enumerate(zip(frames, in_process, strict=True)):
        if i == 0:
            c = client.compress(frame[None], QUALITY)
            strings = (c.y_strings[0], c.z_strings[0])
            decoded = client.decompress(c.y_strings, c.z_strings, c.image_shape, QUALITY)
        else:
            c = client.p_compress(frame[None], reference[None], QUALITY)
            strings = (c.motion_y[0], c.motion_z[0], c.residual_y[0], c.residual_z[0])
            decoded = client.p_decompress(c.motion_y, c.motion_z, c.residual_y, c.residual_z,
                                          reference[None], c.image_shape, QUALITY)
        assert strings == coded.strings, f"frame {i}"
        np.testing.assert_array_equal(c.reconstruction[0], recon)
        np.testing.assert_array_equal(decoded[0], recon)
        reference = recon


def test_a_client_built_from_the_coding_tables_signature_codes_p_frames_alike(
        video_exports, frames, in_process):
    """The tables as a remote client gets them (the `coding_tables` signature, as over gRPC)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(video_exports.transforms_dir)
    tables = {k: v.numpy() for k, v in loaded.coding_tables().items()}
    client = TransformClient.from_tables_dict(loaded, tables)
    assert client.supports_inter
    reference, (coded, recon) = in_process[0][1], in_process[1]
    c = client.p_compress(frames[1][None], reference[None], QUALITY)
    assert (c.motion_y[0], c.motion_z[0], c.residual_y[0], c.residual_z[0]) == coded.strings
    np.testing.assert_array_equal(c.reconstruction[0], recon)


def test_an_image_models_transform_client_refuses_p_frames_clearly(tiny_exports):
    client = TransformClient.from_export_dir(tiny_exports.transforms_dir)
    assert not client.supports_inter
    frame = synthetic_rgb(0, HEIGHT, WIDTH)[None]
    with pytest.raises(ValueError, match="no P-frame signatures"):
        client.p_compress(frame, frame, QUALITY)


def test_the_video_exports_record_the_video_models_fingerprint_and_p_frame_tables(
        video_exports, video_codec):
    import tensorflow as tf

    for path in video_exports:
        with open(os.path.join(path, "assets", "fingerprint.txt")) as f:
            assert f.read() == video_codec.fingerprint.hex()
    info = tf.saved_model.load(video_exports.codec_dir).model_info()
    assert info["fingerprint"].numpy().decode() == video_codec.fingerprint.hex()
    with np.load(os.path.join(video_exports.transforms_dir, "assets",
                              PFRAME_TABLES_FILENAME)) as tables:
        assert {"motion_y_cdf", "motion_z_cdf", "residual_y_cdf", "residual_z_cdf"} <= set(tables)


_STOCK_TF_P_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf

model = tf.saved_model.load(sys.argv[1])
d = np.load(sys.argv[2])
q = np.int32(d["quality"])
a = model.p_analyze(d["frame"], d["reference"], q)
p = model.p_entropy_parameters(a["motion_z_symbols"], a["residual_z_symbols"], q)
s = model.p_synthesize(a["motion_y_symbols"], a["motion_z_symbols"], a["residual_y_symbols"],
                       a["residual_z_symbols"], d["reference"],
                       np.array(d["frame"].shape[1:3], np.int32), q)
loaded = sorted(m for m in ("tensorflow_compression", "gan_compress") if m in sys.modules)
np.savez(sys.argv[3], recon=a["reconstruction"].numpy(), frames=s["frames"].numpy(),
         same_indexes=all(np.array_equal(a[k].numpy(), p[k].numpy())
                          for k in ("motion_scale_indexes", "residual_scale_indexes")))
print(json.dumps({"loaded": loaded}))
"""


@pytest.mark.slow
def test_the_p_frame_transform_signatures_run_in_a_process_without_tensorflow_compression(
        video_exports, frames, in_process, tmp_path):
    np.savez(tmp_path / "in.npz", frame=frames[1][None], reference=in_process[0][1][None],
             quality=QUALITY)
    proc = subprocess.run(
        [sys.executable, "-c", _STOCK_TF_P_SCRIPT, video_exports.transforms_dir,
         tmp_path / "in.npz", tmp_path / "out.npz"],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"loaded": []}
    out = np.load(tmp_path / "out.npz")
    assert bool(out["same_indexes"])  # the decoder's scale indexes are the encoder's
    np.testing.assert_array_equal(out["recon"][0], in_process[1][1])
    np.testing.assert_array_equal(out["frames"][0], in_process[1][1])
