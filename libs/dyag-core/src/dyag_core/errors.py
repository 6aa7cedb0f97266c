"""Domain errors: each carries a stable code and a message that names the problem."""

from __future__ import annotations

from typing import Any


class DyagError(Exception):
    """Base of the domain's errors. `code` is stable (clients match on it); `message` is for people."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **({"details": self.details} if self.details else {})}


class CatalogError(DyagError):
    """The catalog cannot be read or used as it is."""
