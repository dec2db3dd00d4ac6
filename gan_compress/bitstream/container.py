"""Writing and reading `.gcv` files.

    with ContainerWriter("clip.gcv", header) as w:      # writes ".clip.gcv.partial-<pid>"
        for packet in packets:                           # FramePackets, frame 0, 1, 2, ...
            w.write(packet)                              # straight to disk
    # on leaving the block: index + trailer, fsync, then renamed to "clip.gcv" in one step

    with ContainerReader("clip.gcv", expected_fingerprint=fp) as r:
        r.header, r.num_frames, r.index                  # checked on open
        for packet in r: ...                             # streamed, CRC-checked

Both sides hold only the key-frame index in memory, never the packets. The reader trusts no
length field: each is checked against the bytes actually left in the file before anything is
read or allocated, and every failure is a `BitstreamError` naming the file and the problem.
"""

from __future__ import annotations

import array
import bisect
import dataclasses
import operator
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from typing import NamedTuple

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
from gan_compress.bitstream.records import (
    FINGERPRINT_BYTES,
    MAX_DIM,
    MAX_FRAMES,
    FramePacket,
    IndexEntry,
    PacketInfo,
    SequenceHeader,
)
from gan_compress.bitstream.syntax import (
    CRC,
    END_MAGIC,
    FORMAT_MAJOR,
    MAGIC,
    MAX_HEADER_BODY_BYTES,
    MAX_META_BYTES,
    MIN_PACKET_BYTES,
    PREFIX,
    TRAILER,
    HeaderFields,
    PacketMeta,
    crc32,
    decode_header_body,
    decode_index,
    decode_packet_meta,
    encode_header,
    encode_index,
    encode_packet_head,
    encode_trailer,
)
from gan_compress.bitstream.varint import (
    MAX_VARINT_BYTES,
    TruncatedVarintError,
    VarintError,
    decode_uvarint,
)

_CHUNK = 1 << 20  # payload bytes checksummed at a time when packets are not loaded
_TRUNCATED_TAIL = (
    "the seek index and trailer are missing (the writer was interrupted or the file was cut)"
)


def _create_temp(path: str) -> tuple[str, int]:
    """Creates `.<name>.partial-<pid>[-n]` beside `path`; returns its path and an open fd."""
    directory, name = os.path.split(os.path.abspath(path))
    base = os.path.join(directory, f".{name}.partial-{os.getpid()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for n in range(1000):
        temp = base if n == 0 else f"{base}-{n}"
        try:
            return temp, os.open(temp, flags, 0o666)  # 0o666 & ~umask, like open()
        except FileExistsError:
            continue
    raise FileExistsError(f"{path}: could not create a temporary file ({base}-*)")


def _fsync_directory(directory: str) -> None:
    """Makes the rename durable; not every platform or filesystem allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class ContainerWriter:
    """Streams `FramePacket`s into a new `.gcv` file that appears only once it is complete.

    Packets go to a temporary file beside `path` as they are written; `close()` appends the seek
    index and trailer, stores the frame count in the header, fsyncs and renames the file to
    `path` atomically. An exception inside a `with` block, or `abort()`, deletes the temporary
    file instead, and a killed process leaves at most the temporary file: never a partial file
    under `path` (an existing file there is replaced only by a complete one).

    Packets must come in frame order starting at 0, and frame 0 must be a key frame (I).
    Memory use is constant apart from 16 bytes per key frame for the index.
    """

    def __init__(self, path: str | os.PathLike, header: SequenceHeader):
        if not isinstance(header, SequenceHeader):
            raise TypeError(f"header must be a SequenceHeader, got {type(header).__name__}")
        self.path = os.fspath(path)
        self._header = header
        self._frames = array.array("Q")  # key-frame indices
        self._offsets = array.array("Q")  # their packets' byte offsets
        self._count = 0
        self._pos = 0
        head = encode_header(header, num_frames=0)  # 0 = unknown until close()
        self.temp_path, fd = _create_temp(self.path)
        self._file = os.fdopen(fd, "wb")
        self._state = "open"
        self._write(head)

    @property
    def header(self) -> SequenceHeader:
        """The header as given; after `close()`, with the number of frames written."""
        return self._header

    @property
    def frames_written(self) -> int:
        return self._count

    def __enter__(self) -> ContainerWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _check_open(self) -> None:
        if self._state != "open":
            raise ValueError(f"{self.path}: the writer is {self._state}")

    def _write(self, *parts: bytes) -> None:
        try:
            for part in parts:
                self._file.write(part)
        except BaseException:  # a half-written packet cannot be undone: give the file up
            self.abort()
            raise
        self._pos += sum(len(part) for part in parts)

    def write(self, packet: FramePacket) -> None:
        """Appends one frame's packet; `packet.frame_index` must be the number written so far."""
        self._check_open()
        if not isinstance(packet, FramePacket):
            raise TypeError(f"expected a FramePacket, got {type(packet).__name__}")
        if packet.frame_index != self._count:
            raise ValueError(
                f"{self.path}: packets must be written in frame order: expected frame "
                f"{self._count}, got frame {packet.frame_index}"
            )
        if self._count == 0 and not packet.frame_type.is_key:
            raise ValueError(
                f"{self.path}: frame 0 must be a key frame (I), got {packet.frame_type.name}"
            )
        if self._count >= MAX_FRAMES:
            raise ValueError(f"{self.path}: more than {MAX_FRAMES} frames")
        head = encode_packet_head(packet)
        crc = zlib.crc32(head)
        for string in packet.strings:
            crc = zlib.crc32(string, crc)
        offset = self._pos
        self._write(head, *packet.strings, CRC.pack(crc))
        if packet.frame_type.is_key:
            self._frames.append(packet.frame_index)
            self._offsets.append(offset)
        self._count += 1

    def close(self) -> None:
        """Finishes the file and renames it to `path`. Does nothing if already closed."""
        if self._state == "closed":
            return
        self._check_open()
        try:
            index = encode_index(self._frames, self._offsets)
            self._file.write(index)
            self._file.write(encode_trailer(self._pos, len(index)))
            self._file.seek(0)
            self._file.write(encode_header(self._header, num_frames=self._count))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.temp_path, self.path)
        except BaseException:
            self.abort()
            raise
        self._state = "closed"
        self._header = dataclasses.replace(self._header, num_frames=self._count)
        _fsync_directory(os.path.dirname(os.path.abspath(self.path)))

    def abort(self) -> None:
        """Discards the temporary file; `path` is left as it was. Does nothing if not open."""
        if self._state != "open":
            return
        self._state = "aborted"
        try:
            self._file.close()
        except OSError:
            pass
        try:
            os.unlink(self.temp_path)
        except FileNotFoundError:
            pass

    def __del__(self):
        if getattr(self, "_state", None) == "open":
            warnings.warn(
                f"ContainerWriter for {self.path} was never closed; discarding its temporary file",
                ResourceWarning,
                stacklevel=2,
            )
            self.abort()

    def __repr__(self) -> str:
        return f"ContainerWriter({self.path!r}, {self._state}, {self._count} frames)"


class _Head(NamedTuple):
    """A packet's position and meta, read without its strings."""

    offset: int
    meta: PacketMeta
    head_crc: int  # crc32 of meta_len + meta, to be continued over the strings
    payload_offset: int
    end: int  # first byte after the packet's CRC

    @property
    def payload_bytes(self) -> int:
        return self.end - CRC.size - self.payload_offset


def _short_hex(a: bytes, b: bytes) -> tuple[str, str]:
    """Short hex of two fingerprints, long enough to tell them apart."""
    n = 6
    while n < max(len(a), len(b)) and a[:n] == b[:n]:
        n += 6
    return a[:n].hex(), b[:n].hex()


class ContainerReader:
    """Reads a `.gcv` file written by `ContainerWriter`.

    Opening checks the magic, version, sequence header (CRC, caps on the frame size), the trailer
    and seek index, and, if `expected_fingerprint` is given, that the file was written by that
    model. Packets are read on demand: iterating streams them in order, `read_packet(i)` and
    `iter_packets(start)` jump through the key-frame index. Each packet's CRC is checked when it
    is read. Raises only `BitstreamError` subclasses for bad files (and `OSError` for I/O).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        expected_fingerprint: bytes | None = None,
        max_width: int = 16384,
        max_height: int = 16384,
    ):
        if expected_fingerprint is not None:
            expected_fingerprint = bytes(expected_fingerprint)
            if len(expected_fingerprint) != FINGERPRINT_BYTES:
                raise ValueError(
                    f"expected_fingerprint must be {FINGERPRINT_BYTES} bytes, "
                    f"got {len(expected_fingerprint)}"
                )
        self.path = os.fspath(path)
        self._max_width = max_width
        self._max_height = max_height
        # A [H, W, 3] frame at the caps, with headroom for wide latents.
        self._max_elements = 4 * max_width * max_height
        self._overhead: int | None = None
        self._file = open(self.path, "rb", buffering=1 << 16)  # closed by close()
        try:
            self.file_size = os.fstat(self._file.fileno()).st_size
            self._open(expected_fingerprint)
        except BaseException:
            self._file.close()
            raise

    # ------------------------------------------------------------------ opening

    def _pread(self, pos: int, size: int) -> bytes:
        """Reads exactly `size` bytes at `pos`; callers have checked the range is in the file."""
        self._file.seek(pos)
        data = self._file.read(size)
        if len(data) != size:
            raise TruncatedError(
                self.path,
                f"truncated: the file ended while reading {size} bytes at byte {pos} "
                "(did it shrink while being read?)",
            )
        return data

    def _open(self, expected_fingerprint: bytes | None) -> None:
        size = self.file_size
        prefix = self._pread(0, min(size, PREFIX.size))
        magic = prefix[: len(MAGIC)]
        if magic != MAGIC[: len(magic)]:
            raise BadMagicError(
                self.path,
                f"not a .gcv container: it starts with {magic.hex(' ')}, "
                f"expected the magic {MAGIC.hex(' ')}",
            )
        if len(prefix) < len(MAGIC) + 2:
            raise TruncatedError(
                self.path,
                f"truncated: the file is only {size} bytes and ends inside the magic or version",
            )
        self.version = (prefix[8], prefix[9])
        if self.version[0] != FORMAT_MAJOR:
            newer = ", upgrade gan_compress" if self.version[0] > FORMAT_MAJOR else ""
            raise UnsupportedVersionError(
                self.path,
                f"unsupported format version {self.version[0]}.{self.version[1]}: this reader "
                f"reads version {FORMAT_MAJOR}.x{newer}",
            )
        trailer = self._read_trailer()
        if trailer is None and size < PREFIX.size:
            raise TruncatedError(
                self.path, f"truncated: the file is only {size} bytes and ends inside the header"
            )
        (num_frames,) = struct.unpack_from("<I", prefix, len(MAGIC) + 2)
        limit = trailer[0] if trailer else size
        header_end, fields = self._read_header(limit, complete=trailer is not None)
        if trailer is None:
            raise TruncatedError(self.path, self._diagnose_cut(header_end))
        self._index_offset = trailer[0]
        self._check_caps(fields, num_frames, header_end)
        try:
            self.header = SequenceHeader(
                width=fields.width,
                height=fields.height,
                fps_num=fields.fps_num,
                fps_den=fields.fps_den,
                num_frames=num_frames,
                matrix=fields.matrix,
                color_range=fields.color_range,
                intra_period=fields.intra_period,
                model_name=fields.model_name,
                model_fingerprint=fields.model_fingerprint,
                extensions=fields.extensions,
            )
        except (TypeError, ValueError) as e:
            raise MalformedError(self.path, f"sequence header: {e}") from None
        if expected_fingerprint is not None and expected_fingerprint != fields.model_fingerprint:
            got, want = _short_hex(fields.model_fingerprint, expected_fingerprint)
            raise FingerprintMismatchError(
                self.path,
                f"model fingerprint mismatch: the file was written by model "
                f"{fields.model_name!r} with fingerprint {got}, but the expected model's "
                f"fingerprint is {want}; decode it with the model that encoded it",
            )
        self._read_index(*trailer, header_end)

    def _read_trailer(self) -> tuple[int, int] | None:
        """(index offset, index size), or None if the file does not end with a trailer."""
        size = self.file_size
        if size < PREFIX.size + TRAILER.size:
            return None
        raw = self._pread(size - TRAILER.size, TRAILER.size)
        index_offset, index_size, stored, end_magic = TRAILER.unpack(raw)
        if end_magic != END_MAGIC:
            return None
        if crc32(raw[:16]) != stored:
            raise CRCError(
                self.path, f"trailer CRC mismatch: the last {TRAILER.size} bytes are corrupt"
            )
        if index_offset < PREFIX.size or index_offset + index_size + TRAILER.size != size:
            raise AbsurdDimensionsError(
                self.path,
                f"the trailer points to a {index_size}-byte seek index at byte {index_offset}, "
                f"which does not end where the trailer starts (byte {size - TRAILER.size})",
            )
        return index_offset, index_size

    def _read_header(self, limit: int, complete: bool) -> tuple[int, HeaderFields]:
        """Reads the header up to `limit`; returns (its end offset, its fields)."""
        overrun = AbsurdDimensionsError if complete else TruncatedError

        def past_limit(needed: int) -> BitstreamError:
            if complete:
                return overrun(
                    self.path,
                    f"the sequence header needs {needed} bytes, more than the {limit} bytes "
                    "before the seek index",
                )
            return overrun(
                self.path,
                f"truncated: the file ends inside the sequence header (it needs {needed} bytes, "
                f"the file has {limit})",
            )

        raw = self._pread(PREFIX.size, min(MAX_VARINT_BYTES, limit - PREFIX.size))
        try:
            body_size, n = decode_uvarint(raw)
        except TruncatedVarintError:
            raise past_limit(PREFIX.size + len(raw) + 1) from None
        except VarintError as e:
            raise MalformedError(self.path, f"sequence header length: {e}") from None
        if body_size > MAX_HEADER_BODY_BYTES:
            raise AbsurdDimensionsError(
                self.path,
                f"the sequence header claims {body_size} bytes, above the cap of "
                f"{MAX_HEADER_BODY_BYTES}",
            )
        body_start = PREFIX.size + n
        header_end = body_start + body_size + CRC.size
        if header_end > limit:
            raise past_limit(header_end)
        covered = self._pread(len(MAGIC), header_end - CRC.size - len(MAGIC))
        (stored,) = CRC.unpack(self._pread(header_end - CRC.size, CRC.size))
        if crc32(covered) != stored:
            raise CRCError(
                self.path,
                f"sequence header CRC mismatch (stored {stored:08x}, computed "
                f"{crc32(covered):08x}): bytes {len(MAGIC)}..{header_end} are corrupt",
            )
        body = covered[len(covered) - body_size :]
        return header_end, decode_header_body(body, self.path, self.version)

    def _check_caps(self, fields, num_frames: int, header_end: int) -> None:
        w, h = fields.width, fields.height
        if not (1 <= w <= self._max_width and 1 <= h <= self._max_height):
            raise AbsurdDimensionsError(
                self.path,
                f"absurd frame size {w}x{h}: allowed is 1x1 to {self._max_width}x"
                f"{self._max_height} (pass max_width/max_height to raise the caps)",
            )
        if not (1 <= fields.fps_num <= MAX_DIM and 1 <= fields.fps_den <= MAX_DIM):
            raise AbsurdDimensionsError(
                self.path, f"absurd frame rate {fields.fps_num}/{fields.fps_den}"
            )
        if fields.intra_period > MAX_FRAMES:
            raise AbsurdDimensionsError(self.path, f"absurd intra period {fields.intra_period}")
        room = self._index_offset - header_end
        if num_frames > room // MIN_PACKET_BYTES:
            raise AbsurdDimensionsError(
                self.path,
                f"absurd frame count: the header claims {num_frames} frames, but the {room} "
                f"bytes of packets hold at most {room // MIN_PACKET_BYTES}",
            )

    def _read_index(self, index_offset: int, index_size: int, header_end: int) -> None:
        if index_size < CRC.size + 1:
            raise MalformedError(self.path, f"seek index of {index_size} bytes is too short")
        raw = self._pread(index_offset, index_size)  # <= file size, checked by the trailer
        body = raw[: -CRC.size]
        (stored,) = CRC.unpack(raw[-CRC.size :])
        if crc32(body) != stored:
            raise CRCError(
                self.path,
                f"seek index CRC mismatch (stored {stored:08x}, computed {crc32(body):08x}): "
                f"bytes {index_offset}..{index_offset + index_size} are corrupt",
            )
        num_frames = self.header.num_frames
        entries = decode_index(body, self.path, num_frames)
        if num_frames and (not entries or entries[0] != (0, header_end)):
            raise MalformedError(
                self.path,
                f"seek index does not start with frame 0 at byte {header_end}: {entries[:1]}",
            )
        if not num_frames and index_offset != header_end:
            raise MalformedError(
                self.path, f"0 frames, but {index_offset - header_end} bytes of packets"
            )
        if entries and (
            entries[-1].frame_index >= num_frames
            or entries[-1].offset > index_offset - MIN_PACKET_BYTES
        ):
            raise MalformedError(
                self.path,
                f"seek index entry {entries[-1]} is beyond the last frame ({num_frames - 1}) "
                f"or the last packet (before byte {index_offset})",
            )
        self.index: tuple[IndexEntry, ...] = tuple(entries)
        self._index_frames = [entry.frame_index for entry in entries]

    def _diagnose_cut(self, header_end: int) -> str:
        """Says where a file without a trailer ends, by walking its packets."""
        size = self.file_size
        pos, ordinal = header_end, 0
        try:
            while pos < size:
                pos = self._read_head(pos, ordinal, size, complete=False).end
                ordinal += 1
        except BitstreamError:
            return (
                f"truncated at byte {size}: after {ordinal} complete packets the file ends "
                f"inside packet {ordinal} (or the seek index) starting at byte {pos}; "
                + _TRUNCATED_TAIL
            )
        if ordinal == 0:
            return f"truncated: the file ends right after the sequence header; {_TRUNCATED_TAIL}"
        return f"truncated at byte {size}: after {ordinal} complete packets {_TRUNCATED_TAIL}"

    # ------------------------------------------------------------------ packets

    def _read_head(self, pos: int, ordinal: int, limit: int, complete: bool) -> _Head:
        """Reads packet `ordinal`'s meta at `pos`, checking every length against `limit`."""
        what = f"packet {ordinal} (at byte {pos})"
        overrun = AbsurdDimensionsError if complete else TruncatedError
        left = limit - pos
        if left < MIN_PACKET_BYTES:
            raise (MalformedError if complete else TruncatedError)(
                self.path, f"{what}: only {left} bytes left, where a packet needs at least "
                f"{MIN_PACKET_BYTES}"
            )
        raw = self._pread(pos, min(MAX_VARINT_BYTES, left))
        try:
            meta_size, n = decode_uvarint(raw)
        except VarintError as e:
            raise MalformedError(self.path, f"{what}: bad header length: {e}") from None
        if meta_size > MAX_META_BYTES:
            raise AbsurdDimensionsError(
                self.path, f"{what}: header length {meta_size} is above the cap of {MAX_META_BYTES}"
            )
        room = left - n - meta_size - CRC.size
        if room < 0:
            raise overrun(
                self.path,
                f"{what}: its header claims {meta_size} bytes but only {left - n - CRC.size} "
                "are left",
            )
        meta_raw = self._pread(pos + n, meta_size)
        meta = decode_packet_meta(meta_raw, self.path, what, self._max_elements, room)
        if meta.frame_index != ordinal:
            raise MalformedError(
                self.path, f"{what}: holds frame {meta.frame_index}, expected frame {ordinal}"
            )
        payload_offset = pos + n + meta_size
        return _Head(
            offset=pos,
            meta=meta,
            head_crc=crc32(raw[:n], meta_raw),
            payload_offset=payload_offset,
            end=payload_offset + sum(meta.lengths) + CRC.size,
        )

    def _crc_error(self, head: _Head, stored: int, computed: int) -> CRCError:
        return CRCError(
            self.path,
            f"CRC mismatch in packet {head.meta.frame_index} (frame {head.meta.frame_index}, "
            f"{head.meta.frame_type.name}, bytes {head.offset}..{head.end}): stored "
            f"{stored:08x}, computed {computed:08x}; the file is corrupt",
        )

    def _read_strings(self, head: _Head) -> tuple[bytes, ...]:
        """Reads and CRC-checks a packet's strings (lengths were checked by `_read_head`)."""
        strings = []
        crc = head.head_crc
        pos = head.payload_offset
        for length in head.meta.lengths:
            string = self._pread(pos, length)
            crc = zlib.crc32(string, crc)
            strings.append(string)
            pos += length
        (stored,) = CRC.unpack(self._pread(pos, CRC.size))
        if stored != crc:
            raise self._crc_error(head, stored, crc)
        return tuple(strings)

    def _verify(self, head: _Head) -> None:
        """CRC-checks a packet a chunk at a time, without holding its strings."""
        crc = head.head_crc
        pos, end = head.payload_offset, head.end - CRC.size
        while pos < end:
            chunk = self._pread(pos, min(_CHUNK, end - pos))
            crc = zlib.crc32(chunk, crc)
            pos += len(chunk)
        (stored,) = CRC.unpack(self._pread(end, CRC.size))
        if stored != crc:
            raise self._crc_error(head, stored, crc)

    def _walk(
        self, start: int, load: bool, verify: bool
    ) -> Iterator[tuple[_Head, tuple[bytes, ...] | None]]:
        """Yields (head, strings or None) for frames `start`.. via the key frame at or before it.

        Keeps its own position, so several walks over one reader may be interleaved.
        """
        if start >= self.num_frames:
            return
        k = bisect.bisect_right(self._index_frames, start) - 1
        ordinal, pos = self.index[k]
        while ordinal < self.num_frames:
            head = self._read_head(pos, ordinal, self._index_offset, complete=True)
            if k < len(self.index) and self.index[k].frame_index == ordinal:
                if self.index[k].offset != pos or not head.meta.frame_type.is_key:
                    raise MalformedError(
                        self.path,
                        f"seek index entry {self.index[k]} does not match packet {ordinal} "
                        f"({head.meta.frame_type.name} at byte {pos})",
                    )
                k += 1
            elif head.meta.frame_type.is_key:
                raise MalformedError(
                    self.path, f"packet {ordinal} is a key frame missing from the seek index"
                )
            strings = None
            if ordinal >= start:
                if load:
                    strings = self._read_strings(head)
                elif verify:
                    self._verify(head)
                yield head, strings
            pos = head.end
            ordinal += 1
        if pos != self._index_offset:
            raise MalformedError(
                self.path,
                f"{self._index_offset - pos} unexpected bytes between the last packet (ends at "
                f"byte {pos}) and the seek index",
            )

    def _packet(self, head: _Head, strings: tuple[bytes, ...]) -> FramePacket:
        meta = head.meta
        try:
            return FramePacket(
                meta.frame_index, meta.frame_type, meta.quality, meta.shapes, strings
            )
        except (TypeError, ValueError) as e:
            raise MalformedError(self.path, f"packet {meta.frame_index}: {e}") from None

    def _frame_arg(self, frame_index: int, allow_end: bool = False) -> int:
        i = operator.index(frame_index)
        if not 0 <= i < self.num_frames + allow_end:
            raise IndexError(f"{self.path}: frame {i} out of range (0..{self.num_frames - 1})")
        return i

    # ------------------------------------------------------------------ public

    @property
    def num_frames(self) -> int:
        return self.header.num_frames

    def __len__(self) -> int:
        return self.num_frames

    def iter_packets(self, start: int = 0) -> Iterator[FramePacket]:
        """Streams packets from frame `start` to the end (entering through the index)."""
        walk = self._walk(self._frame_arg(start, allow_end=True), load=True, verify=True)
        return (self._packet(head, strings) for head, strings in walk)

    def __iter__(self) -> Iterator[FramePacket]:
        return self.iter_packets(0)

    def read_packet(self, frame_index: int) -> FramePacket:
        """The packet of frame `frame_index` (decoding a P-frame needs those since `seek(i)`)."""
        head, strings = next(self._walk(self._frame_arg(frame_index), load=True, verify=True))
        return self._packet(head, strings)

    def seek(self, frame_index: int) -> IndexEntry:
        """The key frame at or before `frame_index`: where decoding frame `frame_index` starts."""
        i = self._frame_arg(frame_index)
        return self.index[bisect.bisect_right(self._index_frames, i) - 1]

    def packet_sizes(self, verify: bool = True) -> Iterator[PacketInfo]:
        """Yields each packet's type, quality and sizes, one at a time (for `gan-compress info`).

        With `verify`, each packet's CRC is checked by streaming its payload in 1 MiB chunks.
        """
        for head, _ in self._walk(0, load=False, verify=verify):
            meta = head.meta
            yield PacketInfo(
                frame_index=meta.frame_index,
                frame_type=meta.frame_type,
                quality=meta.quality,
                offset=head.offset,
                size=head.end - head.offset,
                payload_bytes=head.payload_bytes,
            )

    def container_overhead_bytes(self) -> int:
        """File bytes that are not entropy-coded strings: headers, shapes, CRCs, index, trailer."""
        if self._overhead is None:
            payload = sum(h.payload_bytes for h, _ in self._walk(0, load=False, verify=False))
            self._overhead = self.file_size - payload
        return self._overhead

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ContainerReader:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ContainerReader({self.path!r}, {self.num_frames} frames)"
