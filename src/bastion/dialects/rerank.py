"""Rerank requests (Cohere's shape, as LiteLLM takes them): validation and a local answer."""

from __future__ import annotations

from typing import Any

from bastion.core.errors import InvalidRequestError

MAX_DOCUMENTS = 10_000


def validate_rerank_request(body: dict[str, Any]) -> None:
    """``{model, query, documents, top_n?, return_documents?}``; raises InvalidRequestError."""
    query = body.get("query")
    if not isinstance(query, str) or not query:
        raise InvalidRequestError(
            "'query' is required and must be a non-empty string", param="query"
        )
    documents = body.get("documents")
    if not isinstance(documents, list) or not documents:
        raise InvalidRequestError(
            "'documents' is required: a non-empty list of strings or objects", param="documents"
        )
    if len(documents) > MAX_DOCUMENTS:
        raise InvalidRequestError(
            f"'documents' may hold at most {MAX_DOCUMENTS} entries", param="documents"
        )
    for index, document in enumerate(documents):
        if not isinstance(document, (str, dict)):
            raise InvalidRequestError(
                f"documents[{index}] must be a string or an object", param="documents"
            )
    top_n = body.get("top_n")
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
        raise InvalidRequestError("'top_n' must be a positive integer", param="top_n")
    returns = body.get("return_documents")
    if returns is not None and not isinstance(returns, bool):
        raise InvalidRequestError(
            "'return_documents' must be true or false", param="return_documents"
        )
    if body.get("stream"):
        raise InvalidRequestError("rerank requests cannot be streamed", param="stream")


def local_rerank(body: dict[str, Any]) -> dict[str, Any]:
    """A deterministic rerank answer with no model (for ``mock_response`` and the fake provider).

    Documents are ranked by how many of the query's words they contain.
    """
    words = set(str(body.get("query") or "").lower().split())
    documents = body.get("documents") or []
    scored = []
    for index, document in enumerate(documents):
        text = document if isinstance(document, str) else str(document.get("text", document))
        tokens = text.lower().split()
        hits = sum(1 for token in tokens if token in words)
        scored.append((hits / (len(tokens) or 1), index, document))
    scored.sort(key=lambda item: (-item[0], item[1]))
    top_n = body.get("top_n") or len(scored)
    results = []
    for score, index, document in scored[:top_n]:
        result: dict[str, Any] = {"index": index, "relevance_score": round(score, 6)}
        if body.get("return_documents"):
            result["document"] = {"text": document} if isinstance(document, str) else document
        results.append(result)
    return {
        "id": "rerank-local",
        "results": results,
        "meta": {"billed_units": {"search_units": 1}},
    }
