"""tf.distribute strategies for `train.py`.

- `default`: one device (the default strategy).
- `mirrored`: synchronous data parallelism over this machine's GPUs, or, with no GPU, over
  `num_cpu_replicas` logical CPU devices (shows and tests the distributed code path on CPU).
- `multi_worker`: MultiWorkerMirroredStrategy across processes/machines described by TF_CONFIG.
- `tpu`: TPUStrategy (needs `--tpu` address or a TPU VM).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def configure_cpu_replicas(num: int) -> None:
    """Splits the physical CPU into `num` logical devices. Must run before TF initialises."""
    cpus = tf.config.list_physical_devices("CPU")
    if num > 1 and cpus:
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(num)]
            )
        except RuntimeError as e:  # runtime already initialised
            raise RuntimeError(
                "logical CPU devices must be configured before TensorFlow initialises"
            ) from e


def make_strategy(name: str, num_cpu_replicas: int = 2, tpu: str | None = None):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy()
        configure_cpu_replicas(num_cpu_replicas)
        devices = [f"/cpu:{i}" for i in range(num_cpu_replicas)]
        return tf.distribute.MirroredStrategy(
            devices=devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")


def is_chief(strategy) -> bool:
    """True on the process that owns checkpoints and summaries."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    has_chief = "chief" in json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return task_type == "worker" and task_id == 0 and not has_chief


def worker_id(strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_id is None:
        return 0
    return int(resolver.task_id)
