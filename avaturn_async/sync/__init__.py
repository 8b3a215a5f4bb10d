"""A blocking client for synchronous code: ``from avaturn_async.sync import AvaturnClient``.

The async client's calls without ``await``, for Django views, Celery tasks, scripts
and notebooks; :class:`AvaturnClient` says how it runs them and where it refuses to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from ._client import AvaturnClient as AvaturnClient
    from ._jobs import AvatarJob as AvatarJob
    from ._jobs import ExportJob as ExportJob
    from ._jobs import RenderJob as RenderJob

# One line above per public name: __all__ and the lazy table are read from them.
__getattr__: Callable[[str], Any]
__dir__: Callable[[], list[str]]
__all__: list[str]
__getattr__, __dir__, __all__ = _lazy_exports(__name__, __file__)
