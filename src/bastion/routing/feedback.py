"""What the gateway tells the routing state about each call, for the strategies.

Only what the configured strategy reads is recorded (``simple-shuffle`` records
nothing, so the default hot path does no bookkeeping):

- load: a request starts (in flight, and counted in this minute's requests) and
  ends (a stream ends when it is closed, not when it opens);
- latency: the seconds an answer took, or for a stream the seconds to its first
  byte and to its end; a timeout counts as ``TIMEOUT_PENALTY_S`` (LiteLLM's 1000 s
  penalty), so a deployment that stops answering is avoided;
- tokens: a call's total tokens, once the answer's usage is known.
"""

from __future__ import annotations

from bastion.core.deployment import Deployment
from bastion.core.errors import UpstreamError, UpstreamTimeoutError
from bastion.core.usage import Usage
from bastion.routing.state_store import DeploymentStateStore
from bastion.routing.strategies import Strategy

TIMEOUT_PENALTY_S = 1000.0


class RoutingFeedback:
    def __init__(self, store: DeploymentStateStore, strategy: Strategy) -> None:
        self.store = store
        self.load = strategy.tracks_load
        self.latency = strategy.tracks_latency
        self.enabled = self.load or self.latency

    def started(self, deployment: Deployment) -> None:
        if self.load:
            self.store.request_started(deployment.id)

    def answered(self, deployment: Deployment, seconds: float) -> None:
        if self.load:
            self.store.request_ended(deployment.id)
        if self.latency:
            self.store.add_latency(deployment.id, seconds, first_token=False)

    def first_byte(self, deployment: Deployment, seconds: float) -> None:
        if self.latency:
            self.store.add_latency(deployment.id, seconds, first_token=True)

    def failed(self, deployment: Deployment, error: UpstreamError) -> None:
        if self.load:
            self.store.request_ended(deployment.id)
        if self.latency and isinstance(error, UpstreamTimeoutError):
            self.store.add_latency(deployment.id, TIMEOUT_PENALTY_S, first_token=False)

    def used(self, deployment: Deployment, usage: Usage) -> None:
        """A call's usage, once known (tokens count toward this minute's tpm)."""
        if self.load:
            self.store.add_tokens(deployment.id, usage.total_tokens)
