"""Builds the Starlette app for the management API from every routes_* module."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from bastion.core.errors import BastionError, InvalidRequestError, NotFoundError
from bastion.interfaces.http.admin import (
    routes_config,
    routes_customers,
    routes_keys,
    routes_models,
    routes_organizations,
    routes_spend,
    routes_teams,
    routes_users,
)
from bastion.interfaces.http.admin.common import error_response
from bastion.interfaces.http.admin.context import AdminContext

logger = logging.getLogger("bastion.admin")


def admin_routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    routes += routes_customers.routes()
    routes += routes_spend.routes()
    routes += routes_keys.ROUTES
    routes += routes_teams.ROUTES
    routes += routes_users.ROUTES
    routes += routes_organizations.ROUTES
    routes += routes_models.ROUTES
    routes += routes_config.ROUTES
    return routes


def build_admin_app(context: AdminContext) -> Starlette:
    async def bastion_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BastionError)
        return error_response(exc)

    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("management API error on %s %s", request.method, request.url.path)
        return error_response(BastionError("the gateway hit an unexpected error; it is logged"))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error: BastionError
        if exc.status_code == 404:
            error = NotFoundError(
                f"no endpoint {request.method} {request.url.path} on this gateway"
            )
        else:
            error = InvalidRequestError(str(exc.detail))
            error.status = exc.status_code
        return error_response(error)

    app = Starlette(
        routes=admin_routes(),
        exception_handlers={
            BastionError: bastion_error,
            HTTPException: http_error,
            Exception: unexpected,
        },
    )
    app.state.admin = context
    return app
