"""The one error type bad input becomes; the plugin turns it into a pytest usage error (exit code 4)."""

from __future__ import annotations


class K2InputError(Exception):
    """Bad input, located: `file:line: service: key: what was expected` on one line."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        service: str | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.service = service
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
            where += ": "
        if self.service is not None:
            where += f"service {self.service!r}: "
        if self.key is not None:
            where += f"key {self.key!r}: "
        return " ".join(f"{where}{self.message}".split())
