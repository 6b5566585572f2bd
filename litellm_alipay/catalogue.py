"""Every model ``alipay/…`` serves, described once and registered with LiteLLM.

Why: LiteLLM knows nothing of a custom provider's models. Registered under ``alipay/<id>`` they answer
``litellm.get_model_info``, the ``supports_*`` helpers, the proxy's ``/model/info`` and the Router's
context-window checks, and — for the Ant Ling models, whose prices are per token —
``litellm.completion_cost(completion_response=r)`` gives the same USD as ``r._hidden_params["response_cost"]``.

The gateway models (PROTOCOL Part B) are billed per request and per 1,000 characters with monthly volume
tiers (B6): LiteLLM's price fields cannot express that, so they are registered with zero token prices
and their cost is ``response_cost`` (set by the provider from ``pricing.py``); docs/models.md says so.

Ant Ling prices: ``../shared/reference/ANT_LING.md`` §0 and §5 (USD and CNY per million tokens; the
sources conflict for the 2.6 models, a deployment can override them). ``Ling-3.0-tiny`` has no published
price: it is registered at zero, and a deployment should set its price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import PROVIDER

ANT_LING_CONTEXT = 262_144
_M = 1_000_000


@dataclass(frozen=True)
class ModelSpec:
    """One model: what LiteLLM registers, plus which backend serves it and how it reasons."""

    id: str
    backend: str  # "gateway" | "ant-ling"
    mode: str = "chat"  # "chat" | "embedding"
    max_input_tokens: int = 32_000
    max_output_tokens: int = 8_192
    usd_per_million: tuple[float, float, float] = (0.0, 0.0, 0.0)  # input, output, cache read
    cny_per_million: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: "effort" (Ring: ``reasoning.effort``), "toggle" (hybrid Ling-3: ``thinking.type``), None
    reasoning: str | None = None
    #: thinks unless told not to (hybrid models that think by default)
    thinks_by_default: bool = False
    vision: bool = False
    audio: bool = False
    function_calling: bool = True
    response_schema: bool = False
    web_search: bool = False
    legacy: bool = False

    def model_info(self) -> dict[str, Any]:
        """The entry ``litellm.register_model`` takes (its cost-map keys)."""
        usd_in, usd_out, usd_cache = self.usd_per_million
        info: dict[str, Any] = {
            "litellm_provider": PROVIDER,
            "mode": self.mode,
            "max_input_tokens": self.max_input_tokens,
            "max_tokens": self.max_output_tokens if self.mode == "chat" else self.max_input_tokens,
            "input_cost_per_token": usd_in / _M,
            "output_cost_per_token": usd_out / _M,
            "cache_read_input_token_cost": usd_cache / _M,
        }
        if self.mode == "embedding":
            return info
        info.update(
            max_output_tokens=self.max_output_tokens,
            supports_function_calling=self.function_calling,
            supports_tool_choice=self.function_calling,
            supports_parallel_function_calling=self.function_calling,
            supports_reasoning=self.reasoning is not None,
            supports_vision=self.vision,
            supports_audio_input=self.audio,
            supports_response_schema=self.response_schema,
            supports_system_messages=True,
            supports_web_search=self.web_search,
        )
        return info


def _ling(model_id: str, usd: tuple[float, float, float], cny: tuple[float, float, float], *,
          reasoning: str | None = None, thinks: bool = False, vision: bool = False,
          max_output: int = 65_536, context: int = ANT_LING_CONTEXT, legacy: bool = False) -> ModelSpec:
    return ModelSpec(
        id=model_id, backend="ant-ling", max_input_tokens=context, max_output_tokens=max_output,
        usd_per_million=usd, cny_per_million=cny, reasoning=reasoning, thinks_by_default=thinks,
        vision=vision, response_schema=True, web_search=True, legacy=legacy,
    )


_FLASH3_USD, _FLASH3_CNY = (0.06, 0.18, 0.012), (0.5, 1.5, 0.05)
_1T_USD, _1T_CNY = (0.30, 2.50, 0.06), (4.5, 18.0, 0.45)
#: CNY 4 / 8 per million for the 2.5 generation (no USD list price: converted at 7.1, no cache price)
_25_USD, _25_CNY = (4 / 7.1, 8 / 7.1, 0.0), (4.0, 8.0, 0.0)

MODELS: Mapping[str, ModelSpec] = {spec.id: spec for spec in (
    # the Alipay AI gateway (PROTOCOL Part B; the emulator's models)
    ModelSpec("ant-fin-chat", "gateway", vision=True, audio=True, response_schema=True),
    ModelSpec("ant-fin-chat-lite", "gateway", vision=True, audio=True, response_schema=True),
    ModelSpec("ant-fin-embed", "gateway", mode="embedding", max_input_tokens=8_192, function_calling=False),
    # Ant Ling Open Platform (PROTOCOL Part C), current
    _ling("Ring-2.6-1T", _1T_USD, _1T_CNY, reasoning="effort", thinks=True),
    _ling("Ling-2.6-1T", _1T_USD, _1T_CNY),
    _ling("Ling-2.6-flash", (0.10, 0.30, 0.02), (0.6, 1.8, 0.06)),
    _ling("Ling-3.0-flash", _FLASH3_USD, _FLASH3_CNY, reasoning="toggle", thinks=True, max_output=32_000),
    _ling("Ling-3.0-flash-VL", _FLASH3_USD, _FLASH3_CNY, reasoning="toggle", thinks=True, vision=True,
          max_output=32_000),
    _ling("Ling-3.0-tiny", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), reasoning="toggle", thinks=True, max_output=32_000),
    # legacy ids, still accepted
    _ling("Ring-2.5-1T", _25_USD, _25_CNY, reasoning="effort", thinks=True, context=131_072, legacy=True),
    _ling("Ling-2.5-1T", _25_USD, _25_CNY, context=131_072, legacy=True),
    _ling("Ring-1T", _25_USD, _25_CNY, reasoning="effort", thinks=True, context=131_072, legacy=True),
    _ling("Ling-1T", _25_USD, _25_CNY, context=131_072, legacy=True),
    _ling("AntAngelMed", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), context=131_072),
)}

ANT_LING_PREFIXES = ("Ling-", "Ring-", "AntAngelMed")


def spec(model: str) -> ModelSpec | None:
    """The catalogue entry for ``model`` (with or without the ``alipay/`` prefix), if any."""
    return MODELS.get(model.removeprefix(PROVIDER + "/"))


def is_ant_ling_model(model: str) -> bool:
    """Ant Ling ids by their family prefix, so a new Ling/Ring release works before it is catalogued."""
    return model.removeprefix(PROVIDER + "/").startswith(ANT_LING_PREFIXES)


def ant_ling_spec(model: str) -> ModelSpec:
    """The entry for an Ant Ling model; an uncatalogued one is described by its family (no price)."""
    found = spec(model)
    if found is not None:
        return found
    name = model.removeprefix(PROVIDER + "/")
    reasoning = "effort" if name.startswith("Ring-") else "toggle" if name.startswith("Ling-3") else None
    return _ling(name, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), reasoning=reasoning, thinks=reasoning is not None,
                 vision=name.endswith("-VL"))


def model_cost_map() -> dict[str, dict[str, Any]]:
    """``{"alipay/<id>": info}`` for every model, as ``litellm.register_model`` takes it."""
    return {f"{PROVIDER}/{model_id}": model.model_info() for model_id, model in MODELS.items()}


_registered = False


def register_models(force: bool = False) -> None:
    """Register the catalogue with LiteLLM once per process (``force`` re-registers, e.g. after a test
    replaced ``litellm.model_cost``)."""
    global _registered
    if _registered and not force:
        return
    import litellm

    # LiteLLM resolves each key's provider while registering: make "alipay" known first (as its own
    # ``custom_llm_setup`` does once the handler is in ``custom_provider_map``).
    for names in (litellm.provider_list, litellm._custom_providers):
        if PROVIDER not in names:
            names.append(PROVIDER)  # type: ignore[arg-type]
    litellm.register_model(model_cost_map())
    _registered = True
