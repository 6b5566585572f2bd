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


def failed(results: Sequence[CheckResult]) -> bool:
    return any(r.status == "FAIL" for r in results)
