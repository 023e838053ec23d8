"""``POST /config/reload``: re-read the config file in every worker (proxy admins only).

The answer is this worker's outcome: 200 with what it now serves (and the settings
that wait for a restart), or 422 naming every problem of a refused file, the old
config still served. With ``--workers N`` the other workers are then signalled and
reload the same file (each logs its outcome). LiteLLM's ``/config/update`` (config
stored in the database) is a different thing and not served here.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bastion.core.errors import BastionError, InvalidRequestError
from bastion.interfaces.http.admin.common import context_of, json_response, principal_of
from bastion.policy.rbac import Actor, require_admin


async def config_reload(request: Request) -> Response:
    require_admin(Actor.of(principal_of(request)), "reload the config")
    reload = context_of(request).reload_config
    if reload is None:
        raise BastionError("config reload is not wired into this gateway")
    outcome = reload()
    if outcome["status"] != "reloaded":
        problems = "\n".join(f"  - {p}" for p in outcome["problems"])
        error = InvalidRequestError(
            f"config reload refused; the previous config is still served. "
            f"{outcome['config_file']}:\n{problems}",
            code="invalid_config",
        )
        error.status = 422
        raise error
    return json_response(outcome)


ROUTES: list[BaseRoute] = [Route("/config/reload", config_reload, methods=["POST"])]
