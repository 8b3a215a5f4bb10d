"""The base of every string enum on the wire, in a module of its own.

Events (``_events``) need it without the API models (``_models``), so that
importing the webhook path does not build every model class.
"""

from __future__ import annotations

import enum

__all__ = ["WireEnum"]


class WireEnum(str, enum.Enum):
    """A string enum whose ``str()`` is the wire value.

    So ``f"{item.status}"`` reads the same for a known member and for an unknown
    value kept as a plain ``str``.
    """

    def __str__(self) -> str:
        return str(self.value)
