"""One line of a health report (``litellm-alipay check``): shared by the gateway's and Ant Ling's checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Status = Literal["OK", "WARN", "FAIL"]


@dataclass(frozen=True)
class CheckResult:
    """One line of the report."""

    status: Status
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4} {self.name}: {self.detail}"

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status, "name": self.name, "detail": self.detail}


def ok(name: str, detail: str) -> CheckResult:
    return CheckResult("OK", name, detail)


def warn(name: str, detail: str) -> CheckResult:
    return CheckResult("WARN", name, detail)


def fail(name: str, detail: str) -> CheckResult:
    return CheckResult("FAIL", name, detail)


#: Characters of an error's own text kept (it may come from the network); a fix hint after it is kept whole.
ERROR_TEXT_MAX = 500
#: Where this package's errors start their fix (``errors.py``): everything from here on is ours, and whole.
HINT_MARK = " — hint: "


def error_text(exc: BaseException) -> str:
    """``<class>: <message>`` on one line: the message bounded (a server's text can be anything) but a
    fix hint at its end never cut, so the line always ends with what to do."""
    text = " ".join(str(exc).split())
    text = text.removeprefix(f"litellm.{type(exc).__name__}: ")  # LiteLLM repeats the class name
    head, mark, hint = text.partition(HINT_MARK)
    if len(head) > ERROR_TEXT_MAX:
        head = head[: ERROR_TEXT_MAX - 1] + "…"
    return f"{type(exc).__name__}: {head}{mark}{hint}"


def failed(results: Sequence[CheckResult]) -> bool:
    return any(r.status == "FAIL" for r in results)
