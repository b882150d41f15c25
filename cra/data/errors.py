"""The error every reader raises on bad input, and the report of rows skipped on request."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path


class DataFormatError(ValueError):
    """A data file holds something other than what was expected.

    The message names the file, the key or row, what was found and what was expected; the same
    pieces are kept as attributes for callers that want to collect them.
    """

    def __init__(self, path: Path | str, where: str, problem: str, expected: str):
        self.path, self.where, self.problem, self.expected = str(path), where, problem, expected
        super().__init__(f"{path}: {where}: {problem}; expected {expected}")


@dataclass
class SkipReport:
    """Rows left out because the caller asked to skip bad rows (never silently)."""

    ids: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.ids)

    def add(self, key: str, error: Exception) -> None:
        self.ids.append(key)
        self.reasons.append(str(error))

    def summary(self) -> str:
        if not self.ids:
            return "no rows skipped"
        return f"skipped {self.count} bad row(s): {', '.join(self.ids[:10])}{' ...' if self.count > 10 else ''}"

    def warn(self, what: str) -> None:
        """Emit one warning with the count and the ids (no-op when nothing was skipped)."""
        if self.ids:
            warnings.warn(f"{what}: {self.summary()} (first reason: {self.reasons[0]})", stacklevel=3)
