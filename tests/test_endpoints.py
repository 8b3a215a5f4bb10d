"""Every endpoint through the SDK against the emulator over loopback HTTP."""

from __future__ import annotations

import uuid

import anyio
import pytest

from avaturn_async import (
    AssetSlot,
    AssetSlots,
    AssetSlotWithColor,
    AuthenticationError,
    AvatarListItem,
    AvaturnClient,
    ConflictError,
    CreateSessionConfig,
    EditExistingSessionConfig,
    ExportStatus,
    ExternalAvatarCustomization,
    GoneError,
    NotFoundError,
    RenderStatus,
    ScanStatus,
    UnprocessableEntityError,
)
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator

FRONTAL, SIDE_1, SIDE_2 = sample_photo_paths()
UNKNOWN = str(uuid.UUID(int=1, version=4))
ASSETS = AvaturnEmulator.SAMPLE_ASSETS


async def ready_avatar(client: AvaturnClient) -> tuple[str, str]:
    user = await client.users.create()
    job = await client.avatars.create_from_photos(
        user.id, frontal=FRONTAL, side_1=SIDE_1, side_2=SIDE_2, body_type="male"
    )
    with anyio.fail_after(5):
        await job.wait(poll_interval=0.01)
    return user.id, job.avatar_id


def outfit() -> ExternalAvatarCustomization:
    return ExternalAvatarCustomization(
        assets=AssetSlots(
            clothing=AssetSlot(id=ASSETS["clothing"]),
            eyewear=AssetSlotWithColor(id=ASSETS["eyewear"], color="#102030"),
        ),
        body="body_2",
    )


async def test_create_user_returns_an_id(client: AvaturnClient, emulator: AvaturnEmulator) -> None:
    user = await client.users.create()
    assert user.id in emulator.users


async def test_delete_user_removes_it(client: AvaturnClient, emulator: AvaturnEmulator) -> None:
    user = await client.users.create()
    await client.users.delete(user.id)
    assert user.id not in emulator.users


async def test_delete_unknown_user_is_not_found(client: AvaturnClient) -> None:
    with pytest.raises(NotFoundError) as info:
        await client.users.delete("NOSUCHUSER")
    assert info.value.request_id


async def test_wrong_api_key_is_an_authentication_error(emulator: AvaturnEmulator) -> None:
    async with AvaturnClient("wrong-key", base_url=emulator.base_url) as client:
        with pytest.raises(AuthenticationError):
            await client.users.create()


async def test_create_session_returns_url_and_id(client: AvaturnClient) -> None:
    user = await client.users.create()
    session = await client.sessions.create(user.id, config=CreateSessionConfig())
    assert session.url.startswith("http://127.0.0.1")
    assert uuid.UUID(session.id)


async def test_edit_existing_session_for_unknown_avatar_is_not_found(client: AvaturnClient) -> None:
    user = await client.users.create()
    with pytest.raises(NotFoundError):
        await client.sessions.create(user.id, config=EditExistingSessionConfig(avatar_id=UNKNOWN))


async def test_create_avatar_returns_id_and_upload_url(client: AvaturnClient) -> None:
    user = await client.users.create()
    created = await client.avatars.create(user.id)
    assert uuid.UUID(created.avatar_id)
    assert created.upload_url.startswith("http://127.0.0.1")


async def test_create_avatar_for_unknown_user_is_not_found(client: AvaturnClient) -> None:
    with pytest.raises(NotFoundError):
        await client.avatars.create("NOSUCHUSER")


async def test_upload_streams_three_photos(
    client: AvaturnClient, emulator: AvaturnEmulator
) -> None:
    user = await client.users.create()
    created = await client.avatars.create(user.id)
    result = await client.avatars.upload_photos(
        created.upload_url, frontal=FRONTAL, side_1=SIDE_1, side_2=SIDE_2, body_type="female"
    )
    assert result.status == "ok"
    expected = sum(p.stat().st_size for p in (FRONTAL, SIDE_1, SIDE_2))
    assert emulator.stats.upload_bytes == expected


async def test_second_upload_is_a_conflict(client: AvaturnClient) -> None:
    user = await client.users.create()
    created = await client.avatars.create(user.id)

    async def upload() -> None:
        await client.avatars.upload_photos(
            created.upload_url, frontal=FRONTAL, side_1=SIDE_1, side_2=SIDE_2, body_type="male"
        )

    await upload()
    with pytest.raises(ConflictError):
        await upload()


async def test_list_hides_avatars_that_are_not_ready(client: AvaturnClient) -> None:
    user = await client.users.create()
    created = await client.avatars.create(user.id)
    assert await client.avatars.list(user.id) == []
    listed = await client.avatars.list(user.id, include_not_ready=True)
    assert [(a.id, a.status) for a in listed] == [(created.avatar_id, ScanStatus.PENDING)]


async def test_list_keeps_unknown_fields_in_extra(client: AvaturnClient) -> None:
    user_id, _ = await ready_avatar(client)
    (item,) = await client.avatars.list(user_id)
    assert isinstance(item, AvatarListItem)
    assert "created_at" in item.extra


async def test_avatar_becomes_ready_after_upload(client: AvaturnClient) -> None:
    user_id, avatar_id = await ready_avatar(client)
    (item,) = await client.avatars.list(user_id)
    assert (item.id, item.status) == (avatar_id, ScanStatus.READY)


async def test_customization_round_trips_through_the_api(client: AvaturnClient) -> None:
    _, avatar_id = await ready_avatar(client)
    await client.avatars.set_customization(avatar_id, outfit())
    read = await client.avatars.get_customization(avatar_id)
    assert (read.assets, read.body) == (outfit().assets, "body_2")


async def test_asset_in_wrong_slot_is_a_conflict(client: AvaturnClient) -> None:
    _, avatar_id = await ready_avatar(client)
    wrong = ExternalAvatarCustomization(
        assets=AssetSlots(footwear=AssetSlot(id=ASSETS["clothing"]))
    )
    with pytest.raises(ConflictError):
        await client.avatars.set_customization(avatar_id, wrong)


async def test_retired_asset_is_gone(client: AvaturnClient, emulator: AvaturnEmulator) -> None:
    _, avatar_id = await ready_avatar(client)
    emulator.retire_asset(ASSETS["clothing"])
    with pytest.raises(GoneError):
        await client.avatars.set_customization(avatar_id, outfit())


async def test_customization_of_unknown_avatar_is_not_found(client: AvaturnClient) -> None:
    with pytest.raises(NotFoundError):
        await client.avatars.get_customization(UNKNOWN)


async def test_delete_avatar_removes_it(client: AvaturnClient, emulator: AvaturnEmulator) -> None:
    user_id, avatar_id = await ready_avatar(client)
    await client.avatars.delete(user_id, avatar_id)
    assert avatar_id not in emulator.avatars


async def test_render_before_customization_is_a_conflict(client: AvaturnClient) -> None:
    _, avatar_id = await ready_avatar(client)
    with pytest.raises(ConflictError, match="customization"):
        await client.renders.create(avatar_id)


async def test_render_returns_a_pending_task(client: AvaturnClient) -> None:
    _, avatar_id = await ready_avatar(client)
    await client.avatars.set_customization(avatar_id, outfit())
    render = await client.renders.create(avatar_id, scene="common/forest_half_body", format="webp")
    assert (render.status, render.result.render_url) == (RenderStatus.PENDING, None)
    assert uuid.UUID(render.id)


async def test_export_is_pending_then_ready_for_the_same_version(client: AvaturnClient) -> None:
    _, avatar_id = await ready_avatar(client)
    await client.avatars.set_customization(avatar_id, outfit())
    first = await client.exports.create(avatar_id)
    with anyio.fail_after(5):
        event = await first.wait(poll_interval=0.01)
    again = await client.exports.create(avatar_id)
    assert first.status == ExportStatus.PENDING
    assert (again.status, again.url) == (ExportStatus.READY, event.export_url)


async def test_validation_error_from_the_server_is_parsed(
    client: AvaturnClient, emulator: AvaturnEmulator
) -> None:
    detail = [{"loc": ["body", "user_id"], "msg": "field required", "type": "missing"}]
    emulator.fail_next("avatars.create", 422, body={"detail": detail})
    with pytest.raises(UnprocessableEntityError) as info:
        await client.avatars.create("U")
    assert info.value.detail[0].loc == ("body", "user_id")


async def test_injected_503_on_create_user_is_retried_once(
    client: AvaturnClient, emulator: AvaturnEmulator
) -> None:
    emulator.fail_next("users.create", 503)
    await client.users.create()
    assert (emulator.stats.requests["users.create"], emulator.stats.users_created) == (2, 1)


async def test_concurrency_limit_holds_at_the_emulator(emulator: AvaturnEmulator) -> None:
    emulator.response_delay = 0.02
    async with (
        AvaturnClient(emulator.api_key, base_url=emulator.base_url, max_concurrency=4) as client,
        anyio.create_task_group() as tg,
    ):
        for _ in range(20):
            tg.start_soon(client.users.create)
    assert (emulator.stats.users_created, emulator.stats.max_in_flight) == (20, 4)
