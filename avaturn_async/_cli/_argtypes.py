"""argparse types for the tools' numeric options: one checker, each option its message.

argparse names a type in its "invalid ... value" error by the function's ``__name__``,
so each checker is named for what it reads.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

__all__ = ["checked", "count", "port_number", "positive_float", "positive_int"]

_N = TypeVar("_N", int, float)


def checked(
    convert: Callable[[str], _N], valid: Callable[[_N], bool], message: str, *, name: str
) -> Callable[[str], _N]:
    """An argparse type: ``convert`` the text, then refuse a value ``valid`` rejects."""

    def parse(text: str) -> _N:
        value = convert(text)
        if not valid(value):
            raise argparse.ArgumentTypeError(message.format(text=text))
        return value

    parse.__name__ = name
    return parse


positive_int = checked(int, lambda v: v >= 1, "must be at least 1", name="integer")
count = checked(int, lambda v: v >= 0, "must not be negative", name="integer")
positive_float = checked(float, lambda v: v > 0, "must be positive", name="number")
port_number = checked(
    int, lambda v: 0 <= v <= 65535, "must be a port number (0 picks a free one)", name="port"
)
