"""``avaturn_async.sync.AvaturnClient``: the async client's constructor, calls and errors,
blocking, on anyio's blocking portal; shared by plain threads."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import avaturn_async
from avaturn_async import (
    AuthenticationError,
    ClientClosedError,
    EventHub,
    ExternalAvatarCustomization,
    JobTimeoutError,
    NotFoundError,
    response_of,
    sync,
)
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator
from avaturn_async.webhooks import AvatarReady, RenderReady
from tests.client_support import threaded_emulator

GROUPS = ("users", "sessions", "avatars", "renders", "exports")


@pytest.fixture
def emu() -> Iterator[AvaturnEmulator]:
    with threaded_emulator(require_customization=False) as emulator:
        yield emulator


@pytest.fixture
def client(emu: AvaturnEmulator) -> Iterator[sync.AvaturnClient]:
    with sync.AvaturnClient(emu.api_key, base_url=emu.base_url) as blocking:
        yield blocking


def parameters(function: object) -> list[tuple[str, object, object]]:
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def test_the_constructor_is_the_async_clients_less_the_session() -> None:
    async_parameters = [p for p in parameters(avaturn_async.AvaturnClient) if p[0] != "session"]
    assert parameters(sync.AvaturnClient) == async_parameters


@pytest.mark.parametrize("group", GROUPS)
def test_each_group_has_the_async_groups_methods_and_arguments(group: str) -> None:
    blocking = sync.AvaturnClient("k")
    calls = getattr(avaturn_async.AvaturnClient("k"), group)
    mine = getattr(blocking, group)
    names = sorted(n for n in dir(calls) if not n.startswith("_"))
    assert sorted(n for n in dir(mine) if not n.startswith("_")) == names
    assert [parameters(getattr(mine, n)) for n in names] == [
        parameters(getattr(calls, n)) for n in names
    ]


def test_with_options_takes_the_async_clients_arguments() -> None:
    mine = inspect.signature(sync.AvaturnClient.with_options).parameters
    theirs = inspect.signature(avaturn_async.AvaturnClient.with_options).parameters
    assert [(p.name, p.kind) for p in mine.values()] == [(p.name, p.kind) for p in theirs.values()]


def test_a_user_is_created_and_deleted(client: sync.AvaturnClient, emu: AvaturnEmulator) -> None:
    user = client.users.create()
    assert (user.id in emu.users, response_of(user).status) == (True, 200)
    client.users.delete(user.id)
    assert user.id not in emu.users


def test_the_whole_flow_blocks_until_each_job_is_done(
    client: sync.AvaturnClient, emu: AvaturnEmulator, tmp_path: Path
) -> None:
    frontal, side_1, side_2 = sample_photo_paths()
    user = client.users.create()
    job = client.avatars.create_from_photos(
        user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="female"
    )
    ready = job.wait(timeout=10, poll_interval=0.01)
    assert isinstance(ready, AvatarReady)
    assert ready.avatar_id == job.avatar_id
    assert [a.id for a in client.avatars.list(user.id)] == [job.avatar_id]
    client.avatars.set_customization(job.avatar_id, ExternalAvatarCustomization(body="athletic"))
    assert client.avatars.get_customization(job.avatar_id).body == "athletic"
    assert client.sessions.create(user.id).url.startswith(emu.base_url)
    exported = client.exports.create(job.avatar_id).wait(timeout=10, poll_interval=0.01)
    assert exported.export_url is not None
    saved = client.download(exported.export_url, tmp_path / "avatar.glb")
    assert saved.size == emu.export_size


def test_the_async_errors_are_raised(client: sync.AvaturnClient, emu: AvaturnEmulator) -> None:
    with pytest.raises(NotFoundError):
        client.avatars.list("no-such-user")
    with pytest.raises(AuthenticationError):
        client.with_options(api_key="wrong").users.create()


def test_wait_gives_up_after_its_timeout(emu: AvaturnEmulator) -> None:
    emu.processing_delay = 60.0
    frontal, side_1, side_2 = sample_photo_paths()
    with sync.AvaturnClient(emu.api_key, base_url=emu.base_url) as client:
        user = client.users.create()
        job = client.avatars.create_from_photos(
            user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="male"
        )
        with pytest.raises(JobTimeoutError, match=r"not finished within 0\.05 s"):
            job.wait(timeout=0.05, poll_interval=0.01)


def test_one_client_serves_many_threads(client: sync.AvaturnClient, emu: AvaturnEmulator) -> None:
    created: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            user = client.users.create()
            with lock:
                created.append(user.id)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(created) == sorted(emu.users)
    assert len(created) == 40


def test_a_closed_client_refuses_calls_and_closes_twice_harmlessly(emu: AvaturnEmulator) -> None:
    client = sync.AvaturnClient(emu.api_key, base_url=emu.base_url)
    client.users.create()
    client.close()
    client.close()
    with pytest.raises(ClientClosedError):
        client.users.create()


def test_closing_a_derived_client_leaves_the_original_open(
    client: sync.AvaturnClient, emu: AvaturnEmulator
) -> None:
    derived = client.with_options(timeout=5)
    derived.close()
    client.users.create()
    assert (derived.closed, client.closed) == (True, False)


def test_publish_feeds_the_hub_a_render_job_waits_on(emu: AvaturnEmulator) -> None:
    with sync.AvaturnClient(emu.api_key, base_url=emu.base_url, event_hub=EventHub()) as client:
        frontal, side_1, side_2 = sample_photo_paths()
        user = client.users.create()
        avatar = client.avatars.create_from_photos(
            user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="male"
        )
        avatar.wait(timeout=10, poll_interval=0.01)
        render = client.renders.create(avatar.avatar_id)
        event = RenderReady(
            avatar_id=avatar.avatar_id, user_id=user.id, id=render.id, status="ready",
            render_url="https://files.test/r.png",
        )  # fmt: skip
        client.publish(event)
        assert render.wait(timeout=10).render_url == "https://files.test/r.png"


def test_the_sync_clients_and_jobs_forwarded_attributes_are_read_only() -> None:
    client = sync.AvaturnClient("k")
    job = sync.AvatarJob(client, client.async_client.avatars.track(user_id="u", avatar_id="a"))
    assert (job.user_id, job.avatar_id, job.upload) == ("u", "a", None)
    assert client.retry is client.options.retry
    with pytest.raises(AttributeError, match="has no setter"):
        client.retry = client.retry  # type: ignore[assignment]
    with pytest.raises(AttributeError, match="has no setter"):
        job.user_id = "v"  # type: ignore[assignment]
