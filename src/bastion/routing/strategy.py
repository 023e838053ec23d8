"""Choosing one deployment of a group. Pure: the random source is passed in."""

from __future__ import annotations

import random
from collections.abc import Sequence

from bastion.core.deployment import Deployment


def deployment_weight(deployment: Deployment) -> float:
    """LiteLLM's simple-shuffle weight: ``weight``, else ``rpm``, else ``tpm``, else 1."""
    for value in (deployment.weight, deployment.rpm, deployment.tpm):
        if value is not None:
            return float(value)
    return 1.0


def pick_weighted(candidates: Sequence[Deployment], rng: random.Random) -> Deployment:
    if len(candidates) == 1:
        return candidates[0]
    weights = [deployment_weight(d) for d in candidates]
    if sum(weights) <= 0:
        return candidates[rng.randrange(len(candidates))]
    return rng.choices(candidates, weights=weights, k=1)[0]
