"""Who is calling: the key from any header form LiteLLM accepts, checked against the master key."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum

from bastion.core.errors import AuthenticationError

# Header names in the order LiteLLM looks at them.
KEY_HEADERS = (b"authorization", b"x-api-key", b"api-key", b"x-goog-api-key", b"x-litellm-api-key")
_KEY_HEADER_SET = frozenset(KEY_HEADERS)


class PrincipalKind(StrEnum):
    MASTER = "master"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind

    @property
    def is_admin(self) -> bool:
        return True


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


class Authenticator:
    def __init__(self, master_key: str | None) -> None:
        self._master = master_key.encode() if master_key else None

    @property
    def open_access(self) -> bool:
        return self._master is None

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
        raise AuthenticationError("invalid API key: it is not a key this gateway knows")
