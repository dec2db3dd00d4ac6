"""`gan-compress info`: a JSON-able summary of a `.gcv` file and its human-readable table."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from gan_compress.bitstream.container import ContainerReader


def describe(path: str | os.PathLike, expected_fingerprint: bytes | None = None) -> dict[str, Any]:
    """Summarises a `.gcv` file without decoding it; every packet's CRC is checked on the way.

    Returns plain JSON types: `header` (its fields, the fingerprint and extension values as hex),
    `frames` (one `{index, type, quality, bytes, payload_bytes}` per frame), sizes in bytes,
    `bits_per_pixel` (whole file over width * height * frames), `kbps` (whole file over the
    duration given by fps) and the container overhead (bytes that are not entropy-coded strings).
    Raises `BitstreamError` for a bad file.
    """
    with ContainerReader(path, expected_fingerprint=expected_fingerprint) as reader:
        header = reader.header
        frames = [
            {
                "index": info.frame_index,
                "type": info.frame_type.name,
                "quality": info.quality,
                "bytes": info.size,
                "payload_bytes": info.payload_bytes,
            }
            for info in reader.packet_sizes(verify=True)
        ]
        total = reader.file_size
        version = reader.version
        key_frames = [entry.frame_index for entry in reader.index]
    n = len(frames)
    payload = sum(frame["payload_bytes"] for frame in frames)
    duration = n * header.fps_den / header.fps_num
    return {
        "path": os.fspath(path),
        "format_version": f"{version[0]}.{version[1]}",
        "header": {
            "width": header.width,
            "height": header.height,
            "fps_num": header.fps_num,
            "fps_den": header.fps_den,
            "fps": header.fps,
            "num_frames": header.num_frames,
            "matrix": header.matrix,
            "color_range": header.color_range,
            "intra_period": header.intra_period,
            "model_name": header.model_name,
            "model_fingerprint": header.model_fingerprint.hex(),
            "extensions": {key: value.hex() for key, value in header.extensions.items()},
        },
        "frames": frames,
        "frame_types": dict(sorted(Counter(frame["type"] for frame in frames).items())),
        # mean bits per pixel of each frame type's packets (I-frames cost several P-frames)
        "bits_per_pixel_by_type": {
            kind: 8 * sum(f["bytes"] for f in frames if f["type"] == kind)
            / (header.width * header.height * count)
            for kind, count in sorted(Counter(frame["type"] for frame in frames).items())},
        "key_frames": key_frames,
        "total_bytes": total,
        "payload_bytes": payload,
        "overhead_bytes": total - payload,
        "overhead_bytes_per_frame": (total - payload) / n if n else None,
        "duration_s": duration,
        "bits_per_pixel": 8 * total / (header.width * header.height * n) if n else None,
        "kbps": 8 * total / duration / 1000 if n else None,
    }


def _thousands(value: int) -> str:
    return f"{value:,}"


def format_info(summary: dict[str, Any], max_rows: int | None = None) -> str:
    """Renders `describe()`'s summary as text: header lines, then one row per frame.

    `max_rows` limits the frame table (first and last rows are kept, the middle elided).
    """
    h = summary["header"]
    n = len(summary["frames"])
    types = ", ".join(f"{count} {name}" for name, count in summary["frame_types"].items())
    overhead = summary["overhead_bytes"]
    lines = [
        f"file       {summary['path']}  ({_thousands(summary['total_bytes'])} bytes, "
        f"format {summary['format_version']})",
        f"model      {h['model_name']}  fingerprint {h['model_fingerprint'][:12]}  "
        + (f"(shipped model {summary['shipped_model']})" if summary.get("shipped_model")
           else "(not a shipped model: decode needs --model)"),
        f"video      {h['width']}x{h['height']}  {h['fps_num']}/{h['fps_den']} fps "
        f"({h['fps']:.3f})  {h['matrix']} {h['color_range']} range  "
        f"intra period {h['intra_period']}",
        f"frames     {n}" + (f" ({types})" if types else "")
        + f"  {summary['duration_s']:.3f} s",
    ]
    if n:
        lines.append(
            f"rate       {summary['bits_per_pixel']:.4f} bpp  {summary['kbps']:.1f} kbps"
        )
        lines.append(
            f"overhead   {_thousands(overhead)} bytes  "
            f"({summary['overhead_bytes_per_frame']:.1f} B/frame, "
            f"{100 * overhead / summary['total_bytes']:.2f} % of the file)"
        )
    by_type = summary.get("bits_per_pixel_by_type", {})
    if len(by_type) > 1:
        lines.append("per type   " + "  ".join(f"{kind} {bpp:.4f} bpp"
                                               for kind, bpp in by_type.items()))
    for key, value in h["extensions"].items():
        lines.append(f"extension  {key}: {len(value) // 2} bytes")
    if n:
        rows = summary["frames"]
        shown = list(range(n))
        if max_rows is not None and n > max_rows:
            head = max(max_rows // 2, 1)
            shown = list(range(head)) + [-1] + list(range(n - (max_rows - head), n))
        width = max(len(_thousands(frame["bytes"])) for frame in rows)
        lines.append("")
        lines.append(f"{'frame':>7}  type  quality  {'bytes':>{width}}")
        for i in shown:
            if i < 0:
                lines.append(f"{'...':>7}")
                continue
            frame = rows[i]
            lines.append(
                f"{frame['index']:>7}  {frame['type']:>4}  {frame['quality']:>7}  "
                f"{_thousands(frame['bytes']):>{width}}"
            )
    return "\n".join(lines)
