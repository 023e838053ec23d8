"""OpenAI embeddings ⇄ Gemini ``batchEmbedContents`` (AI Studio) and Vertex ``predict``. Pure.

``input_type`` (Cohere's names, as LiteLLM configs write them) or ``task_type``
(Gemini's) picks the task type; ``dimensions`` becomes ``outputDimensionality``.
"""

from __future__ import annotations

from typing import Any

from bastion.core.errors import UpstreamStatusError
from bastion.dialects.translate_common import Target, float_base64, text_inputs

_TASK_TYPES = {
    "search_document": "RETRIEVAL_DOCUMENT",
    "search_query": "RETRIEVAL_QUERY",
    "classification": "CLASSIFICATION",
    "clustering": "CLUSTERING",
    "document": "RETRIEVAL_DOCUMENT",
    "query": "RETRIEVAL_QUERY",
}
_HANDLED = frozenset(
    {"model", "input", "dimensions", "encoding_format", "user", "input_type", "task_type"}
)


def task_type(body: dict[str, Any]) -> str | None:
    value = body.get("task_type") or body.get("input_type")
    if not isinstance(value, str) or not value:
        return None
    return _TASK_TYPES.get(value.lower(), value.upper())


def _check(body: dict[str, Any], target: Target) -> list[str]:
    for name in body:
        if name not in _HANDLED:
            target.unsupported(name)
    return text_inputs(body.get("input"))


def batch_embed_request(body: dict[str, Any], model: str, target: Target) -> dict[str, Any]:
    texts = _check(body, target)
    extra: dict[str, Any] = {}
    kind = task_type(body)
    if kind:
        extra["taskType"] = kind
    if body.get("dimensions") is not None:
        extra["outputDimensionality"] = body["dimensions"]
    return {
        "requests": [
            {"model": f"models/{model}", "content": {"parts": [{"text": text}]}, **extra}
            for text in texts
        ]
    }


def vertex_predict_request(body: dict[str, Any], target: Target) -> dict[str, Any]:
    texts = _check(body, target)
    kind = task_type(body)
    instances = [{"content": text, **({"task_type": kind} if kind else {})} for text in texts]
    out: dict[str, Any] = {"instances": instances}
    if body.get("dimensions") is not None:
        out["parameters"] = {"outputDimensionality": body["dimensions"]}
    return out


def _vectors_from(data: dict[str, Any], provider: str) -> tuple[list[list[float]], int]:
    if isinstance(data.get("embeddings"), list):
        return [e.get("values") or [] for e in data["embeddings"] if isinstance(e, dict)], 0
    if isinstance(data.get("predictions"), list):
        vectors: list[list[float]] = []
        tokens = 0
        for prediction in data["predictions"]:
            embedding = (prediction or {}).get("embeddings") or {}
            vectors.append(embedding.get("values") or [])
            stats = embedding.get("statistics") or {}
            count = stats.get("token_count")
            tokens += int(count) if isinstance(count, (int, float)) else 0
        return vectors, tokens
    raise UpstreamStatusError(
        f"{provider} answered embeddings without 'embeddings' or 'predictions'",
        status=502,
        provider=provider,
    )


def embeddings_from_gemini(
    data: dict[str, Any], *, model: str, encoding_format: Any, provider: str
) -> dict[str, Any]:
    vectors, tokens = _vectors_from(data, provider)
    as_base64 = encoding_format == "base64"
    return {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": index,
                "embedding": float_base64(vector) if as_base64 else vector,
            }
            for index, vector in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
