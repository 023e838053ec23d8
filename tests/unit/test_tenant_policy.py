"""Model access, budgets, the spend ledger and stream metering — pure, no database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from bastion.core.dialect import Dialect
from bastion.core.errors import AuthenticationError, BudgetExceededError
from bastion.core.usage import Usage
from bastion.policy.access import aliased_model, check_model_access
from bastion.policy.auth import Principal, PrincipalKind
from bastion.policy.budgets import BudgetGuard, Charge, charges_for
from bastion.policy.ledger import SpendLedger
from bastion.services.metered_stream import MeteredStream
from bastion.storage.snapshot import BudgetFields, KeyAuth, TeamAuth

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def budget(
    max_budget: str | None = None,
    spend: str = "0",
    reset: datetime | None = None,
    soft: str | None = None,
) -> BudgetFields:
    return BudgetFields(
        max_budget=Decimal(max_budget) if max_budget else None,
        soft_budget=Decimal(soft) if soft else None,
        budget_duration="1d" if reset else None,
        budget_reset_at=reset,
        spend=Decimal(spend),
        tpm_limit=None,
        rpm_limit=None,
        max_parallel_requests=None,
    )


def key(
    models: list[str] | None = None,
    aliases: dict[str, Any] | None = None,
    b: BudgetFields | None = None,
    team_id: str | None = None,
) -> KeyAuth:
    return KeyAuth(
        token="t" * 64,
        key_name="sk-...abcd",
        key_alias="ci-key",
        team_id=team_id,
        user_id=None,
        organization_id=None,
        models=models or [],
        aliases=aliases or {},
        budget=b or budget(),
        model_rpm_limit={},
        model_tpm_limit={},
        model_max_budget={},
        metadata={},
        tags=[],
        blocked=False,
        expires=None,
    )


def team(models: list[str] | None = None, b: BudgetFields | None = None) -> TeamAuth:
    return TeamAuth(
        team_id="team-1",
        team_alias="search",
        organization_id=None,
        models=models or [],
        budget=b or budget(),
        team_member_budget=None,
        model_aliases={},
        metadata={},
        blocked=False,
    )


def principal(k: KeyAuth, t: TeamAuth | None = None) -> Principal:
    return Principal(PrincipalKind.KEY, key=k, team=t)


def no_groups(model: str) -> list[str]:
    return []


def test_key_and_team_model_lists_and_access_groups() -> None:
    p = principal(key(models=["gpt-4o", "openai/*", "beta-group"]), team(models=["gpt-4o"]))
    check_model_access(p, "gpt-4o", no_groups)
    with pytest.raises(AuthenticationError) as refused:
        check_model_access(p, "claude", no_groups)
    assert "key ci-key may not call model 'claude'" in refused.value.message
    with pytest.raises(AuthenticationError) as by_team:
        check_model_access(p, "openai/gpt-4.1", no_groups)  # key allows, team does not
    assert "team search" in by_team.value.message
    open_team = principal(key(models=["beta-group"]), team())
    check_model_access(open_team, "new-model", lambda m: ["beta-group"])
    check_model_access(Principal(PrincipalKind.MASTER), "anything", no_groups)
    assert aliased_model(principal(key(aliases={"fast": "gpt-4o-mini"})), "fast") == "gpt-4o-mini"


def test_budget_exceeded_names_the_entity_and_uses_the_configured_status() -> None:
    ledger = SpendLedger()
    guard = BudgetGuard(ledger, status=400, clock=lambda: NOW)
    p = principal(key(b=budget("1.00", "0.40")), team(b=budget("5", "4.99")))
    charges = charges_for(p, None, None)
    guard.check(charges)
    ledger.add([c.entity for c in charges], Decimal("0.02"))
    with pytest.raises(BudgetExceededError) as error:
        guard.check(charges)
    assert error.value.status == 400
    assert "team search" in error.value.message and "$5.000000" in error.value.message


def test_a_budget_past_its_reset_time_counts_as_fresh() -> None:
    guard = BudgetGuard(SpendLedger(), clock=lambda: NOW)
    spent = principal(key(b=budget("1", "1.5", reset=NOW - timedelta(minutes=1))))
    guard.check(charges_for(spent, None, None))  # reset due: not refused
    not_yet = principal(key(b=budget("1", "1.5", reset=NOW + timedelta(hours=1))))
    with pytest.raises(BudgetExceededError):
        guard.check(charges_for(not_yet, None, None))


def test_default_end_user_budget_applies_to_unknown_end_users() -> None:
    ledger = SpendLedger()
    guard = BudgetGuard(ledger, default_end_user_budget=Decimal("0.5"), clock=lambda: NOW)
    charge = Charge(("end_user", "alice"), "end user alice", None, None, Decimal(0), None)
    guard.check([charge])
    ledger.add([charge.entity], Decimal("0.5"))
    with pytest.raises(BudgetExceededError):
        guard.check([charge])


def test_ledger_keeps_written_spend_until_a_later_snapshot_includes_it() -> None:
    ledger = SpendLedger()
    entity = ("key", "t")
    ledger.add([entity], Decimal("1"))
    batch = ledger.seal()
    ledger.add([entity], Decimal("2"))
    assert ledger.pending(entity) == Decimal("3")
    ledger.snapshot_loaded(load_started=0.0)  # not written yet: still pending
    assert ledger.pending(entity) == Decimal("3")
    ledger.written(batch)
    ledger.snapshot_loaded(load_started=0.0)  # snapshot began before the write
    assert ledger.pending(entity) == Decimal("3")
    import time

    ledger.snapshot_loaded(load_started=time.monotonic() + 1)
    assert ledger.pending(entity) == Decimal("2")


class ChunkStream:
    content_type = b"text/event-stream"

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


def sse(payload: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


async def relay(stream: MeteredStream) -> bytes:
    out = b"".join([chunk async for chunk in stream])
    await stream.aclose()
    return out


@pytest.mark.parametrize("split", [None, 7, 1])
async def test_openai_stream_usage_is_read_and_the_injected_chunk_removed(
    split: int | None,
) -> None:
    text = sse({"choices": [{"delta": {"content": "hi"}}], "usage": None})
    usage = sse(
        {
            "choices": [],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 3,
                "prompt_tokens_details": {"cached_tokens": 4},
            },
        }
    )
    whole = text + usage + b"data: [DONE]\n\n"
    chunks = (
        [whole] if split is None else [whole[i : i + split] for i in range(0, len(whole), split)]
    )
    seen: list[Usage | None] = []
    stream = MeteredStream(ChunkStream(chunks), Dialect.OPENAI, seen.append, strip_usage_chunk=True)
    assert await relay(stream) == text + b"data: [DONE]\n\n"
    assert seen == [Usage(input_tokens=6, output_tokens=3, cached_input_tokens=4)]


async def test_openai_stream_keeps_the_usage_chunk_the_client_asked_for() -> None:
    usage = sse({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
    seen: list[Usage | None] = []
    stream = MeteredStream(ChunkStream([usage]), Dialect.OPENAI, seen.append)
    assert await relay(stream) == usage
    assert seen[0] is not None and seen[0].output_tokens == 1


async def test_anthropic_stream_usage_from_message_start_and_delta() -> None:
    start = sse(
        {
            "type": "message_start",
            "message": {
                "usage": {"input_tokens": 12, "cache_read_input_tokens": 100, "output_tokens": 1}
            },
        },
        "message_start",
    )
    delta = sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 40},
        },
        "message_delta",
    )
    seen: list[Usage | None] = []
    stream = MeteredStream(ChunkStream([start, delta]), Dialect.ANTHROPIC, seen.append)
    assert await relay(stream) == start + delta
    assert seen == [Usage(input_tokens=12, output_tokens=40, cached_input_tokens=100)]


async def test_a_stream_without_usage_reports_none_once() -> None:
    seen: list[Usage | None] = []
    stream = MeteredStream(ChunkStream([b"data: [DONE]\n\n"]), Dialect.OPENAI, seen.append)
    await relay(stream)
    await stream.aclose()
    assert seen == [None]


def test_usage_is_requested_for_a_client_only_where_the_vendor_accepts_stream_options() -> None:
    from bastion.app import build_runtime
    from bastion.config.loader import load_config_mapping
    from bastion.core.deployment import Operation

    runtime = build_runtime(
        load_config_mapping(
            {
                "model_list": [
                    {"model_name": "oa", "litellm_params": {"model": "openai/x", "api_key": "k"}},
                    {"model_name": "mi", "litellm_params": {"model": "mistral/x", "api_key": "k"}},
                ]
            }
        )
    )
    master = Principal(PrincipalKind.MASTER)
    for model, injected in (("oa", True), ("mi", False)):
        body: dict[str, Any] = {"model": model, "messages": [], "stream": True}
        _, strip = runtime.policy.before(
            master,
            body,
            operation=Operation.CHAT,
            dialect=Dialect.OPENAI,
            stream=True,
            request_id="r",
        )
        assert strip is injected
        assert ("stream_options" in body) is injected


def test_usage_is_cut_from_a_large_answer_and_the_whole_is_parsed_when_in_doubt() -> None:
    from bastion.services.metering import usage_object

    usage = {
        "prompt_tokens": 7,
        "completion_tokens": 2,
        "prompt_tokens_details": {"cached_tokens": 1},
    }
    big = {"data": [{"embedding": [0.1] * 2000}], "usage": usage}
    assert usage_object(orjson.dumps(big)) == usage
    # "usage" inside text near the end: the escaped quote sends it to a whole parse.
    tricky = {"choices": [{"text": "x" * 5000 + ' the \\"usage\\": {} bit'}], "usage": usage}
    assert usage_object(orjson.dumps(tricky)) == usage
    reordered = {"usage": usage, "choices": [{"text": 'say "usage": {"a": 1}' + "y" * 5000}]}
    assert usage_object(orjson.dumps(reordered)) == usage
    assert usage_object(b"not json") is None
    assert usage_object(orjson.dumps({"choices": []})) is None
