"""What one check found: a name, ok / warn / fail, what it saw, and for a problem what to do about it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: Status
    message: str
    fix: str = ""

    @property
    def line(self) -> str:
        """One line: `FAIL  database: at revision 0008, head is 0013 -> run `calltracking migrate``."""
        # One line whatever a library put in its error (SQLAlchemy appends the statement on new lines).
        message = " ".join(self.message.split())
        text = f"{self.status.value:<4}  {self.name}: {message}"
        return f"{text} -> {self.fix}" if self.fix and self.status is not Status.OK else text


def ok(name: str, message: str) -> CheckResult:
    return CheckResult(name, Status.OK, message)


def warn(name: str, message: str, fix: str = "") -> CheckResult:
    return CheckResult(name, Status.WARN, message, fix)


def fail(name: str, message: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, message, fix)
