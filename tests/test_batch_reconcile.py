"""Ambiguous creates and uploads, in a run and on resume, against the emulator.

Two tricks make an answer get lost: a transport that lets a request reach the
emulator and then raises ``ConnectionLostError`` (the server acted, the client
cannot know), and a journal seeded in the state a killed run leaves behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from avaturn_async import (
    AiohttpTransport,
    AuthenticationError,
    AvaturnClient,
    ConnectionLostError,
    Request,
    Response,
    Timeouts,
)
from avaturn_async.batch import (
    Journal,
    Manifest,
    OnboardingSummary,
    OnboardSettings,
    RowState,
    onboard,
)
from avaturn_async.batch import write_sample_manifest as write_manifest
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator


class LosingTransport:
    """The real transport, except that the next answers of ``route`` are lost.

    ``reach_server`` says whether the request gets to the emulator first (the
    server acted) or is dropped before it (the server never saw it).
    """

    def __init__(self, route: str, *, times: int = 1, reach_server: bool = True) -> None:
        self.inner = AiohttpTransport()
        self.route = route
        self.remaining = times
        self.reach_server = reach_server
        self.lost = 0

    async def send(
        self, request: Request, *, url: str, headers: Mapping[str, str], timeouts: Timeouts
    ) -> Response:
        if request.route == self.route and self.remaining:
            self.remaining -= 1
            self.lost += 1
            if self.reach_server:
                await self.inner.send(request, url=url, headers=headers, timeouts=timeouts)
            raise ConnectionLostError(
                "answer lost (test)", method=request.method, path=request.display_path
            )
        return await self.inner.send(request, url=url, headers=headers, timeouts=timeouts)

    async def download(
        self,
        url: str,
        destination: Path,
        *,
        headers: Mapping[str, str],
        timeouts: Timeouts,
        max_bytes: int | None = None,
    ) -> int:
        return await self.inner.download(
            url, destination, headers=headers, timeouts=timeouts, max_bytes=max_bytes
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def emulator_and_client(
    transport: LosingTransport | None = None,
) -> AsyncIterator[tuple[AvaturnEmulator, AvaturnClient]]:
    async with (
        AvaturnEmulator(processing_delay=0.01) as emu,
        AvaturnClient(api_key=emu.api_key, base_url=emu.base_url, transport=transport) as client,
    ):
        yield emu, client


async def run_rows(client: AvaturnClient, folder: Path, rows: int = 1) -> OnboardingSummary:
    manifest = folder / "manifest.csv"
    if not manifest.exists():
        write_manifest(folder, rows)
    with Manifest(manifest) as source:
        settings = OnboardSettings(poll_interval=0.02)
        return await onboard(client, source, journal=folder / "j.db", settings=settings)


def avatars_of(emu: AvaturnEmulator, user_id: str | None) -> list[str]:
    return [a.id for a in emu.avatars.values() if a.user_id == user_id]


def the_row(folder: Path) -> tuple[str | None, str | None, RowState]:
    with Journal(folder / "j.db") as journal:
        record = journal.record("sample-00001")
    assert record is not None
    return record.user_id, record.avatar_id, record.state


# ---------------------------------------------------------------- within a run


async def test_a_lost_avatar_create_answer_is_reconciled_without_a_second_avatar(
    tmp_path: Path,
) -> None:
    transport = LosingTransport("avatars.create")
    async with emulator_and_client(transport) as (emu, client):
        summary = await run_rows(client, tmp_path)
    user_id, avatar_id, state = the_row(tmp_path)
    assert (summary.ready, summary.avatars_replaced, transport.lost) == (1, 1, 1)
    assert state is RowState.READY
    assert avatars_of(emu, user_id) == [avatar_id]


async def test_a_lost_upload_answer_after_the_photos_landed_is_not_uploaded_again(
    tmp_path: Path,
) -> None:
    transport = LosingTransport("upload")
    async with emulator_and_client(transport) as (emu, client):
        summary = await run_rows(client, tmp_path)
    assert (summary.ready, transport.lost) == (1, 1)
    assert emu.stats.requests["upload"] == 1


async def test_an_upload_that_never_reached_the_server_is_sent_again(tmp_path: Path) -> None:
    transport = LosingTransport("upload", reach_server=False)
    async with emulator_and_client(transport) as (emu, client):
        summary = await run_rows(client, tmp_path)
    assert (summary.ready, transport.lost, emu.stats.uploads) == (1, 1, 1)
    assert emu.stats.avatars_created == 1


async def test_a_lost_user_create_answer_is_reported_as_a_possible_orphan(tmp_path: Path) -> None:
    transport = LosingTransport("users.create")
    async with emulator_and_client(transport) as (emu, client):
        summary = await run_rows(client, tmp_path)
    user_id, avatar_id, _ = the_row(tmp_path)
    with Journal(tmp_path / "j.db") as journal:
        orphans = journal.status().possible_orphans
    assert (summary.ready, summary.possible_orphans, orphans, len(emu.users)) == (1, 1, 1, 2)
    assert avatars_of(emu, user_id) == [avatar_id]


async def test_a_500_on_new_avatar_is_checked_by_listing_before_creating_again(
    tmp_path: Path,
) -> None:
    async with emulator_and_client() as (emu, client):
        emu.fail_next("avatars.create", 500)
        summary = await run_rows(client, tmp_path)
    assert (summary.ready, emu.stats.avatars_created, summary.avatars_replaced) == (1, 1, 0)
    assert emu.stats.requests["avatars.list"] >= 1


async def test_a_refused_avatar_create_fails_the_row_and_the_rerun_creates_it(
    tmp_path: Path,
) -> None:
    async with emulator_and_client() as (emu, client):
        emu.fail_next("avatars.create", 422)
        first = await run_rows(client, tmp_path)
        again = await run_rows(client, tmp_path)
    assert first.failed_by_kind == {"api": 1}
    assert (again.ready, len(emu.users), emu.stats.avatars_created) == (1, 1, 1)


# ---------------------------------------------------------------- resuming a killed run


async def seed(folder: Path, state: RowState, **columns: str | None) -> None:
    """Leave the journal as a run killed in ``state`` would."""
    write_manifest(folder, 1)
    with Journal(folder / "j.db") as journal:
        run = journal.begin_run()
        journal.register(run, "sample-00001", 2, None)
        journal.advance(run, "sample-00001", state, **columns)


async def upload(client: AvaturnClient, upload_url: str) -> None:
    frontal, side_1, side_2 = sample_photo_paths()
    await client.avatars.upload_photos(
        upload_url, frontal=frontal, side_1=side_1, side_2=side_2, body_type="female"
    )


async def test_resume_after_user_requested_counts_a_possible_orphan(tmp_path: Path) -> None:
    async with emulator_and_client() as (emu, client):
        await client.users.create()  # the answer the killed run never recorded
        await seed(tmp_path, RowState.USER_REQUESTED)
        summary = await run_rows(client, tmp_path)
    assert (summary.ready, summary.possible_orphans, len(emu.users)) == (1, 1, 2)


async def test_resume_after_avatar_requested_adopts_an_avatar_whose_photos_landed(
    tmp_path: Path,
) -> None:
    async with emulator_and_client() as (emu, client):
        user = await client.users.create()
        created = await client.avatars.create(user.id)
        await upload(client, created.upload_url)
        await seed(tmp_path, RowState.AVATAR_REQUESTED, user_id=user.id)
        summary = await run_rows(client, tmp_path)
    assert (summary.ready, summary.avatars_adopted, emu.stats.avatars_created) == (1, 1, 1)
    assert the_row(tmp_path)[1] == created.avatar_id


async def test_resume_after_avatar_requested_replaces_an_avatar_without_photos(
    tmp_path: Path,
) -> None:
    async with emulator_and_client() as (emu, client):
        user = await client.users.create()
        stranded = await client.avatars.create(user.id)  # its upload URL died with the run
        await seed(tmp_path, RowState.AVATAR_REQUESTED, user_id=user.id)
        summary = await run_rows(client, tmp_path)
    user_id, avatar_id, _ = the_row(tmp_path)
    assert (summary.ready, summary.avatars_replaced) == (1, 1)
    assert avatars_of(emu, user_id) == [avatar_id]
    assert avatar_id != stranded.avatar_id


async def test_resume_after_uploading_with_photos_landed_does_not_upload_again(
    tmp_path: Path,
) -> None:
    async with emulator_and_client() as (emu, client):
        user = await client.users.create()
        created = await client.avatars.create(user.id)
        await upload(client, created.upload_url)
        await seed(tmp_path, RowState.UPLOADING, user_id=user.id, avatar_id=created.avatar_id)
        summary = await run_rows(client, tmp_path)
    assert (summary.ready, emu.stats.uploads, emu.stats.avatars_created) == (1, 1, 1)


async def test_resume_after_processing_finds_an_avatar_that_got_ready_meanwhile(
    tmp_path: Path,
) -> None:
    async with emulator_and_client() as (emu, client):
        user = await client.users.create()
        created = await client.avatars.create(user.id)
        await upload(client, created.upload_url)
        await client.avatars.track(user_id=user.id, avatar_id=created.avatar_id).wait(
            poll_interval=0.02
        )
        await seed(tmp_path, RowState.PROCESSING, user_id=user.id, avatar_id=created.avatar_id)
        summary = await run_rows(client, tmp_path)
    assert (summary.ready, emu.stats.avatars_created) == (1, 1)
    assert the_row(tmp_path)[2] is RowState.READY


async def test_a_refused_api_key_leaves_no_possible_orphan_for_the_next_run(
    tmp_path: Path,
) -> None:
    write_manifest(tmp_path, 6)
    async with AvaturnEmulator(processing_delay=0.01) as emu:
        async with AvaturnClient(api_key="wrong", base_url=emu.base_url) as refused:
            with pytest.raises(AuthenticationError):
                await run_rows(refused, tmp_path)
        async with AvaturnClient(api_key=emu.api_key, base_url=emu.base_url) as client:
            summary = await run_rows(client, tmp_path)
    with Journal(tmp_path / "j.db") as journal:
        orphans = journal.status().possible_orphans
    assert (summary.ready, summary.possible_orphans, orphans, len(emu.users)) == (6, 0, 0, 6)


async def test_a_refused_user_create_is_no_possible_orphan(tmp_path: Path) -> None:
    async with emulator_and_client() as (emu, client):
        emu.fail_next("users.create", 422)
        first = await run_rows(client, tmp_path)
        again = await run_rows(client, tmp_path)
    assert (first.failed, first.possible_orphans, again.possible_orphans) == (1, 0, 0)
    assert (again.ready, len(emu.users)) == (1, 1)


class OneRefusalThenSilence:
    """The first Create User gets the emulator's 401; the others are still waiting
    for their answer when the refused key stops the run."""

    def __init__(self) -> None:
        self.inner = AiohttpTransport()
        self.creates = 0

    async def send(
        self, request: Request, *, url: str, headers: Mapping[str, str], timeouts: Timeouts
    ) -> Response:
        if request.route == "users.create":
            self.creates += 1
            if self.creates > 1:
                await anyio.sleep_forever()
        return await self.inner.send(request, url=url, headers=headers, timeouts=timeouts)

    async def download(
        self,
        url: str,
        destination: Path,
        *,
        headers: Mapping[str, str],
        timeouts: Timeouts,
        max_bytes: int | None = None,
    ) -> int:
        return await self.inner.download(
            url, destination, headers=headers, timeouts=timeouts, max_bytes=max_bytes
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_creates_cut_short_by_a_refused_key_are_no_possible_orphans(
    tmp_path: Path,
) -> None:
    write_manifest(tmp_path, 4)
    transport = OneRefusalThenSilence()
    async with (
        AvaturnEmulator() as emu,
        AvaturnClient(api_key="wrong", base_url=emu.base_url, transport=transport) as client,
    ):
        with pytest.raises(AuthenticationError):
            await run_rows(client, tmp_path)
    with Journal(tmp_path / "j.db") as journal:
        states = {record.state for record in journal.records()}
    assert transport.creates > 1
    assert states == {RowState.NEW}
