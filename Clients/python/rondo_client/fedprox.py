"""FedProx's proximal term for local training (Li et al., MLSys 2020).

Under `rondo serve --strategy fedprox --strategy-option proximal_mu=MU`, every fit task's config carries
`proximal_mu`. A trainer adds (mu/2)·||w - w_global||² to its loss, that is mu·(w - w_global) to each
gradient, at every local step. The Flower adapter passes `proximal_mu` through as a float, as Flower's own
FedProx does, so Flower clients written for FedProx work unchanged.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np


def proximal_mu(config: Mapping[str, object]) -> float:
    """The task's mu, or 0.0 when it carries none (or a value that is not a finite, positive number)."""
    try:
        mu = float(config.get("proximal_mu", 0.0))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return mu if math.isfinite(mu) and mu > 0 else 0.0


def proximal_gradient(weights: np.ndarray, global_weights: np.ndarray, mu: float) -> np.ndarray:
    """mu·(w - w_global): what the proximal term adds to one tensor's gradient."""
    return mu * (np.asarray(weights, dtype=np.float64) - np.asarray(global_weights, dtype=np.float64))


def proximal_penalty(weights: Mapping[str, np.ndarray], global_weights: Mapping[str, np.ndarray], mu: float) -> float:
    """(mu/2)·||w - w_global||² over the floating-point tensors both hold: what the term adds to the loss."""
    squared = 0.0
    for name, value in weights.items():
        start = global_weights.get(name)
        if start is None or not np.issubdtype(np.asarray(value).dtype, np.floating):
            continue
        difference = np.asarray(value, dtype=np.float64) - np.asarray(start, dtype=np.float64)
        squared += float(np.sum(difference * difference))
    return mu / 2 * squared
