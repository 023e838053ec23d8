"""JSON Schema → the OpenAPI subset Gemini accepts for function parameters and responseSchema.

Gemini rejects a request whose schema holds keywords it does not know
(``additionalProperties``, ``$schema``, ``$ref``…), a ``type`` list, an object with
empty ``properties`` or a string ``format`` other than ``enum`` and ``date-time``.
``$ref`` into ``$defs``/``definitions`` is inlined; ``type: [X, "null"]`` becomes
``type: X, nullable: true``; ``const`` becomes a one-value ``enum``.
"""

from __future__ import annotations

from typing import Any

_KEEP = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)
_STRING_FORMATS = frozenset({"enum", "date-time"})
_MAX_DEPTH = 32


def clean_schema(schema: Any) -> Any:
    """A copy of ``schema`` that Gemini accepts. Never mutates its argument."""
    if not isinstance(schema, dict):
        return schema
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            defs.update(schema[key])
    return _clean(schema, defs, 0)


def _clean(node: Any, defs: dict[str, Any], depth: int) -> Any:
    if not isinstance(node, dict):
        return node
    if depth > _MAX_DEPTH:
        return {"type": "object"}  # a recursive $ref: cut it off rather than loop
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        merged = {**(target if isinstance(target, dict) else {}), **node}
        merged.pop("$ref")
        return _clean(merged, defs, depth + 1)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _KEEP and key not in ("const", "oneOf"):
            continue
        if key == "properties" and isinstance(value, dict):
            props = {name: _clean(sub, defs, depth + 1) for name, sub in value.items()}
            if props:
                out["properties"] = props
        elif key == "items":
            out["items"] = _clean(value, defs, depth + 1)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            options = [_clean(v, defs, depth + 1) for v in value]
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            if len(non_null) < len(options):
                out["nullable"] = True
            if len(non_null) == 1 and isinstance(non_null[0], dict):
                out.update({k: v for k, v in non_null[0].items() if k not in out})
            elif non_null:
                out["anyOf"] = non_null
        elif key == "const":
            out["enum"] = [value]
        elif key == "type" and isinstance(value, list):
            kinds = [t for t in value if t != "null"]
            if len(kinds) < len(value):
                out["nullable"] = True
            if len(kinds) == 1:
                out["type"] = kinds[0]
            elif kinds:
                out["anyOf"] = [{"type": t} for t in kinds]
        elif key == "required" and isinstance(value, list):
            out["required"] = list(value)
        else:
            out[key] = value
    if "format" in out and out.get("type") == "string" and out["format"] not in _STRING_FORMATS:
        del out["format"]
    if "enum" in out and out.get("type") is None:
        out["type"] = "string"
    if "enum" in out:
        out["enum"] = [str(v) for v in out["enum"]]
        if out.get("type") not in ("string", None):
            out["type"] = "string"
    properties = out.get("properties")
    if isinstance(properties, dict) and isinstance(out.get("required"), list):
        out["required"] = [name for name in out["required"] if name in properties]
        if not out["required"]:
            del out["required"]
    elif "required" in out and not isinstance(properties, dict):
        del out["required"]
    return out
