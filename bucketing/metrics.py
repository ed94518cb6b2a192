"""Difficulty metrics: a registry of per-rollout functions, vectorised over all rollouts.

Each rollout has ``n >= 1`` scores.  All rollouts' scores sit in one flat
array; ``counts[i]`` scores belong to rollout ``i``, starting at ``starts[i]``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import BucketingError

# pass_at_k uses min(k, n): a larger k changes nothing, and a k beyond int64 broke numpy (OverflowError)
MAX_K = 1_000_000
# inverse_mean where mean + 1e-6 is exactly 0: the denominator of the next float above, 2**-72 (so 2**72, the
# largest value inverse_mean takes anywhere: as hard as it gets, and finite)
_POLE_DENOMINATOR = float(np.nextafter(-1e-6, 0.0) + 1e-6)


@dataclass(frozen=True)
class Params:
    """Settings some metrics use."""

    k: int = 1  # pass_at_k's k
    pass_threshold: float = 0.5  # a response passes when its score >= this

    def __post_init__(self):
        k = self.k
        if (
            isinstance(k, bool)
            or not isinstance(k, (int, float, np.integer, np.floating))
            or not k >= 1
            or (k <= MAX_K and int(k) != k)
        ):
            raise BucketingError(f"--k must be a whole number >= 1, not {k!r}")
        if k > MAX_K:
            raise BucketingError(f"--k must be at most {MAX_K} (pass_at_k uses k = n when k > n), not {k}")
        threshold = self.pass_threshold
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float, np.integer, np.floating))
            or not np.isfinite(threshold)
        ):
            raise BucketingError("--pass-threshold must be a finite number")


@dataclass(frozen=True)
class Scores:
    """All rollouts' scores, flat, with each rollout's count and start."""

    flat: np.ndarray  # float64
    counts: np.ndarray  # int64, all >= 1

    @property
    def starts(self) -> np.ndarray:
        return np.cumsum(self.counts) - self.counts

    def sum(self, values: np.ndarray | None = None) -> np.ndarray:
        """Per-rollout sum of ``values`` (default: the scores)."""
        values = self.flat if values is None else values
        if len(self.counts) == 0:
            return np.zeros(0)
        return np.add.reduceat(values, self.starts)

    def passed(self, threshold: float) -> np.ndarray:
        """Per-rollout number of scores >= threshold."""
        return self.sum((self.flat >= threshold).astype(np.float64))

    def __len__(self) -> int:
        return len(self.counts)


MetricFunction = Callable[[Scores, Params], np.ndarray]


@dataclass(frozen=True)
class Metric:
    name: str
    compute: MetricFunction  # Scores, Params -> one float per rollout
    higher_is_easier: bool
    description: str

    @property
    def direction(self) -> str:
        return "higher = easier" if self.higher_is_easier else "higher = harder"


METRICS: dict[str, Metric] = {}
RESERVED = {"file", "file_id", "line", "offset", "length", "n", "clean"}


def register_metric(
    name: str,
    function: Callable,
    *,
    higher_is_easier: bool,
    description: str = "",
    vectorized: bool = False,
) -> Metric:
    """Add a metric to the registry; it then appears in the table, the CLI's ``-m`` and the app.

    ``function(scores)`` gets one rollout's scores as a numpy array and returns a
    float (``function(scores, params)`` gets :class:`Params` too).  With
    ``vectorized=True``, ``function(all_scores: Scores, params)`` returns one
    value per rollout at once.
    """
    if not name.isidentifier() or name in RESERVED:
        raise ValueError(f"metric name {name!r} must be an identifier and not one of {sorted(RESERVED)}")
    compute = function if vectorized else _per_rollout(function)
    metric = Metric(name, compute, bool(higher_is_easier), description or (function.__doc__ or "").strip())
    METRICS[name] = metric
    return metric


def get_metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise BucketingError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}") from None


def compute_all(scores: Scores, params: Params) -> dict[str, np.ndarray]:
    """Every registered metric for every rollout."""
    return {name: np.asarray(metric.compute(scores, params), dtype=np.float64) for name, metric in METRICS.items()}


def k_exceeds_n(scores: Scores, params: Params) -> int:
    """How many rollouts have fewer responses than k (pass_at_k uses k = n for them)."""
    return int(np.count_nonzero(scores.counts < params.k))


def _per_rollout(function: Callable) -> MetricFunction:
    wants_params = len(inspect.signature(function).parameters) >= 2

    def compute(scores: Scores, params: Params) -> np.ndarray:
        split = np.split(scores.flat, scores.starts[1:]) if len(scores) else []
        extra = (params,) if wants_params else ()
        return np.fromiter((function(s, *extra) for s in split), dtype=np.float64, count=len(scores))

    return compute


# --- the seven built-in metrics ---------------------------------------------------------------


def mean_reward(scores: Scores, params: Params) -> np.ndarray:
    return scores.sum() / scores.counts


def max_reward(scores: Scores, params: Params) -> np.ndarray:
    return np.maximum.reduceat(scores.flat, scores.starts) if len(scores) else np.zeros(0)


def min_reward(scores: Scores, params: Params) -> np.ndarray:
    return np.minimum.reduceat(scores.flat, scores.starts) if len(scores) else np.zeros(0)


def variance(scores: Scores, params: Params) -> np.ndarray:
    """Sample variance (n - 1 denominator); 0 for a single score. Two passes, for accuracy."""
    deviations = np.repeat(mean_reward(scores, params), scores.counts)  # one array of the scores' size, reused
    np.subtract(scores.flat, deviations, out=deviations)
    squares = scores.sum(np.square(deviations, out=deviations))
    return np.where(scores.counts > 1, squares / np.maximum(scores.counts - 1, 1), 0.0)


def success_rate(scores: Scores, params: Params) -> np.ndarray:
    return scores.passed(params.pass_threshold) / scores.counts


def pass_at_k(scores: Scores, params: Params) -> np.ndarray:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k); k > n uses k = n."""
    n = scores.counts.astype(np.float64)
    failed = n - scores.passed(params.pass_threshold)
    k = np.minimum(params.k, scores.counts)
    # C(n-c, k) / C(n, k) = prod_{i<k} (n-c-i) / (n-i); fewer than k failures: a factor is 0, pass@k = 1.
    # Step i multiplies only the rollouts still in the product (i < k, and i < failures): the work is at most
    # the number of scores, whatever k and however long one rollout is.
    all_fail = np.where(failed >= k, 1.0, 0.0)
    active = np.flatnonzero(failed >= k)
    i = 0
    while len(active := active[k[active] > i]):
        all_fail[active] *= (failed[active] - i) / (n[active] - i)
        i += 1
    return 1.0 - all_fail


def inverse_mean(scores: Scores, params: Params) -> np.ndarray:
    """1 / (mean + 1e-6); at mean = -1e-6 exactly, where that divides by 0, the value at the next float: 2**72."""
    denominator = mean_reward(scores, params) + 1e-6
    denominator[denominator == 0] = _POLE_DENOMINATOR
    return 1.0 / denominator


for _name, _function, _easier, _text in [
    ("mean_reward", mean_reward, True, "mean score"),
    ("max_reward", max_reward, True, "best score"),
    ("min_reward", min_reward, True, "worst score"),
    ("variance", variance, False, "sample variance of the scores (n-1), 0 when n = 1"),
    ("pass_at_k", pass_at_k, True, "unbiased pass@k at the pass threshold"),
    ("success_rate", success_rate, True, "share of scores >= the pass threshold"),
    ("inverse_mean", inverse_mean, False, "1 / (mean + 1e-6)"),
]:
    register_metric(_name, _function, higher_is_easier=_easier, description=_text, vectorized=True)
