"""The model catalogue as LiteLLM sees it once the provider registers."""

import litellm
import pytest

from litellm_alipay import catalogue, register

CURRENT = ("Ling-3.0-flash", "Ling-3.0-flash-VL", "Ling-3.0-tiny", "Ling-2.6-1T", "Ling-2.6-flash", "Ring-2.6-1T")


@pytest.fixture(scope="module", autouse=True)
def _registered():
    register()


def test_ring_model_info_is_registered():
    info = litellm.get_model_info("alipay/Ring-2.6-1T")
    assert info["litellm_provider"] == "alipay" and info["mode"] == "chat"
    assert info["max_input_tokens"] == 262_144 and info["max_output_tokens"] == 65_536
    assert info["input_cost_per_token"] == pytest.approx(0.30e-6)
    assert info["output_cost_per_token"] == pytest.approx(2.50e-6)
    assert info["cache_read_input_token_cost"] == pytest.approx(0.06e-6)
    assert info["supports_reasoning"] is True and info["supports_function_calling"] is True


@pytest.mark.parametrize("model", CURRENT)
def test_every_current_ant_ling_model_is_registered(model):
    info = litellm.get_model_info(f"alipay/{model}")
    assert info["max_input_tokens"] == 262_144
    assert litellm.supports_function_calling(f"alipay/{model}")
    assert litellm.supports_vision(f"alipay/{model}") is model.endswith("-VL")
    assert litellm.supports_reasoning(f"alipay/{model}") is (model.startswith("Ring") or model.startswith("Ling-3"))


@pytest.mark.parametrize("model", ["Ling-2.5-1T", "Ring-2.5-1T", "Ling-1T", "Ring-1T"])
def test_legacy_ids_are_accepted(model):
    assert litellm.get_model_info(f"alipay/{model}")["mode"] == "chat"
    assert catalogue.is_ant_ling_model(model)


def test_gateway_models_are_registered_with_their_modes():
    assert litellm.get_model_info("alipay/ant-fin-chat")["mode"] == "chat"
    assert litellm.get_model_info("alipay/ant-fin-chat-lite")["mode"] == "chat"
    assert litellm.get_model_info("alipay/ant-fin-embed")["mode"] == "embedding"
    assert litellm.supports_vision("alipay/ant-fin-chat") and litellm.supports_function_calling("alipay/ant-fin-chat")


def test_uncatalogued_family_members_route_to_ant_ling_with_family_traits():
    spec = catalogue.ant_ling_spec("Ring-3.0-2T")
    assert spec.backend == "ant-ling" and spec.reasoning == "effort" and spec.usd_per_million == (0, 0, 0)
    assert catalogue.ant_ling_spec("Ling-3.5-flash").reasoning == "toggle"
    assert not catalogue.is_ant_ling_model("ant-fin-chat")


def test_completion_cost_agrees_with_the_registered_prices():
    response = litellm.ModelResponse(model="Ring-2.6-1T")
    response.usage = litellm.Usage(prompt_tokens=1000, completion_tokens=2000, total_tokens=3000,
                                   prompt_tokens_details={"cached_tokens": 400})
    expected = 600 * 0.30e-6 + 400 * 0.06e-6 + 2000 * 2.50e-6
    assert litellm.completion_cost(completion_response=response, custom_llm_provider="alipay") == \
        pytest.approx(expected, rel=1e-12)
