"""A key row as the management API shows it (LiteLLM's field names, money as numbers)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from bastion.storage.models import VirtualKey


def key_view(row: VirtualKey) -> dict[str, Any]:
    """Every column, ``token`` (the hash) included; never the key itself."""
    view: dict[str, Any] = {}
    for attr in VirtualKey.__mapper__.column_attrs:
        name = str(attr.columns[0].name)  # quoted_name, a str subclass orjson refuses
        view[name] = _plain(getattr(row, attr.key))
    return view


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
