"""LiteLLM's floor: a ``CustomLLM`` that answers from memory what the emulator would answer.

Why it exists: whatever LiteLLM itself spends on a custom-provider call (parameter handling, logging
object, response post-processing, the stream wrapper, callbacks) is spent here too, and nothing else.
The Alipay provider's cost above this row is the provider's own. The canned answer is captured from
the emulator at start-up, so text, usage, chunk count and vector size match the real rows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import (
    Choices,
    EmbeddingResponse,
    GenericStreamingChunk,
    Message,
    ModelResponse,
    Usage,
)


class FloorLLM(CustomLLM):
    """Canned chat, stream and embedding answers; no I/O, no signing."""

    def __init__(self, text: str, pieces: dict[int, list[str]], vectors: list[list[float]], usage: Any) -> None:
        super().__init__()
        self.text = text
        self.pieces = pieces  # max_tokens -> the streamed text pieces
        self.vectors = vectors
        self.usage = (int(usage.prompt_tokens), int(usage.completion_tokens))

    def _fill(self, model_response: ModelResponse, model: str) -> ModelResponse:
        prompt, completion = self.usage
        model_response.created = int(time.time())
        model_response.model = model
        model_response.choices = [Choices(index=0, finish_reason="stop",
                                          message=Message(role="assistant", content=self.text))]
        model_response.usage = Usage(prompt_tokens=prompt, completion_tokens=completion,  # type: ignore[attr-defined]
                                     total_tokens=prompt + completion)
        return model_response

    def completion(self, *args: Any, model: str = "", model_response: ModelResponse | None = None,
                   **kwargs: Any) -> ModelResponse:
        return self._fill(model_response or ModelResponse(), model)

    async def acompletion(self, *args: Any, model: str = "", model_response: ModelResponse | None = None,
                          **kwargs: Any) -> ModelResponse:
        return self._fill(model_response or ModelResponse(), model)

    def _chunks(self, optional_params: dict) -> list[GenericStreamingChunk]:
        pieces = self.pieces.get(int(optional_params.get("max_tokens") or 0)) or [self.text]
        prompt, _ = self.usage
        out = [GenericStreamingChunk(text=p, tool_use=None, is_finished=False, finish_reason="", usage=None, index=0)
               for p in pieces]
        out[-1] = GenericStreamingChunk(
            text=pieces[-1], tool_use=None, is_finished=True, finish_reason="stop", index=0,
            usage={"prompt_tokens": prompt, "completion_tokens": len(pieces), "total_tokens": prompt + len(pieces)},
        )
        return out

    def streaming(self, *args: Any, optional_params: dict | None = None, **kwargs: Any
                  ) -> Iterator[GenericStreamingChunk]:
        yield from self._chunks(optional_params or {})

    async def astreaming(self, *args: Any, optional_params: dict | None = None, **kwargs: Any
                         ) -> AsyncIterator[GenericStreamingChunk]:
        for chunk in self._chunks(optional_params or {}):
            yield chunk

    def _embed(self, model: str, model_response: EmbeddingResponse | None) -> EmbeddingResponse:
        response = model_response or EmbeddingResponse()
        response.data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(self.vectors)]
        response.object = "list"
        response.model = model
        response.usage = Usage(prompt_tokens=self.usage[0], completion_tokens=0, total_tokens=self.usage[0])
        return response

    def embedding(self, *args: Any, model: str = "", model_response: EmbeddingResponse | None = None,
                  **kwargs: Any) -> EmbeddingResponse:
        return self._embed(model, model_response)

    async def aembedding(self, *args: Any, model: str = "", model_response: EmbeddingResponse | None = None,
                         **kwargs: Any) -> EmbeddingResponse:
        return self._embed(model, model_response)


class WaitingFloorLLM(FloorLLM):
    """The floor that first awaits ``wait_s`` (the emulator's answer time) on the event loop, no I/O.

    Why: a provider that waits for a network answer lets the loop go idle; on a small VM the sleep and the
    cold wake-up cost CPU of their own, which the in-memory floor never pays. This row measures that share
    alone, so what remains between it and the alipay row is the provider's own work.
    """

    def __init__(self, *args: Any, wait_s: float) -> None:
        super().__init__(*args)
        self.wait_s = wait_s

    async def acompletion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        await asyncio.sleep(self.wait_s)
        return await super().acompletion(*args, **kwargs)
