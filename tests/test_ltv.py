"""Lifetime value: BG/NBD and Gamma-Gamma reproduce the published estimates on the CDNOW
sample (Fader, Hardie & Lee 2005), and the scores behave as a reader expects."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from scheduler.ltv import expected_orders, fit_bgnbd, fit_gamma_gamma, p_alive

DATA = Path(__file__).resolve().parent / "data" / "cdnow_customers_summary_with_transactions.csv"


def cdnow() -> dict[str, np.ndarray]:
    with DATA.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {key: np.array([float(row[key]) for row in rows]) for key in ("x", "t_x", "T", "zbar")}


def test_bgnbd_on_cdnow_reproduces_the_published_estimates() -> None:
    data = cdnow()
    model = fit_bgnbd(data["x"], data["t_x"], data["T"])
    assert model.customers == 2357
    for found, published in ((model.r, 0.243), (model.alpha, 4.414), (model.a, 0.793), (model.b, 2.426)):
        assert found == pytest.approx(published, rel=0.02)
    assert model.log_likelihood == pytest.approx(-9582.4, abs=1.0)  # the paper's LL


def test_gamma_gamma_on_cdnow_repeat_buyers_reproduces_the_published_estimates() -> None:
    data = cdnow()
    model = fit_gamma_gamma(data["x"], data["zbar"])
    assert model.customers == int((data["x"] > 0).sum()) == 946
    for found, published in ((model.p, 6.25), (model.q, 3.74), (model.v, 15.44)):
        assert found == pytest.approx(published, rel=0.02)


def test_scores_read_as_expected() -> None:
    model = fit_bgnbd(*(cdnow()[k] for k in ("x", "t_x", "T")))
    # No repeat purchase: never judged gone. Many repeats long ago: probably gone.
    x, t_x, T = np.array([0.0, 5.0, 5.0]), np.array([0.0, 38.0, 5.0]), np.array([39.0, 39.0, 39.0])
    alive = p_alive(model, x, t_x, T)
    assert alive[0] == 1.0 and alive[1] > 0.85 and alive[2] < 0.2
    orders = expected_orders(model, 39.0, x, t_x, T)
    assert orders[1] > orders[0] > 0 and orders[1] > orders[2]
    # The paper's figure: a customer with x=2, t_x=30.43, T=38.86 expects about 1.23 in 39 weeks.
    one = expected_orders(model, 39.0, np.array([2.0]), np.array([30.43]), np.array([38.86]))
    assert one[0] == pytest.approx(1.226, rel=0.02)


def test_a_fit_without_repeat_buyers_is_refused() -> None:
    with pytest.raises(ValueError, match="no repeat buyers"):
        fit_gamma_gamma(np.array([0.0, 0.0]), np.array([0.0, 0.0]))
