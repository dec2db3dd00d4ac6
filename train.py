"""Trains the I-frame GAN codec: flags -> config -> strategy -> Trainer.

Two stages (HiFiC): first `--stage=mse` (rate + distortion), then `--stage=gan` starting from the
MSE stage's checkpoint (`--init_from`) with the conditional discriminator switched on.

  .venv/bin/python train.py --preset=small --model_dir=runs/small_mse --stage=mse --steps=20000
  .venv/bin/python train.py --preset=small --model_dir=runs/small_gan --stage=gan \
      --init_from=runs/small_mse --steps=5000

P-frame codec (scale-space flow + residual), on 3-frame video clips, with the I-frame codec
frozen at the given weights (`--init_from`: an I-frame run or a shipped model name):

  .venv/bin/python train.py --preset=small --model_dir=runs/small_pframe_mse \
      --stage=pframe_mse --init_from=small-mse --clip_length=3 --steps=20000
  .venv/bin/python train.py --preset=small --model_dir=runs/small_pframe_gan \
      --stage=pframe_gan --init_from=runs/small_pframe_mse --steps=2000

Re-running the same command resumes from the last checkpoint in --model_dir.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging

FLAGS = flags.FLAGS

flags.DEFINE_enum("preset", "small", ["tiny", "small", "hific"], "Model/config preset.")
flags.DEFINE_multi_string("train_glob", None, "Training file globs (videos/images); repeatable.")
flags.DEFINE_string("model_dir", None, "Checkpoints, config.json and TensorBoard logs.")
flags.DEFINE_enum("stage", "mse", ["mse", "gan", "pframe_mse", "pframe_gan"],
                  "Training stage: I-frame codec (mse, gan) or P-frame codec (pframe_mse, "
                  "pframe_gan; needs --clip_length >= 2 and --init_from).")
flags.DEFINE_integer("clip_length", None, "Frames per training clip (P-frame stages: >= 2; "
                     "default 3 there, 1 otherwise).")
flags.DEFINE_string("init_from", None,
                    "Initial codec weights when --model_dir has no checkpoint: a model_dir (the "
                    "finished MSE stage, for --stage=gan) or a shipped model name or folder "
                    "(weights.npz; e.g. to continue from small-mse on a new machine).")
flags.DEFINE_integer("steps", None, "Total steps of this stage (default: the preset's).")
flags.DEFINE_integer("batch_size", None, "Global batch size.")
flags.DEFINE_integer("crop_size", None, "Square crop size in pixels.")
flags.DEFINE_enum("lambda_schedule", None, ["fixed", "rate_target"],
                  "fixed lambda per quality, or HiFiC's rate-target schedule.")
flags.DEFINE_float("lr", None, "Learning rate of the transforms.")
flags.DEFINE_enum("gan_loss", None, ["non_saturating", "least_squares", "hinge", "wgan_gp"],
                  "Adversarial loss (GAN stage).")
flags.DEFINE_integer("d_steps_per_g", None, "Discriminator steps per generator step.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"],
                  "tf.distribute strategy.")
flags.DEFINE_integer("num_cpu_replicas", 2,
                     "Logical CPU replicas for --strategy=mirrored without GPUs.")
flags.DEFINE_string("tpu", None, "TPU address for --strategy=tpu.")
flags.DEFINE_bool("mixed_precision", False, "mixed_bfloat16 (CPU/TPU) or mixed_float16 (GPU).")
flags.DEFINE_integer("seed", None, "Random seed (also makes the input pipeline deterministic).")
flags.DEFINE_multi_string("config", [], "Config overrides section.field=value; repeatable.")

flags.mark_flag_as_required("model_dir")


@flags.multi_flags_validator(["stage", "gan_loss", "d_steps_per_g"],
                             message="--gan_loss/--d_steps_per_g need --stage=gan or pframe_gan")
def _check_gan_flags(f):
    return f["stage"] in ("gan", "pframe_gan") or (
        f["gan_loss"] is None and f["d_steps_per_g"] is None)


@flags.validator("steps", message="--steps must be positive")
def _check_steps(v):
    return v is None or v > 0


@flags.validator("crop_size", message="--crop_size must be at least 64 and a multiple of 16")
def _check_crop(v):
    return v is None or (v >= 64 and v % 16 == 0)


@flags.multi_flags_validator(["strategy", "tpu"], message="--tpu is only used with --strategy=tpu")
def _check_tpu(f):
    return f["tpu"] is None or f["strategy"] == "tpu"


def build_config(f):
    """Flags -> Config (preset, then dedicated flags, then --config overrides)."""
    import dataclasses

    from gan_compress import configs

    cfg = configs.get_preset(f.preset)
    data, loss, train = cfg.data, cfg.loss, cfg.train
    if f.train_glob:
        data = dataclasses.replace(data, train_globs=tuple(f.train_glob))
    if f.batch_size:
        data = dataclasses.replace(data, batch_size=f.batch_size)
    if f.crop_size:
        data = dataclasses.replace(data, crop_size=f.crop_size)
    pframe = f.stage.startswith("pframe")
    clip_length = f.clip_length or (3 if pframe else None)
    if clip_length:
        data = dataclasses.replace(data, clip_length=clip_length)
    if f.seed is not None:
        data = dataclasses.replace(data, seed=f.seed, deterministic=True)
        train = dataclasses.replace(train, seed=f.seed)
    train = dataclasses.replace(train, stage=f.stage, mixed_precision=f.mixed_precision)
    if f.steps:
        train = dataclasses.replace(train, steps=f.steps)
    if f.lr:
        train = dataclasses.replace(train, lr=f.lr)
    if f.d_steps_per_g:
        train = dataclasses.replace(train, d_steps_per_g=f.d_steps_per_g)
    if f.gan_loss:
        loss = dataclasses.replace(loss, gan_loss=f.gan_loss)
    if f.lambda_schedule:
        loss = dataclasses.replace(loss, lambda_schedule=f.lambda_schedule)
    cfg = dataclasses.replace(cfg, data=data, loss=loss, train=train)
    return configs.override(cfg, f.config)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    cfg = build_config(FLAGS)
    if cfg.train.stage.startswith("pframe") and cfg.data.clip_length < 2:
        raise app.UsageError(f"--stage={cfg.train.stage} needs --clip_length >= 2")
    if cfg.data.batch_size % max(1, FLAGS.num_cpu_replicas if FLAGS.strategy == "mirrored" else 1):
        raise app.UsageError("--batch_size must be divisible by --num_cpu_replicas")

    import tensorflow as tf

    from gan_compress.training.strategy import make_strategy
    from gan_compress.training.trainer import Trainer

    strategy = make_strategy(FLAGS.strategy, FLAGS.num_cpu_replicas, FLAGS.tpu)
    tf.random.set_seed(cfg.train.seed)
    if cfg.train.mixed_precision:
        policy = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
        tf.keras.mixed_precision.set_global_policy(policy)
    logging.info("strategy %s with %d replicas", FLAGS.strategy, strategy.num_replicas_in_sync)
    trainer = Trainer(cfg, FLAGS.model_dir, strategy=strategy, init_from=FLAGS.init_from)
    result = trainer.train()
    logging.info("finished at step %d (%.2f steps/s)", result.final_step, result.steps_per_second)
    return 0


def run(argv=None):
    """Entry point usable from tests: `run(["train.py", "--model_dir=...", ...])`."""
    app.run(main, argv=argv or sys.argv)


if __name__ == "__main__":
    run()
