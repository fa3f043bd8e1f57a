"""Schema pieces shared by every REST resource."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

T = TypeVar("T")

#: Unicode format characters that reorder or hide text in terminals and pages (bidi
#: embeddings, overrides and isolates); the joiners emoji need stay allowed.
_HIDING = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable_text(value: str) -> str:
    """Refuses control characters (C0, DEL, C1), line and paragraph separators and bidi
    controls: names are shown in terminals, logs and the console, where these ring bells,
    rewrite lines or disguise one name as another."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _HIDING:
            raise ValueError(f"must not contain control characters (found U+{ord(char):04X})")
    return value


#: The name of a tenant, stream or token, as people type and read it.
DisplayName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(printable_text)]


class RequestModel(BaseModel):
    """Base for request bodies: unknown fields are refused, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorDetail(BaseModel):
    field: str
    reason: str


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorBody(BaseModel):
    """Every error the API returns has this shape."""

    error: ErrorInfo


class Page(BaseModel, Generic[T]):
    items: list[T]
    #: Pass as `cursor` to get the next page; null on the last page.
    next_cursor: str | None
