"""API error shape: ``{"error": {"code", "message", "fields"?}}``, never a stack trace."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import ValidationError


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *,
                 fields: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields, self.headers = fields, headers

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, self.fields, self.headers)


def error_response(status: int, code: str, message: str, fields: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _loc(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def fields_from(errors: list[Any]) -> dict[str, str]:
    """{dotted field: message} from pydantic error dicts; the first message per field."""
    from enforcer.api.models import CONTROL_PATTERNS

    out: dict[str, str] = {}
    for e in errors:
        msg = str(e.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif (e.get("type") == "string_pattern_mismatch"
              and (e.get("ctx") or {}).get("pattern") in CONTROL_PATTERNS):
            msg = "control characters (NUL included) are not allowed"
        out.setdefault(_loc(tuple(e.get("loc", ()))), msg)
    return out


def invalid(err: ValidationError | list[Any], message: str = "invalid request") -> ApiError:
    errors = err.errors() if isinstance(err, ValidationError) else err
    return ApiError(422, "invalid", message, fields=fields_from(list(errors)))
