"""Step-size mismatch theorem: closed forms, exact events and Monte Carlo checks.

This module works through the paper's argument for renewing the quantization step
when a layer's bit width drops (Yao et al., arXiv 2506.23717; see
book/method.md#method-theorem and book/definitions.md#def-theorem).
It depends on numpy and scipy only, apart from the Monte Carlo with the real neuron
(:func:`mc_neuron_t_step_probability`), which runs the package's neuron
(:func:`adabit_lite.neuron.neuron_trace`, in float64).

Setting and notation used in every function below:

* ``x = |N(0, sigma^2)|`` is half-normal with scale ``sigma`` and density
  ``f(x) = (2 / sigma) * phi(x / sigma)`` for ``x >= 0`` (phi, Phi: standard normal
  pdf and cdf). This is *not* ReLU of a normal, which would put half its mass at 0.
* Unsigned uniform quantizer with ``L = 2^b - 1`` levels above zero::

      Q_b(x; s) = s * clip(floor(x / s + 1/2), 0, L)

  Its rounding cells are ``[0, s/2)`` for code 0, ``[(k - 1/2) s, (k + 1/2) s)``
  for ``k = 1 .. L - 1`` and ``[(L - 1/2) s, +inf)`` for the top code ``L``.
* The paper's "statistically optimal" step is ``s_b = 3 sigma / (2^b - 1)``.
* "Stale" means: the bit width drops from ``b`` to ``b' < b`` (``b_new``) and the
  step ``s_b`` is kept, so the new clip level is ``L' s_b`` with ``L' = 2^b' - 1``.
  "Renewed" means the step is recomputed for ``b'`` bits (either the paper's
  ``s_b'`` or the MSE-optimal step for ``b'`` bits).

Findings that the functions below let one check (sigma = 1):

* The paper's event ``x > L' s_b`` is not the event where the error grows. With the
  step kept, ``Q_b'`` and ``Q_b`` agree below the rounding midpoint ``(L' + 1/2) s_b``
  and ``Q_b'`` is strictly worse above it, so the exact event is
  ``x > (2^b' - 1/2) s_b``. Its probability is smaller than the paper's.
* The lemma ``P > P(x > 1.5 sigma) = 2 (1 - Phi(1.5))`` is stated for the paper's
  event, where it holds strictly. It also holds for the exact event, with equality
  at ``b' = b - 1`` because ``(2^(b-1) - 1/2) / (2^b - 1) = 1/2`` exactly.
* ``3 sigma / (2^b - 1)`` is not the MSE-optimal step (see :func:`optimal_step`):
  optimum vs paper step for b = 1..4 is 1.2240 vs 3, 0.6508 vs 1, 0.3534 vs 0.4286,
  0.1932 vs 0.2; from b = 5 on the paper step is the smaller one (clips too early).
* With the step kept the stale error exceeds the error of the MSE-optimally renewed
  step for every ``b' < b``; against a renewal to the *paper* step it does not when
  ``b' = 1`` and ``b <= 3`` (the 1-bit paper step ``3 sigma`` is poor).
* With the actual neuron (same ``x`` every step) the steps are not independent and
  ``1 - (1 - p)^T`` is wrong in both directions (:func:`mc_neuron_t_step_probability`).
* The drafted "expected error with a stale step" formula equals
  ``E[(Q_b(x; s_b) - Q_b'(x; s_b))^2]``, the mean squared change of the *quantized
  value*, not the stale error ``E[(Q_b'(x; s_b) - x)^2]`` nor its increase over
  the ``b``-bit error (see :func:`paper_expected_error_formula`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, special

__all__ = [
    "normal_pdf",
    "normal_cdf",
    "normal_sf",
    "halfnormal_cdf",
    "halfnormal_sf",
    "n_levels",
    "paper_step",
    "quantize",
    "clip_ratio",
    "max_clip_ratio",
    "clip_ratio_table",
    "theorem_threshold",
    "theorem_probability",
    "exact_threshold",
    "exact_error_increase_probability",
    "lemma_bound",
    "t_step_probability",
    "halfnormal_partial_moments",
    "expected_sq_error",
    "optimal_step",
    "StaleVsRenewed",
    "stale_vs_renewed",
    "paper_expected_error_formula",
    "expected_sq_quantized_gap",
    "DraftedFormulaDecomposition",
    "drafted_formula_decomposition",
    "sample_halfnormal",
    "mc_tail_probability",
    "mc_probability",
    "mc_expected_sq_error",
    "mc_expected_sq_quantized_gap",
    "mc_neuron_t_step_probability",
]

DEFAULT_CHUNK = 1 << 20  # samples per Monte Carlo chunk (8 MiB per float64 array)

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# ----------------------------------------------------------------------------------
# Normal and half-normal distribution functions
# ----------------------------------------------------------------------------------
def normal_pdf(z):
    """Standard normal density: ``phi(z) = exp(-z^2 / 2) / sqrt(2 pi)`` (0 at +-inf)."""
    z = np.asarray(z, dtype=float)
    with np.errstate(over="ignore"):
        return _INV_SQRT_2PI * np.exp(-0.5 * z * z)


def normal_cdf(z):
    """Standard normal cdf: ``Phi(z) = erfc(-z / sqrt 2) / 2``."""
    return 0.5 * special.erfc(-np.asarray(z, dtype=float) / _SQRT2)


def normal_sf(z):
    """Standard normal survival function: ``1 - Phi(z) = erfc(z / sqrt 2) / 2``
    (computed without cancellation in the upper tail)."""
    return 0.5 * special.erfc(np.asarray(z, dtype=float) / _SQRT2)


def halfnormal_cdf(x, sigma=1.0):
    """Half-normal cdf: ``P(|N(0, sigma^2)| <= x) = 2 Phi(x / sigma) - 1 = erf(x / (sigma sqrt 2))``
    for ``x >= 0``, and 0 for ``x < 0``."""
    x = np.asarray(x, dtype=float)
    return np.where(x > 0, special.erf(np.maximum(x, 0.0) / (sigma * _SQRT2)), 0.0)


def halfnormal_sf(x, sigma=1.0):
    """Half-normal survival function: ``P(x > t) = 2 (1 - Phi(t / sigma)) = erfc(t / (sigma sqrt 2))``
    for ``t >= 0``, and 1 for ``t < 0``."""
    x = np.asarray(x, dtype=float)
    return np.where(x > 0, special.erfc(np.maximum(x, 0.0) / (sigma * _SQRT2)), 1.0)


# ----------------------------------------------------------------------------------
# Quantizer and the paper's step
# ----------------------------------------------------------------------------------
def n_levels(b):
    """Largest unsigned code ``L = 2^b - 1`` for ``b >= 1`` bits."""
    b = int(b)
    if b < 1:
        raise ValueError(f"bit width must be >= 1, got {b}")
    return (1 << b) - 1


def paper_step(b, sigma=1.0):
    """The paper's "statistically optimal" step ``s_b = 3 sigma / (2^b - 1)``."""
    return 3.0 * sigma / n_levels(b)


def quantize(x, step, b):
    """Unsigned uniform quantizer ``Q_b(x; s) = s * clip(floor(x / s + 1/2), 0, 2^b - 1)``."""
    codes = np.clip(np.floor(np.asarray(x, dtype=float) / step + 0.5), 0, n_levels(b))
    return step * codes


# ----------------------------------------------------------------------------------
# The theorem, the exact event and the lemma
# ----------------------------------------------------------------------------------
def _check_pair(b, b_new):
    b, b_new = int(b), int(b_new)
    if not 1 <= b_new < b:
        raise ValueError(f"need 1 <= b_new < b, got b={b}, b_new={b_new}")
    return b, b_new


def clip_ratio(b, b_new):
    """Ratio of the clip levels ``(2^b' - 1) / (2^b - 1)`` (the lemma's quantity)."""
    return n_levels(b_new) / n_levels(b)


def max_clip_ratio(b):
    """Largest clip ratio over ``b' <= b - 1``: ``(2^(b-1) - 1) / (2^b - 1)``.

    It is strictly below 1/2, because ``2 (2^(b-1) - 1) = 2^b - 2 < 2^b - 1``; it
    tends to 1/2 as ``b`` grows. (For ``b = 1`` there is no smaller bit width and
    the value 0 is returned.) This is why the lemma's threshold is ``1.5 sigma``:
    ``3 sigma * ratio <= 1.5 sigma``.
    """
    b = int(b)
    if b < 2:
        return 0.0
    return n_levels(b - 1) / n_levels(b)


def clip_ratio_table(b_max=8):
    """All ``(b, b', ratio)`` with ``1 <= b' < b <= b_max``; every ratio is ``< 1/2``."""
    return [(b, bn, clip_ratio(b, bn)) for b in range(2, b_max + 1) for bn in range(1, b)]


def theorem_threshold(b, b_new, sigma=1.0):
    """The paper's threshold ``(2^b' - 1) / (2^b - 1) * 3 sigma = (2^b' - 1) s_b``
    (the ``b'``-bit clip level of the stale step)."""
    b, b_new = _check_pair(b, b_new)
    return n_levels(b_new) * paper_step(b, sigma)


def theorem_probability(b, b_new, sigma=1.0):
    """The paper's event probability ``P(x > (2^b' - 1) s_b) = 2 (1 - Phi(3 (2^b' - 1) / (2^b - 1)))``.

    This is the probability that ``x`` lies above the stale ``b'``-bit clip level.
    It is *not* the probability that the error grows (see
    :func:`exact_error_increase_probability`): for ``x`` between ``(2^b' - 1) s_b``
    and ``(2^b' - 1/2) s_b`` both quantizers round to the same code. The lemma
    (:func:`lemma_bound`) is a strict lower bound on this probability for
    ``b' <= b - 1``. Independent of ``sigma`` (scale invariance).
    """
    return float(halfnormal_sf(theorem_threshold(b, b_new, sigma), sigma))


def exact_threshold(b, b_new, sigma=1.0, step=None):
    """Rounding midpoint ``(2^b' - 1/2) s`` above which the stale ``b'``-bit code
    (clipped at ``2^b' - 1``) differs from the ``b``-bit code; ``s = s_b`` by default."""
    b, b_new = _check_pair(b, b_new)
    s = paper_step(b, sigma) if step is None else float(step)
    return (n_levels(b_new) + 0.5) * s


def exact_error_increase_probability(b, b_new, sigma=1.0, step=None):
    """Probability that the squared error really grows when bits drop ``b -> b'``
    and the step ``s`` is kept: ``P(x > (2^b' - 1/2) s) = 2 (1 - Phi((2^b' - 1/2) s / sigma))``.

    Why this event: below the midpoint both quantizers emit the same code. Above it
    ``Q_b`` emits a code ``k >= 2^b'`` whose cell contains ``x`` (or the top code,
    which is still closer to ``x`` than ``2^b' - 1``) while ``Q_b'`` is stuck at
    ``2^b' - 1``, which is at least ``s/2`` away; so the error is strictly larger
    (up to a null set of cell boundaries). ``s`` defaults to the paper step ``s_b``.

    The lemma ``P > 2 (1 - Phi(1.5))`` is stated for the paper's event
    (:func:`theorem_probability`), but with the paper step it holds for this exact
    event too, with *equality* at ``b' = b - 1`` since
    ``(2^(b-1) - 1/2) * 3 / (2^b - 1) = 1.5``. This probability is always below the
    paper's (the paper overstates how often the error grows).
    """
    return float(halfnormal_sf(exact_threshold(b, b_new, sigma, step), sigma))


def lemma_bound():
    """The lemma's bound ``P(x > 1.5 sigma) = 2 (1 - Phi(1.5)) = erfc(1.5 / sqrt 2) = 0.13361...``."""
    return float(special.erfc(1.5 / _SQRT2))


def t_step_probability(p, T):
    """Probability that at least one of ``T`` steps has the event: ``1 - (1 - p)^T``.

    This assumes the ``T`` steps are *independent* draws with probability ``p``
    each. In the spiking neuron the same ``x`` is re-added at every step, so the
    steps are strongly dependent; :func:`mc_neuron_t_step_probability` measures the
    probability with the actual neuron instead.
    """
    p = np.asarray(p, dtype=float)
    T = np.asarray(T)
    if np.any(T < 0):
        raise ValueError("T must be >= 0")
    out = -np.expm1(T * np.log1p(-p))
    return float(out) if out.ndim == 0 else out


# ----------------------------------------------------------------------------------
# Exact expected squared error (closed form)
# ----------------------------------------------------------------------------------
def halfnormal_partial_moments(lo, hi, sigma=1.0):
    """Partial moments ``M_m = int_lo^hi x^m f(x) dx`` of the half-normal, ``m = 0, 1, 2``.

    With ``a = lo / sigma``, ``c = hi / sigma`` (``0 <= lo <= hi <= inf``) and the
    standard normal identities::

        int_a^c phi     = Phi(c) - Phi(a)          (computed as sf(a) - sf(c))
        int_a^c z phi   = phi(a) - phi(c)
        int_a^c z^2 phi = (Phi(c) - Phi(a)) + a phi(a) - c phi(c)   (c phi(c) = 0 at inf)

    and ``f(x) = 2 phi(x / sigma) / sigma``: ``M_m = 2 sigma^m * int_a^c z^m phi``.
    Arrays broadcast. Returns ``(M0, M1, M2)``.
    """
    a = np.asarray(lo, dtype=float) / sigma
    c = np.asarray(hi, dtype=float) / sigma
    pa, pc = normal_pdf(a), normal_pdf(c)
    m0 = normal_sf(a) - normal_sf(c)
    m1 = pa - pc
    finite = np.isfinite(c)
    c_pc = np.where(finite, np.where(finite, c, 0.0) * pc, 0.0)
    m2 = m0 + a * pa - c_pc
    return 2.0 * m0, 2.0 * sigma * m1, 2.0 * sigma * sigma * m2


def _cell_edges(step, b):
    """Rounding-cell edges for codes ``k = 0 .. L``: ``lo = max((k - 1/2) s, 0)``,
    ``hi = (k + 1/2) s`` (``+inf`` for ``k = L``)."""
    L = n_levels(b)
    k = np.arange(L + 1, dtype=float)
    lo = np.maximum((k - 0.5) * step, 0.0)
    hi = (k + 0.5) * step
    hi[-1] = np.inf
    return k, lo, hi


def expected_sq_error(step, b, sigma=1.0):
    """Exact ``E[(Q_b(x; s) - x)^2]`` for half-normal ``x``, in closed form.

    Sum over the rounding cells ``C_k`` (code ``k = 0 .. 2^b - 1``; ``C_0 = [0, s/2)``,
    ``C_k = [(k - 1/2) s, (k + 1/2) s)``, top cell open to ``+inf``)::

        E = sum_k int_{C_k} (k s - x)^2 f(x) dx
          = sum_k [ (k s)^2 M0(C_k) - 2 k s M1(C_k) + M2(C_k) ]

    with the partial moments of :func:`halfnormal_partial_moments`. No quadrature.
    Limits: a step so large that everything rounds to 0 gives ``E[x^2] = sigma^2``;
    a tiny step with a wide range gives about ``s^2 / 12``.
    """
    step = float(step)
    if not step > 0:
        raise ValueError("step must be > 0")
    k, lo, hi = _cell_edges(step, b)
    m0, m1, m2 = halfnormal_partial_moments(lo, hi, sigma)
    c = k * step
    return float(np.sum(c * c * m0 - 2.0 * c * m1 + m2))


def optimal_step(b, sigma=1.0, grid_points=200):
    """MSE-optimal step ``argmin_s E[(Q_b(x; s) - x)^2]`` for half-normal ``x``.

    Found numerically over the closed-form :func:`expected_sq_error`: a log-spaced
    grid over ``s in [0.02, 5] * 3 sigma / (2^b - 1)`` (the paper step times a wide
    factor) locates the basin, then ``scipy.optimize.minimize_scalar`` (bounded,
    xatol ~ 1e-10 sigma) refines it between the neighbouring grid points.
    Returns the step (a float).
    """
    s0 = paper_step(b, sigma)
    grid = s0 * np.geomspace(0.02, 5.0, grid_points)
    errs = np.array([expected_sq_error(s, b, sigma) for s in grid])
    i = int(np.argmin(errs))
    if i == 0 or i == len(grid) - 1:
        raise RuntimeError("optimum at the edge of the search grid")
    res = optimize.minimize_scalar(
        lambda s: expected_sq_error(s, b, sigma),
        bounds=(grid[i - 1], grid[i + 1]),
        method="bounded",
        options={"xatol": 1e-10 * sigma},
    )
    return float(res.x)


@dataclass(frozen=True)
class StaleVsRenewed:
    """Exact expected squared errors when bits drop ``b -> b'`` (``b_new``).

    ``original_error``: ``b`` bits, step ``s_b`` (before the drop).
    ``stale_error``: ``b'`` bits, step ``s_b`` kept.
    ``renewed_paper_error``: ``b'`` bits, paper step ``s_b' = 3 sigma / (2^b' - 1)``.
    ``renewed_optimal_error``: ``b'`` bits, MSE-optimal step for ``b'`` bits.
    """

    b: int
    b_new: int
    sigma: float
    stale_step: float
    renewed_paper_step: float
    renewed_optimal_step: float
    original_error: float
    stale_error: float
    renewed_paper_error: float
    renewed_optimal_error: float

    @property
    def ratio_stale_to_paper(self):
        """``stale_error / renewed_paper_error``."""
        return self.stale_error / self.renewed_paper_error

    @property
    def ratio_stale_to_optimal(self):
        """``stale_error / renewed_optimal_error``."""
        return self.stale_error / self.renewed_optimal_error

    def as_dict(self):
        d = asdict(self)
        d["ratio_stale_to_paper"] = self.ratio_stale_to_paper
        d["ratio_stale_to_optimal"] = self.ratio_stale_to_optimal
        return d


def stale_vs_renewed(b, b_new, sigma=1.0):
    """Compare the exact errors of a stale and a renewed step after ``b -> b'``.

    ``stale = E[(Q_b'(x; s_b) - x)^2]``; ``renewed (paper) = E[(Q_b'(x; s_b') - x)^2]``;
    ``renewed (optimal) = min_s E[(Q_b'(x; s) - x)^2]``; also the error before the
    drop, ``E[(Q_b(x; s_b) - x)^2]``. Returns a :class:`StaleVsRenewed`.
    """
    b, b_new = _check_pair(b, b_new)
    s_stale = paper_step(b, sigma)
    s_paper = paper_step(b_new, sigma)
    s_opt = optimal_step(b_new, sigma)
    return StaleVsRenewed(
        b=b,
        b_new=b_new,
        sigma=float(sigma),
        stale_step=s_stale,
        renewed_paper_step=s_paper,
        renewed_optimal_step=s_opt,
        original_error=expected_sq_error(s_stale, b, sigma),
        stale_error=expected_sq_error(s_stale, b_new, sigma),
        renewed_paper_error=expected_sq_error(s_paper, b_new, sigma),
        renewed_optimal_error=expected_sq_error(s_opt, b_new, sigma),
    )


# ----------------------------------------------------------------------------------
# The paper's drafted formula and what it actually computes
# ----------------------------------------------------------------------------------
def paper_expected_error_formula(b, b_new, sigma=1.0):
    """The paper's drafted "expected error with a stale step", coded as written::

        E(Err') = s^2 [ sum_{j=1}^{2^b - 2^b' - 1} j^2 P_j + (2^b - 2^b')^2 P(x / s > 2^b - 3/2) ]
        P_j     = P(j + 2^b' - 3/2 < x / s < j + 2^b' - 1/2),   s = s_b = 3 sigma / (2^b - 1).

    Meant to be: the expected error after ``b -> b'`` with the step ``s_b`` kept.

    What it computes: with ``k = j + 2^b' - 1`` the interval of ``P_j`` is the
    ``b``-bit rounding cell of code ``k`` (``k = 2^b' .. 2^b - 2``) and the last term
    is the top cell ``k = 2^b - 1``; the weight ``j^2 s^2 = (k - (2^b' - 1))^2 s^2``
    is the squared distance between the ``b``-bit code and the stale clipped code.
    So the formula is *exactly* ``E[(Q_b(x; s_b) - Q_b'(x; s_b))^2]``
    (:func:`expected_sq_quantized_gap`): the mean squared change of the quantized
    value, measured against the old quantized value rather than against ``x``.

    It differs from the exact stale error ``E[(Q_b'(x; s_b) - x)^2]`` (it drops the
    ``b``-bit error that is there anyway) and also from the exact increase
    ``E[(Q_b' - x)^2] - E[(Q_b - x)^2]``: expanding
    ``(Q_b' - x)^2 = (Q_b - Q_b')^2 + 2 (Q_b' - Q_b)(Q_b - x) + (Q_b - x)^2`` gives
    ``increase = formula + 2 E[(Q_b' - Q_b)(Q_b - x)]``; see
    :func:`drafted_formula_decomposition`. The cross term is small and of either
    sign, so the formula is close to the increase but not equal to it; against the
    stale error itself it is short by ``E[(Q_b - x)^2] + cross term``. At sigma = 1:

    ======  =========  ===========  ===========  ==========
    b, b'   formula    increase     stale error  cross term
    ======  =========  ===========  ===========  ==========
    2, 1    0.170872   0.125244     0.208814     -0.045629
    3, 2    0.077957   0.074500     0.090174     -0.003457
    4, 2    0.343909   0.343874     0.347605     -0.000034
    4, 3    0.056561   0.057908     0.061639     +0.001346
    ======  =========  ===========  ===========  ==========
    """
    b, b_new = _check_pair(b, b_new)
    s = paper_step(b, sigma)
    hi_b, hi_n = 1 << b, 1 << b_new  # 2^b, 2^b'
    j = np.arange(1, hi_b - hi_n, dtype=float)  # 1 .. 2^b - 2^b' - 1
    lo = (j + hi_n - 1.5) * s
    hi = (j + hi_n - 0.5) * s
    p_j = halfnormal_sf(lo, sigma) - halfnormal_sf(hi, sigma)
    p_top = halfnormal_sf((hi_b - 1.5) * s, sigma)
    return float(s * s * (np.sum(j * j * p_j) + (hi_b - hi_n) ** 2 * p_top))


def expected_sq_quantized_gap(b, b_new, sigma=1.0, step=None):
    """Exact ``E[(Q_b(x; s) - Q_b'(x; s))^2]`` via the cell moments of :func:`halfnormal_partial_moments`::

        sum_{k = 2^b'}^{2^b - 1} ((k - (2^b' - 1)) s)^2 M0(C_k)

    (the codes agree for ``k <= 2^b' - 1``). ``s = s_b`` by default. Computed
    independently of :func:`paper_expected_error_formula`, which it should equal.
    """
    b, b_new = _check_pair(b, b_new)
    s = paper_step(b, sigma) if step is None else float(step)
    k, lo, hi = _cell_edges(s, b)
    m0, _, _ = halfnormal_partial_moments(lo, hi, sigma)
    gap = np.maximum(k - n_levels(b_new), 0.0) * s
    return float(np.sum(gap * gap * m0))


@dataclass(frozen=True)
class DraftedFormulaDecomposition:
    """Exact pieces relating the drafted formula to the true errors (step ``s_b``).

    ``stale_error - original_error = increase = drafted + cross_term`` with
    ``cross_term = 2 E[(Q_b' - Q_b)(Q_b - x)]``.
    """

    b: int
    b_new: int
    sigma: float
    drafted: float
    original_error: float
    stale_error: float
    increase: float
    cross_term: float

    def as_dict(self):
        return asdict(self)


def drafted_formula_decomposition(b, b_new, sigma=1.0):
    """Closed-form decomposition of the stale error around the drafted formula.

    ``cross_term = 2 E[(Q_b' - Q_b)(Q_b - x)]
    = -2 sum_{k >= 2^b'} (k - L') s * (k s M0(C_k) - M1(C_k))``, ``L' = 2^b' - 1``.
    The identity ``stale - original = drafted + cross_term`` holds exactly.
    """
    b, b_new = _check_pair(b, b_new)
    s = paper_step(b, sigma)
    k, lo, hi = _cell_edges(s, b)
    m0, m1, _ = halfnormal_partial_moments(lo, hi, sigma)
    gap = np.maximum(k - n_levels(b_new), 0.0) * s
    cross = float(-2.0 * np.sum(gap * (k * s * m0 - m1)))
    original = expected_sq_error(s, b, sigma)
    stale = expected_sq_error(s, b_new, sigma)
    return DraftedFormulaDecomposition(
        b=b,
        b_new=b_new,
        sigma=float(sigma),
        drafted=paper_expected_error_formula(b, b_new, sigma),
        original_error=original,
        stale_error=stale,
        increase=stale - original,
        cross_term=cross,
    )


# ----------------------------------------------------------------------------------
# Monte Carlo (seeded, vectorised, processed in chunks)
# ----------------------------------------------------------------------------------
def sample_halfnormal(rng, n, sigma=1.0):
    """``n`` draws of ``sigma * |N(0, 1)|`` from a numpy Generator."""
    return sigma * np.abs(rng.standard_normal(n))


def _chunks(n, chunk):
    n, chunk = int(n), int(chunk)
    if n < 1 or chunk < 1:
        raise ValueError("n and chunk must be >= 1")
    while n > 0:
        m = min(n, chunk)
        yield m
        n -= m


def _mc_mean(stat, sigma, n, seed, chunk):
    """Mean and standard error of ``stat(x)`` over ``n`` half-normal draws, in chunks
    (running sums of the values and their squares, so memory is O(chunk))."""
    rng = np.random.default_rng(seed)
    total = total_sq = 0.0
    for m in _chunks(n, chunk):
        v = np.asarray(stat(sample_halfnormal(rng, m, sigma)), dtype=float)
        total += float(v.sum())
        total_sq += float(np.dot(v, v))
    mean = total / n
    var = max(total_sq / n - mean * mean, 0.0) * n / max(n - 1, 1)
    return mean, math.sqrt(var / n)


def _proportion_se(p, n):
    """Standard error of a proportion: ``sqrt(p (1 - p) / n)``."""
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def mc_tail_probability(threshold, sigma=1.0, n=10**6, seed=0, chunk=DEFAULT_CHUNK):
    """Monte Carlo ``P(x > threshold)``; returns ``(p_hat, sqrt(p_hat (1 - p_hat) / n))``."""
    count = 0
    rng = np.random.default_rng(seed)
    for m in _chunks(n, chunk):
        count += int(np.count_nonzero(sample_halfnormal(rng, m, sigma) > threshold))
    p = count / n
    return p, _proportion_se(p, n)


def mc_probability(b, b_new, sigma=1.0, n=10**6, seed=0, event="exact", step=None,
                   chunk=DEFAULT_CHUNK):
    """Monte Carlo probability of the theorem's events after ``b -> b'`` with the step kept.

    ``event="theorem"``: ``x > (2^b' - 1) s`` (the paper's event).
    ``event="exact"``: the squared error really grows, evaluated by running both
    quantizers, ``(Q_b'(x; s) - x)^2 > (Q_b(x; s) - x)^2`` (not via the threshold,
    so it checks the threshold derivation too).
    ``s = s_b`` by default. Returns ``(p_hat, standard_error)`` with the standard
    error of a proportion.
    """
    b, b_new = _check_pair(b, b_new)
    s = paper_step(b, sigma) if step is None else float(step)
    if event not in ("theorem", "exact"):
        raise ValueError("event must be 'theorem' or 'exact'")
    rng = np.random.default_rng(seed)
    count = 0
    for m in _chunks(n, chunk):
        x = sample_halfnormal(rng, m, sigma)
        if event == "theorem":
            hit = x > n_levels(b_new) * s
        else:
            hit = (quantize(x, s, b_new) - x) ** 2 > (quantize(x, s, b) - x) ** 2
        count += int(np.count_nonzero(hit))
    p = count / n
    return p, _proportion_se(p, n)


def mc_expected_sq_error(step, b, sigma=1.0, n=10**6, seed=0, chunk=DEFAULT_CHUNK):
    """Monte Carlo ``E[(Q_b(x; s) - x)^2]``; returns ``(mean, standard_error)``."""
    return _mc_mean(lambda x: (quantize(x, step, b) - x) ** 2, sigma, n, seed, chunk)


def mc_expected_sq_quantized_gap(b, b_new, sigma=1.0, n=10**6, seed=0, step=None,
                                 chunk=DEFAULT_CHUNK):
    """Monte Carlo ``E[(Q_b(x; s) - Q_b'(x; s))^2]`` (``s = s_b`` by default);
    returns ``(mean, standard_error)``."""
    b, b_new = _check_pair(b, b_new)
    s = paper_step(b, sigma) if step is None else float(step)
    return _mc_mean(lambda x: (quantize(x, s, b) - quantize(x, s, b_new)) ** 2,
                    sigma, n, seed, chunk)


# ----------------------------------------------------------------------------------
# The actual multi-bit soft-reset neuron, T steps with the same input
# ----------------------------------------------------------------------------------
def _neuron_codes(x, step, b, T):
    """Codes ``S_t`` (shape ``(T,) + x.shape``, float64) of the package's own neuron,
    :func:`adabit_lite.neuron.neuron_trace` with ``tau = 1``, round firing, ``b`` unsigned bits::

        v_0 = x,                        S_0 = clip(floor(v_0 / s + 1/2), 0, 2^b - 1)
        v_t = v_{t-1} - s S_{t-1} + x,  S_t = clip(floor(v_t / s + 1/2), 0, 2^b - 1)

    (imported here, not at the top: the rest of this module needs numpy and scipy only).
    """
    import torch

    from .neuron import neuron_trace

    if int(T) < 1:
        raise ValueError("T must be >= 1")
    x = torch.from_numpy(np.asarray(x, dtype=float))
    return neuron_trace(x, float(step), int(b), int(T))[1].numpy()


def mc_neuron_t_step_probability(b, b_new, T, sigma=1.0, n=10**6, seed=0,
                                 reference="paper", chunk=DEFAULT_CHUNK // 4):
    """Monte Carlo probability, with the real neuron, that a stale step errs more at some step.

    Two neurons see the same half-normal ``x`` (re-added every step, as in the
    layer): the *stale* one has ``b'`` bits and the old step ``s_b``; the
    *reference* one is

    * ``"paper"`` (default): ``b'`` bits with the renewed paper step ``s_b'``;
    * ``"optimal"``: ``b'`` bits with the MSE-optimal ``b'``-bit step;
    * ``"original"``: ``b`` bits with step ``s_b`` (no drop: the theorem's own
      comparison; at ``T = 1`` its probability is :func:`exact_error_increase_probability`).

    Error of a step: ``e_t = (s S_t - x)^2``, the emitted value of step ``t``
    against the ideal ``x`` of that step; chosen because the ``1 - (1 - p)^T``
    formula is a union over per-step events, so a per-step error is the quantity it
    speaks about. The event over ``T`` steps is ``max_{t < T} [e_t(stale) - e_t(ref)] > 0``
    (strict: equal errors, e.g. identical emissions, do not count).

    Returns ``(p, se)``: arrays of length ``T``; entry ``t - 1`` is the probability
    over the first ``t`` steps (so it is non-decreasing in ``t`` by construction)
    and its proportion standard error.
    """
    b, b_new = _check_pair(b, b_new)
    s_stale = paper_step(b, sigma)
    if reference == "paper":
        s_ref, b_ref = paper_step(b_new, sigma), b_new
    elif reference == "optimal":
        s_ref, b_ref = optimal_step(b_new, sigma), b_new
    elif reference == "original":
        s_ref, b_ref = s_stale, b
    else:
        raise ValueError("reference must be 'paper', 'optimal' or 'original'")
    rng = np.random.default_rng(seed)
    counts = np.zeros(int(T), dtype=np.int64)
    for m in _chunks(n, chunk):
        x = sample_halfnormal(rng, m, sigma)
        e_stale = (s_stale * _neuron_codes(x, s_stale, b_new, T) - x) ** 2
        e_ref = (s_ref * _neuron_codes(x, s_ref, b_ref, T) - x) ** 2
        worse_by_t = np.logical_or.accumulate(e_stale > e_ref, axis=0)
        counts += np.count_nonzero(worse_by_t, axis=1)
    p = counts / n
    se = np.sqrt(p * (1.0 - p) / n)
    return p, se
