"""The numbers of the closed-loop evaluation, free of any model: each takes arrays and returns floats.

- `frechet_distance`: between two sets of embeddings, each summarised as a Gaussian (the FID formula);
- `spearman`: rank correlation, or None where it is undefined (fewer than 3 points, a constant side);
- `quadrant_confusion`: asked vs heard quadrant counts in the layout the confusion plot reads;
- `mean_pairwise_l1`: how different the log-mels of a set are from one another (diversity).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from moodmusic.mood import QUADRANTS, quadrant_indices


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (tiny negative eigenvalues from rounding are clipped)."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance_from_stats(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)).

    Tr((S_a S_b)^(1/2)) is computed as the sum of the square roots of the eigenvalues of the symmetric
    S_a^(1/2) S_b S_a^(1/2) (same spectrum): unlike scipy's sqrtm of the non-symmetric product it stays real
    and finite when the covariances are singular, which they are whenever a set has fewer clips than the
    embedding has dimensions (a quick run).
    """
    mean_a, mean_b = np.asarray(mean_a, dtype=np.float64), np.asarray(mean_b, dtype=np.float64)
    cov_a, cov_b = np.atleast_2d(cov_a).astype(np.float64), np.atleast_2d(cov_b).astype(np.float64)
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_root = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None))))
    distance = float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)
    return max(distance, 0.0)  # rounding can leave -1e-12 for identical sets


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """Fréchet distance between two sets of row vectors (N, D); None when a set has fewer than 2 rows.

    Small sets bias it upwards (the covariance is estimated from few points), so compare only
    distances computed from sets of the same sizes; the evaluation reports a real-vs-real floor beside them.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected two (N, D) arrays of the same D, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        return None
    return frechet_distance_from_stats(a.mean(axis=0), np.cov(a, rowvar=False), b.mean(axis=0), np.cov(b, rowvar=False))


def spearman(x, y) -> float | None:
    """Spearman's rank correlation; None when it is undefined (under 3 pairs, or one side constant)."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    value = float(spearmanr(x, y).statistic)
    return value if math.isfinite(value) else None


def quadrant_confusion(asked: np.ndarray, heard: np.ndarray) -> dict:
    """Counts of asked (rows) vs heard (columns) quadrants of (N, 2) valence/arousal points, and the accuracy."""
    asked, heard = np.asarray(asked, dtype=np.float64).reshape(-1, 2), np.asarray(heard, dtype=np.float64).reshape(-1, 2)
    rows, columns = quadrant_indices(asked[:, 0], asked[:, 1]), quadrant_indices(heard[:, 0], heard[:, 1])
    matrix = np.zeros((len(QUADRANTS), len(QUADRANTS)), dtype=int)
    np.add.at(matrix, (rows, columns), 1)
    return {
        "labels": list(QUADRANTS),
        "rows_true_columns_heard": matrix.tolist(),
        "clips": int(len(rows)),
        "accuracy": float(np.mean(rows == columns)) if len(rows) else None,
    }


def mean_pairwise_l1(mels: list[np.ndarray], max_pairs: int | None = None, seed: int = 0) -> tuple[float | None, int]:
    """Mean |a - b| over all pairs of the (80, T) log-mels (cropped to the shortest), and the pairs used.

    With `max_pairs`, a seeded random sample of the pairs is used (the real reference has many).
    """
    if len(mels) < 2:
        return None, 0
    frames = min(m.shape[-1] for m in mels)
    stack = np.stack([np.asarray(m, dtype=np.float32)[:, :frames] for m in mels])
    pairs = list(itertools.combinations(range(len(stack)), 2))
    if max_pairs is not None and len(pairs) > max_pairs:
        keep = np.random.default_rng(seed).choice(len(pairs), size=max_pairs, replace=False)
        pairs = [pairs[i] for i in sorted(keep)]
    return float(np.mean([np.abs(stack[i] - stack[j]).mean() for i, j in pairs])), len(pairs)
