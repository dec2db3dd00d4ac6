"""Prints parameters and MACs per pixel for each preset, and this machine's conv FLOP rate.

  .venv/bin/python benchmarks/flops.py [--presets tiny,small,hific] [--size 256]

MACs come from TensorFlow's graph profiler (FLOPs / 2) on traced functions of each part, at a
`size` x `size` input, divided by the number of input pixels. The conv rate is measured on a
stride-2 transposed convolution (the decoder's dominant op) at 720p-like sizes with all cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.profiler import model_analyzer, option_builder  # noqa: E402

from gan_compress import configs  # noqa: E402
from gan_compress.models.discriminator import ConditionalPatchDiscriminator  # noqa: E402
from gan_compress.models.iframe import IFrameCodec  # noqa: E402


def graph_macs(fn, *specs) -> float:
    cf = tf.function(fn).get_concrete_function(*specs)
    opts = option_builder.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return model_analyzer.profile(cf.graph, options=opts).total_float_ops / 2.0


def count_params(variables) -> int:
    return int(sum(np.prod(v.shape) for v in variables))


def preset_figures(name: str, size: int) -> dict:
    cfg = configs.get_preset(name).model
    model = IFrameCodec(cfg)
    model.build_for_shape()
    disc = ConditionalPatchDiscriminator(cfg)
    disc(tf.zeros([1, 64, 64, 3]), tf.zeros([1, 4, 4, cfg.latent_channels]))
    px = float(size * size)
    m, h = cfg.latent_channels, size // 16
    img = tf.TensorSpec([1, size, size, 3])
    lat = tf.TensorSpec([1, h, h, m])
    hyp = tf.TensorSpec([1, h // 4, h // 4, cfg.hyper_latent_channels])
    parts = {
        "analysis": (graph_macs(model.analysis, img), model.analysis.trainable_variables),
        "synthesis": (graph_macs(model.synthesis, lat), model.synthesis.trainable_variables),
        "hyper_analysis": (graph_macs(model.hyper_analysis, lat),
                           model.hyper_analysis.trainable_variables),
        "hyper_synthesis": (graph_macs(model.hyper_synthesis, hyp),
                            model.hyper_synthesis.trainable_variables),
        "discriminator": (graph_macs(lambda x, y: disc(x, y).logits, img, lat),
                          disc.trainable_variables),
    }
    out = {k: {"macs_per_pixel": v[0] / px, "params": count_params(v[1])} for k, v in parts.items()}
    out["codec_total"] = {
        "macs_per_pixel": sum(out[k]["macs_per_pixel"] for k in parts if k != "discriminator"),
        "params": count_params(model.trainable_variables),
    }
    return out


def pframe_figures(name: str, size: int) -> dict:
    """The P-frame codec of a preset: MACs per pixel of the encoder (the whole training-mode
    forward: motion and residual analysis and synthesis, hyperpriors, warp) and of the decoder
    (`synthesize`: flow decoding, scale-space warp, residual synthesis and fusion)."""
    from gan_compress.models.pframe import PFrameCodec

    cfg = configs.get_preset(name)
    model = PFrameCodec(cfg.model, cfg.pframe)
    model.build_for_shape()
    img = tf.TensorSpec([1, size, size, 3])
    q = tf.zeros([1], tf.int32)
    h = size // 16
    m_hat = tf.TensorSpec([1, h, h, cfg.pframe.motion_latent_channels])
    y_hat = tf.TensorSpec([1, h, h, cfg.pframe.residual_latent_channels])
    ref = tf.TensorSpec([1, size, size, 3], tf.uint8)
    shape = tf.constant([size, size], tf.int32)
    px = float(size * size)
    return {
        "pframe_encode": {
            "macs_per_pixel": graph_macs(lambda x, r: model(x, r, q, training=False).x_hat,
                                         img, img) / px,
            "params": count_params(model.trainable_variables)},
        "pframe_decode": {
            "macs_per_pixel": graph_macs(lambda a, b, r: model.synthesize(a, b, r, shape),
                                         m_hat, y_hat, ref) / px,
            "params": count_params(model.motion_synthesis.trainable_variables
                                   + model.residual_synthesis.trainable_variables
                                   + model.fusion.trainable_variables)},
    }


def conv_rate(height=720, width=1280, cin=64, cout=32, k=5, repeats=5) -> float:
    """Measured MAC/s of a stride-2 transposed conv [1, H/2, W/2, cin] -> [1, H, W, cout]."""
    layer = tf.keras.layers.Conv2DTranspose(cout, k, strides=2, padding="same")
    x = tf.random.uniform([1, height // 2, width // 2, cin])
    f = tf.function(layer)
    f(x)
    t0 = time.perf_counter()
    for _ in range(repeats):
        f(x).numpy()
    dt = (time.perf_counter() - t0) / repeats
    macs = k * k * cin * cout * (height // 2) * (width // 2)
    return macs / dt


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="tiny,small,hific")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    results = {name: {**preset_figures(name, args.size), **pframe_figures(name, args.size)}
               for name in args.presets.split(",")}
    rate = conv_rate()
    if args.json:
        print(json.dumps({"presets": results, "conv_macs_per_second": rate}, indent=2))
        return 0
    print(f"{'preset':8s} {'part':16s} {'params':>12s} {'MAC/pixel':>12s}")
    for name, parts in results.items():
        for part, v in parts.items():
            print(f"{name:8s} {part:16s} {v['params']:12,d} {v['macs_per_pixel']:12,.0f}")
    print(f"\nmeasured conv rate (stride-2 transposed conv, 720p, {os.cpu_count()} cores): "
          f"{rate / 1e9:.1f} GMAC/s")
    for name, parts in results.items():
        synth = parts["synthesis"]["macs_per_pixel"] + parts["hyper_synthesis"]["macs_per_pixel"]
        fps = rate / (synth * 1280 * 720)
        print(f"{name}: decode-side {synth:,.0f} MAC/pixel -> at most {fps:.1f} fps at 720p")
    return 0


if __name__ == "__main__":
    sys.exit(main())
