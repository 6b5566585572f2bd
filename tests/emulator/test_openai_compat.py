"""The OpenAI-compatible endpoints answer from the same model, unsigned."""

from __future__ import annotations

import json

import httpx

from litellm_alipay.emulator.process import EmulatorProcess

from .helpers import Client


def test_chat_completion_same_text_as_gateway(alipay_emulator: EmulatorProcess, client: Client) -> None:
    resp = httpx.post(f"{alipay_emulator.base_url}/v1/chat/completions",
                      json={"model": "ant-fin-chat", "messages": [{"role": "user", "content": "twin"}]})
    assert resp.status_code == 200
    body = resp.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == client.chat("twin")["choices"][0]["message"]["content"]
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert alipay_emulator.stats()["openai_requests"] == {"chat.completions": 1}


def test_streaming_ends_with_done(alipay_emulator: EmulatorProcess) -> None:
    resp = httpx.post(f"{alipay_emulator.base_url}/v1/chat/completions",
                      json={"model": "ant-fin-chat", "stream": True, "stream_options": {"include_usage": True},
                            "messages": [{"role": "user", "content": "flow on"}]})
    lines = [line for line in resp.text.split("\n\n") if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "You said: flow on"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


def test_image_url_part_and_errors(alipay_emulator: EmulatorProcess) -> None:
    url = f"{alipay_emulator.base_url}/v1/chat/completions"
    content = [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    body = httpx.post(url, json={"model": "ant-fin-chat", "messages": [{"role": "user", "content": content}]}).json()
    assert body["choices"][0]["message"]["content"] == "You said: see [image 1: https://x/y.png]"
    resp = httpx.post(url, json={"model": "ant-fin-chat", "messages": "not a list"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "AI.INVALID_REQUEST"


def test_openai_endpoint_stands_for_an_unregulated_regional_model(alipay_emulator: EmulatorProcess) -> None:
    """Any model name is served and what Alipay refuses is answered: the content-policy fallback target."""
    url = f"{alipay_emulator.base_url}/v1/chat/completions"
    ask = [{"role": "user", "content": "forecast my income"}]
    resp = httpx.post(url, json={"model": "general-chat", "messages": ask})
    assert resp.status_code == 200
    assert resp.json()["choices"][0]["message"]["content"] == "You said: forecast my income"


def test_embeddings(alipay_emulator: EmulatorProcess, client: Client) -> None:
    resp = httpx.post(f"{alipay_emulator.base_url}/v1/embeddings", json={"model": "ant-fin-embed", "input": ["q"]})
    body = resp.json()
    assert body["object"] == "list" and body["data"][0]["object"] == "embedding"
    _, node = client.call("alipay.cloud.ai.embed", {"model": "ant-fin-embed", "input": ["q"]})
    assert body["data"][0]["embedding"] == node["data"][0]["embedding"]
