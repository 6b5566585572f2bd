"""The gateway's form encoding is byte for byte ``urlencode(…, quote_via=quote)``: the official SDK's."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litellm_alipay.wire.form import form_encode, quote_text

#: Text a request really carries (JSON, Chinese, emoji, every ASCII punctuation) and long values that take
#: the other code path (above 512 bytes).
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=700)


@given(st.dictionaries(TEXT, TEXT, max_size=6))
def test_form_encode_is_urlencode_with_quote(params: dict[str, str]) -> None:
    assert form_encode(params) == urlencode(params, encoding="utf-8", quote_via=quote)


@given(st.text(alphabet="额度支付宝余 abc{}\":,~_.-/+=&%", max_size=1200))
@pytest.mark.parametrize("charset", ["utf-8", "GBK"])
def test_quote_text_matches_quote_in_each_charset(charset: str, text: str) -> None:
    assert quote_text(text, charset) == quote(text, safe="", encoding=charset)


def test_a_large_prompt_and_every_byte_value() -> None:
    prompt = "余额 balance?&=+/%\n" * 8000
    assert quote_text(prompt) == quote(prompt, safe="")
    every = bytes(range(256)).decode("latin-1")
    assert quote_text(every, "latin-1") == quote(every, safe="", encoding="latin-1")
