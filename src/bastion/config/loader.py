"""Read a LiteLLM-format YAML config into a validated ProxyConfig.

Problems are reported as ``file: path.to.field: what is wrong (hint)`` lines, every
one at once, so a user fixes a file in one pass.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bastion.config import known_keys
from bastion.config.model import (
    GeneralSettings,
    LiteLLMParams,
    LiteLLMSettings,
    ModelInfo,
    ProxyConfig,
    RouterSettings,
)
from bastion.core.errors import ConfigError

ENV_PREFIX = "os.environ/"
_SECRET_WORDS = (
    "key",
    "secret",
    "password",
    "token",
    "credential",
    "header",
    "authorization",
)


@dataclass
class LoadedConfig:
    config: ProxyConfig
    source: str
    warnings: list[str] = field(default_factory=list)


def load_config_file(path: str | os.PathLike[str]) -> LoadedConfig:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(file), ["file not found"]) from None
    except OSError as exc:
        raise ConfigError(str(file), [f"cannot read: {exc.strerror}"]) from None
    raw = _parse_yaml(text, str(file))
    raw = _apply_includes(raw, file, str(file))
    return load_config_mapping(raw, source=str(file))


def load_config_text(text: str, source: str = "<config>") -> LoadedConfig:
    return load_config_mapping(_parse_yaml(text, source), source=source)


def load_config_mapping(raw: Mapping[str, Any], source: str = "<config>") -> LoadedConfig:
    warnings: list[str] = []
    _export_environment_variables(raw.get("environment_variables"))
    resolved = _resolve_env_refs(raw, "", warnings)
    problems = _find_typos(resolved, warnings)
    try:
        config = ProxyConfig.model_validate(resolved)
    except ValidationError as exc:
        problems.extend(_describe_validation_error(exc))
    if problems:
        raise ConfigError(source, problems)
    warnings.extend(_inert_settings(resolved))
    return LoadedConfig(config=config, source=source, warnings=warnings)


def _inert_settings(raw: Mapping[str, Any]) -> list[str]:
    """Settings present in the file that this version accepts but does not act on."""
    notes: list[str] = []
    accepted_only = {
        "router_settings": known_keys.ROUTER_SETTINGS,
        "litellm_settings": known_keys.LITELLM_SETTINGS
        - known_keys.LITELLM_SETTINGS_ROUTER_ALIASES,
        "general_settings": known_keys.GENERAL_SETTINGS - known_keys.GENERAL_SETTINGS_ACTED_ON,
    }
    for section, names in accepted_only.items():
        values = raw.get(section)
        if not isinstance(values, dict):
            continue
        inert = names | known_keys.NOT_YET_ACTED_ON.get(section, frozenset())
        for name, value in values.items():
            if name in inert and value not in (None, False, [], {}, ""):
                notes.append(f"{section}.{name}: accepted, but not acted on by this version")
    for key in ("guardrails", "mcp_servers", "prompts", "vector_store_registry", "search_tools"):
        if raw.get(key):
            notes.append(f"{key}: accepted, but not acted on by this version")
    return notes


def _parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}not valid YAML ({problem})"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"the top level must be a mapping, not {type(data).__name__}"])
    return data


def _apply_includes(raw: dict[str, Any], file: Path, source: str) -> dict[str, Any]:
    includes = raw.get("include") or []
    if not isinstance(includes, list):
        raise ConfigError(source, ["include: must be a list of file paths"])
    for name in includes:
        included_path = file.parent / str(name)
        try:
            included = _parse_yaml(included_path.read_text(encoding="utf-8"), str(included_path))
        except OSError:
            raise ConfigError(source, [f"include: cannot read {included_path}"]) from None
        for section, value in included.items():
            if isinstance(value, list):
                raw.setdefault(section, [])
                raw[section] = list(raw[section] or []) + value
            elif isinstance(value, dict):
                merged = dict(value)
                merged.update(raw.get(section) or {})
                raw[section] = merged
            else:
                raw.setdefault(section, value)
    return raw


def _export_environment_variables(section: Any) -> None:
    if isinstance(section, dict):
        for name, value in section.items():
            if value is not None and not str(value).startswith(ENV_PREFIX):
                os.environ[str(name)] = str(value)


def _resolve_env_refs(value: Any, path: str, warnings: list[str]) -> Any:
    if isinstance(value, str):
        if value.startswith(ENV_PREFIX):
            name = value[len(ENV_PREFIX) :]
            resolved = os.environ.get(name)
            if resolved is None:
                warnings.append(f"{path}: environment variable {name} is not set")
            return resolved
        return value
    if isinstance(value, dict):
        return {
            k: _resolve_env_refs(v, f"{path}.{k}" if path else str(k), warnings)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_resolve_env_refs(v, f"{path}[{i}]", warnings) for i, v in enumerate(value)]
    return value


def _find_typos(raw: Mapping[str, Any], warnings: list[str]) -> list[str]:
    problems: list[str] = []
    _check_keys(raw, "", ProxyConfig, known_keys.TOP_LEVEL, problems, warnings, warn=True)
    sections: list[tuple[str, type[BaseModel], frozenset[str]]] = [
        ("router_settings", RouterSettings, known_keys.ROUTER_SETTINGS),
        ("litellm_settings", LiteLLMSettings, known_keys.LITELLM_SETTINGS),
        ("general_settings", GeneralSettings, known_keys.GENERAL_SETTINGS),
    ]
    for name, model, extra in sections:
        section = raw.get(name)
        if isinstance(section, dict):
            _check_keys(section, name, model, extra, problems, warnings, warn=True)
    models = raw.get("model_list")
    if isinstance(models, list):
        for i, entry in enumerate(models):
            if not isinstance(entry, dict):
                continue
            path = f"model_list[{i}]"
            _check_keys(
                entry,
                path,
                None,
                frozenset({"model_name", "litellm_params", "model_info"}),
                problems,
                warnings,
                warn=True,
            )
            params = entry.get("litellm_params")
            if isinstance(params, dict):
                _check_keys(
                    params,
                    f"{path}.litellm_params",
                    LiteLLMParams,
                    known_keys.LITELLM_PARAMS,
                    problems,
                    warnings,
                    warn=False,
                )
            info = entry.get("model_info")
            if isinstance(info, dict):
                _check_keys(
                    info,
                    f"{path}.model_info",
                    ModelInfo,
                    known_keys.MODEL_INFO,
                    problems,
                    warnings,
                    warn=False,
                )
    return problems


def _check_keys(
    section: Mapping[str, Any],
    path: str,
    model: type[BaseModel] | None,
    extra_known: frozenset[str],
    problems: list[str],
    warnings: list[str],
    *,
    warn: bool,
) -> None:
    known = set(extra_known)
    if model is not None:
        known.update(model.model_fields)
    for key in section:
        key_text = str(key)
        if key_text in known:
            continue
        where = f"{path}.{key_text}" if path else key_text
        match = difflib.get_close_matches(key_text, sorted(known), n=1, cutoff=0.8)
        if match:
            problems.append(f"{where}: unknown setting; did you mean '{match[0]}'?")
        elif warn:
            warnings.append(f"{where}: not a setting Bastion knows; ignored")


def _describe_validation_error(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = _format_loc(error["loc"])
        message = error["msg"]
        if error["type"] == "missing":
            message = "required but missing"
        elif error["type"] == "literal_error":
            expected = error.get("ctx", {}).get("expected", "")
            given = error.get("input")
            suggestion = _suggest_literal(str(given), expected)
            message = f"{given!r} is not one of {expected}" + suggestion
        elif "input" in error and error["type"] not in ("extra_forbidden",):
            shown = "<redacted>" if _is_secret(loc) else _short(error["input"])
            message = f"{message} (got {shown})"
        problems.append(f"{loc}: {message}")
    return problems


def _format_loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


def _suggest_literal(given: str, expected: str) -> str:
    options = [o.strip().strip("'\"") for o in expected.replace(" or ", ",").split(",")]
    match = difflib.get_close_matches(given, [o for o in options if o], n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def _is_secret(loc: str) -> bool:
    # The whole path: a value anywhere under extra_headers or credential_values is secret too.
    lowered = loc.lower().replace("max_tokens", "").replace("_tokens", "")
    return any(word in lowered for word in _SECRET_WORDS)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
