"""Fault plans carried out by the emulator over loopback, seen by the SDK and by aiohttp."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import aiohttp
import anyio
import pytest

from avaturn_async import (
    AvaturnClient,
    ConfigurationError,
    ConnectionLostError,
    ExternalAvatarCustomization,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import (
    DEFAULT_WEBHOOK_SECRET,
    AvaturnEmulator,
    FaultPlan,
    RouteFaults,
    WebhookFaults,
)
from avaturn_async.webhooks import WebhookPipeline, WebhookRouter, WebhookVerifier
from avaturn_async.webhooks.aiohttp import serve_webhooks

FAST: dict[str, Any] = {"processing_delay": 0.01, "render_delay": 0.01, "export_delay": 0.01}


def only(route: str, **faults: object) -> FaultPlan:
    return FaultPlan(seed=1, routes={route: RouteFaults(**faults)})  # type: ignore[arg-type]


@pytest.fixture
async def emu() -> AsyncIterator[AvaturnEmulator]:
    async with AvaturnEmulator(**FAST) as emulator:
        yield emulator


@pytest.fixture
async def sdk(emu: AvaturnEmulator) -> AsyncIterator[AvaturnClient]:
    async with AvaturnClient(
        emu.api_key, base_url=emu.base_url, retry=RetryPolicy.off()
    ) as client:
        yield client


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def auth(emu: AvaturnEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {emu.api_key}"}


async def test_503_answers_before_acting(emu: AvaturnEmulator, sdk: AvaturnClient) -> None:
    emu.faults = only("users.create", rate_503=1.0)
    with pytest.raises(ServerError) as caught:
        await sdk.users.create()
    assert (caught.value.status, len(emu.users)) == (503, 0)
    assert emu.stats.faults == {"users.create:503:before": 1}


async def test_429_carries_retry_after(emu: AvaturnEmulator, http: aiohttp.ClientSession) -> None:
    emu.faults = only("users.create", rate_429=1.0, retry_after=2)
    async with http.post(f"{emu.base_url}/api/v1/users/new", headers=auth(emu)) as answer:
        assert (answer.status, answer.headers.get("Retry-After")) == (429, "2")


async def test_bare_429_has_no_retry_after(emu: AvaturnEmulator, sdk: AvaturnClient) -> None:
    emu.faults = only("users.create", rate_429_no_retry_after=1.0)
    with pytest.raises(RateLimitError) as caught:
        await sdk.users.create()
    assert (caught.value.retry_after, emu.stats.fault_count(kind="429_no_retry_after")) == (None, 1)


async def test_500_after_acting_creates_and_is_listed_as_ambiguous(
    emu: AvaturnEmulator, sdk: AvaturnClient
) -> None:
    emu.faults = only("users.create", rate_500=1.0, acted=1.0)
    with pytest.raises(ServerError):
        await sdk.users.create()
    assert list(emu.users) == emu.stats.ambiguous_creates["users.create"]
    assert emu.stats.fault_count("users.create", acted=True) == 1


async def test_502_before_acting_creates_nothing(emu: AvaturnEmulator, sdk: AvaturnClient) -> None:
    emu.faults = only("users.create", rate_502=1.0, acted=0.0)
    with pytest.raises(ServerError) as caught:
        await sdk.users.create()
    assert (caught.value.status, len(emu.users), emu.stats.ambiguous_creates) == (502, 0, {})


@pytest.mark.parametrize("acted", [False, True])
async def test_reset_connection_is_a_lost_connection(
    emu: AvaturnEmulator, sdk: AvaturnClient, acted: bool
) -> None:
    emu.faults = only("users.create", rate_reset=1.0, acted=float(acted))
    with pytest.raises(ConnectionLostError):
        await sdk.users.create()
    assert (len(emu.users), emu.stats.fault_count(kind="reset", acted=acted)) == (int(acted), 1)


@pytest.mark.parametrize("acted", [False, True])
async def test_cut_off_answer_is_a_lost_connection(
    emu: AvaturnEmulator, sdk: AvaturnClient, acted: bool
) -> None:
    emu.faults = only("users.create", rate_cutoff=1.0, acted=float(acted))
    with pytest.raises(ConnectionLostError):
        await sdk.users.create()
    assert (len(emu.users), emu.stats.fault_count(kind="cutoff", acted=acted)) == (int(acted), 1)


async def test_cut_off_answer_promises_more_than_it_sends(
    emu: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    emu.faults = only("users.create", rate_cutoff=1.0, acted=1.0)
    async with http.post(f"{emu.base_url}/api/v1/users/new", headers=auth(emu)) as answer:
        declared = int(answer.headers["Content-Length"])
        with pytest.raises(aiohttp.ClientPayloadError):
            await answer.read()
    assert declared > 0


async def test_a_rejected_request_under_an_after_fault_counts_as_before(
    emu: AvaturnEmulator, sdk: AvaturnClient
) -> None:
    emu.faults = only("avatars.create", rate_500=1.0, acted=1.0)
    with pytest.raises(ServerError):
        await sdk.avatars.create("NO-SUCH-USER")
    assert (emu.stats.fault_count(acted=False), emu.stats.ambiguous_creates) == (1, {})


async def test_idempotent_calls_ride_out_faults_with_retries(emu: AvaturnEmulator) -> None:
    async with AvaturnClient(
        emu.api_key,
        base_url=emu.base_url,
        retry=RetryPolicy(max_attempts=10, initial_delay=0.001, max_delay=0.002),
    ) as client:
        user = await client.users.create()
        emu.faults = FaultPlan(
            seed=3,
            routes={"avatars.list": RouteFaults(rate_500=0.3, rate_reset=0.2, rate_cutoff=0.2)},
        )
        for _ in range(20):
            assert await client.avatars.list(user.id) == []
    assert emu.stats.fault_count("avatars.list") > 0


async def wait_for(condition: Callable[[], bool]) -> None:
    """Until ``condition()`` holds, with a deadline (the emulator has no event for it)."""
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.001)


async def test_latency_holds_a_request_while_other_routes_are_answered(
    emu: AvaturnEmulator, sdk: AvaturnClient
) -> None:
    user = await sdk.users.create()
    emu.faults = only("users.create", latency=3600.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(sdk.users.create)
        await wait_for(lambda: emu.stats.in_flight == 1)
        assert await sdk.avatars.list(user.id) == []
        assert (emu.stats.in_flight, emu.stats.users_created) == (1, 1)
        tg.cancel_scope.cancel()


async def test_a_slow_upload_is_still_being_read_when_a_normal_one_is_done(
    emu: AvaturnEmulator, sdk: AvaturnClient
) -> None:
    frontal, side_1, side_2 = sample_photo_paths()
    photos: dict[str, Any] = {"frontal": frontal, "side_1": side_1, "side_2": side_2}
    photos["body_type"] = "male"
    user = await sdk.users.create()
    slow, normal = await sdk.avatars.create(user.id), await sdk.avatars.create(user.id)
    emu.faults = only("upload", slow_upload=1.0, upload_bytes_per_second=1.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(sdk.avatars.upload_photos, slow.upload_url, **photos))
        await wait_for(lambda: emu.stats.faults.get("upload:slow_upload") == 1)
        emu.faults = None
        await sdk.avatars.upload_photos(normal.upload_url, **photos)
        assert (emu.stats.uploads, emu.stats.in_flight) == (1, 1)
        tg.cancel_scope.cancel()


async def test_an_upload_answer_lost_after_acting_lists_the_avatar(
    emu: AvaturnEmulator, sdk: AvaturnClient
) -> None:
    frontal, side_1, side_2 = sample_photo_paths()
    user = await sdk.users.create()
    created = await sdk.avatars.create(user.id)
    emu.faults = only("upload", rate_reset=1.0, acted=1.0)
    with pytest.raises(ConnectionLostError):
        await sdk.avatars.upload_photos(
            created.upload_url, frontal=frontal, side_1=side_1, side_2=side_2, body_type="male"
        )
    assert emu.stats.ambiguous_creates == {"upload": [created.avatar_id]}
    assert emu.avatars[created.avatar_id].upload_state == "done"


async def test_installing_a_plan_restarts_counting(emu: AvaturnEmulator) -> None:
    plan = FaultPlan(seed=8, default=RouteFaults(rate_503=0.5))
    async with aiohttp.ClientSession() as http:

        async def statuses() -> list[int]:
            found = []
            for _ in range(12):
                url = f"{emu.base_url}/api/v1/users/new"
                async with http.post(url, headers=auth(emu)) as answer:
                    found.append(answer.status)
            return found

        emu.faults = plan
        first = await statuses()
        emu.faults = plan
        second = await statuses()
    assert first == second
    assert set(first) == {200, 503}


async def test_none_turns_faults_off(emu: AvaturnEmulator, sdk: AvaturnClient) -> None:
    emu.faults = FaultPlan(default=RouteFaults(rate_503=1.0))
    emu.faults = None
    await sdk.users.create()
    assert emu.stats.faults == {}


async def test_unknown_route_in_a_plan_is_refused(emu: AvaturnEmulator) -> None:
    with pytest.raises(ConfigurationError, match="unknown route"):
        emu.faults = only("users.frobnicate", rate_500=1.0)


async def test_fail_next_comes_before_the_plan(emu: AvaturnEmulator, sdk: AvaturnClient) -> None:
    emu.faults = only("users.create", rate_503=1.0)
    emu.fail_next("users.create", 404)
    with pytest.raises(NotFoundError):
        await sdk.users.create()
    assert emu.stats.requests["users.create"] == 1
    assert emu.stats.faults == {}


Pair = tuple[AvaturnEmulator, AvaturnClient]


@asynccontextmanager
async def emulator_and_client(**options: Any) -> AsyncIterator[Pair]:
    async with (
        AvaturnEmulator(**{**FAST, **options}) as emu,
        AvaturnClient(emu.api_key, base_url=emu.base_url) as client,
    ):
        yield emu, client


async def ready_avatar(emu: AvaturnEmulator, sdk: AvaturnClient) -> str:
    frontal, side_1, side_2 = sample_photo_paths()
    user = await sdk.users.create()
    job = await sdk.avatars.create_from_photos(
        user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="female"
    )
    with anyio.fail_after(5):
        await emu.wait_idle()
    return job.avatar_id


async def test_dropped_webhooks_are_recorded_but_never_delivered() -> None:
    plan = FaultPlan(webhooks=WebhookFaults(drop=1.0))
    async with emulator_and_client(webhook_url="http://127.0.0.1:9/x", faults=plan) as (emu, sdk):
        avatar_id = await ready_avatar(emu, sdk)
    assert [event["avatar_id"] for event in emu.dropped_webhooks] == [avatar_id]
    assert [event["avatar_id"] for event in emu.events] == [avatar_id]
    assert (emu.webhook_deliveries, emu.stats.faults) == ([], {"webhook:drop": 1})


async def test_duplicated_and_delayed_webhooks_keep_one_id() -> None:
    plan = FaultPlan(webhooks=WebhookFaults(duplicate=1.0, delay=0.3))
    async with (
        serve_webhooks(
            WebhookPipeline(WebhookVerifier(DEFAULT_WEBHOOK_SECRET), WebhookRouter())
        ) as hook,
        emulator_and_client(webhook_url=hook.url, faults=plan) as (emu, sdk),
    ):
        await ready_avatar(emu, sdk)
    deliveries = emu.webhook_deliveries
    assert ([d.copy for d in deliveries], len({d.msg_id for d in deliveries})) == ([1, 2], 1)
    assert emu.stats.faults == {"webhook:duplicate": 1, "webhook:delay": 1}


async def test_a_plan_can_reorder_webhooks() -> None:
    plan = FaultPlan(webhooks=WebhookFaults(reorder=True))
    async with emulator_and_client(faults=plan, webhook_max_attempts=1) as (emu, sdk):
        avatar_id = await ready_avatar(emu, sdk)
        await sdk.avatars.set_customization(avatar_id, ExternalAvatarCustomization())
        emu.webhook_url = f"{emu.base_url}/nowhere"  # answers 404: one attempt each
        jobs = [await sdk.renders.create(avatar_id) for _ in range(2)]
        with anyio.fail_after(5):
            await emu.wait_idle()
    delivered = [d.event["id"] for d in emu.webhook_deliveries]
    assert delivered == [job.id for job in reversed(jobs)]
