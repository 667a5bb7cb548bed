"""The one error type for bad input: it names the file, the 1-based physical line and the column."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad input data or configuration.

    Args:
        message: what is wrong, in one sentence.
        file: the offending file, when there is one.
        line: 1-based physical line in ``file`` (the header, when present, is line 1).
        column: the offending column name.
        hint: how to fix it.

    ``str(err)`` is one line: ``file:line: column 'c': message (hint: ...)``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.hint = hint
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file + (f":{self.line}" if self.line is not None else "") + ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        col = f"column '{self.column}': " if self.column is not None else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}{col}{self.message}{hint}".replace("\n", " ")
