"""Load test of `gan-compress serve`: N concurrent gRPC clients for a fixed time per frame size.

Starts the server on a free port (a temporary model base path exported from `--model`, or
`--model_base_path`), then for each frame size runs `--clients` threads, each with its own
channel, sending Predict(compress) requests with one frame for `--seconds`. Prints per size:
requests, errors, throughput (frames/s), p50/p99 latency, the same model's in-process
throughput measured in this run (`Codec` compress of the same frame, one thread: the server's
2 cores are the same machine's), their ratio, and the server's RSS before and after.

  .venv/bin/python benchmarks/serving_load.py --model small-gan --clients 8 --seconds 60
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

SIZES = {"256x256": (256, 256), "720p": (720, 1280)}


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _frame(h: int, w: int) -> np.ndarray:
    from PIL import Image

    path = os.path.join(REPO, "..", "shared", "data", "images", "kodak", "kodim23.png")
    if os.path.exists(path):
        img = np.asarray(Image.open(path).convert("RGB"))
        reps = (h // img.shape[0] + 1, w // img.shape[1] + 1, 1)
        return np.ascontiguousarray(np.tile(img, reps)[:h, :w])
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _load(target: str, model: str, frame: np.ndarray, quality: int, clients: int,
          seconds: float) -> dict:
    from gan_compress.serving.client import ServingClient, ServingError

    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker():
        client = ServingClient(target, timeout=max(60.0, seconds), retries=0)
        inputs = {"frames": frame[None], "quality": np.int32(quality)}
        start.wait()
        while time.perf_counter() < stop_at[0]:
            t = time.perf_counter()
            try:
                client.predict(model, "compress", inputs)
                with lock:
                    lat.append(time.perf_counter() - t)
            except ServingError as e:
                with lock:
                    errors.append(str(e))
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    start.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = np.sort(np.asarray(lat)) * 1000 if lat else np.asarray([np.nan])
    return {"requests": len(lat), "errors": len(errors), "first_error": errors[:1],
            "fps": len(lat) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "wall": wall}


def _in_process(codec, frame: np.ndarray, quality: int, seconds: float) -> float:
    codec.encode_frame(frame, quality, 0)  # trace
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        codec.encode_frame(frame, quality, 0)
        n += 1
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="small-gan", help="shipped model to export and serve")
    p.add_argument("--model_base_path", help="serve this base instead (model --model in it)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--in_process_seconds", type=float, default=20)
    p.add_argument("--quality", type=int, default=3)
    p.add_argument("--sizes", default="256x256,720p")
    args = p.parse_args(argv)

    import gan_compress
    from gan_compress import export_lib
    from gan_compress.serving.client import ServingClient, ServingError

    codec = gan_compress.load(args.model)
    tmp = None
    base = args.model_base_path
    if base is None:
        tmp = tempfile.TemporaryDirectory(prefix="serving_load_")
        base = tmp.name
        export_lib.export_for_serving(codec._model, codec.config, base, codec.name)
        print(f"exported {codec.name} to {base}", flush=True)
    port = _free_port()
    target = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "gan_compress", "serve", f"--model_base_path={base}",
         f"--port={port}", "--host=127.0.0.1", "--threads=8"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        client = ServingClient(target, timeout=60, retries=0)
        deadline = time.monotonic() + 600
        while True:
            try:
                client.status(codec.name)
                break
            except ServingError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("server did not start") from None
                time.sleep(0.5)
        rss0 = _rss_mb(server.pid)
        rows = []
        for size in args.sizes.split(","):
            h, w = SIZES[size]
            frame = _frame(h, w)
            client.predict(codec.name, "compress",
                           {"frames": frame[None], "quality": np.int32(args.quality)})  # trace
            r = _load(target, codec.name, frame, args.quality, args.clients, args.seconds)
            r["in_process_fps"] = _in_process(codec, frame, args.quality,
                                              args.in_process_seconds)
            r["size"] = size
            r["rss_mb"] = _rss_mb(server.pid)
            rows.append(r)
            print(f"{size}: {r['requests']} requests, {r['errors']} errors "
                  f"{r['first_error']}", flush=True)
        rss1 = _rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
        if tmp is not None:
            tmp.cleanup()
    print(f"\nmodel {codec.name}, Predict(compress), quality {args.quality}, {args.clients} "
          f"clients x {args.seconds:.0f} s per size, server --threads=8, same 2-core machine")
    print(f"{'size':>8} {'requests':>8} {'errors':>6} {'frames/s':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'in-process f/s':>14} {'ratio':>6} {'server RSS MB':>13}")
    for r in rows:
        print(f"{r['size']:>8} {r['requests']:>8} {r['errors']:>6} {r['fps']:>8.2f} "
              f"{r['p50_ms']:>8.0f} {r['p99_ms']:>8.0f} {r['in_process_fps']:>14.2f} "
              f"{r['fps'] / r['in_process_fps']:>6.2f} {r['rss_mb']:>13.0f}")
    print(f"server RSS: {rss0:.0f} MB after start and first requests, {rss1:.0f} MB at the end "
          f"({rss1 - rss0:+.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
