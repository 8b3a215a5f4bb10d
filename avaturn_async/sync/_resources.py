"""The sync client's endpoint groups: the async ones' methods, blocking.

Each method is the async method (arguments, extras and docstring included) run in
the client's event loop (``_bridge``), raising its errors and returning what it
returns, except that jobs are the blocking jobs of ``sync._jobs``. Type checkers
see each async method's parameters (``ParamSpec``), so the two cannot drift apart.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, Generic, ParamSpec, TypeVar, overload

from .. import _resources as r
from ._jobs import AvatarJob, ExportJob, RenderJob

if TYPE_CHECKING:
    from ._client import AvaturnClient

__all__ = ["Avatars", "Exports", "Renders", "Sessions", "Users"]

P = ParamSpec("P")
R = TypeVar("R")
A = TypeVar("A")


class _Group:
    __slots__ = ("_calls", "_client")

    _name: ClassVar[str]  # the async client's attribute for this group

    def __init__(self, client: AvaturnClient) -> None:
        self._client = client
        self._calls = getattr(client.async_client, self._name)  # runs in the client's loop


class _Blocking(Generic[P, R]):
    """An async group's method as a blocking method of the sync group (see :func:`blocking`)."""

    def __init__(
        self,
        method: Callable[Concatenate[Any, P], Awaitable[Any]],
        wrap: Callable[[AvaturnClient, Any], R] | None,
    ) -> None:
        self._method = method
        self._wrap = wrap
        # __wrapped__ gives inspect.signature() (and help()) the async method's parameters.
        functools.update_wrapper(self, method)

    @overload
    def __get__(self, group: None, owner: type) -> _Blocking[P, R]: ...

    @overload
    def __get__(self, group: _Group, owner: type) -> Callable[P, R]: ...

    def __get__(self, group: _Group | None, owner: type) -> _Blocking[P, R] | Callable[P, R]:
        if group is None:
            return self
        return types.MethodType(self, group)

    def __call__(self, group: _Group, /, *args: P.args, **kwargs: P.kwargs) -> R:
        calls, client, method = group._calls, group._client, self._method
        result = client._bridge.call(lambda: method(calls, *args, **kwargs))
        return result if self._wrap is None else self._wrap(client, result)


@overload
def blocking(method: Callable[Concatenate[Any, P], Awaitable[R]]) -> _Blocking[P, R]: ...


@overload
def blocking(
    method: Callable[Concatenate[Any, P], Awaitable[A]], wrap: Callable[[AvaturnClient, A], R]
) -> _Blocking[P, R]: ...


def blocking(
    method: Callable[Concatenate[Any, P], Awaitable[Any]],
    wrap: Callable[[AvaturnClient, Any], Any] | None = None,
) -> _Blocking[P, Any]:
    """``method`` of the async group, blocking; its result passed through ``wrap`` (a sync job)."""
    return _Blocking(method, wrap)


class Users(_Group):
    """Anonymous Avaturn users: keep one per user of your app, and store the mapping."""

    _name = "users"
    create = blocking(r.Users.create)
    delete = blocking(r.Users.delete)


class Sessions(_Group):
    _name = "sessions"
    create = blocking(r.Sessions.create)


class Avatars(_Group):
    _name = "avatars"
    create = blocking(r.Avatars.create)
    upload_photos = blocking(r.Avatars.upload_photos)
    upload_prepared = blocking(r.Avatars.upload_prepared)
    create_from_photos = blocking(r.Avatars.create_from_photos, AvatarJob)
    list = blocking(r.Avatars.list)
    get_customization = blocking(r.Avatars.get_customization)
    set_customization = blocking(r.Avatars.set_customization)
    delete = blocking(r.Avatars.delete)

    def track(self, *, user_id: str, avatar_id: str) -> AvatarJob:
        """A waitable job for an avatar created earlier (by a previous run, say)."""
        return AvatarJob(self._client, self._calls.track(user_id=user_id, avatar_id=avatar_id))


class Renders(_Group):
    _name = "renders"
    create = blocking(r.Renders.create, RenderJob)


class Exports(_Group):
    _name = "exports"
    create = blocking(r.Exports.create, ExportJob)
    request = blocking(r.Exports.request)
