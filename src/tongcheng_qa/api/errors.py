"""The one place where errors become HTTP responses: always JSON ``{"error": message}``.

Domain errors map by kind (bad input 400, not found 404, not ready or store down 503);
request validation errors become 422 (400 for a body that is not JSON) with a readable
message; anything unexpected is a 500 with a generic message, logged without the request.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    BadRequestError,
    ConfigError,
    IndexNotReadyError,
    ModelNotAvailableError,
    NotFoundError,
    StoreUnavailableError,
    TongchengQAError,
)

log = logging.getLogger("tongcheng_qa.api")


def status_for(exc: TongchengQAError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, (IndexNotReadyError, StoreUnavailableError, ModelNotAvailableError, ConfigError)):
        return 503
    if isinstance(exc, BadRequestError):
        return 400
    return 400  # every other domain error is about the request (unknown engine, bad filter, ...)


def error_response(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


NOT_JSON = ("The request body is not valid JSON; send a JSON object encoded as UTF-8 "
            "with Content-Type: application/json.")
NOT_UTF8 = ("The request body is not valid UTF-8; send a JSON object encoded as UTF-8 "
            "with Content-Type: application/json.")
#: pydantic's message for a string with a lone surrogate (``"\ud800"``, or CESU-8 bytes).
NOT_UNICODE = "not valid Unicode text (an unpaired surrogate such as \\ud800, or bytes that are not UTF-8)"


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        msg = NOT_UNICODE if err.get("type") == "string_unicode" else err.get("msg", "invalid")
        parts.append(f"{loc}: {msg}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "Invalid request: " + "; ".join(parts) + more


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TongchengQAError)
    async def _domain(request: Request, exc: TongchengQAError) -> JSONResponse:
        return error_response(status_for(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors) or any(
            tuple(e.get("loc", ())) == ("body",) and e.get("type") in ("model_attributes_type", "dict_type")
            for e in errors
        ):
            return error_response(400, NOT_JSON)
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]
        return error_response(422, _describe(errors), detail=detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 400 and message == "There was an error parsing the body":
            # FastAPI's message when reading the JSON body fails other than by a syntax error (not UTF-8)
            message = NOT_UTF8 if isinstance(exc.__cause__, UnicodeDecodeError) else NOT_JSON
        elif exc.status_code == 404 and message == "Not Found":
            message = f"No such endpoint: {request.method} {request.url.path}. See /docs for the API."
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}. See /docs for the API."
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__,
                  exc_info=exc)
        return error_response(500, "Internal error; the server log has the details. Please retry or report it.")
