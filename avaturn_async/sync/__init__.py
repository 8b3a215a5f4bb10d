"""A blocking client for synchronous code: ``from avaturn_async.sync import AvaturnClient``.

The same constructor, endpoint groups, methods, models and errors as
:class:`avaturn_async.AvaturnClient`, without ``await``: for Django views, Celery
tasks, scripts and notebooks. Jobs block in ``job.wait(timeout=...)``. One client
serves any number of threads; each call runs in the client's own event loop
(anyio's blocking portal), so an async client is never shared across event loops.
Inside a running event loop, use the async client (this one raises
:class:`~avaturn_async.EventLoopError` there).
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
