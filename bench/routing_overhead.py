"""What the router costs per request, per routing strategy (issue 5: routing strategies).

One event loop routes ``--loops`` requests to a group of three deployments; the
"call" is an ``async`` function that returns at once, so the figure is the router
alone: the group lookup, cooldown checks, the strategy's pick and, for strategies
that need it, the gateway's bookkeeping (request started/answered, latency sample,
tokens used). ``pre-call checks`` adds the prompt estimate against context windows.

Run: ``.venv/bin/python bench/routing_overhead.py [--loops 50000]``

To compare with a tree before the strategies existed, run the same file with that
tree's ``src`` first on ``PYTHONPATH``: only ``simple-shuffle`` is measured there.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import random
import time
from collections.abc import Callable
from typing import Any

from bastion.core.deployment import Deployment
from bastion.providers.fake import FakeProvider
from bastion.routing.cooldown import CooldownTracker
from bastion.routing.model_table import ModelTable
from bastion.routing.router import Router, RouterPolicy

BODY: dict[str, Any] = {
    "model": "g",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant. " * 10},
        {"role": "user", "content": "Summarise the following text. " + "lorem ipsum " * 200},
    ],
}
STRATEGIES = (
    "simple-shuffle",
    "least-busy",
    "latency-based-routing",
    "usage-based-routing-v2",
    "cost-based-routing",
)


def group() -> list[Deployment]:
    fake = FakeProvider()
    return [
        Deployment(
            id=f"d{i}",
            model_name="g",
            provider_name="fake",
            upstream_model=f"m{i}",
            provider=fake,
            rpm=1_000_000,
            tpm=1_000_000_000,
            model_info={"max_input_tokens": 128_000},
        )
        for i in range(3)
    ]


def new_router(strategy: str, pre_call_checks: bool) -> Router:
    table = ModelTable(group())
    policy = RouterPolicy()
    if not _has_strategies():
        return Router(table, policy, CooldownTracker(), rng=random.Random(1))
    from bastion.config.model import ProxyConfig
    from bastion.routing.setup import build_router

    config = ProxyConfig.model_validate(
        {
            "router_settings": {
                "routing_strategy": strategy,
                "enable_pre_call_checks": pre_call_checks,
            }
        }
    )
    return build_router(config, table)


def _has_strategies() -> bool:
    return "hints" in inspect.signature(Router.route).parameters


def per_request_us(router: Router, loops: int, with_hints: bool) -> float:
    feedback = getattr(router, "feedback", None)
    tracking = feedback is not None and feedback.enabled
    kwargs: dict[str, Any] = {}
    if with_hints:
        from bastion.routing.context_window import estimate_prompt_tokens
        from bastion.routing.strategies import RouteHints

        def hints() -> Any:
            return RouteHints(False, lambda: estimate_prompt_tokens(BODY))

    else:
        hints = None  # type: ignore[assignment]

    async def attempt(deployment: Deployment) -> Deployment:
        if tracking:  # what the gateway does around a call for such a strategy
            started = time.perf_counter()
            feedback.started(deployment)
            feedback.answered(deployment, time.perf_counter() - started)
        return deployment

    async def run() -> float:
        from bastion.core.usage import Usage

        usage = Usage(input_tokens=500, output_tokens=100)
        start = time.perf_counter()
        for _ in range(loops):
            if hints is not None:
                kwargs["hints"] = hints()
            routed = await router.route("g", attempt, **kwargs)
            if tracking and feedback.load:
                feedback.used(routed.deployment, usage)
        return time.perf_counter() - start

    best = min(asyncio.run(run()) for _ in range(3))
    return best / loops * 1e6


def cases() -> list[tuple[str, Callable[[], Router], bool]]:
    if not _has_strategies():
        return [("simple-shuffle", lambda: new_router("simple-shuffle", False), False)]
    found: list[tuple[str, Callable[[], Router], bool]] = [
        (name, lambda name=name: new_router(name, False), True) for name in STRATEGIES
    ]
    found.append(
        ("simple-shuffle + pre-call checks", lambda: new_router("simple-shuffle", True), True)
    )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=50_000)
    args = parser.parse_args()
    print(f"router cost per request, group of 3, {args.loops} requests, best of 3")
    for name, make, hints in cases():
        print(f"  {name:36s} {per_request_us(make(), args.loops, hints):7.2f} us")


if __name__ == "__main__":
    main()
