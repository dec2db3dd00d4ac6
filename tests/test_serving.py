"""`gan-compress serve` answers TF Serving's gRPC API: a real server process on 127.0.0.1 at a
free port, called with the stock `tensorflow_serving.apis` stubs (through
`gan_compress.serving.client`, which only wraps them)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
from conftest import REPO, synthetic_rgb

from gan_compress.serving.client import ServingClient, ServingError

MAX_MESSAGE_MB = 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Served:
    def __init__(self, base, port, proc, log):
        self.base, self.port, self.proc, self.log = base, port, proc, log
        self.client = ServingClient(f"127.0.0.1:{port}", timeout=120, retries=3)


@pytest.fixture(scope="module")
def served(tiny_exports, tmp_path_factory):
    base = tmp_path_factory.mktemp("model_base")
    shutil.copytree(tiny_exports.codec_dir, base / "tiny" / "1")
    shutil.copytree(tiny_exports.transforms_dir, base / "tiny-transforms" / "1")
    shutil.copytree(tiny_exports.codec_dir, base / "swap" / "1")
    port = _free_port()
    log = open(base.parent / "serve.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gan_compress", "serve", f"--model_base_path={base}",
         f"--port={port}", "--host=127.0.0.1", f"--max_message_mb={MAX_MESSAGE_MB}",
         "--poll_seconds=0.2"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    served = _Served(base, port, proc, log)
    deadline = time.monotonic() + 300
    while True:
        try:
            if served.client.status("tiny") == [(1, "AVAILABLE")]:
                break
        except ServingError:
            pass
        assert proc.poll() is None, open(log.name).read()[-3000:]
        assert time.monotonic() < deadline, "server did not come up"
        time.sleep(0.5)
    yield served
    proc.terminate()  # SIGTERM: a clean stop, exit 0
    assert proc.wait(timeout=60) == 0, open(log.name).read()[-3000:]
    log.close()


def test_remote_coding_gives_the_bytes_and_frames_of_local_coding(served, tiny_codec):
    remote = served.client.codec("tiny")
    assert remote.fingerprint == tiny_codec.fingerprint
    assert remote.name == "tiny"  # the served name goes into .gcv headers...
    remote.name = tiny_codec.name  # ...so give it the local one to compare whole files
    rgb = synthetic_rgb(0, 48, 80)
    data = remote.compress_image(rgb, quality=2)
    assert data == tiny_codec.compress_image(rgb, quality=2)
    np.testing.assert_array_equal(remote.decompress_image(data),
                                  tiny_codec.decompress_image(data))


def test_transform_only_model_with_client_side_coding_matches_the_full_codec(served,
                                                                             tiny_codec):
    client = served.client.transform_client("tiny-transforms")
    frames = np.stack([synthetic_rgb(i, 48, 80) for i in range(2)])
    out = client.compress(frames, quality=3)
    for i in range(2):
        packet = tiny_codec.encode_frame(frames[i], 3, i)
        assert (out.y_strings[i], out.z_strings[i]) == packet.strings


def test_metadata_and_status_describe_the_served_versions(served):
    sigs = served.client.metadata("tiny")
    assert {"compress", "decompress", "model_info", "serving_default"} <= set(sigs)
    assert set(sigs["compress"].inputs) == {"frames", "quality"}
    assert set(sigs["decompress"].outputs) == {"frames"}
    assert "coding_tables" in served.client.metadata("tiny-transforms")
    assert served.client.status("tiny") == [(1, "AVAILABLE")]
    assert served.client.status("tiny", version=1) == [(1, "AVAILABLE")]


def _code(fn) -> grpc.StatusCode:
    with pytest.raises(ServingError) as e:
        fn()
    return e.value.code


def test_bad_requests_get_tf_serving_codes_and_the_server_keeps_serving(served):
    c = served.client
    frame = np.zeros((1, 48, 80, 3), np.uint8)
    q = np.int32(2)
    assert _code(lambda: c.status("nope")) == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: c.metadata("nope")) == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: c.predict("nope", "compress", {"frames": frame, "quality": q})) \
        == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: c.predict("tiny", "compress", {"frames": frame, "quality": q},
                                   version=7)) == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: c.predict("tiny", "no_such_signature", {"frames": frame})) \
        == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: c.predict("tiny", "compress", {"images": frame, "quality": q})) \
        == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: c.predict("tiny", "compress", {"frames": frame.astype(np.float32),
                                                        "quality": q})) \
        == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: c.predict("tiny", "compress", {"frames": frame[0], "quality": q})) \
        == grpc.StatusCode.INVALID_ARGUMENT
    big = np.zeros((1, 512, 1024, 3), np.uint8)  # 1.5 MiB > --max_message_mb 1
    assert _code(lambda: c.predict("tiny", "compress", {"frames": big, "quality": q})) \
        == grpc.StatusCode.RESOURCE_EXHAUSTED
    out = c.predict("tiny", "compress", {"frames": frame, "quality": q})
    assert out["y_strings"].shape == (1,)
    assert served.proc.poll() is None


def test_a_new_version_is_served_once_complete_and_requests_during_the_swap_succeed(
        served, tiny_exports):
    c = served.client
    errors, versions, stop = [], [], threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                c.predict("swap", "model_info", {})
                versions.append(c.status("swap")[-1][0])
            except ServingError as e:  # pragma: no cover - what the test is looking for
                errors.append(str(e))

    t = threading.Thread(target=hammer)
    t.start()
    try:
        # A half-written version folder (no saved_model.pb yet) is never served...
        partial = served.base / "swap" / "3"
        shutil.copytree(os.path.join(tiny_exports.transforms_dir, "variables"),
                        partial / "variables")
        # ...and a complete one appears by rename, as export.py writes it.
        staging = served.base / "swap" / ".2.partial"
        shutil.copytree(tiny_exports.transforms_dir, staging)
        os.replace(staging, served.base / "swap" / "2")
        deadline = time.monotonic() + 120
        while c.status("swap") != [(1, "AVAILABLE"), (2, "AVAILABLE")]:
            assert time.monotonic() < deadline, c.status("swap")
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stop.set()
        t.join()
    assert errors == []
    assert versions and versions[-1] == 2
    assert "coding_tables" in c.metadata("swap")  # latest = the transforms export
    assert "coding_tables" not in c.metadata("swap", version=1)
    assert _code(lambda: c.metadata("swap", version=3)) == grpc.StatusCode.NOT_FOUND
