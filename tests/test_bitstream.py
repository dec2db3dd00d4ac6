"""Tests of the `.gcv` container (gan_compress.bitstream): round trips, streaming memory, atomic
writes, every error the reader raises, a corruption fuzz, seeking and a golden bitstream."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import signal
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zlib
from pathlib import Path

import pytest

from gan_compress.bitstream import (
    AbsurdDimensionsError,
    BadMagicError,
    BitstreamError,
    ContainerReader,
    ContainerWriter,
    CRCError,
    FingerprintMismatchError,
    FramePacket,
    FrameType,
    IndexEntry,
    SequenceHeader,
    TruncatedError,
    UnsupportedVersionError,
    describe,
    format_info,
)
from gan_compress.bitstream import container as container_module
from gan_compress.bitstream.varint import decode_uvarint, encode_uvarint

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "small_v1_0.gcv"
# sha256 of the golden container; change it only together with a deliberate format change
# (and a version bump), never to make this test pass.
GOLDEN_SHA256 = "454f0a90c2b0ebea4bac2d5ccdb4a478f19243c6651d936afce6563c41fbc43e"

FINGERPRINT = hashlib.sha256(b"gan_compress test model").digest()
I, P = FrameType.I, FrameType.P  # noqa: E741  (the frame types' names)


def _header(**changes) -> SequenceHeader:
    fields = dict(
        width=64,
        height=48,
        fps_num=25,
        fps_den=1,
        num_frames=0,
        matrix="bt709",
        color_range="limited",
        intra_period=4,
        model_name="tiny",
        model_fingerprint=FINGERPRINT,
    )
    fields.update(changes)
    return SequenceHeader(**fields)


def _packet(i: int, frame_type=None, quality=3, shapes=((3, 4), (1, 2)), strings=None):
    if frame_type is None:
        frame_type = I if i % 4 == 0 else P
    if strings is None:
        strings = (bytes([i % 256]) * (10 + i), b"z" * (i % 3))
    return FramePacket(i, frame_type, quality, shapes, strings)


def _write(path: Path, header: SequenceHeader, packets) -> Path:
    with ContainerWriter(path, header) as writer:
        for packet in packets:
            writer.write(packet)
    return path


def _read_all(path: Path, **kwargs) -> list[FramePacket]:
    """Everything a client can ask of a file, so a corruption anywhere is reached."""
    with ContainerReader(path, **kwargs) as reader:
        packets = list(reader)
        list(reader.packet_sizes())
        reader.container_overhead_bytes()
        for i in range(reader.num_frames):
            assert reader.read_packet(i) == packets[i]
        return packets


def _small_file(path: Path) -> Path:
    return _write(path, _header(), [_packet(i) for i in range(6)])


def _check_message(err: pytest.ExceptionInfo, path: Path, *words: str) -> None:
    message = str(err.value)
    assert str(path) in message, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def _resign_header(data: bytearray) -> None:
    """Recomputes the header CRC after a test edited it (layout as in docs/bitstream.md)."""
    body_size, body_start = decode_uvarint(data, 14)
    end = body_start + body_size
    data[end : end + 4] = struct.pack("<I", zlib.crc32(data[8:end]))


# ------------------------------------------------------------------------ round trips


def test_header_and_packets_round_trip(tmp_path):
    header = _header(
        fps_num=30000,
        fps_den=1001,
        matrix="bt601",
        color_range="full",
        intra_period=0,
        model_name="hific-ünïcode",
        extensions={"b": b"\x00\xff", "a": b"", "encoder": b"gan_compress"},
    )
    packets = [
        FramePacket(0, I, 1, ((1, 68, 120, 192), (1, 17, 30, 128)), (b"\x01" * 300, b"\x02")),
        FramePacket(1, P, 6, ((0,), (), (5,)), (b"", b"", b"p")),
        FramePacket(2, P, 255, (), ()),
        FramePacket(3, I, 2, ((200, 300),), (bytes(range(256)) * 70,)),
        FramePacket(4, P, 3, [[2, 3]], [bytearray(b"list and bytearray")]),
    ]
    path = _write(tmp_path / "clip.gcv", header, packets)
    with ContainerReader(path, expected_fingerprint=FINGERPRINT) as reader:
        assert reader.header == dataclasses.replace(header, num_frames=5)
        assert reader.header.extensions == {"a": b"", "b": b"\x00\xff", "encoder": b"gan_compress"}
        assert reader.num_frames == len(reader) == 5
        assert reader.version == (1, 0)
        assert list(reader) == packets
        assert reader.index == (IndexEntry(0, reader.index[0].offset), reader.index[1])
        assert [entry.frame_index for entry in reader.index] == [0, 3]
        assert reader.file_size == path.stat().st_size
    assert packets[4].shapes == ((2, 3),) and packets[4].strings == (b"list and bytearray",)


def test_one_frame_video_with_odd_size_round_trips(tmp_path):
    header = _header(width=17, height=33)
    packet = FramePacket(0, I, 4, ((33, 17), (3, 2)), (b"only frame", b""))
    path = _write(tmp_path / "one.gcv", header, [packet])
    with ContainerReader(path) as reader:
        assert (reader.header.width, reader.header.height) == (17, 33)
        assert list(reader) == [packet]
        assert reader.read_packet(0) == packet
        assert reader.seek(0) == reader.index[0]


def test_empty_video_round_trips(tmp_path):
    path = _write(tmp_path / "empty.gcv", _header(), [])
    with ContainerReader(path) as reader:
        assert reader.num_frames == 0 and reader.index == () and list(reader) == []
        assert reader.container_overhead_bytes() == reader.file_size


def test_close_records_the_number_of_frames_written(tmp_path):
    path = _write(tmp_path / "n.gcv", _header(num_frames=99), [_packet(i) for i in range(7)])
    with ContainerReader(path) as reader:
        assert reader.header.num_frames == 7


def test_writer_refuses_out_of_order_frames_and_a_p_frame_first(tmp_path):
    with ContainerWriter(tmp_path / "bad.gcv", _header()) as writer:
        with pytest.raises(ValueError, match="frame 0 must be a key frame"):
            writer.write(_packet(0, frame_type=P))
        writer.write(_packet(0))
        with pytest.raises(ValueError, match="expected frame 1, got frame 2"):
            writer.write(_packet(2))
        writer.write(_packet(1))
    with ContainerReader(tmp_path / "bad.gcv") as reader:
        assert reader.num_frames == 2
    with pytest.raises(ValueError, match="writer is closed"):
        writer.write(_packet(2))


def test_records_validate_their_fields():
    with pytest.raises(ValueError, match="model_fingerprint must be 32 bytes"):
        _header(model_fingerprint=b"short")
    with pytest.raises(ValueError, match="matrix"):
        _header(matrix="bt2020")
    with pytest.raises(ValueError, match="width"):
        _header(width=0)
    with pytest.raises(ValueError, match="quality"):
        FramePacket(0, I, 0, (), ())
    with pytest.raises(ValueError, match="dimension"):
        FramePacket(0, I, 1, ((-1, 2),), ())
    with pytest.raises(TypeError, match="strings"):
        FramePacket(0, I, 1, (), ("text",))
    assert hash(_header(extensions={"k": b"v"})) == hash(_header(extensions={"k": b"v"}))


# ------------------------------------------------------------------------ streaming memory


def _many_packets(n: int, size: int = 1024):
    for i in range(n):
        # a fresh string per packet, as a model's compress() would produce
        string = bytes([i % 256]) * size
        yield FramePacket(i, I if i % 100 == 0 else P, 3, ((17, 30), (5, 8)), (string,))


def test_writing_10000_packets_keeps_memory_flat(tmp_path):
    path = tmp_path / "long.gcv"
    tracemalloc.start()
    try:
        _write(path, _header(), _many_packets(10_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    written = path.stat().st_size
    assert written > 10_000 * 1024
    print(f"writer: peak {peak} bytes traced for a {written}-byte file")
    assert peak < 512 * 1024, f"writer peak {peak} bytes for a {written}-byte file"


def test_reading_10000_packets_keeps_memory_flat(tmp_path):
    path = _write(tmp_path / "long.gcv", _header(), _many_packets(10_000))
    with ContainerReader(path) as reader:
        tracemalloc.start()
        try:
            payload = sum(packet.payload_bytes for packet in reader)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        sizes = sum(info.size for info in reader.packet_sizes())
    assert payload == 10_000 * 1024 and sizes < path.stat().st_size
    print(f"reader: peak {peak} bytes traced for a {path.stat().st_size}-byte file")
    assert peak < 512 * 1024, f"reader peak {peak} bytes for a {path.stat().st_size}-byte file"


# ------------------------------------------------------------------------ atomic writes


def test_exception_inside_with_leaves_no_file_and_no_temp_file(tmp_path):
    with pytest.raises(RuntimeError, match="encoder failed"):
        with ContainerWriter(tmp_path / "clip.gcv", _header()) as writer:
            writer.write(_packet(0))
            assert Path(writer.temp_path).exists()
            raise RuntimeError("encoder failed")
    assert os.listdir(tmp_path) == []


def test_failed_rewrite_keeps_the_existing_file(tmp_path):
    path = _small_file(tmp_path / "clip.gcv")
    before = path.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with ContainerWriter(path, _header()) as writer:
            writer.write(_packet(0, strings=(b"new",)))
            raise KeyboardInterrupt
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["clip.gcv"]


def test_abort_and_garbage_collection_discard_the_temp_file(tmp_path):
    writer = ContainerWriter(tmp_path / "a.gcv", _header())
    writer.write(_packet(0))
    writer.abort()
    writer.abort()
    with pytest.raises(ValueError, match="aborted"):
        writer.close()
    writer = ContainerWriter(tmp_path / "b.gcv", _header())
    with pytest.warns(ResourceWarning, match="never closed"):
        del writer
    assert os.listdir(tmp_path) == []


def test_sigkill_mid_write_leaves_no_file_with_the_final_name(tmp_path):
    path = tmp_path / "killed.gcv"
    script = textwrap.dedent(
        f"""
        import hashlib, sys, time
        from gan_compress.bitstream import ContainerWriter, FramePacket, FrameType, SequenceHeader
        header = SequenceHeader(64, 48, 25, 1, 0, "bt709", "limited", 4, "tiny", bytes(32))
        writer = ContainerWriter({str(path)!r}, header)
        for i in range(200):
            writer.write(FramePacket(i, FrameType(int(i % 4 > 0)), 1, ((4, 4),), (b"x" * 500,)))
        print(writer.temp_path, flush=True)
        time.sleep(60)  # killed here, with the file open and unfinished
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        temp_path = Path(proc.stdout.readline().strip())
        assert temp_path.name == f".killed.gcv.partial-{proc.pid}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert not path.exists()
    assert temp_path.exists()  # what a killed writer leaves: hidden, and refused by the reader
    with pytest.raises(TruncatedError) as err:
        ContainerReader(temp_path)
    # the packets still in the killed process's write buffer are lost with it
    _check_message(err, temp_path, "truncated", "complete packets", "interrupted")


# ------------------------------------------------------------------------ errors


def test_png_bytes_raise_bad_magic(tmp_path):
    path = tmp_path / "frame.png"
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 17, 33, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + b"\x00" * 40)
    with pytest.raises(BadMagicError) as err:
        ContainerReader(path)
    _check_message(err, path, "not a .gcv container", "89 50 4e 47")


def test_unsupported_major_version_is_refused(tmp_path):
    path = _small_file(tmp_path / "future.gcv")
    data = bytearray(path.read_bytes())
    data[8] = 2
    path.write_bytes(data)
    with pytest.raises(UnsupportedVersionError) as err:
        ContainerReader(path)
    _check_message(err, path, "unsupported format version 2.0", "1.x", "upgrade")


def test_reader_skips_fields_appended_by_a_newer_minor_version(tmp_path, monkeypatch):
    """A minor version may append fields to the header body and to packet metas."""

    def header_v1_1(header, num_frames):
        plain = encode_header(header, num_frames)
        body_size, body_start = decode_uvarint(plain, 14)
        body = plain[body_start : body_start + body_size] + b"\x07future"
        covered = bytes([1, 1]) + struct.pack("<I", num_frames) + encode_uvarint(len(body)) + body
        return plain[:8] + covered + struct.pack("<I", zlib.crc32(covered))

    def packet_head_v1_1(packet):
        plain = encode_packet_head(packet)
        meta_size, start = decode_uvarint(plain)
        return encode_uvarint(meta_size + 2) + plain[start:] + b"\x2a\x00"

    encode_header = container_module.encode_header
    encode_packet_head = container_module.encode_packet_head
    monkeypatch.setattr(container_module, "encode_header", header_v1_1)
    monkeypatch.setattr(container_module, "encode_packet_head", packet_head_v1_1)
    packets = [_packet(i) for i in range(6)]
    path = _write(tmp_path / "newer.gcv", _header(), packets)
    with ContainerReader(path) as reader:
        assert reader.version == (1, 1)
        assert reader.header == _header(num_frames=6)
        assert list(reader) == packets


def test_wrong_fingerprint_names_both(tmp_path):
    path = _small_file(tmp_path / "clip.gcv")
    other = hashlib.sha256(b"another model").digest()
    with pytest.raises(FingerprintMismatchError) as err:
        ContainerReader(path, expected_fingerprint=other)
    _check_message(err, path, "fingerprint mismatch", FINGERPRINT[:6].hex(), other[:6].hex())


def test_every_cut_of_a_small_file_raises_truncated_error(tmp_path):
    data = _small_file(tmp_path / "full.gcv").read_bytes()
    path = tmp_path / "cut.gcv"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        with pytest.raises(TruncatedError) as err:
            _read_all(path)
        _check_message(err, path, "truncated")
    assert len(_read_all(tmp_path / "full.gcv")) == 6


def test_cut_messages_say_where_the_file_ends(tmp_path):
    full = _small_file(tmp_path / "full.gcv")
    data = full.read_bytes()
    with ContainerReader(full) as reader:
        header_end = reader.index[0].offset
        ends = [info.offset + info.size for info in reader.packet_sizes()]
    path = tmp_path / "cut.gcv"
    for cut, words in [
        (header_end - 1, "ends inside the sequence header"),
        (header_end, "ends right after the sequence header"),
        (ends[2] + 3, "after 3 complete packets the file ends inside packet 3"),
        (ends[-1], "after 6 complete packets"),
    ]:
        path.write_bytes(data[:cut])
        with pytest.raises(TruncatedError) as err:
            ContainerReader(path)
        _check_message(err, path, "truncated", words)


def test_flipped_string_byte_raises_crc_error_naming_the_packet(tmp_path):
    path = _small_file(tmp_path / "clip.gcv")
    with ContainerReader(path) as reader:
        info = list(reader.packet_sizes())[2]
    data = bytearray(path.read_bytes())
    data[info.offset + info.size - 4 - 5] ^= 0x10  # inside packet 2's strings
    path.write_bytes(data)
    with ContainerReader(path) as reader:
        assert reader.read_packet(1) == _packet(1)
        with pytest.raises(CRCError) as err:
            reader.read_packet(2)
        _check_message(err, path, "CRC mismatch in packet 2")
        with pytest.raises(CRCError):
            list(reader.packet_sizes())


def test_frame_size_above_the_caps_is_absurd(tmp_path):
    path = _write(tmp_path / "huge.gcv", _header(width=20000, height=100), [_packet(0)])
    with pytest.raises(AbsurdDimensionsError) as err:
        ContainerReader(path)
    _check_message(err, path, "absurd frame size 20000x100", "16384x16384")
    with ContainerReader(path, max_width=20000) as reader:
        assert reader.header.width == 20000
    small = _write(tmp_path / "odd.gcv", _header(width=17, height=33), [_packet(0)])
    with pytest.raises(AbsurdDimensionsError) as err:
        ContainerReader(small, max_width=16, max_height=16)
    _check_message(err, small, "absurd frame size 17x33")


def test_zero_width_is_absurd(tmp_path):
    path = _small_file(tmp_path / "zero.gcv")
    data = bytearray(path.read_bytes())
    _, body_start = decode_uvarint(data, 14)
    assert data[body_start] == 64  # width, the first field of the header body
    data[body_start] = 0
    _resign_header(data)
    path.write_bytes(data)
    with pytest.raises(AbsurdDimensionsError) as err:
        ContainerReader(path)
    _check_message(err, path, "absurd frame size 0x48")


def test_absurd_frame_count_is_refused(tmp_path):
    path = _small_file(tmp_path / "count.gcv")
    data = bytearray(path.read_bytes())
    data[10:14] = struct.pack("<I", 1_000_000_000)
    _resign_header(data)
    path.write_bytes(data)
    with pytest.raises(AbsurdDimensionsError) as err:
        ContainerReader(path)
    _check_message(err, path, "absurd frame count", "1000000000 frames")


def test_string_length_larger_than_the_file_is_refused_before_reading(tmp_path):
    path = _write(tmp_path / "len.gcv", _header(), [FramePacket(0, I, 1, (), (b"s" * 200,))])
    data = bytearray(path.read_bytes())
    with ContainerReader(path) as reader:
        start = reader.index[0].offset
    # meta_len, then frame 0, type I, quality 1, 0 shapes, 1 string of 200 (c8 01)
    assert data[start : start + 8] == bytes([7, 0, 0, 1, 0, 1, 0xC8, 0x01])
    data[start + 6 : start + 8] = b"\xff\x7f"  # 16383 bytes, more than the file
    path.write_bytes(data)
    with ContainerReader(path) as reader:
        with pytest.raises(AbsurdDimensionsError) as err:
            list(reader)
    _check_message(err, path, "packet 0", "string 0 claims 16383 bytes")


def test_absurd_tensor_shape_is_refused(tmp_path):
    big = (2**31 - 1, 2**31 - 1)
    path = _write(tmp_path / "shape.gcv", _header(), [FramePacket(0, I, 1, (big,), (b"",))])
    with ContainerReader(path) as reader:
        with pytest.raises(AbsurdDimensionsError) as err:
            reader.read_packet(0)
    _check_message(err, path, "packet 0", "absurd shape 0")


def test_random_corruption_only_raises_bitstream_errors(tmp_path):
    original = _small_file(tmp_path / "clip.gcv").read_bytes()
    path = tmp_path / "mutant.gcv"
    rng = random.Random(20240601)
    kinds = ["flip", "byte", "run", "delete", "insert", "truncate", "duplicate"]
    counts = dict.fromkeys(kinds, 0)
    for _ in range(400):
        data = bytearray(original)
        kind = rng.choice(kinds)
        pos = rng.randrange(len(data))
        if kind == "flip":
            data[pos] ^= 1 << rng.randrange(8)
        elif kind == "byte":
            data[pos] = (data[pos] + rng.randrange(1, 256)) % 256
        elif kind == "run":
            data[pos : pos + 8] = rng.randbytes(len(data[pos : pos + 8]))
        elif kind == "delete":
            del data[pos : pos + rng.randrange(1, 16)]
        elif kind == "insert":
            data[pos:pos] = rng.randbytes(rng.randrange(1, 16))
        elif kind == "truncate":
            del data[pos:]
        else:
            data[pos:pos] = data[pos : pos + rng.randrange(1, 16)]
        if data == original:
            continue
        counts[kind] += 1
        path.write_bytes(data)
        # every byte is covered by a magic, a CRC or a length check, so any change is caught
        with pytest.raises(BitstreamError) as err:
            _read_all(path, expected_fingerprint=FINGERPRINT)
        assert str(path) in str(err.value)
    assert min(counts.values()) > 30, counts


# ------------------------------------------------------------------------ seeking, info


def test_seek_via_index_returns_the_right_packet(tmp_path):
    packets = [_packet(i, frame_type=I if i % 8 == 0 else P) for i in range(25)]
    path = _write(tmp_path / "seek.gcv", _header(intra_period=8), packets)
    with ContainerReader(path) as reader:
        assert [entry.frame_index for entry in reader.index] == [0, 8, 16, 24]
        assert reader.seek(13) == reader.index[1] and reader.seek(24) == reader.index[3]
        for i in (24, 0, 13, 8, 7, 17):
            assert reader.read_packet(i) == packets[i]
        assert list(reader.iter_packets(13)) == packets[13:]
        assert list(reader.iter_packets(25)) == []
        # independent iterators over one reader do not disturb each other
        a, b = iter(reader), reader.iter_packets(20)
        interleaved = [next(a), next(b), next(a), next(b)]
        assert interleaved == [packets[0], packets[20], packets[1], packets[21]]
        with pytest.raises(IndexError):
            reader.read_packet(25)
        with pytest.raises(IndexError):
            reader.iter_packets(26)
        with open(path, "rb") as f:
            f.seek(reader.index[2].offset)
            meta_size, n = decode_uvarint(f.read(10))
            f.seek(reader.index[2].offset + n)
            assert decode_uvarint(f.read(meta_size))[0] == 16  # the packet of frame 16


def test_describe_and_format_info_report_sizes_and_overhead(tmp_path):
    path = _small_file(tmp_path / "clip.gcv")
    summary = describe(path, expected_fingerprint=FINGERPRINT)
    assert json.loads(json.dumps(summary)) == summary
    with ContainerReader(path) as reader:
        overhead = reader.container_overhead_bytes()
        sizes = list(reader.packet_sizes())
    assert summary["total_bytes"] == path.stat().st_size
    assert summary["overhead_bytes"] == overhead
    assert summary["payload_bytes"] == sum(info.payload_bytes for info in sizes)
    assert [f["bytes"] for f in summary["frames"]] == [info.size for info in sizes]
    assert [f["type"] for f in summary["frames"]] == ["I", "P", "P", "P", "I", "P"]
    assert summary["frame_types"] == {"I": 2, "P": 4}
    assert summary["bits_per_pixel"] == pytest.approx(8 * summary["total_bytes"] / (64 * 48 * 6))
    assert summary["kbps"] == pytest.approx(8 * summary["total_bytes"] / (6 / 25) / 1000)
    text = format_info(summary)
    assert "64x48" in text and "6 (2 I, 4 P)" in text and "B/frame" in text
    assert "per type   I " in text  # bits per pixel of each frame type
    assert len(text.splitlines()) == 7 + 2 + 6
    assert "..." in format_info(summary, max_rows=4)


def test_typical_iframe_packet_overhead_is_under_32_bytes(tmp_path):
    """A 1080p I-frame: shapes of the frame and the latent, a y string and a z string."""
    packet = FramePacket(0, I, 3, ((1080, 1920), (68, 120)), (b"y" * 40_000, b"z" * 900))
    path = _write(tmp_path / "typical.gcv", _header(width=1920, height=1080), [packet])
    with ContainerReader(path) as reader:
        (info,) = reader.packet_sizes()
    assert info.size - info.payload_bytes < 32


# ------------------------------------------------------------------------ format stability


def _golden_container(path: Path) -> Path:
    header = SequenceHeader(
        width=17,
        height=33,
        fps_num=30000,
        fps_den=1001,
        num_frames=0,
        matrix="bt709",
        color_range="limited",
        intra_period=2,
        model_name="golden",
        model_fingerprint=hashlib.sha256(b"gan_compress golden model").digest(),
        extensions={"note": b"golden v1.0"},
    )
    packets = [
        FramePacket(0, I, 3, ((33, 17), (1, 3, 2, 192)), (bytes(range(40)), b"\xff")),
        FramePacket(1, P, 3, ((33, 17),), (b"p-frame", b"")),
        FramePacket(2, I, 1, (), ()),
        FramePacket(3, P, 6, ((0,),), (b"\x00" * 5,)),
    ]
    return _write(path, header, packets)


def test_writer_output_matches_the_golden_bitstream(tmp_path):
    data = _golden_container(tmp_path / "golden.gcv").read_bytes()
    assert hashlib.sha256(data).hexdigest() == GOLDEN_SHA256
    assert data == GOLDEN.read_bytes()


def test_golden_bitstream_still_reads(tmp_path):
    expected = _read_all(_golden_container(tmp_path / "golden.gcv"))
    assert hashlib.sha256(GOLDEN.read_bytes()).hexdigest() == GOLDEN_SHA256
    assert _read_all(GOLDEN) == expected


def test_package_imports_neither_tensorflow_nor_numpy():
    code = (
        "import sys, gan_compress.bitstream; "
        "heavy = [m for m in ('tensorflow', 'numpy') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
