"""The distributed training loop: MSE then GAN stage of the I-frame codec, and the same two
stages (`pframe_mse`, `pframe_gan`) of the P-frame codec.

P-frame stages train on clips `[B, T, S, S, 3]` (T = `data.clip_length` >= 2; images are left
out by the pipeline then): frame 0 is coded by the frozen I-frame codec (its output rounded to
uint8, as a decoder would hold it), frames 1..T-1 by the P-frame codec, each predicted from the
previous reconstruction (unrolled; `train.pframe_stop_gradient` cuts the gradient between
frames). The I-frame weights come from `--init_from` (an I-frame run or shipped model) and are
not trained.

Everything is built in `strategy.scope()`; input comes from
`strategy.distribute_datasets_from_function(lambda ctx: build_inputs(cfg.data, ctx))`; each
replica's per-example losses are summed and divided by the GLOBAL batch size, so gradients
summed across replicas equal the single-device gradient of the mean loss.

Three optimizers, one per variable group: "transforms" (analysis, generator, hyper transforms,
gains), "entropy" (the factorized prior of z), "discriminator". `Trainer` checks that every
trainable variable is in exactly one group.

One training step: the generator forward pass runs once under a tape; the generator update uses
the current discriminator; then `d_steps_per_g` discriminator updates use that (stop-gradient)
reconstruction. In the MSE stage the discriminator is not used.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from typing import NamedTuple

import numpy as np
import tensorflow as tf
from absl import logging

from gan_compress import losses, registry
from gan_compress.configs import Config
from gan_compress.data import build_inputs
from gan_compress.models.discriminator import ConditionalPatchDiscriminator
from gan_compress.training.strategy import is_chief, worker_id

CONFIG_NAME = "config.json"
STAGES = ("mse", "gan", "pframe_mse", "pframe_gan")
VALIDATION_LOG = "validation.jsonl"


def load_validation_images(cfg: Config):
    """`[N, S, S, 3]` float32 centre crops (S = train.validation_crop) of the first
    `train.validation_images` held-out images, or None when there are none."""
    from gan_compress.data.pipeline import validation_files
    from gan_compress.io import read_image

    try:
        files = validation_files(cfg.data)[: cfg.train.validation_images]
    except FileNotFoundError:
        return None
    s = cfg.train.validation_crop
    crops = []
    for path in files:
        img = read_image(path)
        h, w = img.shape[:2]
        if min(h, w) < s:
            continue
        y0, x0 = (h - s) // 2, (w - s) // 2
        crops.append(img[y0:y0 + s, x0:x0 + s])
    if not crops:
        return None
    return tf.constant(np.stack(crops), tf.float32) / 255.0


class NonFiniteLossError(RuntimeError):
    """Raised when a loss becomes NaN or Inf; the message names the step."""


class TrainResult(NamedTuple):
    final_step: int
    steps_per_second: float
    last_metrics: dict


def load_config(model_dir: str) -> Config:
    with open(os.path.join(model_dir, CONFIG_NAME)) as f:
        return Config.from_json(f.read())


def _write_config(model_dir: str, cfg: Config) -> None:
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, CONFIG_NAME)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(cfg.to_json())
    os.replace(tmp, path)


class Trainer:
    """Builds model, discriminator, optimizers and checkpoints under `strategy.scope()`."""

    def __init__(self, cfg: Config, model_dir: str, strategy=None, init_from: str | None = None):
        self.cfg = cfg
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = is_chief(self.strategy)
        self.model_dir = model_dir
        # Non-chief workers write their (required) checkpoint copies to a scratch dir.
        self.ckpt_dir = model_dir if self.chief else os.path.join(
            model_dir, f"workertemp_{worker_id(self.strategy)}"
        )
        self._check_config_compatible()
        if self.chief:
            _write_config(model_dir, cfg)
        tc = cfg.train
        if tc.stage not in STAGES:
            raise ValueError(f"train.stage must be one of {STAGES}, got {tc.stage!r}")
        self.pframe = tc.stage.startswith("pframe")
        if self.pframe and cfg.data.clip_length < 2:
            raise ValueError(f"stage {tc.stage} needs data.clip_length >= 2 (an I-frame and at "
                             f"least one P-frame), got {cfg.data.clip_length}")
        with self.strategy.scope():
            self.model, self.pmodel = registry.build_networks(
                registry.model_type_for_stage(tc.stage), cfg)
            latent = (cfg.pframe.residual_latent_channels if self.pframe
                      else cfg.model.latent_channels)
            self.disc = ConditionalPatchDiscriminator(cfg.model)
            ctx = tf.zeros([1, 64, 64, 3]) if self.pframe else None
            self.disc(tf.zeros([1, 64, 64, 3]), tf.zeros([1, 4, 4, latent]), context=ctx)
            decay_step = max(1, int(tc.lr_decay_at * tc.steps))

            def sched(lr, per_step=1):
                return tf.keras.optimizers.schedules.PiecewiseConstantDecay(
                    [decay_step * per_step], [lr, lr * 0.1]
                )

            lr_t = sched(tc.lr)
            if tc.warmup_steps > 0:
                lr_t = _Warmup(lr_t, tc.warmup_steps)
            self.opt_t = tf.keras.optimizers.Adam(lr_t, name="opt_transforms")
            self.opt_e = tf.keras.optimizers.Adam(sched(tc.entropy_lr), name="opt_entropy")
            self.opt_d = tf.keras.optimizers.Adam(
                sched(tc.disc_lr, tc.d_steps_per_g), beta_1=0.5, name="opt_disc"
            )
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            # training wall time summed over all runs of this model_dir (for learning curves)
            self.train_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                             name="train_seconds")
            groups = self.trained_model.variable_groups()
            self.groups = {
                "transforms": groups["transforms"],
                "entropy": groups["entropy"],
                "discriminator": list(self.disc.trainable_variables),
            }
            self._check_groups()
            for name, opt in (("transforms", self.opt_t), ("entropy", self.opt_e),
                              ("discriminator", self.opt_d)):
                opt.build(self.groups[name])
        self.perceptual = None
        if cfg.loss.perceptual_weight > 0:
            if not cfg.loss.perceptual_weights_path:
                raise ValueError("loss.perceptual_weight > 0 needs loss.perceptual_weights_path")
            self.perceptual = losses.PerceptualLoss(cfg.loss.perceptual_weights_path)
        parts = {"pmodel": self.pmodel} if self.pframe else {}
        self.ckpt = tf.train.Checkpoint(
            step=self.step, train_seconds=self.train_seconds, model=self.model, disc=self.disc,
            opt_t=self.opt_t, opt_e=self.opt_e, opt_d=self.opt_d, **parts,
        )
        self.manager = tf.train.CheckpointManager(
            self.ckpt, self.ckpt_dir, max_to_keep=tc.keep_checkpoints
        )
        self._val_images = None
        self._restore(init_from)

    @property
    def trained_model(self):
        """The codec this stage trains: the P-frame codec in pframe stages, else the I-frame."""
        return self.pmodel if self.pframe else self.model

    # -- set-up checks ------------------------------------------------------------------------

    def _check_config_compatible(self):
        path = os.path.join(self.model_dir, CONFIG_NAME)
        if not os.path.exists(path):
            return
        old = load_config(self.model_dir)
        if old.model != self.cfg.model:
            raise ValueError(
                f"{path}: the model config there differs from the requested one; "
                "use a new --model_dir or the same preset/overrides"
            )

    def _check_groups(self):
        seen: dict[int, str] = {}
        for name, vs in self.groups.items():
            for v in vs:
                if id(v) in seen:
                    raise AssertionError(f"variable {v.name} is in groups {seen[id(v)]} and {name}")
                seen[id(v)] = name
        all_vars = list(self.trained_model.trainable_variables) + list(
            self.disc.trainable_variables)
        missing = [v.name for v in all_vars if id(v) not in seen]
        if missing or len(seen) != len(all_vars):
            raise AssertionError(f"trainable variables in no optimizer group: {missing}")

    def _restore(self, init_from) -> bool:
        """Resumes from this model_dir's checkpoint, else initializes from `init_from`.
        Returns True when initialized from `init_from` (a fresh start of this run)."""
        # Every worker resumes from the chief's checkpoint: a non-chief's own copies live in a
        # scratch dir that is deleted at the end of each run.
        latest = tf.train.latest_checkpoint(self.model_dir)
        if latest:
            self.ckpt.restore(latest)
            logging.info("resumed from %s at step %d", latest, int(self.step.numpy()))
            return False
        if init_from:
            try:
                folder, _ = registry.resolve(init_from)
            except registry.UnknownModelError as e:
                raise ValueError(f"--init_from {e}") from None
            if os.path.exists(os.path.join(folder, registry.SHIPPED_WEIGHTS)):
                self._init_from_shipped(folder)
                return True
            src = tf.train.latest_checkpoint(folder)
            if src is None:
                raise ValueError(f"--init_from {init_from}: no checkpoint or shipped weights.npz "
                                 "found there")
            init_from = folder
            cfg_path = os.path.join(init_from, CONFIG_NAME)
            if os.path.exists(cfg_path) and load_config(init_from).model != self.cfg.model:
                raise ValueError(
                    f"--init_from {init_from}: its model config differs from this run's")
            parts = {"model": self.model}
            if self.pframe and tc_stage_of(init_from).startswith("pframe"):
                parts["pmodel"] = self._init_target(init_from)
            tf.train.Checkpoint(**parts).restore(src).expect_partial()
            if parts.get("pmodel", self.pmodel) is not self.pmodel:
                self._copy_residual_coder(parts["pmodel"])
            logging.info("initialised %s from %s (step counter starts at 0)",
                         " and ".join(parts), src)
            return True
        return False

    _RESIDUAL_PARTS = ("residual_analysis", "residual_synthesis", "residual_coder", "fusion")

    def _init_target(self, folder: str):
        """Where a source P-frame codec is loaded: this run's, or with
        `train.pframe_reset_motion` one built from the source's own config.json (so a source
        with a different motion path, e.g. without `motion_search_radius`, still gives its
        residual coder)."""
        if not self.cfg.train.pframe_reset_motion:
            return self.pmodel
        cfg_path = os.path.join(folder, CONFIG_NAME)
        source_cfg = load_config(folder) if os.path.exists(cfg_path) else self.cfg
        return registry.build_networks(registry.VIDEO, source_cfg)[1]

    def _copy_residual_coder(self, source) -> None:
        """Copies the residual coder of `source` into this run's P-frame codec, whose motion
        path keeps its fresh random initialization (`train.pframe_reset_motion`)."""
        for name in self._RESIDUAL_PARTS:
            for a, b in zip(getattr(self.pmodel, name).weights, getattr(source, name).weights,
                            strict=True):
                if tuple(a.shape) != tuple(b.shape):
                    raise ValueError(f"--init_from: the source's {name} has a different "
                                     f"architecture ({b.name} {tuple(b.shape)} vs "
                                     f"{tuple(a.shape)})")
                a.assign(b)
        logging.info("P-frame codec: residual coder from --init_from, motion path at random")

    def _init_from_shipped(self, folder: str) -> None:
        """Initialises the codec from a shipped model (float16 `weights.npz`, see
        `gan_compress.registry`), e.g. to continue training on a machine without the run's
        checkpoints. Optimizer state starts fresh; the step counter starts at 0."""
        from gan_compress import loading

        cfg_path = os.path.join(folder, CONFIG_NAME)
        if os.path.exists(cfg_path) and load_config(folder).model != self.cfg.model:
            raise ValueError(f"--init_from {folder}: its model config differs from this run's")
        loading.load_shipped_weights(self.model, os.path.join(folder, registry.SHIPPED_WEIGHTS))
        parts = "the I-frame codec"
        pweights = os.path.join(folder, registry.SHIPPED_PFRAME_WEIGHTS)
        if self.pmodel is not None and os.path.exists(pweights):  # a shipped video model
            target = self._init_target(folder)
            loading.load_shipped_weights(target, pweights)
            if target is not self.pmodel:
                self._copy_residual_coder(target)
            parts += " and the P-frame codec"
        logging.info("initialised %s from shipped weights in %s (step counter starts at 0)",
                     parts, folder)

    # -- the step -----------------------------------------------------------------------------

    def _generator_variables(self):
        """(transform variables, entropy variables) the generator update trains."""
        gan = self.cfg.train.stage in ("gan", "pframe_gan")
        if gan and self.cfg.train.gan_trainable == "synthesis":
            if self.pframe:  # the residual decoder; motion, encoders and priors stay fixed
                return (list(self.pmodel.residual_synthesis.trainable_variables)
                        + list(self.pmodel.fusion.trainable_variables)), []
            return list(self.model.synthesis.trainable_variables), []
        if self.cfg.train.gan_trainable not in ("synthesis", "all"):
            raise ValueError(f"train.gan_trainable must be synthesis|all, "
                             f"got {self.cfg.train.gan_trainable!r}")
        return self.groups["transforms"], self.groups["entropy"]

    def _frame_loss(self, x, x_hat, bpp, y_hat, q, context=None):
        """Per-example loss `[B]` and metrics of one coded frame: rate + lambda_q * MSE and the
        optional terms (range, MS-SSIM, perceptual; adversarial and feature matching in GAN
        stages, the discriminator conditioned on `y_hat` and `context`), divided by the
        quality's loss normalization."""
        cfg, lc = self.cfg, self.cfg.loss
        mse = losses.mse_255(x, x_hat)
        lam = losses.distortion_weight(q, cfg.model)
        per = losses.rate_weight(bpp, q, cfg.model, lc) * bpp
        per += lc.mse_weight * lam * mse
        ps = losses.perceptual_scale(q, cfg.model)
        metrics = {"bpp": bpp, "mse": mse, "psnr": losses.psnr(x, x_hat)}
        if lc.range_weight > 0:
            rng = losses.out_of_range(x_hat)
            per += lc.range_weight * lam * rng
            metrics["out_of_range"] = rng
        if lc.msssim_weight > 0:
            ms = losses.msssim_loss(x, x_hat)
            per += lc.msssim_weight * ps * ms
            metrics["msssim_loss"] = ms
        if self.perceptual is not None:
            pl = self.perceptual(x, x_hat)
            per += lc.perceptual_weight * ps * pl
            metrics["perceptual"] = pl
        if cfg.train.stage in ("gan", "pframe_gan"):
            # the discriminator judges exactly what the decoder outputs (clipped to [0, 1]) in
            # both updates; the range penalty keeps the raw output in range
            fake = self.disc(losses.clip_st(x_hat), y_hat, training=False, context=context)
            real = self.disc(x, y_hat, training=False, context=context)
            adv = losses.generator_adversarial_loss(lc.gan_loss, fake.logits)
            fm = losses.feature_matching_loss(real.features, fake.features)
            gs = ps if lc.gan_scaling == "lambda" else tf.ones_like(ps)
            per += gs * (lc.gan_weight * adv + lc.feature_matching_weight * fm)
            metrics["g_adv"] = adv
            metrics["feature_matching"] = fm
        return per / ps ** cfg.train.loss_normalization, metrics

    def _iframe_losses(self, clip, q):
        """-> (per-example loss, metrics, discriminator inputs (x, fake, y_hat, context))."""
        x = clip[:, 0]  # I-frame training: the first frame of each clip
        out = self.model(x, q, training=True)
        per, metrics = self._frame_loss(x, out.x_hat, out.bpp, out.y_hat, q)
        return per, metrics, (x, losses.clip_st(out.x_hat), out.y_hat, None)

    def _pframe_losses(self, clip, q):
        """Frame 0 through the frozen I-frame codec (rounded to uint8 like a decoded frame),
        frames 1..T-1 through the P-frame codec from the previous reconstruction. Losses and
        metrics are means over the P-frames; the discriminator gets every P-frame."""
        x0 = clip[:, 0]
        i_out = self.model(x0, q, training=False)
        ref = tf.stop_gradient(tf.round(tf.clip_by_value(i_out.x_hat, 0.0, 1.0) * 255.0) / 255.0)
        per, metrics, disc_in = 0.0, {}, []
        steps = int(clip.shape[1]) - 1
        for t in range(1, steps + 1):
            x = clip[:, t]
            out = self.pmodel(x, ref, q, training=True)
            p, m = self._frame_loss(x, out.x_hat, out.bpp, out.y_hat, q,
                                    context=out.prediction)
            p += self._prediction_loss(x, out.prediction, q)
            m["psnr_prediction"] = losses.psnr(x, out.prediction)
            per += p / steps
            for k, v in m.items():
                metrics[k] = metrics.get(k, 0.0) + v / steps
            metrics["bpp_motion"] = metrics.get("bpp_motion", 0.0) + out.bits_motion / (
                steps * tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32))
            fake = losses.clip_st(out.x_hat)
            disc_in.append((x, fake, out.y_hat, out.prediction))
            # the next frame is predicted from this reconstruction as a decoder holds it
            ref = fake + tf.stop_gradient(tf.round(fake * 255.0) / 255.0 - fake)
            if self.cfg.train.pframe_stop_gradient:
                ref = tf.stop_gradient(ref)
        metrics["psnr_iframe"] = losses.psnr(x0, i_out.x_hat)
        joined = tuple(tf.concat([d[i] for d in disc_in], axis=0) for i in range(4))
        return per, metrics, joined

    def prediction_weight(self):
        """The current weight of the prediction loss (`loss.prediction_weight`, decayed
        linearly to 0 over `loss.prediction_decay_steps` steps when that is > 0)."""
        lc = self.cfg.loss
        w = tf.constant(lc.prediction_weight, tf.float32)
        if lc.prediction_decay_steps > 0:
            done = tf.cast(self.step, tf.float32) / float(lc.prediction_decay_steps)
            w *= tf.maximum(0.0, 1.0 - done)
        return w

    def _prediction_loss(self, x, prediction, q):
        """Motion warm-up term `[B]`: weight * lambda_q * MSE(prediction, x) on the 0..255
        scale, normalized like the frame loss; 0 when `loss.prediction_weight` is 0."""
        lc = self.cfg.loss
        if lc.prediction_weight <= 0:
            return tf.zeros([tf.shape(x)[0]])
        lam = losses.distortion_weight(q, self.cfg.model)
        ps = losses.perceptual_scale(q, self.cfg.model)
        per = self.prediction_weight() * lam * losses.mse_255(x, prediction)
        return per / ps ** self.cfg.train.loss_normalization

    def _per_replica_step(self, clip):
        cfg = self.cfg
        gan = cfg.train.stage in ("gan", "pframe_gan")
        b = tf.shape(clip)[0]
        gb = float(cfg.data.batch_size)
        q = tf.random.uniform([b], 0, cfg.model.num_qualities, dtype=tf.int32)
        with tf.GradientTape() as tape:
            losses_fn = self._pframe_losses if self.pframe else self._iframe_losses
            per, metrics, (x, x_fake, y_hat, context) = losses_fn(clip, q)
            loss = tf.debugging.check_numerics(tf.reduce_sum(per) / gb, "generator loss")
        tvars, evars = self._generator_variables()
        grads = _sum_over_replicas(tape.gradient(loss, tvars + evars))
        nt = len(tvars)
        gt = _clip(grads[:nt], cfg.train.grad_clip_norm)
        self.opt_t.apply_gradients(zip(gt, tvars, strict=True), skip_gradients_aggregation=True)
        if evars:
            self.opt_e.apply_gradients(zip(grads[nt:], evars, strict=True),
                                       skip_gradients_aggregation=True)
        metrics["loss"] = per
        if gan:
            x_fake, y_hat = tf.stop_gradient(x_fake), tf.stop_gradient(y_hat)
            k = cfg.data.clip_length - 1 if self.pframe else 1
            for _ in range(cfg.train.d_steps_per_g):
                d_per, d_real, d_fake = self._disc_update(x, x_fake, y_hat, gb, context, k)
            # several P-frames per clip: report per clip like the generator's metrics
            metrics["d_loss"] = d_per / k
            metrics["d_real"] = d_real / k
            metrics["d_fake"] = d_fake / k
        # sums over the replica's examples; the caller divides by the global batch
        return {k: tf.reduce_sum(v) for k, v in metrics.items()}

    def _disc_update(self, x, x_fake, y_hat, gb, context=None, per_example=1):
        """`per_example`: frames per clip in x (the P-frames of each clip weigh as one)."""
        lc = self.cfg.loss
        with tf.GradientTape() as tape:
            real = self.disc(x, y_hat, training=True, context=context)
            fake = self.disc(x_fake, y_hat, training=True, context=context)
            d_per = losses.discriminator_loss(lc.gan_loss, real.logits, fake.logits)
            disc_fn = lambda img: self.disc(img, y_hat, training=False,  # noqa: E731
                                            context=context).logits
            if lc.gan_loss == "wgan_gp":
                d_per += lc.gp_weight * losses.gradient_penalty(disc_fn, x, x_fake, "wgan_gp")
            if lc.r1_weight > 0:
                d_per += 0.5 * lc.r1_weight * losses.gradient_penalty(disc_fn, x, x_fake, "r1")
            d_loss = tf.debugging.check_numerics(
                tf.reduce_sum(d_per) / (gb * per_example), "discriminator loss")
        grads = _sum_over_replicas(tape.gradient(d_loss, self.groups["discriminator"]))
        grads = _clip(grads, self.cfg.train.grad_clip_norm)
        self.opt_d.apply_gradients(zip(grads, self.groups["discriminator"], strict=True),
                                   skip_gradients_aggregation=True)
        mean_logit = lambda t: tf.reduce_mean(t, axis=[1, 2, 3])  # noqa: E731
        return d_per, mean_logit(real.logits), mean_logit(fake.logits)

    @tf.function
    def _distributed_step(self, clip):
        per_replica = self.strategy.run(self._per_replica_step, args=(clip,))
        sums = {
            k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
            for k, v in per_replica.items()
        }
        self.step.assign_add(1)
        return {k: v / float(self.cfg.data.batch_size) for k, v in sums.items()}

    # -- the loop -----------------------------------------------------------------------------

    def make_dataset(self):
        """The distributed input stream, continued from the current step: element indexes
        already consumed by earlier runs of this model_dir are skipped, not replayed."""
        step = int(self.step.numpy())

        def fn(ctx):
            start = step * self.cfg.data.batch_size // max(1, ctx.num_input_pipelines)
            return build_inputs(self.cfg.data, ctx, start_index=start)

        return self.strategy.distribute_datasets_from_function(fn)

    def train(self, steps: int | None = None, dataset=None) -> TrainResult:
        """Trains until the step counter reaches `steps` (default: config.train.steps)."""
        tc = self.cfg.train
        total = int(steps if steps is not None else tc.steps)
        start = int(self.step.numpy())
        if start >= total:
            logging.info("already at step %d >= %d; nothing to do", start, total)
            return TrainResult(start, 0.0, {})
        it = iter(dataset if dataset is not None else self.make_dataset())
        writer = (
            tf.summary.create_file_writer(os.path.join(self.model_dir, "train"))
            if self.chief else tf.summary.create_noop_writer()
        )
        t0 = time.time()
        t_log, s_log = t0, start
        t_seg = t0
        metrics: dict = {}
        sps = 0.0
        with writer.as_default():
            while int(self.step.numpy()) < total:
                step = int(self.step.numpy()) + 1
                clip = next(it)
                try:
                    out = self._distributed_step(clip)
                except tf.errors.InvalidArgumentError as e:
                    if "Tensor had NaN values" in str(e) or "Inf values" in str(e):
                        # the check_numerics line names the loss; line 0 is "Graph execution error:"
                        detail = next((ln.strip() for ln in str(e).splitlines()
                                       if "Tensor had" in ln), str(e).splitlines()[0])
                        raise NonFiniteLossError(
                            f"non-finite loss at step {step} ({detail[:200]}); "
                            f"the last good checkpoint is {self.manager.latest_checkpoint}"
                        ) from None
                    raise
                if (tc.log_every and step % tc.log_every == 0) or step == total:
                    metrics = {k: float(v.numpy()) for k, v in out.items()}
                    now = time.time()
                    sps = (step - s_log) / max(now - t_log, 1e-9)
                    t_log, s_log = now, step
                    eta = (total - step) / max(sps, 1e-9)
                    for k, v in metrics.items():
                        tf.summary.scalar(f"loss/{k}" if "loss" in k else k, v, step=step)
                    tf.summary.scalar("steps_per_second", sps, step=step)
                    shown = " ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))
                    logging.info(
                        "step %d/%d %s | %.2f steps/s ETA %s",
                        step, total, shown, sps, time.strftime("%H:%M:%S", time.gmtime(eta)),
                    )
                if tc.image_every and step % tc.image_every == 0 and self.chief and not self.pframe:
                    self._image_summary(clip, step)
                now = time.time()
                self.train_seconds.assign_add(now - t_seg)
                t_seg = now
                if (tc.checkpoint_every and step % tc.checkpoint_every == 0) or step == total:
                    self.manager.save(checkpoint_number=step)
                if self.chief and tc.validate_every and not self.pframe and (
                        step % tc.validate_every == 0 or step == total):
                    self.validate(step)
                    t_seg = time.time()  # validation time is not training time
        if not self.chief:
            shutil.rmtree(self.ckpt_dir, ignore_errors=True)
        return TrainResult(int(self.step.numpy()), sps, metrics)

    def validate(self, step: int) -> list[dict]:
        """Held-out figures per quality level: rate from the entropy models (rounded latents),
        PSNR and MS-SSIM of the reconstruction rounded to uint8, on centre crops of the
        validation images (never trained on). Logged to the console and TensorBoard, and
        appended to `<model_dir>/validation.jsonl` (one line per quality) for learning curves.
        """
        if self._val_images is None:
            self._val_images = load_validation_images(self.cfg)
        if self._val_images is None:
            return []
        x = self._val_images
        rows = []
        for qi in range(self.cfg.model.num_qualities):
            bpp, psnr, msssim = [], [], []
            for i in range(0, int(x.shape[0]), 4):
                b, p, m = self._val_step(x[i:i + 4], tf.constant(qi, tf.int32))
                bpp.append(b.numpy())
                psnr.append(p.numpy())
                msssim.append(m.numpy())
            row = {
                "step": int(step), "train_seconds": round(float(self.train_seconds.numpy()), 1),
                "quality": qi + 1, "bpp": float(np.mean(np.concatenate(bpp))),
                "psnr": float(np.mean(np.concatenate(psnr))),
                "msssim": float(np.mean(np.concatenate(msssim))),
            }
            rows.append(row)
            for k in ("bpp", "psnr", "msssim"):
                tf.summary.scalar(f"validation/q{qi + 1}/{k}", row[k], step=step)
        logging.info("validation at step %d (%d held-out crops): %s", step, int(x.shape[0]),
                     "  ".join(f"q{r['quality']} {r['bpp']:.3f}bpp {r['psnr']:.2f}dB"
                               for r in rows))
        with open(os.path.join(self.model_dir, VALIDATION_LOG), "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        return rows

    @tf.function(reduce_retracing=True)
    def _val_step(self, xb, qi):
        out = self.model(xb, tf.fill([tf.shape(xb)[0]], qi), training=False)
        x_hat = tf.round(tf.clip_by_value(out.x_hat, 0.0, 1.0) * 255.0) / 255.0
        return out.bpp, losses.psnr(xb, x_hat), tf.image.ssim_multiscale(xb, x_hat, 1.0)

    def _image_summary(self, clip, step):
        x = self.strategy.experimental_local_results(clip)[0][:2, 0]
        q = tf.fill([tf.shape(x)[0]], self.cfg.model.num_qualities // 2)
        out = self.model(x, q, training=False)
        tf.summary.image("original", x, step=step, max_outputs=2)
        tf.summary.image("reconstruction", tf.clip_by_value(out.x_hat, 0.0, 1.0), step=step,
                         max_outputs=2)


class _Warmup(tf.keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 over `steps` optimizer steps, then `schedule`."""

    def __init__(self, schedule, steps: int):
        self.schedule, self.steps = schedule, int(steps)

    def __call__(self, step):
        frac = tf.minimum(1.0, (tf.cast(step, tf.float32) + 1.0) / float(self.steps))
        return frac * self.schedule(step)

    def get_config(self):
        return {"steps": self.steps}


def _clip(grads, norm):
    """Global-norm clipping; norm <= 0 leaves the gradients alone."""
    if norm and norm > 0:
        grads, _ = tf.clip_by_global_norm(grads, norm)
    return grads


def _sum_over_replicas(grads):
    """Sums per-replica gradients over all replicas, so that clipping sees the global gradient
    (clipping each replica's partial gradient before the optimizer's own all-reduce does not
    give the single-device update); the optimizers then skip their own aggregation."""
    ctx = tf.distribute.get_replica_context()
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)


def config_summary(cfg: Config) -> str:
    return json.dumps(dataclasses.asdict(cfg.train), sort_keys=True)


def tc_stage_of(model_dir: str) -> str:
    """The training stage recorded in a run directory's config.json ("" without one)."""
    path = os.path.join(model_dir, CONFIG_NAME)
    return load_config(model_dir).train.stage if os.path.exists(path) else ""
