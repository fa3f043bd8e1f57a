"""Schema pieces shared by every REST resource."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


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
