"""Pure transforms between OpenAI/LiteLLM shapes and the Alipay AI methods (PROTOCOL.md Part B).

No I/O, no settings: the gateway adapter signs, sends and verifies; these functions only reshape data.

- ``chat_biz_content`` / ``chat_model_response``: B1 request and response.
- ``StreamTransformer``: B3 chunks → LiteLLM ``GenericStreamingChunk`` dicts.
- ``check_structured``: a ``json_schema`` answer validated against its schema.
- ``embed_biz_contents`` / ``embedding_response``: B2 batches and their reassembly.
- ``dropped_report``: the parameters ``drop_params`` dropped, named in the answer's headers.
"""

from .chat import alipay_fields, chat_biz_content, chat_model_response, finish_reason
from .embeddings import MAX_INPUT_CHARS, embed_biz_contents, embedding_response, note_dropped_by_litellm
from .params import DROPPED_HEADER, LITELLM_INTERNAL_PARAMS, NO_OP_DEFAULTS, dropped_report
from .stream import StreamTransformer
from .structured import check_structured

__all__ = [
    "chat_biz_content", "chat_model_response", "StreamTransformer", "embed_biz_contents",
    "embedding_response", "alipay_fields", "finish_reason", "LITELLM_INTERNAL_PARAMS", "NO_OP_DEFAULTS",
    "MAX_INPUT_CHARS", "check_structured", "DROPPED_HEADER", "dropped_report", "note_dropped_by_litellm",
]
