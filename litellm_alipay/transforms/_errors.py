"""The two request errors the transforms raise, built the way LiteLLM expects (keyword arguments).

``BadRequestError`` is for input Alipay cannot represent at all; ``UnsupportedParamsError`` is for an
optional parameter Alipay ignores, which LiteLLM's ``drop_params`` convention lets callers drop.
"""

from __future__ import annotations

from collections.abc import Iterable

import litellm

from ..errors import PROVIDER


def bad_request(model: str, message: str) -> litellm.BadRequestError:
    """A 400 naming the offending field; the Router treats it as the caller's fault (no retry)."""
    return litellm.BadRequestError(message=message, model=model, llm_provider=PROVIDER)


def unsupported(model: str, names: Iterable[str]) -> litellm.UnsupportedParamsError:
    """LiteLLM's own wording, so users recognise the ``drop_params`` remedy."""
    listed = sorted(names)
    return litellm.UnsupportedParamsError(
        message=(
            f"{PROVIDER} does not support parameters: {listed}, for model={model}. To drop these, set "
            "`drop_params=True` (per call or deployment), `litellm.drop_params = True`, or for the "
            "proxy `litellm_settings: drop_params: true`."
        ),
        llm_provider=PROVIDER,
        model=model,
    )
