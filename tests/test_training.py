"""The training loop: which variables each stage and GAN loss updates, the optimizer-group check,
the NaN guard, checkpoint/resume and `--init_from`, and train.py's flag checks and its resume
after SIGKILL.

In-process tests feed `Trainer.train(dataset=...)` a synthetic in-memory batch (the default
strategy takes a plain `tf.data.Dataset` of `[B, T, H, W, 3]`), so they never decode video.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, SAMPLE_CLIP, tiny_config

from gan_compress import configs
from gan_compress.losses import GAN_LOSSES
from gan_compress.training.trainer import NonFiniteLossError, Trainer

GROUPS = ("transforms", "entropy", "discriminator")


def _dataset(value: float | None = None, seed: int = 0) -> tf.data.Dataset:
    """An endless dataset repeating one `[2, 1, 64, 64, 3]` batch (random, or all `value`)."""
    if value is None:
        batch = np.random.default_rng(seed).uniform(size=[2, 1, 64, 64, 3]).astype(np.float32)
    else:
        batch = np.full([2, 1, 64, 64, 3], value, np.float32)
    return tf.data.Dataset.from_tensors(batch).repeat()


def _snapshot(trainer: Trainer) -> dict[str, list[np.ndarray]]:
    return {g: [v.numpy().copy() for v in trainer.groups[g]] for g in GROUPS}


def _changed(before, after) -> list[bool]:
    return [not np.array_equal(a, b) for a, b in zip(before, after, strict=True)]


def _gan_config(cfg, gan_loss: str, **loss_overrides):
    return dataclasses.replace(
        cfg,
        train=dataclasses.replace(cfg.train, stage="gan", gan_trainable="all"),
        loss=dataclasses.replace(cfg.loss, gan_loss=gan_loss, **loss_overrides),
    )


@pytest.fixture(scope="module")
def mse_run(tmp_path_factory, frame_cache_dir):
    """A tiny MSE-stage Trainer after 2 steps (checkpoints ckpt-1, ckpt-2), with weight
    snapshots from before and after training."""
    cfg = tiny_config(frame_cache_dir)
    model_dir = str(tmp_path_factory.mktemp("mse_run"))
    tf.keras.utils.set_random_seed(0)
    trainer = Trainer(cfg, model_dir)
    before = _snapshot(trainer)
    result = trainer.train(2, dataset=_dataset())
    return types.SimpleNamespace(cfg=cfg, model_dir=model_dir, trainer=trainer, before=before,
                                 after=_snapshot(trainer), result=result)


# -- what each stage updates ----------------------------------------------------------------------


def test_mse_stage_updates_the_codec_and_leaves_the_discriminator_unchanged(mse_run):
    t = mse_run.trainer
    assert mse_run.result.final_step == 2 and int(t.step.numpy()) == 2
    assert all(_changed(mse_run.before["transforms"], mse_run.after["transforms"]))
    assert all(_changed(mse_run.before["entropy"], mse_run.after["entropy"]))
    assert not any(_changed(mse_run.before["discriminator"], mse_run.after["discriminator"]))
    assert int(t.opt_t.iterations.numpy()) == 2
    assert int(t.opt_e.iterations.numpy()) == 2
    assert int(t.opt_d.iterations.numpy()) == 0
    m = mse_run.result.last_metrics
    assert {"bpp", "mse", "psnr", "loss"} <= set(m) and "d_loss" not in m
    assert all(np.isfinite(v) for v in m.values())


@pytest.mark.parametrize(
    "gan_loss, d_steps, loss_overrides",
    [
        ("non_saturating", 1, {"r1_weight": 1.0}),  # also exercises the R1 penalty
        ("least_squares", 2, {}),
        ("hinge", 1, {}),
        ("wgan_gp", 1, {}),
    ],
)
def test_gan_stage_updates_every_group_with_its_own_optimizer(
    mse_run, tmp_path, gan_loss, d_steps, loss_overrides
):
    assert set(GAN_LOSSES) == {"non_saturating", "least_squares", "hinge", "wgan_gp"}
    cfg = _gan_config(mse_run.cfg, gan_loss, **loss_overrides)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, d_steps_per_g=d_steps))
    trainer = Trainer(cfg, str(tmp_path / "gan"), init_from=mse_run.model_dir)
    before = _snapshot(trainer)
    result = trainer.train(2, dataset=_dataset(seed=1))
    after = _snapshot(trainer)
    assert result.final_step == 2
    for group in ("transforms", "entropy"):
        assert all(_changed(before[group], after[group])), group
    changed = dict(zip([v.name for v in trainer.groups["discriminator"]],
                       _changed(before["discriminator"], after["discriminator"]), strict=True))
    if gan_loss in ("hinge", "wgan_gp"):
        # D's output bias gets zero gradient here: it adds +1 and -1 through the real and the
        # fake term (hinge with logits in (-1, 1), WGAN always), so only it may stay put.
        changed = {k: v for k, v in changed.items() if not k.endswith("logits/bias:0")}
    assert len(changed) >= 2 * len(mse_run.cfg.model.disc_channels) and all(changed.values())
    # one generator update and d_steps discriminator updates per step, each on its own group
    assert int(trainer.opt_t.iterations.numpy()) == 2
    assert int(trainer.opt_e.iterations.numpy()) == 2
    assert int(trainer.opt_d.iterations.numpy()) == 2 * d_steps
    m = result.last_metrics
    assert {"g_adv", "feature_matching", "d_loss", "d_real", "d_fake"} <= set(m)
    assert all(np.isfinite(v) for v in m.values())


# -- optimizer groups -----------------------------------------------------------------------------


def test_check_groups_rejects_a_variable_in_two_groups(mse_run, monkeypatch):
    t = mse_run.trainer
    shared = t.groups["transforms"][0]
    groups = dict(t.groups, discriminator=[*t.groups["discriminator"], shared])
    monkeypatch.setattr(t, "groups", groups)
    with pytest.raises(AssertionError, match=r"in groups transforms and discriminator"):
        t._check_groups()


def test_check_groups_rejects_a_variable_in_no_group(mse_run, monkeypatch):
    t = mse_run.trainer
    dropped = t.groups["entropy"][0]
    monkeypatch.setattr(t, "groups", dict(t.groups, entropy=t.groups["entropy"][1:]))
    with pytest.raises(AssertionError, match="in no optimizer group") as e:
        t._check_groups()
    assert dropped.name in str(e.value)


def test_check_groups_accepts_the_trainers_own_groups(mse_run):
    mse_run.trainer._check_groups()


# -- NaN guard ------------------------------------------------------------------------------------


def test_non_finite_loss_raises_an_error_naming_the_step_and_loss_and_updates_no_weight(mse_run):
    t = mse_run.trainer
    start = int(t.step.numpy())
    before = _snapshot(t)
    with pytest.raises(NonFiniteLossError, match=rf"non-finite loss at step {start + 1}\b") as e:
        t.train(start + 3, dataset=_dataset(value=float("nan")))
    assert "generator loss : Tensor had NaN values" in str(e.value)
    assert str(e.value).endswith(f"the last good checkpoint is {t.manager.latest_checkpoint}")
    after = _snapshot(t)
    for group in GROUPS:
        assert not any(_changed(before[group], after[group])), group
    assert tf.train.latest_checkpoint(mse_run.model_dir).endswith(f"ckpt-{start}")


# -- checkpoints ----------------------------------------------------------------------------------


def test_a_new_trainer_resumes_at_the_saved_step_and_continues(mse_run, tmp_path):
    model_dir = str(tmp_path / "copy")
    shutil.copytree(mse_run.model_dir, model_dir)
    tf.keras.utils.set_random_seed(123)  # fresh weights differ from the saved ones
    trainer = Trainer(mse_run.cfg, model_dir)
    assert int(trainer.step.numpy()) == 2
    restored = _snapshot(trainer)
    for group in GROUPS:
        for a, b in zip(restored[group], mse_run.after[group], strict=True):
            np.testing.assert_array_equal(a, b)
    assert int(trainer.opt_t.iterations.numpy()) == 2  # optimizer state is restored too
    result = trainer.train(4, dataset=_dataset(seed=2))
    assert result.final_step == 4
    assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-4")
    # asking for fewer steps than done is a no-op
    assert trainer.train(3, dataset=_dataset()).final_step == 4


def test_init_from_restores_the_codec_weights_and_starts_at_step_zero(mse_run, tmp_path):
    tf.keras.utils.set_random_seed(7)
    cfg = _gan_config(mse_run.cfg, "hinge")
    trainer = Trainer(cfg, str(tmp_path / "gan"), init_from=mse_run.model_dir)
    assert int(trainer.step.numpy()) == 0
    assert int(trainer.opt_t.iterations.numpy()) == 0
    restored = _snapshot(trainer)
    for group in ("transforms", "entropy"):
        for a, b in zip(restored[group], mse_run.after[group], strict=True):
            np.testing.assert_array_equal(a, b)
    assert tf.train.latest_checkpoint(str(tmp_path / "gan")) is None


def test_init_from_a_shipped_model_folder_loads_its_float16_weights_in_either_stage(
        mse_run, tmp_path):
    from gan_compress import api

    folder = str(tmp_path / "ship")
    api.save_shipped_model(mse_run.trainer.model, mse_run.cfg, folder)
    with np.load(os.path.join(folder, "weights.npz")) as d:
        shipped = [d[k].astype(np.float32) for k in sorted(d.files)]
    for stage_cfg in (mse_run.cfg, _gan_config(mse_run.cfg, "hinge")):
        run_dir = str(tmp_path / f"from_ship_{stage_cfg.train.stage}")
        trainer = Trainer(stage_cfg, run_dir, init_from=folder)
        assert int(trainer.step.numpy()) == 0
        variables = trainer.model.trainable_variables
        assert len(variables) == len(shipped)
        for v, w in zip(variables, shipped, strict=True):
            np.testing.assert_array_equal(v.numpy(), w)


def test_init_from_a_dir_without_checkpoint_is_rejected(mse_run, tmp_path):
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(ValueError, match="no checkpoint or shipped weights.npz found"):
        Trainer(_gan_config(mse_run.cfg, "hinge"), str(tmp_path / "gan2"), init_from=str(empty))


def test_init_from_a_missing_path_is_rejected(mse_run, tmp_path):
    with pytest.raises(ValueError, match="model not found"):
        Trainer(_gan_config(mse_run.cfg, "hinge"), str(tmp_path / "gan"),
                init_from=str(tmp_path / "empty"))


def test_a_different_model_config_in_an_existing_model_dir_is_rejected(mse_run):
    cfg = configs.override(mse_run.cfg, ["model.latent_channels=24"])
    with pytest.raises(ValueError, match=r"config\.json.*model config there differs"):
        Trainer(cfg, mse_run.model_dir)
    # the saved config is left as it was
    saved = configs.Config.from_json(open(os.path.join(mse_run.model_dir, "config.json")).read())
    assert saved.model == mse_run.cfg.model


# -- train.py -------------------------------------------------------------------------------------


def _train_cmd(*args) -> list[str]:
    return [sys.executable, str(REPO / "train.py"), *args]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--stage=mse", "--gan_loss=hinge"], "--gan_loss/--d_steps_per_g need --stage=gan"),
        (["--crop_size=50"], "--crop_size must be at least 64 and a multiple of 16"),
        (["--crop_size=72"], "--crop_size must be at least 64 and a multiple of 16"),
        (["--steps=0"], "--steps must be positive"),
    ],
)
def test_train_py_rejects_inconsistent_flags(tmp_path, args, message):
    proc = subprocess.run(
        _train_cmd("--preset=tiny", f"--model_dir={tmp_path / 'm'}", *args),
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert proc.returncode != 0
    assert "FATAL Flags parsing error" in proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "m").exists()


def _latest_step(model_dir: str) -> int:
    try:
        with open(os.path.join(model_dir, "checkpoint")) as f:
            m = re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', f.read(), re.M)
    except FileNotFoundError:
        return -1
    return int(m.group(1)) if m else -1


@pytest.mark.slow
def test_train_py_killed_with_sigkill_resumes_from_its_checkpoint_and_finishes(
    tmp_path, frame_cache_dir
):
    steps = 16
    model_dir = str(tmp_path / "run")
    cmd = _train_cmd(
        "--preset=tiny", f"--model_dir={model_dir}", f"--steps={steps}",
        "--config=train.checkpoint_every=1", f"--train_glob={SAMPLE_CLIP}",
        f"--config=data.cache_dir={frame_cache_dir}", "--config=train.keep_checkpoints=2",
    )
    log1 = open(tmp_path / "first.log", "w+")
    proc = subprocess.Popen(cmd, stdout=log1, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        deadline = time.monotonic() + 300
        while _latest_step(model_dir) < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "no second checkpoint within 300 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log1.seek(0)
    first = log1.read()
    assert proc.returncode == -signal.SIGKILL, f"not killed mid-run:\n{first[-3000:]}"
    killed_at = _latest_step(model_dir)
    assert 2 <= killed_at < steps

    second = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    m = re.search(r"resumed from \S+ckpt-(\d+) at step (\d+)", second.stderr)
    assert m, second.stderr[-3000:]
    assert int(m.group(1)) == int(m.group(2)) >= killed_at
    assert f"finished at step {steps}" in second.stderr
    assert "step 1/" not in second.stderr  # it did not start again from scratch
    assert tf.train.latest_checkpoint(model_dir).endswith(f"ckpt-{steps}")
    saved = configs.Config.from_json(open(os.path.join(model_dir, "config.json")).read())
    assert saved.train.checkpoint_every == 1 and saved.data.cache_dir == frame_cache_dir


def test_a_resumed_run_continues_the_data_stream_instead_of_replaying_it(mse_run, tmp_path):
    """The input stream is indexed by element; a run resumed at step s starts at element
    s * batch, so the batches of a resumed run differ from those its first run already saw."""
    cfg = dataclasses.replace(mse_run.cfg, data=dataclasses.replace(mse_run.cfg.data, seed=3))
    trainer = Trainer(cfg, str(tmp_path / "resume_data"))
    first = next(iter(trainer.make_dataset())).numpy()
    trainer.step.assign(5)
    resumed = next(iter(trainer.make_dataset())).numpy()
    assert not np.array_equal(first, resumed)
    from gan_compress.data import build_inputs

    direct = next(iter(build_inputs(cfg.data, start_index=5 * cfg.data.batch_size))).numpy()
    np.testing.assert_array_equal(resumed, direct)
