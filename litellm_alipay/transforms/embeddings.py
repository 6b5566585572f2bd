"""B2: an embedding request → batches of ``biz_content``; the batches' nodes → one ``EmbeddingResponse``.

B2 takes 1–32 strings of at most 8,192 characters per call; larger inputs are the client's to split and
reassemble in order, so batch ``k``'s item ``j`` is input ``EMBED_BATCH * k + j``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from litellm.types.utils import EmbeddingResponse, Usage

from ..wire.protocol import EMBED_BATCH
from ._errors import bad_request
from .params import begin_request, dropped, embed_params

MAX_INPUT_CHARS = 8192


def _inputs(model: str, input: Any) -> list[str]:
    """Strings only: B2 has no token-id input, and an empty string has nothing to embed."""
    items = [input] if isinstance(input, str) else input
    if not isinstance(items, list) or not items:
        raise bad_request(model, "input must be a non-empty string or a non-empty list of strings")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            kind = "token ids" if isinstance(item, (int, list)) else type(item).__name__
            raise bad_request(model, f"input[{i}] is {kind}; Alipay embeds strings only")
        if not item:
            raise bad_request(model, f"input[{i}] is empty")
        if len(item) > MAX_INPUT_CHARS:
            raise bad_request(
                model, f"input[{i}] has {len(item)} characters; Alipay accepts at most {MAX_INPUT_CHARS}"
            )
    return items


#: Embedding parameters a client may send that B2 cannot honour, with the values that ask for nothing.
#: LiteLLM drops them for a custom provider under ``drop_params`` before the provider runs; a proxy
#: request's body still shows them (``note_dropped_by_litellm``).
UNHONOURED: Mapping[str, tuple[Any, ...]] = {"dimensions": (None,), "encoding_format": (None, "float")}


def note_dropped_by_litellm(client_body: Mapping[str, Any]) -> None:
    """Record what the client's own body asked for that no answer will carry (fixed-size float vectors)."""
    dropped(*(name for name, nothing in UNHONOURED.items() if client_body.get(name) not in nothing))


def embed_biz_contents(
    model: str,
    input: str | list[str],
    params: Mapping[str, Any],
    *,
    drop_params: bool = False,
    ignore: Iterable[str] = (),
) -> list[dict]:
    """One B2 ``biz_content`` per batch of at most ``EMBED_BATCH`` strings, in input order."""
    begin_request()
    fields = embed_params(model, params, drop_params=drop_params, ignore=ignore)
    items = _inputs(model, input)
    return [
        {"model": model, "input": items[at:at + EMBED_BATCH], **fields}
        for at in range(0, len(items), EMBED_BATCH)
    ]


def embedding_response(nodes: list[dict], model_response: EmbeddingResponse, model: str) -> EmbeddingResponse:
    """Fill ``model_response`` from the batches' success nodes (given in batch order) and return it.

    Indices are global; usage is summed; ``_hidden_params["alipay"]`` keeps every batch's trace id
    and the summed ``input_chars``.
    """
    data: list[dict[str, Any]] = []
    prompt = total = chars = 0
    for k, node in enumerate(nodes):
        for j, item in enumerate(node.get("data") or []):
            index = EMBED_BATCH * k + int(item.get("index", j))
            data.append({"object": "embedding", "index": index, "embedding": item.get("embedding")})
        usage = node.get("usage") or {}
        prompt += int(usage.get("prompt_tokens") or 0)
        total += int(usage.get("total_tokens") or usage.get("prompt_tokens") or 0)
        chars += int(usage.get("input_chars") or 0)
    data.sort(key=lambda d: d["index"])
    model_response.data = data
    model_response.object = "list"
    model_response.model = next((n["model"] for n in nodes if n.get("model")), None) or model
    model_response.usage = Usage(prompt_tokens=prompt, completion_tokens=0, total_tokens=total)
    trace_ids = [n.get("trace_id") for n in nodes]
    model_response._hidden_params = {
        **(model_response._hidden_params or {}),
        "alipay": {
            "trace_id": trace_ids[0] if trace_ids else None, "trace_ids": trace_ids, "input_chars": chars,
        },
    }
    return model_response
