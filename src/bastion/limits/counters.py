"""What is counted, and the windows rpm and tpm are counted in.

Windows are fixed 60 s windows aligned to the epoch minute (as LiteLLM counts
per minute). Fixed rather than sliding: one counter per limit and window (one
INCR on Redis, a few bytes in memory), and every worker and replica agrees on
the window boundaries from its own clock without sharing a "window start".
The price is the classic burst at a boundary: up to twice a limit within a few
seconds across two adjacent windows. ``retry-after`` is the time to the next
window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

WINDOW_S = 60


class Kind(StrEnum):
    RPM = "rpm"  # requests started in the current window
    TPM = "tpm"  # tokens (reserved, then settled) in the current window
    PARALLEL = "parallel"  # requests in flight now


@dataclass(frozen=True, slots=True)
class Counter:
    """One limit a request is held to.

    ``scope`` names the counter across workers (``key:<hash>``, ``team:<id>``…);
    ``label`` names it for people (``key my-alias``) and ``setting`` is the
    setting that set it (``rpm_limit``), for the refusal message.
    """

    kind: Kind
    scope: str
    limit: int
    label: str
    setting: str

    def refusal(self) -> str:
        what = {
            Kind.RPM: "requests this minute",
            Kind.TPM: "tokens this minute",
            Kind.PARALLEL: "requests in flight",
        }[self.kind]
        return (
            f"rate limit reached for {self.label}: {self.setting} {self.limit} reached "
            f"({what}). Retry after the time in the retry-after header."
        )


def window_of(now: float) -> int:
    return int(now // WINDOW_S)


def seconds_to_next_window(now: float) -> int:
    """Whole seconds until the next window starts (at least 1)."""
    return max(1, math.ceil((window_of(now) + 1) * WINDOW_S - now))
