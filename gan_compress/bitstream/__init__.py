"""The `.gcv` container: a versioned, checksummed, seekable file of coded frames.

Plain Python (struct, zlib, LEB128 varints): no TensorFlow or numpy, so `gan-compress info` and
the fuzzed reader start fast. The byte layout is in docs/bitstream.md.

    header = SequenceHeader(width=1920, height=1080, fps_num=25, fps_den=1, num_frames=0,
                            matrix="bt709", color_range="limited", intra_period=32,
                            model_name="hific", model_fingerprint=sha256_of_export)
    with ContainerWriter("out.gcv", header) as writer:
        writer.write(FramePacket(0, FrameType.I, quality=3, shapes=(...), strings=(...)))
    with ContainerReader("out.gcv", expected_fingerprint=sha256_of_export) as reader:
        for packet in reader: ...
"""

from gan_compress.bitstream.container import ContainerReader, ContainerWriter
from gan_compress.bitstream.errors import (
    AbsurdDimensionsError,
    BadMagicError,
    BitstreamError,
    CRCError,
    FingerprintMismatchError,
    MalformedError,
    TruncatedError,
    UnsupportedVersionError,
)
from gan_compress.bitstream.info import describe, format_info
from gan_compress.bitstream.records import (
    COLOR_RANGES,
    MATRICES,
    FramePacket,
    FrameType,
    IndexEntry,
    PacketInfo,
    SequenceHeader,
)
from gan_compress.bitstream.syntax import FORMAT_MAJOR, FORMAT_MINOR, MAGIC

__all__ = [
    "COLOR_RANGES",
    "FORMAT_MAJOR",
    "FORMAT_MINOR",
    "MAGIC",
    "MATRICES",
    "AbsurdDimensionsError",
    "BadMagicError",
    "BitstreamError",
    "CRCError",
    "ContainerReader",
    "ContainerWriter",
    "FingerprintMismatchError",
    "FramePacket",
    "FrameType",
    "IndexEntry",
    "MalformedError",
    "PacketInfo",
    "SequenceHeader",
    "TruncatedError",
    "UnsupportedVersionError",
    "describe",
    "format_info",
]
