"""Routing by topic: one model name (``assistant``) answered by Alipay or by a regional model (docs/routing.md).

``topic`` and ``trivial`` judge a text, ``decide`` applies the policy (residency, tools, trivial, topic),
``savings`` prices what a regional answer saved, ``hook`` plugs it into the LiteLLM proxy.
"""

from .decide import RouteDecision, decide
from .settings import RouteSettings
from .topic import Topic, classify
from .trivial import is_trivial

__all__ = ["RouteDecision", "RouteSettings", "Topic", "classify", "decide", "is_trivial"]
