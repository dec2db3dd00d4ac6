"""Training under tf.distribute: MirroredStrategy over two logical CPU devices, and
MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1, each in fresh processes
(tests/helpers/distributed_worker.py) because devices and strategies must be set up before
TensorFlow initialises."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO, SAMPLE_CLIP

HELPER = REPO / "tests" / "helpers" / "distributed_worker.py"
TIMEOUT = 480  # seconds per group of processes; the machine may be shared and slow


class _Group:
    """Processes started together; `wait()` bounds them with a timeout and kills them all as soon
    as one fails (a lone multi-worker process would wait for its peer) or the time runs out."""

    def __init__(self, cmds, logs, envs=None):
        self.logs = logs
        self._files = [open(log, "w") for log in logs]
        envs = envs or [None] * len(cmds)
        self.procs = [
            subprocess.Popen(c, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, env=e)
            for c, f, e in zip(cmds, self._files, envs, strict=True)
        ]

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in self._files:
            f.close()

    def wait(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                codes = [p.poll() for p in self.procs]
                if None not in codes or any(c not in (None, 0) for c in codes):
                    break
                time.sleep(0.2)
        finally:
            self.kill()
        codes = [p.returncode for p in self.procs]
        tails = "\n".join(f"--- {log}\n{open(log).read()[-3000:]}" for log in self.logs)
        assert codes == [0] * len(codes), f"return codes {codes} (negative: killed)\n{tails}"


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, frame_cache_dir):
    """Starts the mirrored run and the two multi-worker processes at once (they use different
    cores for much of the time); each test waits for its own group."""
    root = tmp_path_factory.mktemp("distributed")
    groups = {}
    mirrored = root / "mirrored"
    mirrored.mkdir()
    groups["mirrored"] = (mirrored, _Group(
        [[sys.executable, str(HELPER), "mirrored", f"--model_dir={mirrored / 'model'}",
          f"--out={mirrored / 'report.json'}", f"--train_glob={SAMPLE_CLIP}",
          f"--cache_dir={frame_cache_dir}", "--batch_size=4", "--steps=2", "--stages=mse,gan"]],
        [mirrored / "mirrored.log"]))

    from gan_compress.io import write_png

    multi = root / "multi_worker"
    multi.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):  # sharding is by file: one image per worker
        write_png(multi / f"train{i}.png", rng.integers(0, 256, [80, 96, 3], np.uint8))
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    cmds, logs, envs = [], [], []
    for i in range(2):
        cmds.append([sys.executable, str(HELPER), "multi_worker", f"--model_dir={multi / 'model'}",
                     f"--out={multi / f'report{i}.json'}", f"--train_glob={multi / 'train*.png'}",
                     f"--cache_dir={frame_cache_dir}", "--batch_size=2", "--steps=2",
                     "--resume", f"--dump_weights={multi / f'weights{i}.npz'}"])
        logs.append(multi / f"worker{i}.log")
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": i}}
        envs.append(dict(os.environ, TF_CONFIG=json.dumps(tf_config)))
    groups["multi_worker"] = (multi, _Group(cmds, logs, envs))
    yield groups
    for _, group in groups.values():
        group.kill()


def _check_stage(stage: dict, start: int, final: int, chief: bool = True) -> None:
    assert stage["start_step"] == start and stage["final_step"] == final
    assert stage["codec_changed"] == stage["codec_variables"] > 0
    assert all(np.isfinite(v) for v in stage["metrics"].values())
    if chief:  # a non-chief may look before the chief has finished writing its checkpoint
        assert stage["checkpoint"].endswith(f"ckpt-{final}")


@pytest.mark.slow
def test_mirrored_strategy_on_two_cpu_devices_keeps_replicas_identical(runs):
    root, group = runs["mirrored"]
    group.wait()
    report = json.loads((root / "report.json").read_text())
    assert report["num_replicas"] == 2
    # each replica gets half of the global batch of 4
    assert report["per_replica_batch_shapes"] == [[2, 1, 64, 64, 3]] * 2
    for name in ("mse", "gan"):
        stage = report["stages"][name]
        _check_stage(stage, start=0, final=2)
        # every variable (codec, discriminator, optimizer slots) is mirrored, and identical
        assert stage["num_mirrored_checked"] > stage["num_variables"]
        assert stage["max_replica_difference"] == 0.0
    assert report["stages"]["mse"]["disc_trainable_changed"] == 0
    gan = report["stages"]["gan"]
    # hinge loss: all but D's output bias (zero gradient, see test_training) move
    assert gan["disc_trainable_changed"] >= gan["disc_trainable"] - 1 > 0
    assert {"d_loss", "g_adv"} <= set(gan["metrics"])


@pytest.mark.slow
def test_multi_worker_training_gives_identical_weights_on_both_workers_and_resumes(runs):
    tmp_path, group = runs["multi_worker"]
    group.wait()
    model_dir = tmp_path / "model"

    reports = [json.loads((tmp_path / f"report{i}.json").read_text()) for i in range(2)]
    assert [r["chief"] for r in reports] == [True, False]
    for r in reports:
        assert r["num_replicas"] == 2
        assert r["per_replica_batch_shapes"] == [[1, 1, 64, 64, 3]]  # global batch 2 / 2
        _check_stage(r["stages"]["mse"], start=0, final=2, chief=r["chief"])
        # a new Trainer on EACH worker (a restarted job) resumes from the chief's checkpoint:
        # the other worker's own copies were deleted with its scratch dir
        assert r["resumed"] == {"start_step": 2, "opt_t_iterations": 2, "equal_to_trained": True}
    a, b = (np.load(tmp_path / f"weights{i}.npz") for i in range(2))
    assert a.files == b.files and len(a.files) == reports[0]["stages"]["mse"]["num_variables"]
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # only the chief keeps checkpoints; the other worker's scratch copies are gone
    assert (model_dir / "mse" / "ckpt-2.index").exists()
    assert (model_dir / "mse" / "config.json").exists()
    assert [p.name for p in (model_dir / "mse").iterdir() if "workertemp" in p.name] == []
