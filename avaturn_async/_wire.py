"""What the client and the webhook path share about the wire format, in a module of its own.

The base of every string enum (:class:`WireEnum`) and the one JSON reader
(:func:`decode_json`). Events (``_events``) need both without the API models
(``_models``): see the webhook path's cold start in ARCHITECTURE.md.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = ["WireEnum", "decode_json"]


class WireEnum(str, enum.Enum):
    """A string enum whose ``str()`` is the wire value, as an unknown value kept as a ``str`` is."""

    def __str__(self) -> str:
        return str(self.value)


def _reject_constant(name: str) -> NoReturn:
    # NaN and Infinity are not JSON (RFC 8259); the stdlib accepts them unless told not to.
    raise ValueError(f"{name} is not valid JSON")


# One decoder, made once: json.loads with keyword arguments would build one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def decode_json(body: bytes) -> Any:
    """``body`` read as UTF-8 JSON (RFC 8259; a leading byte order mark is tolerated).

    Raises ``UnicodeDecodeError`` for a body that is not UTF-8, ``RecursionError``
    for one nested too deeply, and ``ValueError`` (``json.JSONDecodeError``) for
    anything else that is not JSON, NaN and Infinity included.
    """
    text = body.decode()
    # ``scan_once`` is ``decode`` without its two whitespace regex matches.
    # Surrounding whitespace, a byte order mark, trailing data and every error
    # take the full ``decode``, which words the error. Measured 2026-12-06, with
    # ``decode`` alone webhook ours / json floor went 1.15x -> 1.28x at 250 B and
    # 1.11x -> 1.25x at 570 B, past the 1.1x target (``.venv/bin/python
    # benchmarks/webhooks.py --quick``, 6 interleaved runs each, medians).
    try:
        data, end = _SCAN(text, 0)
        if end == len(text):
            return data
    except (ValueError, StopIteration, RecursionError):
        pass
    return _DECODER.decode(text.removeprefix("\ufeff"))
