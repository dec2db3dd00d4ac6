"""Training input pipeline: `build_inputs(config, input_context)` -> tf.data.Dataset.

Yields `[B, T, S, S, 3]` float32 clips in [0, 1], with B = the per-replica batch
(`input_context.get_per_replica_batch_size(config.batch_size)`, else `config.batch_size`),
T = `config.clip_length`, S = `config.crop_size`. The dataset is infinite.

Workflow:
1. Expand `config.train_globs` (relative to the working directory), keep video and image files
   (images only when T == 1; skipped with a warning otherwise), sort, and keep this input
   pipeline's share: files `input_pipeline_id::num_input_pipelines` (sharding by file, so two
   workers never read the same file).
2. Decode each file once into the frame cache (`gan_compress.data.cache`; a tqdm bar shows
   progress; `decode_cache_warmup` does only this step). Files smaller than the crop or shorter
   than one window are skipped with a warning.
3. Element `i` of the infinite stream is drawn from its own RNG, `np.random.default_rng((seed,
   input_pipeline_id, i))`: a file (probability set by `config.sample_weighting`), a start frame
   (window of T frames, `temporal_stride` apart, or a stride drawn from [`temporal_stride`,
   `temporal_stride_max`]), an optional downscale, a crop position, a flip
   and jitter factors. Everything random hangs off the element index, so results do not depend
   on thread scheduling; with `deterministic=True` (seed `config.seed`, or 0 if unset) two
   builds give identical batches. With a seed but `deterministic=False` the same clips come
   out, possibly in a different order (the parallel map may reorder for speed); with neither,
   the seed is random. Sampling is i.i.d. over windows, which shuffles better than a buffer
   could, so `config.shuffle_buffer` is unused; the stream is infinite (an index counter),
   so no `.repeat()` is needed.
4. Random downscale (probability `downscale_prob`, factor s uniform in
   [max(downscale_min, S / min(H, W)), 1]): instead of resizing the whole frame and cropping
   S x S, we crop the matching round(S / s) square and resize it to S x S (bilinear with
   antialiasing): the same pixels for a fraction of the work. The lower bound keeps small
   sources from being shrunk below the crop.
5. Colour jitter, one set of factors per clip so its frames stay consistent: brightness
   (+delta), contrast (scale about the clip's per-channel mean), saturation (scale about BT.601
   luma). The three are affine, so they are folded into one 3x3 matrix + offset applied in
   TensorFlow together with the uint8 -> float conversion, then clipped to [0, 1]; batch,
   prefetch. Slicing and resizing (Pillow, bilinear, antialiased when shrinking) run in a
   `tf.numpy_function` inside a parallel map (AUTOTUNE).

Why a memmap cache: see `cache.py`. Throughput on 2 cores: `benchmarks/data_pipeline.py`.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import secrets
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from gan_compress import io as gio
from gan_compress.configs import DataConfig
from gan_compress.data import cache as cache_lib

logger = logging.getLogger(__name__)

SAMPLE_WEIGHTINGS = ("frames", "sqrt_frames", "files")
_LUMA = (0.299, 0.587, 0.114)


def list_input_files(config: DataConfig) -> list[str]:
    """Sorted, de-duplicated video and image files matching `config.train_globs`.

    Raises FileNotFoundError naming the globs and the working directory when nothing matches.
    Files that are neither video nor image (by extension) are skipped with a warning.
    """
    globs = (config.train_globs,) if isinstance(config.train_globs, str) else config.train_globs
    seen, files = set(), []
    for pattern in globs:
        for path in sorted(glob.glob(os.path.expanduser(pattern), recursive=True)):
            if os.path.isdir(path):
                continue
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            if gio.is_video_path(path) or gio.is_image_path(path):
                files.append(path)
            else:
                logger.warning("skipping %s: not a video or image file (by extension)", path)
    if not files:
        raise FileNotFoundError(
            f"no training files: data.train_globs {tuple(globs)!r} match no video or image "
            f"file (relative globs are resolved against the working directory {os.getcwd()})"
        )
    return sorted(files)


def is_validation_file(path: str, buckets: int) -> bool:
    """True for a still image held out for validation: sha256("<parent>/<name>") mod `buckets`
    is 0. Depends on the name only, so the split is the same on every machine and checkout."""
    if buckets <= 0 or not gio.is_image_path(path):
        return False
    key = f"{os.path.basename(os.path.dirname(path))}/{os.path.basename(path)}"
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % buckets == 0


def split_validation(files: Sequence[str], buckets: int) -> tuple[list[str], list[str]]:
    """-> (training files, held-out validation images); see `is_validation_file`."""
    val = [f for f in files if is_validation_file(f, buckets)]
    held = set(val)
    return [f for f in files if f not in held], val


def validation_files(config: DataConfig) -> list[str]:
    """The held-out validation images among `config.train_globs` (sorted)."""
    return split_validation(list_input_files(config), config.validation_buckets)[1]


def shard_files(
    files: Sequence[str], input_context: tf.distribute.InputContext | None
) -> list[str]:
    """This input pipeline's files: `files[input_pipeline_id::num_input_pipelines]`."""
    if input_context is None or input_context.num_input_pipelines == 1:
        return list(files)
    n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
    if len(files) < n:
        raise ValueError(
            f"cannot shard {len(files)} training files over {n} input pipelines "
            "(sharding is by file; add files or use fewer workers)"
        )
    return list(files[i::n])


def _select_files(config: DataConfig, files: Sequence[str]) -> list[str]:
    if config.clip_length == 1:
        return list(files)
    kept = [f for f in files if not gio.is_image_path(f)]
    for f in files:
        if gio.is_image_path(f):
            logger.warning(
                "skipping image %s: clip_length=%d needs video (images only when T == 1)",
                f,
                config.clip_length,
            )
    if files and not kept:
        raise ValueError(
            f"no usable training files: all {len(files)} matched files are still images, and "
            f"clip_length={config.clip_length} needs videos (images are used only when T == 1)"
        )
    return kept


def decode_cache_warmup(
    config: DataConfig,
    input_context: tf.distribute.InputContext | None = None,
    progress: bool = True,
) -> list[cache_lib.CachedClip]:
    """Decodes every (sharded) training file into the frame cache; returns the entries.

    Files already cached are not touched. Shows a tqdm bar (frames) when `progress` and some
    file needs decoding.
    """
    train, _ = split_validation(list_input_files(config), config.validation_buckets)
    files = _select_files(config, shard_files(train, input_context))
    todo = [f for f in files if cache_lib.lookup(f, config.cache_dir) is None]
    bar = None
    if todo and progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=None, unit="frame", desc=f"decoding {len(todo)} files to cache")
    cache_lib.clean_stale_temp_dirs(config.cache_dir)
    on_frame = (lambda: bar.update(1)) if bar is not None else None
    clips = []
    try:
        for f in files:
            if bar is not None:
                bar.set_postfix_str(os.path.basename(f))
            clips.append(cache_lib.ensure_cached(f, config.cache_dir, on_frame=on_frame))
    finally:
        if bar is not None:
            bar.close()
    return clips


class _ClipSampler:
    """Draws one random training window per element index (numpy side of the pipeline)."""

    def __init__(self, config: DataConfig, clips: Sequence[cache_lib.CachedClip], seed: int,
                 shard: int):  # fmt: skip
        self.config = config
        self.seed = seed
        self.shard = shard
        self.strides = (config.temporal_stride, max(config.temporal_stride,
                                                    config.temporal_stride_max))
        self.span = (config.clip_length - 1) * self.strides[1] + 1
        kept = []
        for c in clips:
            if min(c.width, c.height) < config.crop_size:
                logger.warning(
                    "skipping %s: %dx%d is smaller than crop_size %d",
                    c.source, c.width, c.height, config.crop_size,
                )  # fmt: skip
            elif c.num_frames < self.span:
                logger.warning(
                    "skipping %s: %d frames, a clip needs %d (clip_length %d, stride %d)",
                    c.source, c.num_frames, self.span, config.clip_length,
                    self.strides[1],
                )  # fmt: skip
            else:
                kept.append(c)
        if not kept:
            raise ValueError(
                f"no usable training files among {len(clips)}: all are smaller than "
                f"crop_size={config.crop_size} or shorter than {self.span} frames"
            )
        self.clips = kept
        self.frames = [c.frames() for c in kept]
        windows = np.array([c.num_frames - self.span + 1 for c in kept], np.float64)
        if config.sample_weighting == "frames":
            w = windows
        elif config.sample_weighting == "sqrt_frames":
            w = np.sqrt(windows)
        elif config.sample_weighting == "files":
            w = np.ones_like(windows)
        else:
            raise ValueError(
                f"data.sample_weighting must be one of {SAMPLE_WEIGHTINGS}, "
                f"got {config.sample_weighting!r}"
            )
        w = w / w.sum()
        is_image = np.array([gio.is_image_path(c.source) for c in kept])
        frac = config.image_fraction
        if frac is not None and is_image.any() and (~is_image).any():
            if not 0.0 <= frac <= 1.0:
                raise ValueError(f"data.image_fraction must be in [0, 1], got {frac}")
            # within each group the weighting above; between groups the requested mix
            w = np.where(is_image, frac * w / w[is_image].sum(),
                         (1.0 - frac) * w / w[~is_image].sum())
        self.probs = w / w.sum()

    def sample(self, index: np.int64) -> tuple[np.ndarray, np.ndarray]:
        """-> (uint8 [T, S, S, 3] window, flipped and resized; float32 [4, 3] colour jitter as
        an affine map on uint8 values: `rgb01 = u8 @ m[:3] + m[3]`)."""
        cfg = self.config
        s = cfg.crop_size
        rng = np.random.default_rng((self.seed, self.shard, int(index)))
        k = rng.choice(len(self.clips), p=self.probs)
        clip, frames = self.clips[k], self.frames[k]
        stride = self.strides[0]
        if self.strides[1] > stride:  # (no extra draw otherwise: fixed-stride streams unchanged)
            stride = int(rng.integers(stride, self.strides[1] + 1))
        span = (cfg.clip_length - 1) * stride + 1
        t0 = int(rng.integers(0, clip.num_frames - span + 1))
        short = min(clip.width, clip.height)
        scale = 1.0
        lo = max(cfg.downscale_min, s / short)
        if rng.random() < cfg.downscale_prob and lo < 1.0:
            scale = rng.uniform(lo, 1.0)
        r = min(short, int(round(s / scale)))
        y0 = int(rng.integers(0, clip.height - r + 1))
        x0 = int(rng.integers(0, clip.width - r + 1))
        flip = cfg.random_flip and rng.random() < 0.5
        jitter = rng.uniform(-1.0, 1.0, size=3)
        region = frames[t0 : t0 + span : stride, y0 : y0 + r, x0 : x0 + r]
        if flip:
            region = region[:, :, ::-1]
        region = np.ascontiguousarray(region)
        if r != s:
            # Pillow's bilinear widens its kernel when shrinking (antialiased) and releases
            # the GIL, so parallel map calls overlap.
            bilinear = Image.Resampling.BILINEAR
            region = np.stack(
                [np.asarray(Image.fromarray(f).resize((s, s), bilinear)) for f in region]
            )
        return region, self._color_affine(region, jitter)

    def _color_affine(self, region: np.ndarray, jitter: np.ndarray) -> np.ndarray:
        """Brightness, contrast and saturation folded into one affine map of the uint8 values.

        With x = u8 / 255, b = brightness delta, c = contrast factor about the clip's
        per-channel mean m, s = saturation factor about luma L.x:
        out = S (c x + b + (1 - c) m) with S = s I + (1 - s) 1 L^T.
        """
        cfg = self.config
        b = cfg.brightness * jitter[0]
        c = 1.0 + cfg.contrast * jitter[1]
        sat = 1.0 + cfg.saturation * jitter[2]
        m = (
            region[:, ::4, ::4].reshape(-1, 3).mean(axis=0) / 255.0
            if cfg.contrast
            else np.zeros(3)
        )
        sat_m = sat * np.eye(3) + (1.0 - sat) * np.outer(np.ones(3), _LUMA)
        lin = sat_m * (c / 255.0)  # acts on u8 column vectors
        off = sat_m @ (b + (1.0 - c) * m)
        return np.concatenate([lin.T, off[None]], axis=0).astype(np.float32)


def _augment(config: DataConfig, region: tf.Tensor, affine: tf.Tensor) -> tf.Tensor:
    t, s = config.clip_length, config.crop_size
    region.set_shape([t, s, s, 3])
    affine.set_shape([4, 3])
    x = tf.reshape(tf.cast(region, tf.float32), [-1, 3])
    x = tf.matmul(x, affine[:3]) + affine[3]
    x = tf.clip_by_value(tf.reshape(x, [t, s, s, 3]), 0.0, 1.0)
    return x


def _check_config(config: DataConfig) -> None:
    problems = []
    if config.batch_size < 1:
        problems.append(f"batch_size={config.batch_size} < 1")
    if config.clip_length < 1:
        problems.append(f"clip_length={config.clip_length} < 1")
    if config.temporal_stride < 1:
        problems.append(f"temporal_stride={config.temporal_stride} < 1")
    if config.temporal_stride_max and config.temporal_stride_max < config.temporal_stride:
        problems.append(f"temporal_stride_max={config.temporal_stride_max} < temporal_stride="
                        f"{config.temporal_stride}")
    if config.crop_size < 2:
        problems.append(f"crop_size={config.crop_size} < 2")
    if not 0.0 < config.downscale_min <= 1.0:
        problems.append(f"downscale_min={config.downscale_min} not in (0, 1]")
    if not 0.0 <= config.downscale_prob <= 1.0:
        problems.append(f"downscale_prob={config.downscale_prob} not in [0, 1]")
    if problems:
        raise ValueError("bad DataConfig: " + "; ".join(problems))


def build_inputs(
    config: DataConfig,
    input_context: tf.distribute.InputContext | None = None,
    start_index: int = 0,
) -> tf.data.Dataset:
    """The infinite training dataset of `[B, T, S, S, 3]` float32 clips in [0, 1].

    See the module docstring for the steps. Usable directly or as
    `strategy.distribute_datasets_from_function(lambda ctx: build_inputs(cfg, ctx))`.
    `start_index` is the first element index (per input pipeline): a resumed run passes
    `step * per-replica batch` so it continues the stream instead of replaying it.
    Raises FileNotFoundError if the globs match nothing, ValueError if no file is usable.
    """
    _check_config(config)
    batch = (
        input_context.get_per_replica_batch_size(config.batch_size)
        if input_context is not None
        else config.batch_size
    )
    shard = input_context.input_pipeline_id if input_context is not None else 0
    clips = decode_cache_warmup(config, input_context)
    if config.seed is not None:
        seed = config.seed
    elif config.deterministic:
        seed = 0
    else:
        seed = secrets.randbits(63)
    sampler = _ClipSampler(config, clips, seed, shard)

    def load(index):
        region, affine = tf.numpy_function(
            sampler.sample, [index], [tf.uint8, tf.float32], stateful=False
        )
        return _augment(config, region, affine)

    ds = tf.data.Dataset.counter(start=int(start_index), dtype=tf.int64)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=config.deterministic)
    ds = ds.batch(batch, drop_remainder=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = bool(config.deterministic)
    # One thread per element op: parallelism comes from the parallel map, and the training
    # step keeps the remaining cores.
    options.threading.max_intra_op_parallelism = 1
    return ds.with_options(options)
