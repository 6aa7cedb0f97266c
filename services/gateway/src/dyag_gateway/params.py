"""Path and query parameters the routers share, bounded where they are declared: an id is plain ASCII of at most
200 characters (a job, a dataset, a model, an export, a run, a pipeline), a page size is between 1 and 10,000.
What falls outside is a 422 naming the parameter before any service or store sees it; names (catalogs,
collections) are checked by the services that own them, with their own rules and messages."""

from __future__ import annotations

import re
from typing import Annotated, Any, Self

from fastapi import Path, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from dyag_core.nesting import check_depth
from dyag_gateway.errors import ApiError

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@+=-]*$"
# A hosted provider's model id may hold '/' (accounts/…/models/…): it is a lookup key, never a file path.
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@+=/-]*$"
ID_MAX = 200
LIMIT_MAX = 10_000
INT32_MAX = 2**31 - 1

Id = Annotated[
    str,
    Path(
        min_length=1,
        max_length=ID_MAX,
        pattern=ID_PATTERN,
        description="an id as the API returned it: ASCII letters, digits and . _ : @ + = -",
    ),
]
HostedModelId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=ID_MAX,
        pattern=MODEL_ID_PATTERN,
        description="the provider's model id (ft:…): ASCII letters, digits and . _ : @ + = - /",
    ),
]
# A catalog's or a collection's name: only its length here (the service that owns it names what else is wrong: its
# characters, '..'), so that no name makes a URL longer than the HTTP server reads.
CatalogName = Annotated[str, Path(min_length=1, max_length=200, description="the catalog's name")]
CollectionName = Annotated[str, Path(min_length=1, max_length=512, description="the collection's name")]
Version = Annotated[str, Query(max_length=64, description="a version; empty: the latest")]
# A file of a dataset (split, format) or a report's format: a short ASCII word, checked against the known ones by
# the service that has them.
Word = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Limit = Annotated[int, Query(ge=1, le=LIMIT_MAX, description=f"at most this many (1 to {LIMIT_MAX:,})")]
# A free-text filter (a kind, a base model…): bounded, so that it cannot be a megabyte of query string.
Filter = Annotated[str, Query(max_length=200)]


def unencodable(value: Any) -> str | None:
    """Where `value` holds a string that is not Unicode text (a lone surrogate: JSON's "\\ud800" escape, which
    Python's parser lets through and nothing downstream can encode), as a dotted path; None when it holds none.
    Models inside are skipped: each checks its own fields."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return where or "(the value)"
        elif isinstance(item, dict):
            for key, sub in item.items():
                shown = str(key).encode("utf-8", "backslashreplace").decode("utf-8")
                stack.append((f"{where}.{shown}" if where else shown, key))
                stack.append((f"{where}.{shown}" if where else shown, sub))
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{where}.{i}" if where else str(i), sub) for i, sub in enumerate(item))
    return None


class Body(BaseModel):
    """A JSON body: a field it does not have is refused by name (not ignored), and so are NaN and infinities, which
    Python's JSON parser accepts but JSON has not, and strings that are not Unicode text (lone surrogates)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="after")
    def _unicode_text(self) -> Self:
        fields = {name: value for name, value in self.__dict__.items() if not isinstance(value, BaseModel)}
        where = unencodable(fields)
        if where is not None:
            raise ValueError(f"{where}: a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), not Unicode text")
        return self


# Numbers that travel in protobuf int32 fields: what does not fit is a 422 here, not a ValueError at the gRPC call.
Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
# Free-form JSON (training options, result documents, details): at most 64 levels deep, like every JSON read.
JsonObject = Annotated[dict[str, Any], AfterValidator(check_depth)]


# A name given to what a request makes (a model, an export, a run, a pipeline): a label shown in lists and reports,
# never a path, so nothing that reads as one: no separator, no '..', no percent-escaped dot or slash, no control
# character (NUL…).
_PATH_LIKE = re.compile(r"[/\\\x00-\x1f\x7f]|\.\.|%(?:2e|2f|5c|00)", re.IGNORECASE)


def _label(value: str) -> str:
    if _PATH_LIKE.search(value):
        raise ValueError(
            f"{value[:60]!r} reads as a path: a name has no '/', '\\', '..', %2e/%2f escapes or control characters"
        )
    return value


Label = Annotated[str, Field(max_length=200), AfterValidator(_label)]


IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as the IETF draft's examples


def idempotency_key(request: Request) -> str:
    """The request's Idempotency-Key header, scoped to the caller's API key (the same value from another key is
    another request), or "". A malformed one is a 400 naming the header."""
    given = request.headers.get("idempotency-key", "")
    if not given:
        return ""
    if not IDEMPOTENCY_KEY.fullmatch(given):
        raise ApiError(
            400, "invalid_idempotency_key", "the Idempotency-Key header must be 1 to 255 visible ASCII characters"
        )
    principal = getattr(request.state, "principal", None)
    return f"{getattr(principal, 'id', '')}/{given}"
