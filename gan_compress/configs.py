"""Frozen dataclass configs and the named presets `tiny`, `small` and `hific`.

Every checkpoint and export directory has a `config.json` written by `Config.to_json()`; a model
is always rebuilt from that file, never from flags, so a checkpoint cannot silently be paired with
the wrong architecture.

Overrides use dotted paths, e.g. `override(cfg, ["model.latent_channels=96", "train.lr=2e-4"])`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Training input pipeline (`gan_compress.data.build_inputs`).

    The pipeline yields `[batch_size_per_replica, clip_length, crop_size, crop_size, 3]` float32
    clips in [0, 1]. `batch_size` is the GLOBAL batch size; the pipeline divides it by the number
    of replicas it is told about via `tf.distribute.InputContext`.
    """

    train_globs: tuple[str, ...] = (
        "../shared/data/video/train/*",
        "../shared/data/images/train/*/*",
    )
    # chance that a training example comes from a still image (the rest from video frames);
    # None: no mixing, every file is drawn by `sample_weighting` alone
    image_fraction: float | None = 0.7
    # held-out validation: a still image whose name hashes to bucket 0 of `validation_buckets`
    # (sha256 of "<parent folder>/<file name>") is never trained on (0 disables the split)
    validation_buckets: int = 20
    batch_size: int = 8
    clip_length: int = 1  # T; 1 for I-frame training
    temporal_stride: int = 1  # frames between consecutive clip frames
    # > temporal_stride: each clip draws its stride uniformly from [temporal_stride, this]
    # (larger motion in P-frame training); 0: always temporal_stride
    temporal_stride_max: int = 0
    crop_size: int = 256
    random_flip: bool = True  # horizontal flip (vertical flips make unnatural video)
    brightness: float = 0.05  # max additive delta
    contrast: float = 0.1  # max relative change
    saturation: float = 0.1  # max relative change
    downscale_prob: float = 0.5  # chance a clip is downscaled before cropping
    downscale_min: float = 0.5  # smallest scale factor (washes out source coding artefacts)
    shuffle_buffer: int = 256  # unused by build_inputs: it samples windows i.i.d. (no buffer)
    seed: int | None = None  # set for a deterministic pipeline
    deterministic: bool = False
    cache_dir: str | None = None  # where decoded frames are cached (default: ~/.cache)
    # how often each file is drawn: "frames" (every window equally likely), "sqrt_frames"
    # (file chance ~ sqrt(#windows): long, often near-static clips do not drown short ones),
    # or "files" (each file equally likely)
    sample_weighting: str = "sqrt_frames"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The I-frame codec (`gan_compress.models.iframe`) and its discriminator.

    Downsampling: analysis 16x (4 stride-2 stages) to `y`, hyper-analysis a further 4x to `z`.
    """

    name: str = "iframe"
    analysis_channels: tuple[int, ...] = (32, 64, 96)  # outputs of stages 1..3 (stage 4 -> latent)
    latent_channels: int = 128  # M: channels of y
    hyper_channels: int = 96  # hidden width of hyper-analysis / hyper-synthesis
    hyper_latent_channels: int = 64  # channels of z
    synthesis_head_channels: int = 160  # width of the residual trunk at 1/16 resolution
    synthesis_res_blocks: int = 2
    synthesis_channels: tuple[int, ...] = (96, 64, 32)  # outputs of up-stages 1..3 (stage 4 -> RGB)
    kernel_size: int = 5
    use_gdn: bool = True  # GDN / inverse GDN in the resampling stages (stock TF ops once traced)
    num_qualities: int = 6  # quality levels, 1..num_qualities at the API (index 0-based inside)
    lambdas: tuple[float, ...] = (0.0016, 0.0032, 0.0064, 0.0128, 0.025, 0.05)
    # per quality: weight of MSE on the [0, 255] scale against bits per pixel (ms2020 convention)
    rate_targets_bpp: tuple[float, ...] = (0.06, 0.1, 0.16, 0.26, 0.42, 0.65)
    # per quality: HiFiC rate targets used by the `rate_target` lambda schedule
    num_scales: int = 64
    scale_min: float = 0.11
    scale_max: float = 256.0
    disc_channels: tuple[int, ...] = (32, 64, 128, 256)
    disc_latent_channels: int = 12  # y_hat is projected to this many channels, upsampled 16x


@dataclasses.dataclass(frozen=True)
class PFrameConfig:
    """The P-frame codec (`gan_compress.models.pframe`): scale-space flow plus a residual coder.

    Its quality levels and lambdas are the I-frame model's (`ModelConfig`): level q of the
    P-frames pairs with level q of the I-frames. Both transforms downsample 16x like the I-frame
    codec, and their hyperpriors a further 4x.
    """

    motion_channels: tuple[int, ...] = (64, 64, 64)  # motion encoder stages 1..3 / decoder 1..3
    motion_latent_channels: int = 64
    residual_channels: tuple[int, ...] = (96, 96, 96)
    residual_latent_channels: int = 128
    hyper_channels: int = 64  # hidden width of both hyperpriors
    hyper_latent_channels: int = 32  # channels of each z
    kernel_size: int = 5
    scale_space_levels: int = 5  # blurred copies of the reference (sigma0 * 2^(k-1))
    scale_space_sigma0: float = 1.5
    # residual coder input: "residual" (x - prediction) or "conditional" (x - prediction and
    # the prediction itself, DCVC-style context)
    residual_input: str = "conditional"
    # the motion decoder's (dx, dy) outputs are multiplied by this (a reparametrization: with
    # Adam, flow of several pixels is learned flow_scale times faster); fingerprints leave it
    # out at its default 1.0, so models made before it existed keep their fingerprints
    flow_scale: float = 1.0
    # > 0: the motion encoder also sees a block-matching displacement estimate of the frame
    # into its reference, searched +-radius pixels (`gan_compress.layers.motion_search`;
    # encoder side only). 0: the two frames alone (models made before it existed)
    motion_search_radius: int = 0
    # the motion encoder's output (before the gain) is multiplied by this: a freshly
    # initialized encoder gives latents of about 0.04, which the quantization noise of
    # training drowns, so the motion decoder learns to ignore them (posterior collapse)
    motion_latent_scale: float = 1.0


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Training losses (`gan_compress.losses`)."""

    mse_weight: float = 1.0  # multiplies lambda_q * MSE(0..255)
    msssim_weight: float = 0.0  # weight of (1 - MS-SSIM), scaled like the MSE term
    gan_loss: str = "non_saturating"  # non_saturating | least_squares | hinge | wgan_gp
    gan_weight: float = 0.15  # beta in HiFiC, on the generator's adversarial term
    feature_matching_weight: float = 1.0  # discriminator feature matching (built-in perceptual)
    perceptual_weight: float = 0.0  # VGG-style perceptual loss; needs perceptual_weights_path
    perceptual_weights_path: str | None = None
    range_weight: float = 1.0  # penalty on output values outside [0, 1] (squared, per pixel)
    # P-frame stages: weight of lambda_q * MSE(prediction, x), the motion-compensated
    # prediction's own distortion (a motion warm-up: the flow learns before the residual coder
    # can make it redundant); decays linearly to 0 over `prediction_decay_steps` (0: constant)
    prediction_weight: float = 0.0
    prediction_decay_steps: int = 0
    # how the adversarial and feature-matching terms follow the quality level: "constant" (the
    # same beta at every level) or "lambda" (times lambda_q / geometric-mean(lambda))
    gan_scaling: str = "constant"
    r1_weight: float = 0.0  # R1 gradient penalty on real images (0 disables)
    gp_weight: float = 10.0  # WGAN-GP gradient penalty weight (wgan_gp only)
    lambda_schedule: str = "fixed"  # fixed | rate_target (HiFiC)
    rate_lambda_high: float = 2.0  # lambda_a: rate weight while above the quality's target
    rate_lambda_low: float = 0.0625  # lambda_b: rate weight once below it


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The custom training loop (`gan_compress.training`)."""

    stage: str = "mse"  # mse | gan (I-frame codec) | pframe_mse | pframe_gan (P-frame codec)
    pframe_stop_gradient: bool = False  # P-frame stages: no gradient between unrolled frames
    # P-frame stages started with --init_from a video model: re-initialize the motion path
    # (motion analysis, synthesis and its hyperprior) at random, keeping the residual coder
    # (a motion path that collapsed to "no motion" does not come back by itself)
    pframe_reset_motion: bool = False
    steps: int = 100_000
    lr: float = 1e-4
    entropy_lr: float = 1e-3  # entropy models' own optimizer
    disc_lr: float = 1e-4
    warmup_steps: int = 0  # linear learning-rate warm-up of the transforms from 0
    lr_decay_at: float = 0.8  # fraction of steps after which lr drops 10x
    d_steps_per_g: int = 1
    # GAN stage: which codec parts the generator update trains. "synthesis" keeps the encoder
    # and entropy models of the MSE stage, so the bitstream (and the rate) is unchanged and
    # only the decoder learns texture; "all" trains every transform (HiFiC).
    gan_trainable: str = "synthesis"
    grad_clip_norm: float = 1.0  # global-norm clip of each optimizer's gradient (0: none)
    # divide each example's loss by lambda_q / geometric-mean(lambda) ** loss_normalization,
    # so that the qualities' losses (31x apart in lambda) weigh alike in one update
    loss_normalization: float = 0.0
    validate_every: int = 500  # held-out validation (bpp, PSNR, MS-SSIM per quality); 0: off
    validation_images: int = 24  # how many held-out images (centre crops) validation uses
    validation_crop: int = 256
    log_every: int = 50  # 0: log only at the end
    image_every: int = 1000  # 0: no image summaries
    checkpoint_every: int = 500  # 0: checkpoint only at the end
    keep_checkpoints: int = 3
    mixed_precision: bool = False
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class Config:
    preset: str = "small"
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    pframe: PFrameConfig = dataclasses.field(default_factory=PFrameConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Config:
        return _from_dict(cls, d)

    @classmethod
    def from_json(cls, text: str) -> Config:
        return cls.from_dict(json.loads(text))


def _from_dict(cls, d: Mapping[str, Any]):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    kwargs = {}
    for name, value in d.items():
        ftype = _resolve_type(cls, fields[name])
        if dataclasses.is_dataclass(ftype):
            kwargs[name] = _from_dict(ftype, value)
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


_SUBCONFIGS = {
    "model": ModelConfig,
    "pframe": PFrameConfig,
    "data": DataConfig,
    "loss": LossConfig,
    "train": TrainConfig,
}


def _resolve_type(cls, field):
    if cls is Config and field.name in _SUBCONFIGS:
        return _SUBCONFIGS[field.name]
    return None


def _tiny() -> Config:
    return Config(
        preset="tiny",
        model=ModelConfig(
            analysis_channels=(8, 8, 8),
            latent_channels=16,
            hyper_channels=8,
            hyper_latent_channels=8,
            synthesis_head_channels=16,
            synthesis_res_blocks=1,
            synthesis_channels=(8, 8, 8),
            kernel_size=3,
            num_scales=16,
            disc_channels=(8, 16),
            disc_latent_channels=4,
        ),
        pframe=PFrameConfig(motion_channels=(8, 8, 8), motion_latent_channels=8,
                            residual_channels=(8, 8, 8), residual_latent_channels=16,
                            hyper_channels=8, hyper_latent_channels=8, kernel_size=3,
                            scale_space_levels=3),
        data=DataConfig(batch_size=2, crop_size=64, shuffle_buffer=8),
        train=TrainConfig(steps=2, log_every=1, image_every=0, checkpoint_every=1,
                          validate_every=0),
    )


def _small() -> Config:
    # Minnen et al. 2018-like widths (N=96 where they use 128: 1.5x the steps per CPU-hour)
    return Config(
        preset="small",
        model=ModelConfig(
            analysis_channels=(96, 96, 96),
            latent_channels=160,
            hyper_channels=96,
            hyper_latent_channels=64,
            synthesis_head_channels=160,
            synthesis_res_blocks=2,
            synthesis_channels=(96, 96, 96),
        ),
        # P-frames: block-search input, scaled motion latents and flow (docs/TRAINING.md,
        # session 7: without them the motion path collapsed to "no motion")
        pframe=PFrameConfig(motion_search_radius=16, motion_latent_scale=8.0, flow_scale=4.0),
        data=DataConfig(batch_size=8, crop_size=128, temporal_stride_max=3),
        loss=LossConfig(prediction_weight=1.0, prediction_decay_steps=2000),
        train=TrainConfig(steps=6000, lr=3e-4, warmup_steps=200, grad_clip_norm=1.0,
                          loss_normalization=0.5),
    )


def _hific() -> Config:
    # Mentzer et al. 2020: N=220 latent channels, 960-wide residual trunk with 9 blocks.
    return Config(
        preset="hific",
        model=ModelConfig(
            analysis_channels=(60, 120, 240),
            latent_channels=220,
            hyper_channels=320,
            hyper_latent_channels=320,
            synthesis_head_channels=960,
            synthesis_res_blocks=9,
            synthesis_channels=(480, 240, 120),
            kernel_size=5,
            use_gdn=False,
            disc_channels=(64, 128, 256, 512),
        ),
        data=DataConfig(batch_size=8, crop_size=256),
        train=TrainConfig(steps=1_000_000),
    )


PRESETS = {"tiny": _tiny, "small": _small, "hific": _hific}


def get_preset(name: str) -> Config:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


def override(config: Config, assignments: Iterable[str]) -> Config:
    """Applies `section.field=value` assignments (values parsed as JSON, else kept as strings)."""
    d = config.to_dict()
    for item in assignments:
        if "=" not in item:
            raise ValueError(f"config override {item!r} is not of the form section.field=value")
        path, raw = item.split("=", 1)
        keys = path.strip().split(".")
        node = d
        for k in keys[:-1]:
            if not isinstance(node, dict) or k not in node:
                raise ValueError(f"config override {item!r}: no section {k!r}")
            node = node[k]
        if keys[-1] not in node:
            raise ValueError(f"config override {item!r}: no field {keys[-1]!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node[keys[-1]] = value
    return Config.from_dict(d)
