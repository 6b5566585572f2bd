"""Which of LiteLLM's authentication refusals the trust boundary re-answers, unit level (the real proxy's
answers are in tests/e2e/test_proxy_refusals.py)."""

from __future__ import annotations

from litellm.proxy._types import ProxyErrorTypes, ProxyException

from litellm_alipay.proxy_refusals import UNKNOWN_KEY, refusal

BEFORE_ACCEPTANCE: dict = {"model": "fin-chat"}
ACCEPTED: dict = {"model": "fin-chat", "proxy_server_request": {"body": {}}}


def test_no_connected_db_is_an_unknown_key():
    exc = ProxyException(message="No connected db.", type=ProxyErrorTypes.no_db_connection, code=400, param=None)
    assert refusal(exc, BEFORE_ACCEPTANCE) == (401, UNKNOWN_KEY)


def test_plain_refusals_are_401s_and_banned_fields_400s_naming_the_field():
    assert refusal(Exception("No api key passed in."), BEFORE_ACCEPTANCE) == (
        401, "Authentication Error, No api key passed in.")
    status, message = refusal(ValueError("Rejected Request: api_base is not allowed in request body. Clientside "
                                         "passthrough requires …"), BEFORE_ACCEPTANCE)
    assert status == 400 and message.startswith("api_base is a deployment setting")
    other = "Rejected Request: model_list is not allowed in the request body."
    assert refusal(ValueError(other), BEFORE_ACCEPTANCE) == (400, other)


def test_what_litellm_already_answers_well_and_a_models_failures_are_left_alone():
    answered = ProxyException(message="Authentication Error, No api key passed in.",  # LiteLLM 1.110.x
                              type=ProxyErrorTypes.auth_error, code=401, param=None)
    assert refusal(answered, BEFORE_ACCEPTANCE) is None
    assert refusal(Exception("No api key passed in."), ACCEPTED) is None
    assert refusal(RuntimeError("boom"), BEFORE_ACCEPTANCE) is None
