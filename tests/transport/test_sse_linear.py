"""The SSE decoder's work is linear in what it is fed, however finely the stream is cut."""

from __future__ import annotations

import json

from litellm_alipay.wire import protocol


def _count_scanned(monkeypatch) -> list[int]:
    """Wrap the separator search and add up how many buffered bytes each call may examine."""
    scanned = [0]
    real = protocol._event_end

    def counting(buffer, start=0):
        scanned[0] += len(buffer) - start
        return real(buffer, start)

    monkeypatch.setattr(protocol, "_event_end", counting)
    return scanned


def test_large_event_fed_byte_by_byte_is_scanned_linearly(monkeypatch):
    scanned = _count_scanned(monkeypatch)
    data = json.dumps({"text": "流" * 20_000, "more": "x" * 40_000}, ensure_ascii=False)
    wire = protocol.sse_event(data, "message") + protocol.sse_event('{"done":true}')
    decoder = protocol.SSEDecoder()
    events = []
    for i in range(len(wire)):
        events.extend(decoder.feed(wire[i:i + 1]))
    assert [e.data for e in events] == [data, '{"done":true}']
    assert not decoder.pending
    assert scanned[0] <= 5 * len(wire)  # a rescan per byte would be ~len(wire)**2 / 2 (10**10 here)


def test_separators_split_across_chunks_and_crlf_are_found(monkeypatch):
    wire = b"event: a\r\ndata: 1\r\n\r\ndata: 2\n\n: comment\n\ndata: 3\n\n"
    for size in (1, 2, 3, 5):
        decoder = protocol.SSEDecoder()
        got = [e for i in range(0, len(wire), size) for e in decoder.feed(wire[i:i + size])]
        assert [(e.event, e.data) for e in got] == [("a", "1"), ("message", "2"), ("message", "3")]
