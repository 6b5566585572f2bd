"""The window counter the limiter tests rely on must itself be right."""

from resilience_helpers import max_in_window


def test_half_open_window_counts() -> None:
    assert max_in_window([0, 0, 999_999], 1_000_000) == 3
    assert max_in_window([0, 1_000_000, 2_000_000], 1_000_000) == 1
    assert max_in_window([5, 1, 3, 1_000_004], 1_000_000) == 3
    assert max_in_window([], 10) == 0
