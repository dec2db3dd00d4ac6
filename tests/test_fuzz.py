"""The fuzzing harness (`gan_compress.fuzz`): a bounded, seeded run of the info and decode paths.

Long runs with figures: `benchmarks/fuzz.py`.
"""

from __future__ import annotations

import pytest

from gan_compress import bitstream as bs
from gan_compress import fuzz


@pytest.fixture(scope="module")
def seeds(tiny_codec, small_y4m, tmp_path_factory) -> list[bytes]:
    d = tmp_path_factory.mktemp("fuzz_seeds")
    two = str(d / "two.gcv")
    tiny_codec.compress_video(small_y4m, two, quality=2, frames=2)
    with open(two, "rb") as f:
        out = [f.read()]
    from conftest import synthetic_rgb

    out.append(tiny_codec.compress_image(synthetic_rgb(0, 1, 1), quality=5))  # a 1x1 frame
    return out


def fuzz_seed_path(d, data: bytes) -> str:
    path = str(d / "original.gcv")
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_fixup_mutations_keep_every_crc_valid(seeds, tmp_path):
    import random

    path = str(tmp_path / "seed.gcv")
    with open(path, "wb") as f:
        f.write(seeds[0])
    lay = fuzz.layout(seeds[0], path)
    buf = bytearray(seeds[0])
    meta_end, end = lay.packets[1][1], lay.packets[1][2]
    buf[(meta_end + end - 4) // 2] ^= 0x10  # a byte inside packet 1's strings
    fuzz.fix_crcs(buf, lay)
    with open(path, "wb") as f:
        f.write(bytes(buf))
    with bs.ContainerReader(path) as reader:  # every CRC passes, the strings differ
        edited = list(reader)[1].strings
    with bs.ContainerReader(fuzz_seed_path(tmp_path, seeds[0])) as reader:
        assert edited != list(reader)[1].strings
    mutate = fuzz.Mutator(seeds, random.Random(0), str(tmp_path))
    kinds = {mutate()[0] for _ in range(60)}
    assert kinds == {"record", "fixup", "raw"}


def test_info_path_survives_400_mutations_with_only_clean_errors(seeds):
    report = fuzz.fuzz(seeds, path="info", cases=400, seed=1, timeout=10)
    print(fuzz.format_report(report))
    c = report["counts"]
    assert c["other_exception"] == 0 and c["hang"] == 0 and c["crash"] == 0, report["examples"]
    assert c["memory"] == 0
    assert c["clean_error"] > 100  # the mutations do reach the reader's checks
    assert sum(c.values()) == 400


def test_decode_path_survives_150_mutations_with_only_clean_errors(seeds, tiny_model_dir):
    report = fuzz.fuzz(seeds, path="decode", cases=150, seed=2, model=tiny_model_dir,
                       timeout=30)
    print(fuzz.format_report(report))
    c = report["counts"]
    assert c["other_exception"] == 0 and c["hang"] == 0 and c["crash"] == 0, report["examples"]
    assert report["size_mismatch"] == 0
    assert c["clean_error"] > 30 and c["silent_decode"] > 0
