"""``AvaturnEmulator(state_file=...)``: a restarted emulator is the same service."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from avaturn_async import AvaturnClient
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator, EmulatorStoreError

FRONTAL, SIDE_1, SIDE_2 = sample_photo_paths()


def client_of(emu: AvaturnEmulator) -> AvaturnClient:
    return AvaturnClient(api_key=emu.api_key, base_url=emu.base_url)


async def test_users_and_avatars_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "emu.db"
    async with AvaturnEmulator(state_file=state) as emu, client_of(emu) as client:
        user = await client.users.create()
        created = await client.avatars.create(user.id)
    async with AvaturnEmulator(state_file=state) as emu, client_of(emu) as client:
        items = await client.avatars.list(user.id, include_not_ready=True)
    assert [(item.id, item.status) for item in items] == [(created.avatar_id, "pending")]


async def test_processing_cut_short_by_a_restart_finishes_after_it(tmp_path: Path) -> None:
    state = tmp_path / "emu.db"
    # Processing takes an hour: it is under way when the emulator stops.
    async with AvaturnEmulator(state_file=state, processing_delay=3600) as emu, client_of(
        emu
    ) as client:
        user = await client.users.create()
        created = await client.avatars.create(user.id)
        await client.avatars.upload_photos(
            created.upload_url, frontal=FRONTAL, side_1=SIDE_1, side_2=SIDE_2, body_type="female"
        )
    async with AvaturnEmulator(state_file=state, processing_delay=0) as emu:
        with anyio.fail_after(10):
            await emu.wait_idle()
        assert emu.avatars[created.avatar_id].status == "ready"
        assert [event["event"] for event in emu.events] == ["avatar.ready"]


async def test_a_deleted_user_stays_deleted_after_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "emu.db"
    async with AvaturnEmulator(state_file=state) as emu, client_of(emu) as client:
        kept = await client.users.create()
        gone = await client.users.create()
        await client.avatars.create(gone.id)
        await client.users.delete(gone.id)
    async with AvaturnEmulator(state_file=state) as emu:
        assert (set(emu.users), len(emu.avatars)) == ({kept.id}, 0)


async def test_a_file_that_is_not_a_state_file_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "emu.db"
    state.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(EmulatorStoreError, match="not an emulator state file"):
        async with AvaturnEmulator(state_file=state):
            pass


async def test_listing_returns_only_the_users_avatars_in_creation_order(tmp_path: Path) -> None:
    async with AvaturnEmulator() as emu, client_of(emu) as client:
        alice, bob = await client.users.create(), await client.users.create()
        first = await client.avatars.create(alice.id)
        await client.avatars.create(bob.id)
        second = await client.avatars.create(alice.id)
        third = await client.avatars.create(alice.id)
        await client.avatars.delete(alice.id, second.avatar_id)
        items = await client.avatars.list(alice.id, include_not_ready=True)
    assert [item.id for item in items] == [first.avatar_id, third.avatar_id]
