"""The ``avaturn`` pytest plugin, exercised the way a user meets it: a fresh project.

Each test writes a test file into an empty folder (no conftest, no pytest
configuration) and runs pytest on it in a subprocess, so the plugin is loaded
through its ``pytest11`` entry point exactly as in a user's project.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

FRESH_PROJECT_TESTS = '''
import anyio
import pytest

from avaturn_async.testing import make_avatar_ready
from avaturn_async.webhooks import AvatarReady, WebhookPipeline, WebhookRouter
from avaturn_async.webhooks.aiohttp import serve_webhooks


@pytest.mark.avaturn
async def test_client_talks_to_the_emulator(avaturn_client, avaturn_emulator):
    user = await avaturn_client.users.create()
    assert user.id in avaturn_emulator.users


@pytest.mark.avaturn
async def test_each_test_gets_a_fresh_emulator(avaturn_emulator):
    assert len(avaturn_emulator.users) == 0


@pytest.mark.avaturn(processing_delay=0.25)
async def test_marker_options_configure_the_emulator(avaturn_emulator):
    assert avaturn_emulator.processing_delay == 0.25


@pytest.mark.avaturn
async def test_signed_delivery_reaches_a_receiver(avaturn_webhooks):
    router = WebhookRouter()
    seen = []
    router.on(AvatarReady)(seen.append)
    async with serve_webhooks(WebhookPipeline(avaturn_webhooks.verifier(), router)) as server:
        status = await avaturn_webhooks.deliver(server.url, make_avatar_ready())
    assert (status, len(seen)) == (204, 1)
'''

SHARED_TESTS = '''
import pytest


@pytest.mark.avaturn(shared=True)
async def test_first(avaturn_client):
    await avaturn_client.users.create()


@pytest.mark.avaturn(shared=True)
async def test_second_sees_the_first_tests_user(avaturn_client, avaturn_emulator):
    await avaturn_client.users.create()
    assert len(avaturn_emulator.users) == 2
'''


def _run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_user_code=source)
    return pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", *args)


def test_fresh_project_runs_alongside_pytest_asyncio_strict_mode(
    pytester: pytest.Pytester,
) -> None:
    result = _run(pytester, FRESH_PROJECT_TESTS)
    result.assert_outcomes(passed=4)


def test_fresh_project_runs_with_anyio_plugin_alone(pytester: pytest.Pytester) -> None:
    result = _run(pytester, FRESH_PROJECT_TESTS, "-p", "no:asyncio")
    result.assert_outcomes(passed=4)


def test_fresh_project_runs_under_pytest_asyncio_auto_mode(pytester: pytest.Pytester) -> None:
    result = _run(pytester, FRESH_PROJECT_TESTS, "-o", "asyncio_mode=auto")
    result.assert_outcomes(passed=4)


def test_shared_marker_keeps_one_emulator_across_tests(pytester: pytest.Pytester) -> None:
    result = _run(pytester, SHARED_TESTS)
    result.assert_outcomes(passed=2)


def test_avaturn_with_asyncio_marker_in_strict_mode_is_a_clear_collection_error(
    pytester: pytest.Pytester,
) -> None:
    source = '''
import pytest

@pytest.mark.asyncio
@pytest.mark.avaturn
async def test_both(avaturn_client):
    pass
'''
    result = _run(pytester, source)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*remove '@pytest.mark.asyncio'*"])
