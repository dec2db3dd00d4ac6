"""Evaluation of gan_compress against conventional codecs: RD sweeps, metrics, BD-rate, reports.

It measures what a user gets: our codec is driven through its CLI (`codecs.GanCompressCodec`),
the anchors through imageio-ffmpeg's ffmpeg; it never reaches into model internals.

Modules:
    anchors   x264 / x265 / SVT-AV1 / VVenC settings and ladders (those of data/reference)
    clips     eval clips decoded once to raw 8-bit yuv420p
    codecs    the pluggable test codec (`TestCodec`, `GanCompressCodec`, `FfmpegCodec`)
    metrics   PSNR-Y/U/V/YUV, MS-SSIM-Y, VMAF / VMAF-NEG, SSIMULACRA2 (frame-exact)
    bdrate    Bjontegaard delta rate (pchip) with overlap flags
    sweep     `run_sweep(SweepConfig, test_codecs)` -> results.json
    images    Kodak sweep: JPEG, WebP, x265 4:4:4 intra, AV1 4:4:4 intra
    report    plots, report.md, index.html with a side-by-side viewer
    cli       `gan-compress eval` (`add_arguments`, `run`, `main`)

Nothing here imports TensorFlow at import time (only MS-SSIM does, when called).
"""

__all__ = ["anchors", "bdrate", "clips", "cli", "codecs", "ffmpeg", "images", "metrics", "report",
           "sweep"]
