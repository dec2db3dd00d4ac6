"""Trains the tiny model for a few steps under a tf.distribute strategy; reports JSON (+ weights).

Used by tests/test_distributed.py in fresh processes, because logical CPU devices and
MultiWorkerMirroredStrategy must be set up before TensorFlow initialises.

  python tests/helpers/distributed_worker.py mirrored --model_dir=D --out=R.json \
      --train_glob=CLIP --cache_dir=C --batch_size=4 --stages=mse,gan
  TF_CONFIG=... python tests/helpers/distributed_worker.py multi_worker --model_dir=D \
      --out=R.json --train_glob='imgs/*.png' --cache_dir=C --resume --dump_weights=W.npz

For each stage (`D/<stage>`, the GAN stage initialised from the MSE one) it builds a `Trainer`,
trains `--steps`, and records: the per-replica batch shapes, the step it started at, the largest
difference between the replicas' copies of any mirrored variable, how many variables changed.
With `--resume` a second `Trainer` on the last stage's model_dir restores it (as a restarted job
would) and reports the step it resumes at. `--dump_weights` saves the last trainer's value of every
codec and discriminator variable (first replica).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("strategy", choices=["mirrored", "multi_worker"])
    p.add_argument("--model_dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--train_glob", action="append", required=True)
    p.add_argument("--cache_dir", required=True)
    p.add_argument("--batch_size", type=int, default=2, help="global batch size")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--stages", default="mse", help="comma-separated: mse or mse,gan")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--dump_weights", default=None)
    return p.parse_args(argv)


def _stage_report(strategy, trainer, start_step, initial, result, model_dir):
    import numpy as np
    import tensorflow as tf

    variables = list(trainer.model.variables) + list(trainer.disc.variables)
    optimizer_vars = [v for o in (trainer.opt_t, trainer.opt_e, trainer.opt_d)
                      for v in o.variables]
    replica_diff, checked = 0.0, 0
    for v in variables + optimizer_vars:
        values = [t.numpy() for t in strategy.experimental_local_results(v)]
        if len(values) > 1:
            checked += 1
            replica_diff = max(replica_diff, *(float(np.max(np.abs(x - values[0]), initial=0.0))
                                               for x in values[1:]))
    final = [strategy.experimental_local_results(v)[0].numpy() for v in variables]
    changed = {v.name: not np.array_equal(a, b) for v, a, b in
               zip(variables, initial, final, strict=True)}
    report = {
        "start_step": start_step,
        "final_step": result.final_step,
        "num_variables": len(variables),
        "num_mirrored_checked": checked,
        "max_replica_difference": replica_diff,
        "codec_changed": sum(v for k, v in changed.items() if not k.startswith("discriminator")),
        "codec_variables": sum(1 for k in changed if not k.startswith("discriminator")),
        "disc_trainable_changed": sum(changed[v.name] for v in trainer.disc.trainable_variables),
        "disc_trainable": len(trainer.disc.trainable_variables),
        "metrics": result.last_metrics,
        "checkpoint": tf.train.latest_checkpoint(model_dir),
    }
    return report, {f"{i:03d}:{v.name}": x for i, (v, x) in enumerate(zip(variables, final,
                                                                           strict=True))}


def main(argv=None) -> None:
    args = parse_args(argv)
    # the strategy first: it must exist before TensorFlow runs any op
    from gan_compress.training.strategy import is_chief, make_strategy

    strategy = make_strategy(args.strategy, 2)

    import numpy as np

    from gan_compress import configs
    from gan_compress.training.trainer import Trainer

    base = configs.get_preset("tiny")
    base = dataclasses.replace(
        base,
        data=dataclasses.replace(base.data, train_globs=tuple(args.train_glob),
                                 cache_dir=args.cache_dir, batch_size=args.batch_size, seed=0,
                                 deterministic=True),
        loss=dataclasses.replace(base.loss, gan_loss="hinge"),
    )
    report = {"num_replicas": strategy.num_replicas_in_sync, "chief": is_chief(strategy),
              "stages": {}}
    stages = args.stages.split(",")
    previous, weights, trainer = None, None, None
    for i, stage in enumerate(stages):
        # gan_trainable=all: both stages update every codec variable, which the test checks
        cfg = dataclasses.replace(base, train=dataclasses.replace(base.train, stage=stage,
                                                                   gan_trainable="all"))
        model_dir = os.path.join(args.model_dir, stage)
        trainer = Trainer(cfg, model_dir, strategy=strategy, init_from=previous)
        if i == 0:
            batch = next(iter(trainer.make_dataset()))
            report["per_replica_batch_shapes"] = [
                list(t.shape) for t in strategy.experimental_local_results(batch)]
        start_step = int(trainer.step.numpy())
        variables = list(trainer.model.variables) + list(trainer.disc.variables)
        initial = [strategy.experimental_local_results(v)[0].numpy().copy() for v in variables]
        result = trainer.train(args.steps)
        report["stages"][stage], weights = _stage_report(
            strategy, trainer, start_step, initial, result, model_dir)
        previous = model_dir
    if args.resume:
        trainer = Trainer(trainer.cfg, previous, strategy=strategy)
        variables = list(trainer.model.variables) + list(trainer.disc.variables)
        restored = [strategy.experimental_local_results(v)[0].numpy() for v in variables]
        report["resumed"] = {
            "start_step": int(trainer.step.numpy()),
            "opt_t_iterations": int(trainer.opt_t.iterations.numpy()),
            "equal_to_trained": all(np.array_equal(a, b) for a, b in
                                    zip(restored, weights.values(), strict=True)),
        }
        weights = {f"{i:03d}:{v.name}": x for i, (v, x) in
                   enumerate(zip(variables, restored, strict=True))}
    if args.dump_weights:
        np.savez(args.dump_weights, **weights)
    with open(args.out + ".tmp", "w") as f:
        json.dump(report, f, indent=1)
    os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: with MultiWorkerMirroredStrategy, a process whose peer has
    # already exited can wait for the coordination service's heartbeat timeout (~100 s).
    os._exit(0)
