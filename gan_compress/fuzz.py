"""A supervised fuzzer for `.gcv` readers: structure-aware and raw mutations, hang/crash/memory
watch, counts per outcome.

    seeds = [open("a.gcv", "rb").read()]
    report = fuzz(seeds, path="decode", cases=20_000, model="small-mse", seed=0)
    print(format_report(report))

Mutations (`Mutator`), drawn with a seeded `random.Random`:
- `record`: edit the parsed header or packets (shapes, quality, frame type, strings cut, grown,
  swapped or replaced, frame size, frame rate, packets dropped, duplicated or reordered) and
  write them back with `ContainerWriter`, so every CRC, offset and the seek index are valid;
- `fixup`: change bytes in place inside one region (header body, a packet's meta, its strings,
  the index, the trailer) and recompute every CRC over the original layout;
- `raw`: flips, overwrites, truncation, insertion, deletion and duplication of byte ranges.

Each case runs in a worker process (`path="info"`: `bitstream.describe`; `path="decode"`: a
loaded codec's `iter_decoded`), supervised by the parent: no answer within `timeout` seconds is
a *hang* (the worker is killed and restarted), a worker that dies is a *crash*, a worker whose
resident memory grows above `max_rss_mb` is *memory*. Otherwise the outcome is *clean_error*
(the container's `BitstreamError`), *other_exception* (anything else: a bug), or
*silent_decode* (the mutated file was read without error; for decode, `size_mismatch` counts
the frames whose size differs from the header's).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import random
import struct
import tempfile
import time
import zlib
from collections import Counter
from typing import Any, NamedTuple

from gan_compress import bitstream as bs
from gan_compress.bitstream import varint

OUTCOMES = ("clean_error", "other_exception", "hang", "crash", "memory", "silent_decode")
TRAILER_BYTES = 24


class Layout(NamedTuple):
    """Byte extents of a valid `.gcv` file (see docs/bitstream.md)."""

    header: tuple[int, int]  # [start, end) of the CRC-covered header bytes; CRC at end
    packets: tuple[tuple[int, int, int], ...]  # (offset, meta end, end) per packet; CRC at end-4
    index: tuple[int, int]  # [start, end) of index bytes before its CRC
    size: int


def layout(data: bytes, path: str) -> Layout:
    """Parses the extents of a valid file (written to `path` for the reader)."""
    with bs.ContainerReader(path) as reader:
        sizes = list(reader.packet_sizes(verify=True))
    body_len, n = varint.decode_uvarint(data[14:24])
    header_end = 14 + n + body_len
    packets = []
    for p in sizes:
        meta_len, m = varint.decode_uvarint(data[p.offset:p.offset + 10])
        packets.append((p.offset, p.offset + m + meta_len, p.offset + p.size))
    index_offset, index_size = struct.unpack("<QQ", data[-TRAILER_BYTES:-8])
    return Layout((8, header_end), tuple(packets),
                  (index_offset, index_offset + index_size - 4), len(data))


def fix_crcs(buf: bytearray, lay: Layout) -> None:
    """Recomputes every CRC of `buf` over the extents of `lay` (in place)."""
    def put(pos: int, start: int) -> None:
        if 0 <= start <= pos and pos + 4 <= len(buf):
            buf[pos:pos + 4] = struct.pack("<I", zlib.crc32(bytes(buf[start:pos])) & 0xFFFFFFFF)

    put(lay.header[1], lay.header[0])
    for offset, _, end in lay.packets:
        put(end - 4, offset)
    put(lay.index[1], lay.index[0])
    put(len(buf) - 8, len(buf) - TRAILER_BYTES)


def _interesting_int(rng: random.Random, old: int) -> int:
    return rng.choice([0, 1, 2, 3, old + 1, max(0, old - 1), old * 2, old * 64, 255, 256,
                       4095, 4096, 65535, 1 << 20, (1 << 31) - 1, rng.randrange(1 << 16)])


class Mutator:
    """Produces mutated variants of seed files; see the module docstring."""

    def __init__(self, seeds: list[bytes], rng: random.Random, workdir: str):
        self.rng = rng
        self.seeds = []
        for i, data in enumerate(seeds):
            path = os.path.join(workdir, f"seed{i}.gcv")
            with open(path, "wb") as f:
                f.write(data)
            with bs.ContainerReader(path) as reader:
                parsed = (reader.header, list(reader))
            self.seeds.append((data, layout(data, path), parsed))
        self.workdir = workdir

    def __call__(self) -> tuple[str, bytes]:
        """Returns (mutation kind, mutated bytes), never the seed unchanged."""
        for _ in range(100):
            data, lay, parsed = self.rng.choice(self.seeds)
            kind = self.rng.choices(["record", "fixup", "raw"], [4, 4, 2])[0]
            try:
                out = getattr(self, "_" + kind)(data, lay, parsed)
            except (ValueError, TypeError, OverflowError):
                continue  # the writer refused the edited records: draw again
            if out != data:
                return kind, out
        raise RuntimeError("could not produce a mutation")

    # -- record-level: valid CRCs, offsets and index ---------------------------------------------

    def _record(self, data, lay, parsed) -> bytes:
        rng = self.rng
        header, packets = parsed
        packets = list(packets)
        edit = rng.randrange(11)
        if edit <= 6 and packets:
            i = rng.randrange(len(packets))
            p = packets[i]
            if edit == 0:  # one dimension of one shape
                shapes = [list(s) for s in p.shapes]
                s = rng.randrange(len(shapes))
                if shapes[s]:
                    d = rng.randrange(len(shapes[s]))
                    shapes[s][d] = _interesting_int(rng, shapes[s][d])
                p = dataclasses.replace(p, shapes=tuple(tuple(s) for s in shapes))
            elif edit == 1:  # shapes consistently for another frame size
                h, w = _interesting_int(rng, p.shapes[0][0]), _interesting_int(rng, p.shapes[0][1])
                ph, pw = -(-h // 64) * 64, -(-w // 64) * 64
                shapes = ((h, w), (ph // 16, pw // 16), (ph // 64, pw // 64))
                p = dataclasses.replace(p, shapes=shapes)
            elif edit == 2:
                p = dataclasses.replace(p, quality=rng.randrange(0, 256) or 1)
            elif edit == 3:
                p = dataclasses.replace(p, frame_type=bs.FrameType(rng.randrange(2)))
            elif edit == 4:  # one string cut, grown, replaced or emptied
                strings = list(p.strings)
                s = rng.randrange(len(strings))
                old = strings[s]
                strings[s] = rng.choice([
                    old[:rng.randrange(len(old) + 1)],
                    old + rng.randbytes(rng.randrange(1, 64)),
                    rng.randbytes(len(old)),
                    b"",
                    old[::-1],
                ])
                p = dataclasses.replace(p, strings=tuple(strings))
            elif edit == 5:  # strings swapped or one dropped, shapes dropped or added
                p = rng.choice([
                    dataclasses.replace(p, strings=tuple(reversed(p.strings))),
                    dataclasses.replace(p, strings=p.strings[:-1]),
                    dataclasses.replace(p, shapes=p.shapes[:-1]),
                    dataclasses.replace(p, shapes=p.shapes + ((1, 1, 1),)),
                ])
            else:  # bytes flipped inside an entropy-coded string
                strings = list(p.strings)
                s = rng.randrange(len(strings))
                if strings[s]:
                    b = bytearray(strings[s])
                    b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
                    strings[s] = bytes(b)
                p = dataclasses.replace(p, strings=tuple(strings))
            packets[i] = p
        elif edit == 7:
            header = dataclasses.replace(header, width=_interesting_int(rng, header.width) or 1,
                                         height=_interesting_int(rng, header.height) or 1)
        elif edit == 8:
            header = dataclasses.replace(header, fps_num=_interesting_int(rng, 25) or 1,
                                         fps_den=_interesting_int(rng, 1) or 1,
                                         intra_period=_interesting_int(rng, 1))
        elif edit == 9 and len(packets) > 1:  # drop, duplicate or swap packets (renumbered)
            i = rng.randrange(len(packets))
            op = rng.randrange(3)
            if op == 0:
                del packets[i]
            elif op == 1:
                packets.insert(i, packets[i])
            else:
                j = rng.randrange(len(packets))
                packets[i], packets[j] = packets[j], packets[i]
            packets = [dataclasses.replace(p, frame_index=k) for k, p in enumerate(packets)]
        else:
            header = dataclasses.replace(header, matrix=rng.choice(bs.MATRICES),
                                         color_range=rng.choice(bs.COLOR_RANGES))
        path = os.path.join(self.workdir, "record.gcv")
        with bs.ContainerWriter(path, header) as writer:
            for p in packets:
                writer.write(p)
        with open(path, "rb") as f:
            return f.read()

    # -- in-place bytes, CRCs recomputed ----------------------------------------------------------

    def _fixup(self, data, lay, parsed) -> bytes:
        rng = self.rng
        regions = [(14, lay.header[1])]
        for offset, meta_end, end in lay.packets:
            regions += [(offset, meta_end), (meta_end, end - 4)]
        regions += [lay.index, (lay.size - TRAILER_BYTES, lay.size - 8)]
        start, end = rng.choice([r for r in regions if r[1] > r[0]])
        buf = bytearray(data)
        for _ in range(rng.choice([1, 1, 2, 4])):
            pos = rng.randrange(start, end)
            buf[pos] = rng.choice([buf[pos] ^ (1 << rng.randrange(8)), 0x00, 0xFF, 0x80, 0x7F,
                                   rng.randrange(256)])
        fix_crcs(buf, lay)
        return bytes(buf)

    # -- raw bytes --------------------------------------------------------------------------------

    def _raw(self, data, lay, parsed) -> bytes:
        rng = self.rng
        buf = bytearray(data)
        op = rng.randrange(6)
        pos = rng.randrange(len(buf))
        if op == 0:
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos] = rng.randrange(256)
        elif op == 2:
            del buf[pos:]
        elif op == 3:
            buf[pos:pos] = rng.randbytes(rng.randrange(1, 32))
        elif op == 4:
            del buf[pos:pos + rng.randrange(1, 32)]
        else:
            n = rng.randrange(1, 64)
            buf[pos:pos] = buf[pos:pos + n]
        return bytes(buf)


# -- supervised workers ---------------------------------------------------------------------------


def _worker(conn, path_kind: str, model: str | None, workdir: str, warmup: bytes) -> None:
    """Runs cases sent over `conn`; answers (outcome, detail, frames with a wrong size, peak
    RSS in kB, range decoders left spinning past their budget). Decodes `warmup` (a valid
    file) first, so tracing the decoder is not timed."""
    import resource

    codec = api = None
    file = os.path.join(workdir, f"case-{os.getpid()}.gcv")
    if path_kind == "decode":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from gan_compress import api

        codec = api.load(model)
        with open(file, "wb") as f:
            f.write(warmup)
        for _ in codec.iter_decoded(file):
            pass
    conn.send(("ready", "", 0))
    while True:
        try:
            data = conn.recv()
        except EOFError:
            return
        with open(file, "wb") as f:
            f.write(data)
        mismatched = 0
        try:
            if codec is None:
                bs.describe(file)
            else:
                header = codec.read_header(file)
                for rgb in codec.iter_decoded(file):
                    mismatched += rgb.shape[:2] != (header.height, header.width)
            outcome, detail = "silent_decode", ""
        except bs.BitstreamError as e:
            outcome, detail = "clean_error", str(e)[:300]
        except Exception as e:  # noqa: BLE001 - what the fuzzer is looking for
            outcome, detail = "other_exception", f"{type(e).__name__}: {str(e)[:300]}"
        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        conn.send((outcome, detail, mismatched, rss_kb, api.stuck_decoders() if api else 0))


class _Supervisor:
    def __init__(self, path_kind: str, model: str | None, workdir: str, start_timeout: float,
                 warmup: bytes):
        self.args = (path_kind, model, workdir, warmup)
        self.start_timeout = start_timeout
        self.ctx = multiprocessing.get_context("spawn")
        self.proc = None
        self.restarts = 0
        self.budget_overruns = 0
        self._start()

    def _start(self) -> None:
        parent, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child, *self.args), daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        if not parent.poll(self.start_timeout):
            raise RuntimeError("fuzz worker did not start")
        parent.recv()
        self.base_rss_kb = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.join()

    def run(self, data: bytes, timeout: float, max_rss_mb: float):
        """-> (outcome, detail, mismatched frames, seconds)."""
        t0 = time.perf_counter()
        try:
            self.conn.send(data)
            if not self.conn.poll(timeout):
                self.kill()
                self.restarts += 1
                self._start()
                return "hang", f"no answer within {timeout:.1f} s", 0, time.perf_counter() - t0
            outcome, detail, mismatched, rss_kb, stuck = self.conn.recv()
            seconds = time.perf_counter() - t0  # the answer's time, not the restart's below
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self.proc.exitcode if self.proc is not None else None
            self.kill()
            self.restarts += 1
            self._start()
            return "crash", f"worker died (exit code {code})", 0, time.perf_counter() - t0
        if stuck:
            # The case ended (as a clean error) when its entropy-decoding budget ran out, but
            # the range decoder it started still spins a core: start a fresh worker.
            self.budget_overruns += 1
            self.kill()
            self.restarts += 1
            self._start()
            return outcome, detail, mismatched, seconds
        if self.base_rss_kb is None:
            self.base_rss_kb = rss_kb
        if (rss_kb - self.base_rss_kb) / 1024 > max_rss_mb:
            self.kill()
            self.restarts += 1
            self._start()
            return ("memory", f"peak RSS grew by {(rss_kb - self.base_rss_kb) / 1024:.0f} MB",
                    mismatched, seconds)
        return outcome, detail, mismatched, seconds


def fuzz(seeds: list[bytes], path: str = "info", cases: int = 1000, seed: int = 0,
         model: str | None = None, timeout: float = 2.0, max_rss_mb: float = 2048,
         start_timeout: float = 600, progress: bool = False,
         save_dir: str | None = None) -> dict[str, Any]:
    """Runs `cases` mutated files through the `path` reader ("info" or "decode", the latter
    with `model`, a name or directory `gan_compress.load` accepts). Returns counts per outcome
    (`OUTCOMES`) and per mutation kind, `size_mismatch` (decoded frames whose size differs from
    the header's), the slowest case's seconds, and up to 5 examples of each outcome that is not
    a clean error or silent decode (case number, mutation kind, detail). With `save_dir`, the
    input of every such case is written there as `<outcome>-<case>.gcv` to reproduce it."""
    if path not in ("info", "decode"):
        raise ValueError(f"path must be 'info' or 'decode', got {path!r}")
    rng = random.Random(seed)
    counts: Counter = Counter({k: 0 for k in OUTCOMES})
    by_kind: dict[str, Counter] = {}
    examples: dict[str, list] = {}
    size_mismatch = 0
    slowest = 0.0
    with tempfile.TemporaryDirectory(prefix="gcv_fuzz_") as workdir:
        mutate = Mutator(seeds, rng, workdir)
        sup = _Supervisor(path, model, workdir, start_timeout, warmup=seeds[0])
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=cases, desc=f"fuzz {path}", unit="case", dynamic_ncols=True)
        try:
            for case in range(cases):
                kind, data = mutate()
                outcome, detail, mismatched, seconds = sup.run(data, timeout, max_rss_mb)
                counts[outcome] += 1
                by_kind.setdefault(kind, Counter())[outcome] += 1
                size_mismatch += mismatched
                slowest = max(slowest, seconds)
                if outcome not in ("clean_error", "silent_decode"):
                    examples.setdefault(outcome, [])
                    if len(examples[outcome]) < 5:
                        examples[outcome].append((case, kind, detail))
                    if save_dir is not None:
                        os.makedirs(save_dir, exist_ok=True)
                        with open(os.path.join(save_dir, f"{outcome}-{case}.gcv"), "wb") as f:
                            f.write(data)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: counts[k] for k in OUTCOMES if counts[k]}, refresh=False)
        finally:
            if bar is not None:
                bar.close()
            sup.kill()
    return {"path": path, "cases": cases, "seed": seed, "counts": dict(counts),
            "by_kind": {k: dict(v) for k, v in by_kind.items()}, "size_mismatch": size_mismatch,
            "slowest_seconds": slowest, "worker_restarts": sup.restarts,
            "decode_budget_overruns": sup.budget_overruns, "examples": examples}


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of one `fuzz` report."""
    lines = [f"fuzz {report['path']}: {report['cases']:,} cases (seed {report['seed']}), "
             f"slowest {report['slowest_seconds']:.2f} s, worker restarts "
             f"{report['worker_restarts']}",
             f"{'mutation':10s}" + "".join(f"{k:>17s}" for k in OUTCOMES)]
    for kind, c in sorted(report["by_kind"].items()):
        lines.append(f"{kind:10s}" + "".join(f"{c.get(k, 0):17,d}" for k in OUTCOMES))
    lines.append(f"{'total':10s}" + "".join(f"{report['counts'][k]:17,d}" for k in OUTCOMES))
    if report["path"] == "decode":
        lines.append(f"decoded frames whose size differs from the header: "
                     f"{report['size_mismatch']}")
        lines.append(f"clean errors that ended by the entropy-decoding time budget (the range "
                     f"decoder spun; worker restarted): {report['decode_budget_overruns']}")
    for outcome, items in report["examples"].items():
        for case, kind, detail in items:
            lines.append(f"  {outcome} (case {case}, {kind}): {detail}")
    return "\n".join(lines)
