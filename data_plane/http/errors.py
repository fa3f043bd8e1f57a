"""One error body for the data plane's HTTP API, the same shape the control plane uses:
{"error": {"code", "message", "details": [{"field", "reason"}]}}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from data_plane.analytics.time_range import InvalidRangeError
from data_plane.directory.client import DirectoryUnavailableError
from data_plane.warehouse.base import WarehouseError


def error_body(code: str, message: str, details: list[dict[str, str]] | None = None) -> Any:
    return {"error": {"code": code, "message": message, "details": details or []}}


_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in err.get("loc", ())[1:]), "reason": err["msg"]}
            for err in exc.errors()
        ]
        return JSONResponse(
            error_body("invalid_request", "the request is invalid", details), status_code=422
        )

    @app.exception_handler(InvalidRangeError)
    async def bad_range(_request: Request, exc: InvalidRangeError) -> JSONResponse:
        return JSONResponse(
            error_body(
                "invalid_request",
                "the time range is invalid",
                [{"field": exc.field, "reason": exc.reason}],
            ),
            status_code=422,
        )

    @app.exception_handler(DirectoryUnavailableError)
    async def no_directory(_request: Request, exc: DirectoryUnavailableError) -> JSONResponse:
        return JSONResponse(
            error_body("unavailable", "cannot verify the caller right now"), status_code=503
        )

    @app.exception_handler(WarehouseError)
    async def no_warehouse(_request: Request, exc: WarehouseError) -> JSONResponse:
        return JSONResponse(
            error_body("unavailable", "the analytics store cannot answer right now"),
            status_code=503,
        )
