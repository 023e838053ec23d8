"""Who is calling: the key from any header form LiteLLM accepts, checked against the master key."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from bastion.core.errors import AuthenticationError

if TYPE_CHECKING:
    from bastion.storage.snapshot import (
        KeyAuth,
        MembershipAuth,
        OrganizationAuth,
        TeamAuth,
        UserAuth,
    )

# Header names in the order LiteLLM looks at them.
KEY_HEADERS = (b"authorization", b"x-api-key", b"api-key", b"x-goog-api-key", b"x-litellm-api-key")
_KEY_HEADER_SET = frozenset(KEY_HEADERS)


class PrincipalKind(StrEnum):
    MASTER = "master"
    OPEN = "open"
    KEY = "key"  # a virtual key from the database


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, with what the auth snapshot knows about its key."""

    kind: PrincipalKind
    key: KeyAuth | None = None
    team: TeamAuth | None = None
    user: UserAuth | None = None
    organization: OrganizationAuth | None = None
    membership: MembershipAuth | None = None

    @property
    def is_admin(self) -> bool:
        """Master key, open mode, or a key owned by a proxy_admin user."""
        if self.kind is not PrincipalKind.KEY:
            return True
        return self.user is not None and self.user.user_role == "proxy_admin"

    @property
    def role(self) -> str | None:
        """The user role (LiteLLM's names); proxy_admin for the master key and open mode."""
        if self.kind is not PrincipalKind.KEY:
            return "proxy_admin"
        return self.user.user_role if self.user is not None else None


MASTER = Principal(PrincipalKind.MASTER)
OPEN = Principal(PrincipalKind.OPEN)


def extract_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The first key found, in KEY_HEADERS order; ``Bearer `` prefixes are removed."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in _KEY_HEADER_SET and name not in found:
            found[name] = value
    for name in KEY_HEADERS:
        raw = found.get(name)
        if raw:
            text = raw.decode("latin-1").strip()
            if text[:7].lower() == "bearer " or text.lower() == "bearer":
                text = text[6:].strip()  # an empty "Bearer" is no key: try the next header
            if text:
                return text
    return None


class KeyResolver(Protocol):
    """Turns a virtual key into its Principal, from memory (see policy/auth_cache.py)."""

    def resolve(self, key: str) -> Principal: ...


class Authenticator:
    def __init__(self, master_key: str | None, keys: KeyResolver | None = None) -> None:
        self._master = master_key.encode() if master_key else None
        self._keys = keys

    @property
    def open_access(self) -> bool:
        return self._master is None

    def replace_master_key(self, master_key: str) -> None:
        """Accept ``master_key`` instead of the current one (a config reload).

        There is no way to remove it: a reload never opens a gateway that had a key.
        """
        self._master = master_key.encode()

    def authenticate(self, key: str | None) -> Principal:
        if self._master is None:
            return OPEN
        if key is None:
            raise AuthenticationError(
                "no API key: send it as 'Authorization: Bearer <key>' (or x-api-key, api-key, "
                "x-goog-api-key, x-litellm-api-key)"
            )
        if hmac.compare_digest(key.encode(), self._master):
            return MASTER
        if self._keys is not None:
            return self._keys.resolve(key)
        raise AuthenticationError("invalid API key: it is not a key this gateway knows")
