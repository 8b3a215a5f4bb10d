"""The ``avaturn`` pytest plugin: an emulator, a client and signed webhooks for your tests.

Installed with ``avaturn-async`` and loaded by pytest through the ``pytest11`` entry
point, so a project needs no conftest and no configuration::

    import pytest

    @pytest.mark.avaturn
    async def test_signup(avaturn_client, avaturn_emulator):
        user = await avaturn_client.users.create()
        assert user.id in avaturn_emulator.users

Fixtures:

* ``avaturn_emulator``: a running :class:`~avaturn_async.testing.AvaturnEmulator`, fresh
  for each test. Keyword arguments of the marker configure it:
  ``@pytest.mark.avaturn(processing_delay=0.01, webhook_url=...)``. With
  ``@pytest.mark.avaturn(shared=True)`` the test gets the session-wide emulator
  instead (``avaturn_shared_emulator``).
* ``avaturn_shared_emulator``: one emulator for the whole session, served from a
  thread of its own so that any test, on any event loop, can use it. State carries over
  between tests; its ``wait_idle()`` is not for use from a test's loop.
* ``avaturn_client``: an :class:`~avaturn_async.AvaturnClient` pointed at the test's
  emulator (shared or not), closed after the test.
* ``avaturn_webhooks``: a :class:`~avaturn_async.testing.WebhookSender` with a fresh
  secret, to POST signed deliveries to your own receiver.

How async tests run: a coroutine test marked ``avaturn`` is handed to anyio's pytest
plugin (anyio is a dependency of the SDK, so it is always there) on the asyncio
backend, and the async fixtures run on that same loop. This coexists with
pytest-asyncio: in its default strict mode it leaves such tests alone; in its auto
mode it runs every coroutine test and fixture itself, and the plugin then leaves the
test to it. Do not mark a test both ``avaturn`` and ``asyncio`` in strict mode: the
plugin reports that at collection.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal

from avaturn_async import AvaturnClient
from avaturn_async.testing import AvaturnEmulator, WebhookSender

__all__ = ["avaturn_client", "avaturn_emulator", "avaturn_shared_emulator", "avaturn_webhooks"]

MARKER = "avaturn"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(shared=False, **emulator_options): run this async test with the Avaturn "
        "emulator fixtures (avaturn_emulator, avaturn_client, avaturn_webhooks); options "
        "go to AvaturnEmulator, shared=True uses the session-wide emulator.",
    )


def _asyncio_auto_mode(config: pytest.Config) -> bool:
    if not config.pluginmanager.has_plugin("asyncio"):
        return False
    mode = config.getoption("asyncio_mode", default=None) or config.getini("asyncio_mode")
    return bool(mode == "auto")


def _marked(collector: pytest.Module | pytest.Class, obj: object, name: str) -> bool:
    own = getattr(obj, "pytestmark", ())
    return collector.get_closest_marker(name) is not None or any(mark.name == name for mark in own)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> None:
    """Hand coroutine tests marked ``avaturn`` to anyio's plugin, on asyncio only."""
    if not (collector.istestfunction(obj, name) and inspect.iscoroutinefunction(obj)):
        return
    if not _marked(collector, obj, MARKER) or _marked(collector, obj, "anyio"):
        return
    if _asyncio_auto_mode(collector.config):
        return  # pytest-asyncio runs every coroutine test and fixture itself
    if _marked(collector, obj, "asyncio"):
        raise collector.CollectError(
            f"{name}: a test marked 'avaturn' runs on anyio's pytest plugin; remove "
            "'@pytest.mark.asyncio' (or use pytest-asyncio's auto mode)"
        )
    pytest.mark.anyio(obj)
    pytest.mark.usefixtures("anyio_backend")(obj)
    pytest.mark.parametrize("anyio_backend", ["asyncio"])(obj)


def _options(request: pytest.FixtureRequest) -> tuple[bool, dict[str, Any]]:
    marker = request.node.get_closest_marker(MARKER)
    options = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        raise TypeError("@pytest.mark.avaturn takes keyword arguments only")
    return bool(options.pop("shared", False)), options


@pytest.fixture(scope="session")
def avaturn_shared_emulator() -> Iterator[AvaturnEmulator]:
    """One emulator for the session, served by an event loop in a thread of its own."""
    with start_blocking_portal() as portal:
        emulator = AvaturnEmulator()
        portal.call(emulator.start)
        try:
            yield emulator
        finally:
            portal.call(emulator.aclose)


@pytest.fixture
async def avaturn_emulator(request: pytest.FixtureRequest) -> AsyncIterator[AvaturnEmulator]:
    """A running emulator, fresh for this test (configured by the ``avaturn`` marker)."""
    shared, options = _options(request)
    if shared:
        yield request.getfixturevalue("avaturn_shared_emulator")
        return
    async with AvaturnEmulator(**options) as emulator:
        yield emulator


@pytest.fixture
async def avaturn_client(avaturn_emulator: AvaturnEmulator) -> AsyncIterator[AvaturnClient]:
    """An :class:`~avaturn_async.AvaturnClient` pointed at ``avaturn_emulator``."""
    async with AvaturnClient(avaturn_emulator.api_key, base_url=avaturn_emulator.base_url) as c:
        yield c


@pytest.fixture
def avaturn_webhooks() -> WebhookSender:
    """A :class:`~avaturn_async.testing.WebhookSender` with a fresh secret."""
    return WebhookSender()
