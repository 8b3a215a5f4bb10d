"""Users who mock aiohttp with aioresponses can mock the SDK the same way.

The client sends every request through ``aiohttp.ClientSession``, so aioresponses
intercepts it; nothing listens on the network in these tests.
"""

from __future__ import annotations

import re

import pytest
from aioresponses import aioresponses

from avaturn_async import AvaturnClient, NotFoundError, RetryPolicy

API = "https://api.avaturn.me/api/v1"
USER_ID = "TGTLFCCRG67V6ERUMDTK3JNI5AYGF6XF"
AVATAR_ID = "0b6c7f7e-8a53-4a3f-9a4e-6f0f2f7f9c11"


async def test_aioresponses_answers_a_create_user_call() -> None:
    with aioresponses() as mocked:
        mocked.post(f"{API}/users/new", payload={"id": USER_ID})
        async with AvaturnClient("test-key") as client:
            user = await client.users.create()
    assert user.id == USER_ID


async def test_aioresponses_sees_the_bearer_key_the_sdk_sends() -> None:
    with aioresponses() as mocked:
        mocked.post(f"{API}/users/new", payload={"id": USER_ID})
        async with AvaturnClient("test-key") as client:
            await client.users.create()
        assert mocked.requests is not None  # typed Optional, though set from the start
        [call] = next(iter(mocked.requests.values()))
    assert call.kwargs["headers"]["Authorization"] == "Bearer test-key"


async def test_aioresponses_matches_a_query_string_with_a_pattern() -> None:
    with aioresponses() as mocked:
        mocked.get(
            re.compile(rf"{re.escape(API)}/users/{USER_ID}/avatars\?include_not_ready=.*"),
            payload=[{"id": AVATAR_ID, "status": "ready"}],
        )
        async with AvaturnClient("test-key") as client:
            avatars = await client.avatars.list(USER_ID, include_not_ready=True)
    assert [a.id for a in avatars] == [AVATAR_ID]


async def test_aioresponses_error_status_becomes_the_typed_sdk_error() -> None:
    with aioresponses() as mocked:
        mocked.delete(f"{API}/users/{USER_ID}", status=404, payload={"detail": "Not Found"})
        async with AvaturnClient("test-key", retry=RetryPolicy(max_attempts=1)) as client:
            with pytest.raises(NotFoundError) as caught:
                await client.users.delete(USER_ID)
    assert caught.value.status == 404
