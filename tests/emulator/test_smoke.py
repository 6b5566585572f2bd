from .helpers import CHAT, EMBED, Client


def test_chat_roundtrip(client: Client) -> None:
    node = client.chat("hello")
    assert node["code"] == "10000"
    assert node["choices"][0]["message"]["content"] == "You said: hello"


def test_embed(client: Client) -> None:
    resp, node = client.call(EMBED, {"model": "ant-fin-embed", "input": ["a", "b"]})
    assert len(node["data"]) == 2


def test_cert(cert_client: Client) -> None:
    resp, node = cert_client.call(CHAT, {"model": "ant-fin-chat", "messages": [{"role": "user", "content": "hi"}]})
    assert node["code"] == "10000", node
    assert resp.json()["alipay_cert_sn"]
