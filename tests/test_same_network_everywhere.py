"""The trained, exported and CLI/API networks are the same function.

TFC's GDN chose its branch with a tensor comparison whose meaning depended on how the process
was started, so a model ran the signed `x ** alpha` under `absl.app.run` (train.py, export.py)
and `abs(x)` in the argparse CLI or a plain script. These tests run the same weights in a
process started under `absl.app.run` and in one that is not, through the model, the export and
the CLI, and require identical results.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import REPO, synthetic_rgb

PROBE = textwrap.dedent(
    """
    import hashlib, sys
    import numpy as np

    def main(argv=None):
        import tensorflow as tf
        import gan_compress
        sys.path.insert(0, TESTS_DIR)
        from conftest import synthetic_rgb

        codec = gan_compress.load(MODEL_DIR)
        rgb = synthetic_rgb(0, 64, 96)
        x = tf.constant(rgb[None], tf.float32) / 255.0
        out = codec._model(x, tf.constant([2]), training=False)
        h = hashlib.sha256(out.x_hat.numpy().tobytes()).hexdigest()
        data = codec.compress_image(rgb, quality=3)
        back = codec.decompress_image(data)
        print("RESULT", h, hashlib.sha256(data).hexdigest(),
              hashlib.sha256(back.tobytes()).hexdigest())

    if "--under_absl" in sys.argv:
        from absl import app
        app.run(main, argv=[sys.argv[0]])
    else:
        main()
    """
)


def _probe(model_dir: str, under_absl: bool) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    code = f"MODEL_DIR = {model_dir!r}\nTESTS_DIR = {str(REPO / 'tests')!r}\n" + PROBE
    args = [sys.executable, "-c", code] + (["--under_absl"] if under_absl else [])
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=str(REPO),
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT"))
    return line.split()[1:]


@pytest.mark.slow
def test_the_model_computes_the_same_function_under_absl_app_run_and_without(tiny_model_dir):
    plain = _probe(tiny_model_dir, under_absl=False)
    absl = _probe(tiny_model_dir, under_absl=True)
    assert plain == absl  # reconstruction, bitstream and decoded frame


def test_gdn_has_no_signed_power_and_uses_the_absolute_value():
    import tensorflow as tf

    from gan_compress.layers.blocks import GDN

    layer = GDN()
    x = tf.constant([[[[-2.0, 1.0]]]])
    layer.build(x.shape)
    beta = layer.beta_parameter().numpy()
    gamma = layer.gamma_parameter().numpy()
    expected = x.numpy() / (beta + np.abs(x.numpy()) @ gamma)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-6)
    graph = tf.function(layer).get_concrete_function(x).graph.as_graph_def()
    ops = {node.op for node in graph.node}
    assert "Pow" not in ops and "Abs" in ops and "If" not in ops and "StatelessIf" not in ops


@pytest.mark.slow
def test_export_py_under_absl_codes_exactly_like_the_api_in_this_process(
        tiny_model_dir, tiny_codec, tmp_path):
    import gan_compress

    base = tmp_path / "models"
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, str(REPO / "export.py"), f"--model_dir={tiny_model_dir}",
         f"--model_base_path={base}", "--name=tiny"],
        capture_output=True, text=True, env=env, cwd=str(REPO), timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    # TF Serving's multi-model layout, with configs naming both models
    assert sorted(os.listdir(base)) == ["batching.config", "models.config", "tiny",
                                        "tiny-transforms"]
    assert os.listdir(base / "tiny") == os.listdir(base / "tiny-transforms") == ["1"]
    config = (base / "models.config").read_text()
    for name in ("tiny", "tiny-transforms"):
        assert f'name: "{name}"\n    base_path: "{base / name}"' in config
    assert "max_batch_size" in (base / "batching.config").read_text()
    exported = gan_compress.load(str(base / "tiny"))
    assert exported.fingerprint == tiny_codec.fingerprint
    rgb = synthetic_rgb(1, 64, 96)
    data = tiny_codec.compress_image(rgb, quality=2)
    assert exported.compress_image(rgb, quality=2) == data
    np.testing.assert_array_equal(exported.decompress_image(data),
                                  tiny_codec.decompress_image(data))


@pytest.mark.slow
def test_the_cli_encodes_exactly_like_a_process_under_absl(tiny_model_dir, tmp_path):
    from conftest import write_synthetic_y4m

    y4m = write_synthetic_y4m(str(tmp_path / "in.y4m"), 1, width=96, height=64)
    out = str(tmp_path / "cli.gcv")
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-m", "gan_compress", "encode", y4m, out, "--model", tiny_model_dir,
         "--quality", "3", "--quiet"],
        capture_output=True, text=True, env=env, cwd=str(REPO), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    code = textwrap.dedent(f"""
        import sys
        from absl import app
        def main(argv):
            import gan_compress
            gan_compress.load({tiny_model_dir!r}).compress_video({y4m!r}, {out + '.absl'!r},
                                                                   quality=3)
        app.run(main, argv=[sys.argv[0]])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=str(REPO), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out, "rb") as a, open(out + ".absl", "rb") as b:
        assert hashlib.sha256(a.read()).digest() == hashlib.sha256(b.read()).digest()


# -- entropy parameters: the same on every machine ------------------------------------------------

ENTROPY_PROBE = textwrap.dedent(
    """
    import hashlib, os
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["PROBE_THREADS"]))
    import gan_compress

    model = gan_compress.load(MODEL_DIR)._model
    rng = np.random.default_rng(0)
    z = rng.integers(-6, 7, (2, 3, 5, model.cfg.hyper_latent_channels)).astype(np.float32)
    mu, index = model.entropy_parameters(tf.constant(z) + model._z_offset())
    print("RESULT", hashlib.sha256(mu.numpy().tobytes() + index.numpy().tobytes()).hexdigest())
    """
)


@pytest.mark.parametrize("threads,onednn", [(1, "1"), (2, "0")])
def test_entropy_parameters_are_bit_identical_across_threads_and_onednn(tiny_model_dir, threads,
                                                                        onednn):
    def run(threads: int, onednn: str) -> str:
        env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3",
                   TF_ENABLE_ONEDNN_OPTS=onednn, PROBE_THREADS=str(threads))
        code = f"MODEL_DIR = {tiny_model_dir!r}\n" + ENTROPY_PROBE
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, cwd=str(REPO), timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT")).split()[1]

    # The reference is this process's own configuration: 2 threads, oneDNN as installed.
    assert run(threads, onednn) == run(2, os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"))


def test_exact_entropy_parameters_match_the_float_training_path_closely(tiny_codec):
    import tensorflow as tf

    model = tiny_codec._model
    assert model.check_exactness() < 2.0**52
    rng = np.random.default_rng(1)
    z = rng.integers(-8, 9, (1, 4, 6, model.cfg.hyper_latent_channels)).astype(np.float32)
    z_hat = tf.constant(z) + model._z_offset()
    mu, index = model.entropy_parameters(z_hat)
    mu_f, raw = model._hyper_params(z_hat)
    index_f = np.clip(np.round(raw.numpy()), 0, model.cfg.num_scales - 1)
    assert np.max(np.abs(mu.numpy() - mu_f.numpy())) < 1e-3
    assert np.mean(index.numpy() == index_f) > 0.999
    assert np.array_equal(index.numpy(), np.round(index.numpy()))  # whole numbers
