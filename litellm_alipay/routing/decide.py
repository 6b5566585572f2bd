"""Which model group answers a request to the routed name (``assistant``), and why. Pure: no I/O.

The order is the policy, first match wins:

1. **residency** — the request's metadata names a user region outside ``home_regions`` (mainland China)
   without the consent flag: the regional model answers, whatever the topic. A request that needs
   Alipay's actions (``allowed_actions`` or payment tools) is *refused* instead, with a message naming the
   consent setting: the regional model cannot execute a refund, and silently dropping the actions would
   answer something else than was asked. An unmarked request is not guessed at (as ``ops.residency``).
2. **tools** — ``allowed_actions`` (in the body, ``extra_body`` or where the trust hook moved it) go to
   ``actions_model``; payment tools (a function whose name or description is about payments) to
   ``alipay_model``: only Alipay's side can act on them.
3. **trivial** — an acknowledgement ("好的", "yes", "thanks") goes to the cheap side.
4. **topic** — the last user turn classified by ``topic.classify``; a turn with no cue at all ("how long
   does that take?") takes the verdict of the nearest earlier user turn that has one (``context_turns``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..settings import consented, normalize_region, request_metadata
from ..trust import CLIENT_ACTIONS_KEY
from .settings import RouteSettings
from .topic import classify, split_identifier
from .trivial import is_trivial

ALIPAY, REGIONAL, REFUSED = "alipay", "regional", "refused"
REASONS = ("residency", "tools", "trivial", "topic")


@dataclass(frozen=True)
class RouteDecision:
    """``side`` (alipay | regional | refused), ``reason`` (one of ``REASONS``), the model group that answers
    (``None`` when refused) and a short, secret-free ``detail`` for logs and headers."""

    side: str
    reason: str
    model: str | None
    detail: str = ""

    def as_metadata(self) -> dict[str, Any]:
        return {"side": self.side, "reason": self.reason, "model": self.model, "detail": self.detail}


def text_of(content: Any) -> str:
    """A message's prompt text: its string content, or its text parts joined by a space."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return " ".join(str(part.get("text") or "") for part in content
                        if isinstance(part, Mapping) and part.get("type") in ("text", "input_text"))
    return ""


def user_texts(messages: Any) -> list[str]:
    """The user turns' texts, last first."""
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        return []
    return [text_of(m.get("content")) for m in reversed(messages)
            if isinstance(m, Mapping) and m.get("role") == "user"]


def client_actions(request: Mapping[str, Any]) -> Any:
    """The ``allowed_actions`` a request asks for, wherever the client or the trust hook put it."""
    extra = request.get("extra_body")
    metadata = request.get("metadata")
    for value in (request.get("allowed_actions"),
                  extra.get("allowed_actions") if isinstance(extra, Mapping) else None,
                  metadata.get(CLIENT_ACTIONS_KEY) if isinstance(metadata, Mapping) else None):
        if value:
            return value
    return None


def payment_tools(tools: Any, settings: RouteSettings) -> list[str]:
    """Names of the offered functions that are about payments (name and description classified)."""
    names = []
    for tool in tools if isinstance(tools, Sequence) and not isinstance(tools, str) else ():
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping):
            continue
        name, description = str(function.get("name") or ""), str(function.get("description") or "")
        if classify(f"{split_identifier(name)} {description}", settings.topic_threshold,
                    settings.extra_terms).alipay:
            names.append(name[:64])
    return names


def residency_block(request: Mapping[str, Any], settings: RouteSettings) -> str | None:
    """The guarded region of a request that may not reach Alipay, or None."""
    metadata = request_metadata({"metadata": request.get("metadata"),
                                 "litellm_metadata": request.get("litellm_metadata")})
    region = metadata.get(settings.residency_metadata_key)
    if region is None or not str(region).strip():
        return None
    code = normalize_region(region)
    if code in settings.home_regions or consented(metadata.get(settings.residency_consent_key)):
        return None
    return code[:16]


def decide(request: Mapping[str, Any], settings: RouteSettings) -> RouteDecision:
    """The route of one request (an OpenAI-shaped body plus LiteLLM's ``metadata``); see the module docstring."""
    actions = client_actions(request)
    tools = payment_tools(request.get("tools"), settings)
    region = residency_block(request, settings)
    if region is not None:
        if actions or tools:
            return RouteDecision(REFUSED, "residency", None, f"region {region} without consent needs Alipay's "
                                 f"actions ({'allowed_actions' if actions else 'payment tools'})")
        return RouteDecision(REGIONAL, "residency", settings.regional_model, f"region {region} without consent")
    if actions:
        return RouteDecision(ALIPAY, "tools", settings.actions_model, "allowed_actions")
    if tools:
        return RouteDecision(ALIPAY, "tools", settings.alipay_model, "payment tools: " + ",".join(tools[:4]))
    turns = user_texts(request.get("messages"))
    if is_trivial(turns[0] if turns else ""):
        return RouteDecision(REGIONAL, "trivial", settings.regional_model, "acknowledgement")
    for depth, text in enumerate(turns[: 1 + settings.context_turns]):
        topic = classify(text, settings.topic_threshold, settings.extra_terms)
        if topic.cues or topic.other_institution or depth == settings.context_turns:
            side = ALIPAY if topic.alipay else REGIONAL
            where = "" if depth == 0 else f" (user turn -{depth})"
            cues = ",".join(topic.cues[:4]) or "no payment cue"
            return RouteDecision(side, "topic", settings.alipay_model if topic.alipay else settings.regional_model,
                                 f"score {topic.score}: {cues}{where}"[:200])
    return RouteDecision(REGIONAL, "topic", settings.regional_model, "score 0: no payment cue")


def refusal_message(decision: RouteDecision, settings: RouteSettings) -> str:
    """What a refused client reads: the region, why, and the setting that lifts it."""
    return (f"{settings.model}: this request {decision.detail}, and Alipay's actions run only in Alipay's "
            f"mainland-China deployment: set metadata {settings.residency_consent_key}=true once the user "
            f"agreed to processing in China (setting residency_consent_key), or send it without "
            f"allowed_actions and payment tools to be answered by the regional model")
