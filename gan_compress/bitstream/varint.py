"""Unsigned LEB128 variable-length integers.

Seven bits per byte, least significant group first; the high bit says "more bytes follow".
0..127 take one byte, up to 16383 two, and a 64-bit value at most ten. Encodings are minimal:
the decoder refuses a redundant trailing zero group, so every value has exactly one encoding
(which keeps golden hashes meaningful).
"""

from __future__ import annotations

MAX_VARINT_BYTES = 10  # enough for 2**64 - 1
MAX_VALUE = (1 << 64) - 1


class VarintError(ValueError):
    """Bytes that are not a valid varint (too long, non-minimal, or above 64 bits)."""


class TruncatedVarintError(VarintError):
    """The data ends before the varint's last byte."""


def encode_uvarint(value: int) -> bytes:
    """Encodes `value` (an int in [0, 2**64)) as unsigned LEB128."""
    if value < 0 or value > MAX_VALUE:
        raise ValueError(f"varint value {value} is outside [0, 2**64)")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(data: bytes, pos: int = 0) -> tuple[int, int]:
    """Decodes one varint from `data` at `pos`; returns `(value, position after it)`.

    Raises `TruncatedVarintError` if `data` ends first, `VarintError` if the bytes are invalid.
    """
    value = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise TruncatedVarintError("data ends inside a varint")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise VarintError("non-minimal varint (redundant trailing zero byte)")
            if value > MAX_VALUE:
                raise VarintError("varint above 2**64 - 1")
            return value, pos + i + 1
    raise VarintError(f"varint longer than {MAX_VARINT_BYTES} bytes")
