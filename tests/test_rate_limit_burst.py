"""A burst against a steady server-side rate limit loses no call with the default policy."""

from __future__ import annotations

import anyio

from avaturn_async import AvaturnClient, RateLimitError
from avaturn_async.testing import AvaturnEmulator, RateLimit

CALLS = 500


async def burst(emulator: AvaturnEmulator, client: AvaturnClient) -> tuple[int, int]:
    """``CALLS`` concurrent list calls under the limit: (calls answered, calls lost to 429).

    With 429s bounded by the attempt count (4) as before, about a dozen are lost.
    """
    answered, lost = 0, 0

    async def call() -> None:
        nonlocal answered, lost
        try:
            await client.avatars.list(user_id)
        except RateLimitError:
            lost += 1
        else:
            answered += 1

    user_id = (await client.users.create()).id
    emulator.rate_limit = RateLimit(requests=4, per=0.02)  # 200 requests/s
    async with anyio.create_task_group() as tg:
        for _ in range(CALLS):
            tg.start_soon(call)
    return answered, lost


async def test_burst_against_a_rate_limit_loses_no_call_with_the_default_policy(
    emulator: AvaturnEmulator,
) -> None:
    async with AvaturnClient(emulator.api_key, base_url=emulator.base_url) as client:
        answered, lost = await burst(emulator, client)
    assert (answered, lost, emulator.stats.rate_limited > 0) == (CALLS, 0, True)
