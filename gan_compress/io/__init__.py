"""Video and image I/O: numpy planes in and out, no TensorFlow.

    from gan_compress import io as gio
    with gio.open_video("clip.mkv") as reader:      # .y4m .yuv .mkv .mp4 ... .png .jpg
        print(reader.info)                          # VideoInfo(width, height, fps, ...)
        for frame in reader:                        # YUVFrame(y, u, v) uint8 4:2:0
            rgb = gio.yuv420_to_rgb(frame, reader.info.color)   # [H, W, 3] uint8

Modules: `readers` (open_video and the readers; why PyAV), `y4m` (our y4m reader/writer),
`color` (matrices, ranges and chroma resampling, with the exact equations), `images` (Pillow),
`ffmpeg` (imageio-ffmpeg's binary, encoding writer), `writers` (write_video), `atomic`
(temp-file-and-rename), `errors` (VideoError and subclasses).
"""

from gan_compress.io.atomic import AtomicFile, clean_stale_partials
from gan_compress.io.base import (
    IMAGE_EXTENSIONS,
    MAX_FRAME_PIXELS,
    VIDEO_EXTENSIONS,
    VideoInfo,
    VideoReader,
    as_fraction,
    is_image_path,
    is_video_path,
)
from gan_compress.io.color import (
    ColorSpec,
    YUVFrame,
    chroma_downsample,
    chroma_upsample,
    rgb_to_yuv420,
    rgb_to_yuv444,
    rgb_to_yuv_float,
    yuv420_to_rgb,
    yuv420_to_rgb_float,
    yuv420_to_yuv444,
    yuv444_to_rgb,
    yuv444_to_rgb_float,
    yuv444_to_yuv420,
    yuv_float_to_rgb_float,
)
from gan_compress.io.errors import (
    EmptyVideoError,
    TruncatedVideoError,
    UnsupportedFormatError,
    VideoError,
    VideoNotFoundError,
)
from gan_compress.io.ffmpeg import FFmpegVideoWriter, ffmpeg_exe
from gan_compress.io.images import read_image, write_png, write_png_frames
from gan_compress.io.readers import (
    ImageReader,
    PyAVReader,
    RawYUVReader,
    iterate_frames,
    open_video,
)
from gan_compress.io.writers import write_video
from gan_compress.io.y4m import Y4MReader, Y4MWriter

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_FRAME_PIXELS",
    "VIDEO_EXTENSIONS",
    "AtomicFile",
    "clean_stale_partials",
    "ColorSpec",
    "EmptyVideoError",
    "FFmpegVideoWriter",
    "ImageReader",
    "PyAVReader",
    "RawYUVReader",
    "TruncatedVideoError",
    "UnsupportedFormatError",
    "VideoError",
    "VideoInfo",
    "VideoNotFoundError",
    "VideoReader",
    "Y4MReader",
    "Y4MWriter",
    "YUVFrame",
    "as_fraction",
    "chroma_downsample",
    "chroma_upsample",
    "ffmpeg_exe",
    "is_image_path",
    "is_video_path",
    "iterate_frames",
    "open_video",
    "read_image",
    "rgb_to_yuv420",
    "rgb_to_yuv444",
    "rgb_to_yuv_float",
    "write_png",
    "write_png_frames",
    "write_video",
    "yuv420_to_rgb",
    "yuv420_to_rgb_float",
    "yuv420_to_yuv444",
    "yuv444_to_rgb",
    "yuv444_to_rgb_float",
    "yuv444_to_yuv420",
    "yuv_float_to_rgb_float",
]
