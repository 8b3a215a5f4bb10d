"""Reading answers without I/O: models from success answers, typed errors from the rest."""

from __future__ import annotations

import time
from collections.abc import Mapping
from itertools import repeat
from typing import Any, TypeVar

from . import _converter
from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GoneError,
    NotFoundError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    UnprocessableEntityError,
    ValidationErrorItem,
)
from ._requests import Request, Response
from ._retry import parse_retry_after
from ._wire import decode_json

__all__ = ["error_from_response", "read_model", "read_model_list", "retry_after_seconds"]

T = TypeVar("T")


def _decode_json(response: Response) -> Any:
    """The answer's JSON; ``None`` for an empty body (a 204, or an error without one)."""
    body = response.body
    return None if not body or body.isspace() else decode_json(body)


def _undecodable(response: Response, message: str) -> ResponseDecodeError:
    return ResponseDecodeError(message, status=response.status, request_id=response.request_id)


def _decode_answer(response: Response, what: str) -> Any:
    try:
        return _decode_json(response)
    except ValueError:
        message = f"expected a JSON {what}, got a body that is not JSON"
        raise _undecodable(response, message) from None


_HOOKS: dict[Any, Any] = {}
"""cattrs' structure hook by model class: looked up once rather than dispatched per answer."""
_structure_hook = _converter.converter.get_structure_hook


def read_model(response: Response, cls: type[T]) -> T:
    """The model in a success answer; raises ``ResponseDecodeError`` when it does not fit."""
    try:
        data = decode_json(response.body)
    except ValueError:
        data = _decode_answer(response, cls.__name__)  # None if empty, else raises
    hook = _HOOKS.get(cls) or _HOOKS.setdefault(cls, _structure_hook(cls))
    try:
        model: T = hook(data, cls)
    except Exception:
        model = _structure(data, cls, response)  # raises with the field path
    return model


def _structure(data: Any, cls: Any, response: Response) -> Any:
    try:
        return _converter.structure(data, cls)
    except Exception as exc:
        path, message = _converter.describe_error(exc)
        name = getattr(cls, "__name__", str(cls))
        raise _undecodable(response, f"answer does not fit {name}: {message} at {path}") from None


def read_model_list(response: Response, cls: type[T], into: type[list[T]] = list) -> list[T]:
    """A JSON array of models in a success answer, as ``into`` (a list type)."""
    try:
        data = decode_json(response.body)
    except ValueError:
        data = _decode_answer(response, f"list of {cls.__name__}")  # None if empty, else raises
    if type(data) is list:
        # Item by item with the item hook: cattrs' list machinery costs more than the
        # items themselves. Any problem is re-read the slow way for its field path.
        hook = _HOOKS.get(cls) or _HOOKS.setdefault(cls, _structure_hook(cls))
        try:
            return into(map(hook, data, repeat(cls, len(data))))
        except Exception:
            pass
    result: list[T] = _structure(data, list[cls], response)  # type: ignore[valid-type]
    return result if type(result) is into else into(result)


_BY_STATUS: dict[int, tuple[type[APIError], str]] = {  # its class, its message if the body has none
    401: (AuthenticationError, "unauthorized"),
    403: (AuthenticationError, "forbidden"),
    404: (NotFoundError, "not found"),
    409: (ConflictError, "conflict"),
    410: (GoneError, "gone"),
    422: (UnprocessableEntityError, "validation error"),
    429: (RateLimitError, "rate limited"),
}


def _error_body(response: Response) -> Any:
    try:
        return _decode_json(response)
    except ValueError:
        return response.body.decode("utf-8", "replace")[:2000]


def _message_from(body: Any, status: int) -> str:
    if isinstance(body, Mapping):
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list) and detail:
            first = detail[0]
            if isinstance(first, Mapping):
                loc = ".".join(str(p) for p in first.get("loc", ()) or ())
                return f"{first.get('msg', 'invalid')} (at {loc})" if loc else str(first.get("msg"))
    if isinstance(body, str) and body.strip():
        return body.strip().splitlines()[0][:200]
    if status in _BY_STATUS:
        return _BY_STATUS[status][1]
    return "server error" if status >= 500 else "request failed"


def _validation_items(body: Any) -> tuple[ValidationErrorItem, ...]:
    if not isinstance(body, Mapping) or not isinstance(body.get("detail"), list):
        return ()
    items = []
    for entry in body["detail"]:
        if not isinstance(entry, Mapping):
            continue
        loc = entry.get("loc")
        parts = tuple(p for p in loc if isinstance(p, (str, int))) if isinstance(loc, list) else ()
        message, kind = str(entry.get("msg", "")), str(entry.get("type", ""))
        items.append(ValidationErrorItem(loc=parts, msg=message, type=kind))
    return tuple(items)


def retry_after_seconds(response: Response) -> float | None:
    return parse_retry_after(response.header("retry-after"), now=time.time())


def error_from_response(response: Response, request: Request) -> APIError:
    """The typed error for a non-success answer."""
    status = response.status
    body = _error_body(response)
    common: dict[str, Any] = {
        "status": status,
        "body": body,
        "request_id": response.request_id,
        "headers": response.headers,
        "method": request.method,
        "path": request.display_path,
    }
    message = _message_from(body, status)
    if status >= 500:
        return ServerError(message, **common)
    cls = _BY_STATUS[status][0] if status in _BY_STATUS else BadRequestError
    if cls is UnprocessableEntityError:
        return UnprocessableEntityError(message, detail=_validation_items(body), **common)
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after_seconds(response), **common)
    return cls(message, **common)
