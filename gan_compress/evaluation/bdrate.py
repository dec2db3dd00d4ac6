"""Bjontegaard delta rate (BD-rate) with an explicit check of how far two curves overlap.

BD-rate is the average difference in log-rate between a test codec's and an anchor's RD curves,
integrated over the quality interval both cover (Bjontegaard, VCEG-M33 2001, with the piecewise
cubic `pchip` interpolation of VCEG-AL22 / the `bjontegaard` package). Negative = the test codec
needs fewer bits for the same quality.

Outside the common quality interval there is nothing to compare, so:
- no overlap -> no number (`value` None, flag "no-overlap");
- overlap < `min_overlap` (default 50 %) of the smaller of the two quality ranges -> the number
  over the overlap is given but flagged "low-overlap" (shown with a dagger in tables);
- fewer than 2 usable points on either curve -> None, flag "too-few-points".
The integration never extrapolates a curve beyond its measured points.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

DEFAULT_MIN_OVERLAP = 0.5


class BDResult(NamedTuple):
    """BD-rate in percent (None when undefined), the overlap fraction and a flag.

    `overlap` = length of the common quality interval / the smaller of the two quality ranges.
    `flag` is one of "ok", "low-overlap", "no-overlap", "too-few-points".
    """

    value: float | None
    overlap: float
    flag: str

    def to_json(self) -> dict:
        return {"bd_rate": self.value, "overlap": self.overlap, "flag": self.flag}

    def format(self, digits: int = 1) -> str:
        """'−12.3%', '−12.3%†' (low overlap) or '—' (undefined)."""
        if self.value is None:
            return "n/a" if self.flag == "too-few-points" else "—"
        text = f"{self.value:+.{digits}f}%"
        return text + "†" if self.flag == "low-overlap" else text


def _clean_curve(rates: Sequence[float], quality: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Drops non-finite / non-positive points; sorts by quality; averages duplicate qualities."""
    r = np.asarray(rates, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    keep = np.isfinite(r) & np.isfinite(q) & (r > 0)
    r, q = r[keep], q[keep]
    order = np.argsort(q, kind="stable")
    r, q = r[order], q[order]
    uq, inv = np.unique(q, return_inverse=True)
    if len(uq) != len(q):
        r = np.array([np.exp(np.mean(np.log(r[inv == i]))) for i in range(len(uq))])
        q = uq
    return r, q


def overlap_fraction(q_anchor: Sequence[float], q_test: Sequence[float]) -> float:
    """Common quality interval / the smaller of the two quality ranges (0 when disjoint)."""
    lo = max(min(q_anchor), min(q_test))
    hi = min(max(q_anchor), max(q_test))
    smaller = min(max(q_anchor) - min(q_anchor), max(q_test) - min(q_test))
    if hi <= lo:
        return 0.0
    if smaller <= 0:
        return 1.0
    return min(1.0, (hi - lo) / smaller)


def bd_rate(
    rate_anchor: Sequence[float],
    quality_anchor: Sequence[float],
    rate_test: Sequence[float],
    quality_test: Sequence[float],
    *,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
    method: str = "pchip",
) -> BDResult:
    """BD-rate (%) of the test curve against the anchor curve (rates in any common unit)."""
    import bjontegaard

    ra, qa = _clean_curve(rate_anchor, quality_anchor)
    rt, qt = _clean_curve(rate_test, quality_test)
    if len(ra) < 2 or len(rt) < 2:
        return BDResult(None, 0.0, "too-few-points")
    overlap = overlap_fraction(qa, qt)
    if overlap <= 0.0:
        return BDResult(None, 0.0, "no-overlap")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package warns on low overlap; we flag it ourselves
        value = float(
            bjontegaard.bd_rate(
                ra, qa, rt, qt, method=method, require_matching_points=False, min_overlap=0.0
            )
        )
    if not math.isfinite(value):
        return BDResult(None, overlap, "no-overlap")
    return BDResult(value, overlap, "ok" if overlap >= min_overlap else "low-overlap")


def mean_bd(results: Iterable[BDResult]) -> BDResult:
    """Mean of the defined per-clip BD-rates; flagged low-overlap if any input was."""
    results = list(results)
    values = [r.value for r in results if r.value is not None]
    if not values:
        flag = "no-overlap" if any(r.flag == "no-overlap" for r in results) else "too-few-points"
        return BDResult(None, 0.0, flag)
    flagged = any(r.flag in ("low-overlap", "no-overlap") for r in results)
    overlap = float(np.mean([r.overlap for r in results if r.value is not None]))
    return BDResult(float(np.mean(values)), overlap, "low-overlap" if flagged else "ok")
