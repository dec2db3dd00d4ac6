"""The `.gcv` byte layout: constants and the encoders/decoders of each block.

See docs/bitstream.md for the layout as tables. In short:

    file header   magic(8) major(1) minor(1) num_frames(u32 LE) header_len(varint) body crc32(4)
    packets       meta_len(varint) meta strings... crc32(4)          one per frame, in order
    seek index    count(varint) (frame delta, offset delta)(varints)... crc32(4)
    trailer       index_offset(u64) index_size(u64) crc32(4) b"GCVE"  24 bytes, fixed

Integers are unsigned LEB128 varints except the few fixed-width fields that must be found or
patched without parsing (the frame count, CRCs, the trailer). CRCs are zlib.crc32, little endian.

Decoders take bytes that are already in memory and bounded by the caller (who checked lengths
against the file size), so nothing here can allocate more than it was given.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import NamedTuple

from gan_compress.bitstream.errors import AbsurdDimensionsError, MalformedError
from gan_compress.bitstream.records import (
    COLOR_RANGES,
    FINGERPRINT_BYTES,
    MATRICES,
    MAX_DIM,
    MAX_QUALITY,
    MAX_RANK,
    FramePacket,
    FrameType,
    IndexEntry,
    SequenceHeader,
)
from gan_compress.bitstream.varint import VarintError, decode_uvarint, encode_uvarint

MAGIC = b"\x89GCV\r\n\x1a\n"  # PNG-style: high bit, CR-LF and ^Z catch text-mode mangling
END_MAGIC = b"GCVE"
FORMAT_MAJOR = 1  # readers refuse other majors
FORMAT_MINOR = 0  # newer minors only append fields, which older readers skip

PREFIX = struct.Struct("<8sBBI")  # magic, major, minor, num_frames
NUM_FRAMES_OFFSET = 10
CRC = struct.Struct("<I")
TRAILER = struct.Struct("<QQI4s")  # index_offset, index_size, crc32 of the first 16 bytes, magic

MAX_HEADER_BODY_BYTES = 1 << 20  # the sequence header, including extensions
MAX_META_BYTES = 1 << 16  # one packet's header (shapes and string lengths)
# Smallest packet: meta_len(1) + frame_index, type, quality, n_shapes, n_strings (1 each) + crc(4).
MIN_PACKET_BYTES = 10


def crc32(*parts: bytes) -> int:
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    return crc


class Fields:
    """Reads fields in order from one block of bytes; running past its end means it is malformed."""

    def __init__(self, data: bytes, path: str, what: str):
        self.data = data
        self.pos = 0
        self.path = path
        self.what = what

    def error(self, problem: str) -> MalformedError:
        return MalformedError(self.path, f"{self.what}: {problem}")

    def uint(self, name: str) -> int:
        try:
            value, self.pos = decode_uvarint(self.data, self.pos)
        except VarintError as e:
            raise self.error(
                f"bad varint for {name} at byte {self.pos} of {len(self.data)}: {e}"
            ) from None
        return value

    def raw(self, size: int, name: str) -> bytes:
        if size > len(self.data) - self.pos:
            raise self.error(
                f"{name} needs {size} bytes but only {len(self.data) - self.pos} are left"
            )
        value = self.data[self.pos : self.pos + size]
        self.pos += size
        return value

    def text(self, name: str) -> str:
        raw = self.raw(self.uint(f"length of {name}"), name)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error(f"{name} is not valid UTF-8") from None


# ---------------------------------------------------------------------------- sequence header


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return encode_uvarint(len(raw)) + raw


def encode_header(header: SequenceHeader, num_frames: int) -> bytes:
    """The file header: prefix, body length, body and CRC (covering everything after the magic).

    `num_frames` is passed separately because the writer patches it at close; its width is fixed,
    so the patched header is exactly as long as the one written first.
    """
    body = bytearray()
    for value in (header.width, header.height, header.fps_num, header.fps_den):
        body += encode_uvarint(value)
    body += encode_uvarint(MATRICES.index(header.matrix))
    body += encode_uvarint(COLOR_RANGES.index(header.color_range))
    body += encode_uvarint(header.intra_period)
    body += _text(header.model_name)
    body += header.model_fingerprint
    body += encode_uvarint(len(header.extensions))
    for key, value in header.extensions.items():  # sorted by key
        body += _text(key) + encode_uvarint(len(value)) + value
    if len(body) > MAX_HEADER_BODY_BYTES:
        raise ValueError(
            f"sequence header is {len(body)} bytes, above {MAX_HEADER_BODY_BYTES} "
            "(extensions are for small metadata)"
        )
    covered = PREFIX.pack(MAGIC, FORMAT_MAJOR, FORMAT_MINOR, num_frames)[len(MAGIC) :]
    covered += encode_uvarint(len(body)) + bytes(body)
    return MAGIC + covered + CRC.pack(crc32(covered))


class HeaderFields(NamedTuple):
    """The header body as stored, before the reader checks its caps."""

    width: int
    height: int
    fps_num: int
    fps_den: int
    matrix: str
    color_range: str
    intra_period: int
    model_name: str
    model_fingerprint: bytes
    extensions: dict[str, bytes]


def decode_header_body(body: bytes, path: str, version: tuple[int, int]) -> HeaderFields:
    """Parses a CRC-checked header body; bytes after the known fields (newer minors) are skipped."""
    f = Fields(body, path, "sequence header")
    width, height, fps_num, fps_den = (f.uint(n) for n in ("width", "height", "fps_num", "fps_den"))
    newer = ""
    if version[1] > FORMAT_MINOR:  # a newer writer may have added codes
        newer = f"; the file is format {version[0]}.{version[1]}, try a newer gan_compress"
    matrix_code = f.uint("matrix")
    if matrix_code >= len(MATRICES):
        raise f.error(f"unknown colour matrix code {matrix_code} (known: {MATRICES}){newer}")
    range_code = f.uint("color_range")
    if range_code >= len(COLOR_RANGES):
        raise f.error(f"unknown colour range code {range_code} (known: {COLOR_RANGES}){newer}")
    intra_period = f.uint("intra_period")
    model_name = f.text("model_name")
    fingerprint = f.raw(FINGERPRINT_BYTES, "model_fingerprint")
    count = f.uint("extension count")
    extensions: dict[str, bytes] = {}
    for i in range(count):  # each takes >= 2 bytes, so a huge count fails on the data, not memory
        key = f.text(f"extension {i} key")
        if not key or key in extensions:
            raise f.error(f"extension {i} has an empty or repeated key {key!r}")
        extensions[key] = f.raw(f.uint(f"extension {key!r} length"), f"extension {key!r}")
    return HeaderFields(
        width,
        height,
        fps_num,
        fps_den,
        MATRICES[matrix_code],
        COLOR_RANGES[range_code],
        intra_period,
        model_name,
        fingerprint,
        extensions,
    )


# ---------------------------------------------------------------------------- packets


def encode_packet_head(packet: FramePacket) -> bytes:
    """`meta_len` + meta: everything in a packet before its strings."""
    meta = bytearray()
    meta += encode_uvarint(packet.frame_index)
    meta += encode_uvarint(packet.frame_type)
    meta += encode_uvarint(packet.quality)
    meta += encode_uvarint(len(packet.shapes))
    for shape in packet.shapes:
        meta += encode_uvarint(len(shape))
        for dim in shape:
            meta += encode_uvarint(dim)
    meta += encode_uvarint(len(packet.strings))
    for string in packet.strings:
        meta += encode_uvarint(len(string))
    if len(meta) > MAX_META_BYTES:
        raise ValueError(
            f"frame {packet.frame_index}: packet header is {len(meta)} bytes, above "
            f"{MAX_META_BYTES} (too many shapes or strings)"
        )
    return encode_uvarint(len(meta)) + bytes(meta)


class PacketMeta(NamedTuple):
    frame_index: int
    frame_type: FrameType
    quality: int
    shapes: tuple[tuple[int, ...], ...]
    lengths: tuple[int, ...]  # of the strings


def decode_packet_meta(
    meta: bytes, path: str, what: str, max_elements: int, room: int
) -> PacketMeta:
    """Parses a packet's meta. `room`: bytes available for the strings (checked before any read).

    Raises AbsurdDimensionsError for shapes above the caps or strings longer than `room`.
    """
    f = Fields(meta, path, what)
    frame_index = f.uint("frame_index")
    type_code = f.uint("frame_type")
    try:
        frame_type = FrameType(type_code)
    except ValueError:
        known = ", ".join(f"{t.name}={t.value}" for t in FrameType)
        raise f.error(
            f"unknown frame type {type_code} (known: {known}; a newer gan_compress may know it)"
        ) from None
    quality = f.uint("quality")
    if not 1 <= quality <= MAX_QUALITY:
        raise f.error(f"quality {quality} is outside 1..{MAX_QUALITY}")
    shapes = []
    for i in range(f.uint("shape count")):
        rank = f.uint(f"rank of shape {i}")
        if rank > MAX_RANK:
            raise AbsurdDimensionsError(path, f"{what}: shape {i} has rank {rank} > {MAX_RANK}")
        shape = tuple(f.uint(f"shape {i} dimension") for _ in range(rank))
        elements = 1
        for dim in shape:
            elements *= dim
        if any(dim > MAX_DIM for dim in shape) or elements > max_elements:
            raise AbsurdDimensionsError(
                path, f"{what}: absurd shape {i} {shape} (caps: {MAX_DIM} per dimension, "
                f"{max_elements} elements)"
            )
        shapes.append(shape)
    lengths = []
    left = room
    for i in range(f.uint("string count")):
        length = f.uint(f"length of string {i}")
        if length > left:
            raise AbsurdDimensionsError(
                path, f"{what}: string {i} claims {length} bytes but only {left} bytes of the "
                "file are left for it"
            )
        left -= length
        lengths.append(length)
    return PacketMeta(frame_index, frame_type, quality, tuple(shapes), tuple(lengths))


# ---------------------------------------------------------------------------- seek index, trailer


def encode_index(frames: Sequence[int], offsets: Sequence[int]) -> bytes:
    """Key-frame index: count, then (frame, offset) pairs delta-coded against the previous pair."""
    out = bytearray(encode_uvarint(len(frames)))
    last_frame = last_offset = 0
    for frame, offset in zip(frames, offsets, strict=True):
        out += encode_uvarint(frame - last_frame) + encode_uvarint(offset - last_offset)
        last_frame, last_offset = frame, offset
    return bytes(out) + CRC.pack(crc32(out))


def decode_index(body: bytes, path: str, num_frames: int) -> list[IndexEntry]:
    """Parses a CRC-checked index body (without its CRC). Offsets are checked by the caller."""
    f = Fields(body, path, "seek index")
    count = f.uint("entry count")
    if count > num_frames:
        raise f.error(f"{count} key frames listed for a {num_frames}-frame video")
    entries = []
    frame = offset = 0
    for i in range(count):
        frame_step, offset_step = f.uint("frame delta"), f.uint("offset delta")
        if i and (frame_step == 0 or offset_step < MIN_PACKET_BYTES):
            raise f.error(f"entry {i} does not move forward from entry {i - 1}")
        frame += frame_step
        offset += offset_step
        entries.append(IndexEntry(frame, offset))
    if f.pos != len(body):
        raise f.error(f"{len(body) - f.pos} unexpected bytes after the last entry")
    return entries


def encode_trailer(index_offset: int, index_size: int) -> bytes:
    head = TRAILER.pack(index_offset, index_size, 0, END_MAGIC)[:16]
    return TRAILER.pack(index_offset, index_size, crc32(head), END_MAGIC)
