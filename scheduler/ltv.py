"""Lifetime value: BG/NBD (repeat purchases and the probability she is still a customer)
and Gamma-Gamma (spend per order), fitted by maximum likelihood with scipy.

The likelihoods are the published ones, written out here because the library that once
carried them (`lifetimes`) is unmaintained:
- BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way", eq. 6;
  expectations and P(alive) from the same paper and Fader & Hardie's note on it.
- Gamma-Gamma: Fader, Hardie & Lee (2005), "RFM and CLV", and Fader & Hardie's
  "The Gamma-Gamma model of monetary value" (2013).

Per customer: x repeat purchases (orders after the first), t_x the time of the last one
since the first, T the time since the first purchase, all in one unit (siyu uses weeks,
as the papers do), and for repeat buyers the mean value of the repeat orders.
Rows with the same (x, t_x, T) are collapsed with a weight, so a million members with
orders on whole days fit as a few hundred thousand distinct rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import OptimizeResult, minimize
from scipy.special import betaln, gammaln, hyp2f1

Array = NDArray[np.float64]
# Bounds on the log of every parameter. Data with no sign of dropping out (or no
# heterogeneity) push the maximum to a border (a → 0, r and α → ∞); the bounds keep the
# scores finite there, where the fitted model is the Poisson or no-dropout limit anyway.
LOG_LOW, LOG_HIGH = -9.0, 9.0


@dataclass(frozen=True, slots=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    customers: int
    log_likelihood: float


@dataclass(frozen=True, slots=True)
class GammaGamma:
    p: float
    q: float
    v: float  # γ in the papers
    customers: int  # repeat buyers it was fitted on
    log_likelihood: float


def _collapse(*columns: Array) -> tuple[list[Array], Array]:
    """The distinct rows of `columns` and how many times each occurs."""
    stacked = np.column_stack(columns)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype(np.float64)


def bgnbd_log_likelihood(r: float, alpha: float, a: float, b: float, x: Array, t_x: Array, T: Array) -> Array:
    """Each customer's log-likelihood (eq. 6), computed in logs for large x."""
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    a4 = np.where(repeat, np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def fit_bgnbd(x: Array, t_x: Array, T: Array) -> BgNbd:
    (ux, ut, uT), weight = _collapse(np.asarray(x, float), np.asarray(t_x, float), np.asarray(T, float))
    # Start α at the scale of the data so the optimiser does not wander for long.
    scale = float(np.average(uT, weights=weight)) or 1.0

    def negative(log_params: Array) -> float:
        r, alpha, a, b = np.exp(np.clip(log_params, LOG_LOW, LOG_HIGH))
        return -float(np.dot(weight, bgnbd_log_likelihood(r, alpha, a, b, ux, ut, uT)))

    start = np.log([1.0, scale, 1.0, 1.0])
    found = _minimise(negative, start)
    r, alpha, a, b = (float(v) for v in np.exp(found.x))
    return BgNbd(r, alpha, a, b, int(weight.sum()), -float(found.fun))


def _minimise(negative: Callable[[Array], float], start: Array) -> OptimizeResult:
    """L-BFGS-B within the bounds (about a hundred evaluations on these surfaces); when it
    stops short, Nelder-Mead from there (slower, robust) and L-BFGS-B again to polish."""
    bounds = [(LOG_LOW, LOG_HIGH)] * len(start)
    found = minimize(negative, start, method="L-BFGS-B", bounds=bounds)
    if not found.success:
        found = minimize(negative, np.clip(found.x, LOG_LOW, LOG_HIGH), method="Nelder-Mead",
                         options={"xatol": 1e-6, "fatol": 1e-6, "maxfev": 2000})
        found = minimize(negative, np.clip(found.x, LOG_LOW, LOG_HIGH), method="L-BFGS-B", bounds=bounds)
    found.x = np.clip(found.x, LOG_LOW, LOG_HIGH)
    return found


def p_alive(m: BgNbd, x: Array, t_x: Array, T: Array) -> Array:
    """P(she has not dropped out) given her history; 1 for anyone without a repeat order."""
    ratio = np.exp((m.r + x) * (np.log(m.alpha + T) - np.log(m.alpha + t_x)))
    odds = np.where(x > 0, m.a / np.maximum(m.b + x - 1, 1e-12) * ratio, 0.0)
    return 1.0 / (1.0 + odds)


def expected_orders(m: BgNbd, t: float, x: Array, t_x: Array, T: Array) -> Array:
    """Expected purchases in the next `t` (eq. 10 of the paper)."""
    r, alpha, a, b = m.r, m.alpha, m.a, m.b
    z = t / (alpha + T + t)
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
    bracket = 1.0 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyp
    ratio = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
    denominator = 1.0 + np.where(x > 0, a / np.maximum(b + x - 1, 1e-12) * ratio, 0.0)
    return np.nan_to_num((a + b + x - 1) / (a - 1) * bracket / denominator, nan=0.0, posinf=0.0, neginf=0.0)


def gamma_gamma_log_likelihood(p: float, q: float, v: float, x: Array, mean: Array) -> Array:
    return (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v)
            + (p * x - 1) * np.log(mean) + p * x * np.log(x) - (p * x + q) * np.log(x * mean + v))


def fit_gamma_gamma(x: Array, mean: Array) -> GammaGamma:
    """Fitted on repeat buyers only (x > 0, a positive mean), as the model assumes."""
    x, mean = np.asarray(x, float), np.asarray(mean, float)
    keep = (x > 0) & (mean > 0)
    (ux, um), weight = _collapse(x[keep], mean[keep])
    if not len(ux):
        raise ValueError("no repeat buyers to fit spend on")

    def negative(log_params: Array) -> float:
        p, q, v = np.exp(np.clip(log_params, LOG_LOW, LOG_HIGH))
        return -float(np.dot(weight, gamma_gamma_log_likelihood(p, q, v, ux, um)))

    found = _minimise(negative, np.log([1.0, 1.0, float(np.average(um, weights=weight))]))
    p, q, v = (float(v) for v in np.exp(found.x))
    return GammaGamma(p, q, v, int(weight.sum()), -float(found.fun))


def expected_spend(m: GammaGamma, x: Array, mean: Array) -> Array:
    """Expected value of her next order: the population mean shrunk toward her own."""
    x, mean = np.asarray(x, float), np.nan_to_num(np.asarray(mean, float))
    population = m.p * m.v / (m.q - 1) if m.q > 1 else float("nan")
    weight = m.p * x / (m.p * x + m.q - 1)
    return (1 - weight) * population + weight * mean


@dataclass(frozen=True, slots=True)
class Scores:
    p_alive: Array
    orders: Array  # expected orders in the horizon
    value: Array  # expected spend in the horizon, in the unit of `mean`


def score(bg: BgNbd, gg: GammaGamma | None, horizon: float, x: Array, t_x: Array, T: Array, mean: Array) -> Scores:
    x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
    orders = expected_orders(bg, horizon, x, t_x, T)
    spend = expected_spend(gg, x, mean) if gg is not None else np.zeros_like(x)
    return Scores(p_alive(bg, x, t_x, T), orders, orders * spend)
