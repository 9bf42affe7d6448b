"""Learning curves against spent budget: a saturating power law, fitted and extrapolated.

    error(x) = e + a * x^(-alpha)        x: budget spent (J, FLOP, samples, s); e: the floor

"error" is the validation loss, or 1 - accuracy for an accuracy metric, so that lower is
better for every metric. The fit is made on x scaled by the last observed x (the numbers stay
near 1 whatever the unit), with the floor kept in [0, the lowest error seen] and the exponent
in [0.05, 3]: the shapes a learning curve can take (Kaplan et al. 2020; Hoffmann et al. 2022).
A curve with too few points, or one the fit cannot follow, predicts its last (smoothed) error:
the honest guess that training longer brings nothing (`ok` is then false).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np

FORM = "e + a * x^-alpha"
MIN_POINTS = 4  # fewer cannot pin three parameters with any slack
ALPHA_RANGE = (0.05, 3.0)


@dataclass(frozen=True)
class PowerLaw:
    e: float | None
    a: float | None
    alpha: float | None
    x_scale: float  # x is divided by this before the power (the last observed x)
    ok: bool
    fallback: float | None = None  # the prediction when the fit failed

    def predict(self, x: float) -> float | None:
        if not self.ok or self.e is None or self.a is None or self.alpha is None:
            return self.fallback
        return self.e + self.a * (max(x, 1e-300) / self.x_scale) ** -self.alpha

    def record(self) -> dict[str, object]:
        return {"form": FORM, **asdict(self)}


def lower_is_better(metric: str) -> bool:
    return not metric.endswith("/acc")


def as_error(metric: str, value: float) -> float:
    """The metric as an error: lower is better for every metric."""
    return value if lower_is_better(metric) else 1.0 - value


def from_error(metric: str, error: float) -> float:
    return error if lower_is_better(metric) else 1.0 - error


def fit_power_law(points: list[tuple[float, float]]) -> PowerLaw:
    """Least-squares fit of `error = e + a x^-alpha` to (x, error) points with x > 0."""
    usable = sorted((x, y) for x, y in points if x > 0 and math.isfinite(x) and math.isfinite(y))
    if not usable:
        return PowerLaw(None, None, None, 1.0, ok=False, fallback=None)
    xs = np.array([x for x, _ in usable])
    ys = np.array([y for _, y in usable])
    tail = float(np.mean(ys[-2:]))  # the last errors, smoothed: the fallback prediction
    x_scale = float(xs[-1])
    if len(usable) < MIN_POINTS or x_scale <= 0:
        return PowerLaw(None, None, None, x_scale, ok=False, fallback=tail)
    from scipy.optimize import curve_fit

    def model(x: np.ndarray, e: float, a: float, alpha: float) -> np.ndarray:
        return e + a * np.power(x, -alpha)

    floor = max(float(ys.min()), 0.0)
    start = (floor * 0.5, max(float(ys[0] - floor * 0.5), 1e-6), 0.5)
    bounds = ([0.0, 0.0, ALPHA_RANGE[0]], [max(floor, 1e-12), np.inf, ALPHA_RANGE[1]])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = curve_fit(model, xs / x_scale, ys, p0=start, bounds=bounds, maxfev=20000)
    except (RuntimeError, ValueError):
        return PowerLaw(None, None, None, x_scale, ok=False, fallback=tail)
    e, a, alpha = (float(p) for p in params)
    if not all(math.isfinite(p) for p in (e, a, alpha)):
        return PowerLaw(None, None, None, x_scale, ok=False, fallback=tail)
    return PowerLaw(e, a, alpha, x_scale, ok=True, fallback=tail)


# ---- one law across sizes (Hoffmann et al. 2022, approach 3) ---------------------------------
JOINT_FORM = "E + A * (N/N0)^-alpha + B * (D/D0)^-beta"
JOINT_MIN_POINTS = 8


@dataclass(frozen=True)
class JointLaw:
    """error(N, D) = E + A (N/N0)^-alpha + B (D/D0)^-beta: N parameters, D samples seen. One
    law for every size pins the exponents with all pilots' points at once, where a fit per
    size has a handful of points and extrapolates an order of magnitude."""

    E: float
    A: float
    alpha: float
    B: float
    beta: float
    n_scale: float
    d_scale: float

    def per_size(self, params: float, samples_per_x: float) -> PowerLaw:
        """The law of one size against its own budget axis x (D = samples_per_x * x)."""
        floor = self.E + self.A * (params / self.n_scale) ** -self.alpha
        return PowerLaw(floor, self.B, self.beta, self.d_scale / samples_per_x, ok=True)

    def record(self) -> dict[str, object]:
        return {"form": JOINT_FORM, **asdict(self)}


def fit_joint_law(points: list[tuple[float, float, float]]) -> JointLaw | None:
    """Fit (N, D, error) points; None when there are too few or the fit fails."""
    usable = [
        (n, d, y)
        for n, d, y in points
        if n > 0 and d > 0 and all(math.isfinite(v) for v in (n, d, y))
    ]
    if len(usable) < JOINT_MIN_POINTS or len({n for n, _, _ in usable}) < 2:
        return None
    from scipy.optimize import curve_fit

    ns, ds, ys = (np.array(column, dtype=float) for column in zip(*usable, strict=True))
    n_scale, d_scale = float(ns.max()), float(ds.max())

    def model(nd: np.ndarray, e: float, a: float, alpha: float, b: float, beta: float):
        n, d = nd
        return e + a * np.power(n, -alpha) + b * np.power(d, -beta)

    floor = max(float(ys.min()), 0.0)
    start = (floor * 0.5, 0.1, 0.5, 0.1, 0.5)
    bounds = (
        [0.0, 0.0, ALPHA_RANGE[0], 0.0, ALPHA_RANGE[0]],
        [max(floor, 1e-12), np.inf, ALPHA_RANGE[1], np.inf, ALPHA_RANGE[1]],
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = curve_fit(
                model,
                np.vstack([ns / n_scale, ds / d_scale]),
                ys,
                p0=start,
                bounds=bounds,
                maxfev=20000,
            )
    except (RuntimeError, ValueError):
        return None
    if not all(math.isfinite(float(p)) for p in params):
        return None
    e, a, alpha, b, beta = (float(p) for p in params)
    return JointLaw(e, a, alpha, b, beta, n_scale, d_scale)
