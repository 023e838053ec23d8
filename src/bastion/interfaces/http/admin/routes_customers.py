"""``/customer/*`` (end users) and ``/budget/*`` (reusable budgets).

proxy_admin changes them; proxy_admin and proxy_admin_viewer read them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bastion.core.errors import InvalidRequestError
from bastion.interfaces.http.admin.common import actor_of, context_of, json_response, parse_body
from bastion.policy.rbac import require_admin, require_read_all
from bastion.services.admin import budgets as service
from bastion.storage.models import Base
from bastion.storage.repositories import Store
from bastion.storage.repositories.base import MAX_PAGE_SIZE, CrudRepository

ID = Field(min_length=1, max_length=255)
M = TypeVar("M", bound=Base)


class BudgetFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    max_budget: Decimal | None = None
    soft_budget: Decimal | None = None
    budget_duration: str | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None
    model_max_budget: dict[str, Any] | None = None

    def budget_values(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in service.BUDGET_FIELDS if k in self.model_fields_set}


class BudgetBody(BudgetFields):
    budget_id: str | None = Field(default=None, min_length=1, max_length=255)


class BudgetDeleteBody(BaseModel):
    id: str | None = Field(default=None, min_length=1)
    budget_id: str | None = Field(default=None, min_length=1)


class BudgetsBody(BaseModel):
    budgets: list[str] = Field(min_length=1)


class CustomerBody(BudgetFields):
    user_id: str = ID
    alias: str | None = None
    blocked: bool | None = None
    budget_id: str | None = Field(default=None, min_length=1, max_length=255)
    allowed_model_region: str | None = None
    default_model: str | None = None
    metadata: dict[str, Any] | None = None

    def customer_values(self) -> dict[str, Any]:
        fields = ("alias", "blocked", "budget_id", "allowed_model_region", "default_model")
        out = {k: getattr(self, k) for k in fields if k in self.model_fields_set}
        if "metadata" in self.model_fields_set:
            out["metadata"] = self.metadata or {}
        return out


class UserIds(BaseModel):
    user_ids: list[str] = Field(min_length=1)


async def _all(repository: CrudRepository[M]) -> list[M]:
    """Every row, a page at a time (LiteLLM's lists are not paginated)."""
    page = await repository.list(size=MAX_PAGE_SIZE)
    rows = list(page.items)
    for number in range(2, page.pages + 1):
        rows += (await repository.list(page=number, size=MAX_PAGE_SIZE)).items
    return rows


async def _customer(store: Store, end_user: Any) -> dict[str, Any]:
    return service.customer_dict(end_user, await service.budget_of(store, end_user))


# -- customers -------------------------------------------------------------------------


async def customer_new(request: Request) -> Response:
    actor = await actor_of(request)
    require_admin(actor, "create customers")
    body = await parse_body(request, CustomerBody)
    values = {"user_id": body.user_id, **body.customer_values()}
    if "metadata" in values:
        values["metadata_"] = values.pop("metadata")
    context = context_of(request)
    async with context.database.transaction() as store:
        row = await service.create_customer(store, actor, values, body.budget_values())
        shaped = await _customer(store, row)
    await context.refresh_keys()
    return json_response(shaped)


async def customer_update(request: Request) -> Response:
    actor = await actor_of(request)
    require_admin(actor, "update customers")
    body = await parse_body(request, CustomerBody)
    context = context_of(request)
    async with context.database.transaction() as store:
        row = await service.update_customer(
            store, actor, body.user_id, body.customer_values(), body.budget_values()
        )
        shaped = await _customer(store, row)
    await context.refresh_keys()
    return json_response(shaped)


async def customer_delete(request: Request) -> Response:
    actor = await actor_of(request)
    require_admin(actor, "delete customers")
    body = await parse_body(request, UserIds)
    context = context_of(request)
    async with context.database.transaction() as store:
        count = await service.delete_customers(store, actor, body.user_ids)
    await context.refresh_keys()
    return json_response(
        {
            "deleted_customers": count,
            "message": f"Successfully deleted customers with ids: {body.user_ids}",
        }
    )


async def customer_info(request: Request) -> Response:
    actor = await actor_of(request)
    require_read_all(actor, "customers")
    user_id = request.query_params.get("end_user_id")
    if not user_id:
        raise InvalidRequestError("end_user_id is required", param="end_user_id")
    async with context_of(request).database.transaction() as store:
        shaped = await _customer(store, await store.end_users.get(user_id))
    return json_response(shaped)


async def customer_list(request: Request) -> Response:
    actor = await actor_of(request)
    require_read_all(actor, "customers")
    async with context_of(request).database.transaction() as store:
        end_users = await _all(store.end_users)
        budgets = {
            b.budget_id: b
            for b in await store.budgets.get_many(
                list({e.budget_id for e in end_users if e.budget_id is not None})
            )
        }
    return json_response(
        [service.customer_dict(e, budgets.get(e.budget_id or "")) for e in end_users]
    )


async def _set_blocked(request: Request, blocked: bool) -> list[dict[str, Any]]:
    actor = await actor_of(request)
    require_admin(actor, "block or unblock customers")
    body = await parse_body(request, UserIds)
    context = context_of(request)
    async with context.database.transaction() as store:
        rows = await service.set_blocked(store, actor, body.user_ids, blocked)
        shaped = [await _customer(store, r) for r in rows]
    await context.refresh_keys()
    return shaped


async def customer_block(request: Request) -> Response:
    return json_response({"blocked_users": await _set_blocked(request, True)})


async def customer_unblock(request: Request) -> Response:
    return json_response({"unblocked_users": await _set_blocked(request, False)})


# -- budgets ---------------------------------------------------------------------------


async def budget_new(request: Request) -> Response:
    actor = await actor_of(request)
    require_admin(actor, "create budgets")
    body = await parse_body(request, BudgetBody)
    context = context_of(request)
    async with context.database.transaction() as store:
        fields = {"budget_id": body.budget_id, **body.budget_values()}
        shaped = service.budget_dict(await service.create_budget(store, actor, fields))
    return json_response(shaped)


async def budget_update(request: Request) -> Response:
    actor = await actor_of(request)
    require_admin(actor, "update budgets")
    body = await parse_body(request, BudgetBody)
    if body.budget_id is None:
        raise InvalidRequestError("budget_id is required", param="budget_id")
    context = context_of(request)
    async with context.database.transaction() as store:
        budget = await service.update_budget(store, actor, body.budget_id, body.budget_values())
        shaped = service.budget_dict(budget)
    await context.refresh_keys()
    return json_response(shaped)


async def budget_delete(request: Request) -> Response:
    actor = await actor_of(request)
    require_admin(actor, "delete budgets")
    body = await parse_body(request, BudgetDeleteBody)
    budget_id = body.id or body.budget_id
    if budget_id is None:
        raise InvalidRequestError("id is required (the budget_id to delete)", param="id")
    context = context_of(request)
    async with context.database.transaction() as store:
        shaped = service.budget_dict(await service.delete_budget(store, actor, budget_id))
    await context.refresh_keys()
    return json_response(shaped)


async def budget_info(request: Request) -> Response:
    """GET ``?budget_id=a`` (or ``budgets=a,b``), or LiteLLM's POST ``{"budgets": [...]}``:
    the budgets asked for; an unknown id is a 404."""
    actor = await actor_of(request)
    require_read_all(actor, "budgets")
    ids: list[str] = []
    if request.method == "POST":
        ids = (await parse_body(request, BudgetsBody)).budgets
    else:
        for name in ("budget_id", "budgets"):
            for value in request.query_params.getlist(name):
                ids += [v for v in value.split(",") if v]
    if not ids:
        raise InvalidRequestError("budget_id is required", param="budget_id")
    async with context_of(request).database.transaction() as store:
        shaped = [service.budget_dict(await store.budgets.get(i)) for i in ids]
    return json_response(shaped)


async def budget_list(request: Request) -> Response:
    actor = await actor_of(request)
    require_read_all(actor, "budgets")
    async with context_of(request).database.transaction() as store:
        budgets = await _all(store.budgets)
    return json_response([service.budget_dict(b) for b in budgets])


def routes() -> list[BaseRoute]:
    return [
        Route("/customer/new", customer_new, methods=["POST"]),
        Route("/end_user/new", customer_new, methods=["POST"]),
        Route("/customer/update", customer_update, methods=["POST"]),
        Route("/end_user/update", customer_update, methods=["POST"]),
        Route("/customer/delete", customer_delete, methods=["POST"]),
        Route("/end_user/delete", customer_delete, methods=["POST"]),
        Route("/customer/info", customer_info, methods=["GET"]),
        Route("/end_user/info", customer_info, methods=["GET"]),
        Route("/customer/list", customer_list, methods=["GET"]),
        Route("/end_user/list", customer_list, methods=["GET"]),
        Route("/customer/block", customer_block, methods=["POST"]),
        Route("/end_user/block", customer_block, methods=["POST"]),
        Route("/customer/unblock", customer_unblock, methods=["POST"]),
        Route("/end_user/unblock", customer_unblock, methods=["POST"]),
        Route("/budget/new", budget_new, methods=["POST"]),
        Route("/budget/update", budget_update, methods=["POST"]),
        Route("/budget/delete", budget_delete, methods=["POST"]),
        Route("/budget/info", budget_info, methods=["GET", "POST"]),
        Route("/budget/list", budget_list, methods=["GET"]),
    ]
