"""BD-rate: the known answer, overlap flags, and messy inputs."""

import math

import bjontegaard
import pytest

from gan_compress.evaluation import bdrate

RATES = [120.0, 210.0, 395.0, 800.0]
PSNR = [30.1, 33.0, 36.2, 39.4]


def test_rates_scaled_by_0_8_give_minus_20_percent():
    res = bdrate.bd_rate(RATES, PSNR, [r * 0.8 for r in RATES], PSNR)
    assert res.flag == "ok"
    assert res.overlap == pytest.approx(1.0)
    assert res.value == pytest.approx(-20.0, abs=0.1)


def test_known_answer_holds_with_different_sampling_and_order():
    # The test curve is the anchor curve shifted by x0.8 in rate, sampled at other qualities
    # (interpolated on the anchor's exact log-linear pieces) and given in reverse order.
    rates = [100.0, 1000.0]
    quality = [30.0, 40.0]
    q_test = [39.0, 35.0, 32.0, 31.0]
    r_test = [0.8 * 10 ** (2 + (q - 30.0) / 10.0) for q in q_test]
    res = bdrate.bd_rate(rates, quality, r_test, q_test)
    assert res.value == pytest.approx(-20.0, abs=0.1)


def test_matches_the_bjontegaard_package_with_pchip():
    r_test = [110.0, 190.0, 380.0, 700.0]
    p_test = [30.5, 33.4, 36.4, 39.0]
    ours = bdrate.bd_rate(RATES, PSNR, r_test, p_test).value
    ref = bjontegaard.bd_rate(RATES, PSNR, r_test, p_test, method="pchip", min_overlap=0)
    assert ours == pytest.approx(ref, rel=1e-9)


def test_barely_overlapping_curves_are_flagged_and_disjoint_ones_give_no_number():
    shifted = [q + 7.0 for q in PSNR]  # overlap 2.3 dB of a 9.3 dB range: ~25 %
    low = bdrate.bd_rate(RATES, PSNR, RATES, shifted)
    assert low.flag == "low-overlap"
    assert low.value is not None and low.overlap < 0.5
    assert low.format().endswith("†")

    none = bdrate.bd_rate(RATES, PSNR, RATES, [q + 20.0 for q in PSNR])
    assert none.value is None and none.flag == "no-overlap"
    assert none.format() == "—"


def test_failed_points_are_dropped_and_too_few_points_give_no_number():
    res = bdrate.bd_rate(RATES, PSNR, [100.0, math.nan, 300.0, 0.0], [31.0, 33.0, 35.0, 37.0])
    assert res.value is not None  # two usable test points remain
    few = bdrate.bd_rate(RATES, PSNR, [100.0], [31.0])
    assert few.value is None and few.flag == "too-few-points"


def test_mean_over_clips_is_flagged_when_any_clip_is():
    ok = bdrate.BDResult(-10.0, 1.0, "ok")
    low = bdrate.BDResult(-30.0, 0.3, "low-overlap")
    missing = bdrate.BDResult(None, 0.0, "no-overlap")
    assert bdrate.mean_bd([ok, ok]).flag == "ok"
    mean = bdrate.mean_bd([ok, low, missing])
    assert mean.value == pytest.approx(-20.0)
    assert mean.flag == "low-overlap"
    assert bdrate.mean_bd([missing]).value is None
