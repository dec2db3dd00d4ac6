"""The coding-table cache beside a model's weights (`loading._finalize_with_cache`): used only
when made from exactly these weights, rebuilt when stale or unreadable, and optional when the
folder is read-only. A stand-in model keeps these checks to milliseconds; the real codecs'
cached tables are checked in test_iframe.py and test_video_model.py."""

from __future__ import annotations

import os

import numpy as np
import pytest

from gan_compress import loading


class _Var:
    def __init__(self, value):
        self.value = np.asarray(value, np.float32)

    def numpy(self):
        return self.value


class _FakeCodec:
    """Weights, `finalize(z_tables=None)` and `z_tables()` as a codec has them; counts how often
    the tables were estimated (the expensive step the cache saves)."""

    def __init__(self, weight: float, coders=("motion", "residual")):
        self.trainable_variables = [_Var([weight, 2.0])]
        self.coders = coders
        self.estimated = 0
        self.given = None

    def _made(self):
        w = float(self.trainable_variables[0].value[0])
        tables = {n: (np.full((2, 4), w + i, np.int32), np.arange(2, dtype=np.int32),
                      np.full(2, 0.5, np.float32) if i else None)
                  for i, n in enumerate(self.coders)}
        return tables if len(self.coders) > 1 else tables[self.coders[0]]

    def finalize(self, z_tables=None):
        if z_tables is None:
            self.estimated += 1
            z_tables = self._made()
        self.given = z_tables

    def z_tables(self):
        return self.given


def _assert_same(a, b):
    """Two z_tables() values (a tuple, or a dict of tuples by coder) hold equal arrays."""
    if isinstance(a, dict):
        assert sorted(a) == sorted(b)
        for k in a:
            _assert_same(a[k], b[k])
        return
    for x, y in zip(a, b, strict=True):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("coders", [("motion", "residual"), ("",)])
def test_tables_are_estimated_once_then_read_back_identically(tmp_path, coders):
    first = _FakeCodec(1.0, coders)
    loading._finalize_with_cache(first, str(tmp_path), "t.npz")
    second = _FakeCodec(1.0, coders)
    loading._finalize_with_cache(second, str(tmp_path), "t.npz")
    assert (first.estimated, second.estimated) == (1, 0)
    _assert_same(first.z_tables(), second.z_tables())


def test_a_cache_made_from_other_weights_is_not_used_but_replaced(tmp_path):
    loading._finalize_with_cache(_FakeCodec(1.0), str(tmp_path), "t.npz")
    other = _FakeCodec(3.0)
    loading._finalize_with_cache(other, str(tmp_path), "t.npz")
    assert other.estimated == 1 and other.z_tables()["motion"][0][0, 0] == 3
    again = _FakeCodec(3.0)
    loading._finalize_with_cache(again, str(tmp_path), "t.npz")
    assert again.estimated == 0
    _assert_same(again.z_tables(), other.z_tables())


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated"])
def test_an_unreadable_cache_is_rebuilt(tmp_path, damage):
    loading._finalize_with_cache(_FakeCodec(1.0), str(tmp_path), "t.npz")
    whole = (tmp_path / "t.npz").read_bytes()
    content = {"garbage": b"not a table", "empty": b"", "truncated": whole[: len(whole) // 2]}
    (tmp_path / "t.npz").write_bytes(content[damage])
    model = _FakeCodec(1.0)
    loading._finalize_with_cache(model, str(tmp_path), "t.npz")
    assert model.estimated == 1
    with np.load(tmp_path / "t.npz") as d:
        assert "motion_cdf" in d.files and "residual_quantization_offset" in d.files


def test_an_unwritable_folder_gets_no_cache_and_no_partial_file(tmp_path):
    """(A folder that cannot be written to even by root, as CI runs: one that is missing.)"""
    model = _FakeCodec(1.0)
    loading._finalize_with_cache(model, str(tmp_path / "missing"), "t.npz")
    assert model.estimated == 1 and os.listdir(tmp_path) == []
