"""The values that cross the bitstream boundary: sequence header, frame packets, index entries.

These are plain frozen dataclasses and NamedTuples with no knowledge of bytes; `syntax.py` maps
them to the byte layout and `container.py` to files. Constructors validate and normalise their
arguments (lists become tuples, numpy integers become ints via `operator.index`), raising
`ValueError`/`TypeError` for a caller's mistake; the reader turns those into `BitstreamError`s.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

MATRICES = ("bt601", "bt709")  # colour matrix names; the code in the file is the position
COLOR_RANGES = ("limited", "full")  # limited = 16..235 luma (TV), full = 0..255 (PC)
FINGERPRINT_BYTES = 32  # sha256 of the exported weights + config
MAX_QUALITY = 255  # quality levels are small ints 1..N
MAX_RANK = 8  # tensor shapes of rank above this are refused
MAX_DIM = (1 << 31) - 1  # each dimension fits TF's int32 shapes
MAX_DIMENSION = (1 << 31) - 1  # width and height (the reader applies much smaller caps)
MAX_FRAMES = (1 << 32) - 1  # the frame count is a u32 in the file
MAX_NAME_BYTES = 1024  # model name and extension keys, UTF-8


class FrameType(enum.IntEnum):
    """Coding type of a frame; the value is what the file stores.

    New types (e.g. B = 2) take new values with a minor version bump; a reader that meets a value
    it does not know refuses the packet rather than guessing how to decode it.
    """

    I = 0  # noqa: E741  (the name of the frame type) intra: decodable alone, listed in the index
    P = 1  # predicted from the previous decoded frame

    @property
    def is_key(self) -> bool:
        """True if decoding can start at this frame (it goes into the seek index)."""
        return self is FrameType.I


class _FrozenMap(Mapping[str, bytes]):
    """An immutable, hashable, picklable str -> bytes mapping, iterated in key order."""

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[str, bytes] | Iterable[tuple[str, bytes]] = ()):
        data = dict(items)
        self._data = {key: data[key] for key in sorted(data)}

    def __getitem__(self, key: str) -> bytes:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(tuple(self._data.items()))

    def __repr__(self) -> str:
        return repr(self._data)

    def __reduce__(self):
        return (type(self), (self._data,))


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got a bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def _bytes(value: Any, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{name} must be bytes, got {type(value).__name__}")


def _name(value: Any, name: str, allow_empty: bool) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    size = len(value.encode("utf-8"))
    if size > MAX_NAME_BYTES or (size == 0 and not allow_empty):
        raise ValueError(f"{name} must be 1..{MAX_NAME_BYTES} UTF-8 bytes, got {size}")
    return value


@dataclasses.dataclass(frozen=True)
class SequenceHeader:
    """What a decoder needs before the first frame.

    `num_frames` is 0 while a file is being written ("unknown"); `ContainerWriter.close()` stores
    the number of packets actually written, whatever the header passed to it said.
    `model_fingerprint` (32 bytes) identifies the exported model (sha256 of weights + config),
    so a decoder can refuse a file made by different weights instead of decoding noise.
    `extensions` holds later additions (str -> bytes) that older readers carry along unread.
    """

    width: int
    height: int
    fps_num: int
    fps_den: int
    num_frames: int
    matrix: str  # one of MATRICES
    color_range: str  # one of COLOR_RANGES
    intra_period: int  # frames between I-frames; 1 = all intra, 0 = only the first frame
    model_name: str
    model_fingerprint: bytes
    extensions: Mapping[str, bytes] = dataclasses.field(default_factory=_FrozenMap)

    def __post_init__(self):
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("width", _int(self.width, "width", 1, MAX_DIMENSION))
        put("height", _int(self.height, "height", 1, MAX_DIMENSION))
        put("fps_num", _int(self.fps_num, "fps_num", 1, MAX_DIM))
        put("fps_den", _int(self.fps_den, "fps_den", 1, MAX_DIM))
        put("num_frames", _int(self.num_frames, "num_frames", 0, MAX_FRAMES))
        if self.matrix not in MATRICES:
            raise ValueError(f"matrix must be one of {MATRICES}, got {self.matrix!r}")
        if self.color_range not in COLOR_RANGES:
            raise ValueError(f"color_range must be one of {COLOR_RANGES}, got {self.color_range!r}")
        put("intra_period", _int(self.intra_period, "intra_period", 0, MAX_FRAMES))
        put("model_name", _name(self.model_name, "model_name", allow_empty=True))
        fingerprint = _bytes(self.model_fingerprint, "model_fingerprint")
        if len(fingerprint) != FINGERPRINT_BYTES:
            raise ValueError(
                f"model_fingerprint must be {FINGERPRINT_BYTES} bytes (sha256), "
                f"got {len(fingerprint)}"
            )
        put("model_fingerprint", fingerprint)
        if not isinstance(self.extensions, Mapping):
            raise TypeError(f"extensions must be a Mapping, got {type(self.extensions).__name__}")
        put(
            "extensions",
            _FrozenMap(
                (_name(key, "extension key", allow_empty=False), _bytes(value, f"extension {key}"))
                for key, value in self.extensions.items()
            ),
        )

    @property
    def fps(self) -> float:
        return self.fps_num / self.fps_den


@dataclasses.dataclass(frozen=True)
class FramePacket:
    """One coded frame: its entropy-coded strings and the tensor shapes needed to decode them.

    `shapes` are tuples of non-negative ints (e.g. the `[H, W]` of the frame and of each latent);
    `strings` are the entropy coder's outputs, in the order the model's `decompress` takes them.
    Either may be empty. `quality` is the rate level the frame was coded at, 1..MAX_QUALITY.
    """

    frame_index: int
    frame_type: FrameType
    quality: int
    shapes: tuple[tuple[int, ...], ...]
    strings: tuple[bytes, ...]

    def __post_init__(self):
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("frame_index", _int(self.frame_index, "frame_index", 0, MAX_FRAMES - 1))
        put("frame_type", FrameType(_int(self.frame_type, "frame_type", 0, MAX_FRAMES)))
        put("quality", _int(self.quality, "quality", 1, MAX_QUALITY))
        if isinstance(self.shapes, str | bytes) or isinstance(self.strings, str | bytes):
            raise TypeError("shapes and strings must be sequences (of shapes, of bytes)")
        shapes = []
        for i, shape in enumerate(self.shapes):
            shape = tuple(_int(d, f"shapes[{i}] dimension", 0, MAX_DIM) for d in shape)
            if len(shape) > MAX_RANK:
                raise ValueError(f"shapes[{i}] has rank {len(shape)}, above {MAX_RANK}")
            shapes.append(shape)
        put("shapes", tuple(shapes))
        put("strings", tuple(_bytes(s, f"strings[{i}]") for i, s in enumerate(self.strings)))

    @property
    def payload_bytes(self) -> int:
        """Total length of the entropy-coded strings."""
        return sum(len(s) for s in self.strings)


class IndexEntry(NamedTuple):
    """A key frame in the seek index: where decoding can start."""

    frame_index: int
    offset: int  # byte offset of the frame's packet from the start of the file


class PacketInfo(NamedTuple):
    """Size of one packet, as listed by `ContainerReader.packet_sizes()`."""

    frame_index: int
    frame_type: FrameType
    quality: int
    offset: int  # byte offset of the packet
    size: int  # whole packet in bytes: payload + packet header + CRC
    payload_bytes: int  # entropy-coded strings only
