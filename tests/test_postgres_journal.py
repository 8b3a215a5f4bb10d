"""The PostgreSQL journal's own guarantees: claims, leases, take-over and fencing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import anyio.to_thread
import asyncpg
import pytest

from avaturn_async import AvaturnClient, ConfigurationError
from avaturn_async.batch import (
    LeaseLostError,
    Manifest,
    OnboardingSummary,
    OnboardSettings,
    RowEntry,
    RowState,
    onboard,
    write_sample_manifest,
)
from avaturn_async.postgres import PostgresJournal, StorageUnavailableError
from avaturn_async.testing import AvaturnEmulator
from tests.pg_server import PostgresServer, free_port

Runs = Callable[..., Awaitable[PostgresJournal]]


@pytest.fixture
async def start_run(postgres_dsn: str) -> AsyncIterator[Runs]:
    """Starts runs on one shared journal, as separate workers would."""
    opened: list[PostgresJournal] = []

    async def start(lease: float = 30.0) -> PostgresJournal:
        journal = await PostgresJournal.open(postgres_dsn, lease=lease)
        opened.append(journal)
        await journal.begin_run("people.csv")
        return journal

    yield start
    for journal in opened:
        await journal.aclose()


async def expire_leases(dsn: str, key: str) -> None:
    """Make the lease of ``key`` run out now, as if its run had stopped renewing."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE avaturn_journal_rows SET lease_until = now() - interval '1 second'"
            " WHERE key = $1", key,
        )
    finally:
        await conn.close()


async def rows(journal: PostgresJournal, *keys: str) -> None:
    await journal.register([RowEntry(line=i + 2, key=key) for i, key in enumerate(keys)])


async def claim(journal: PostgresJournal, *keys: str) -> list[str]:
    records = await journal.claim(list(keys), export=False, retry_failed=False)
    return [record.key for record in records]


async def test_a_row_held_by_one_run_is_not_claimed_by_another(start_run: Runs) -> None:
    first, second = await start_run(), await start_run()
    await rows(first, "a", "b")
    await rows(second, "a", "b")
    assert await claim(first, "a") == ["a"]
    assert await claim(second, "a", "b") == ["b"]


async def test_a_row_whose_lease_ran_out_is_taken_over(
    start_run: Runs, postgres_dsn: str
) -> None:
    first, second = await start_run(), await start_run()
    await rows(first, "a")
    await claim(first, "a")
    await first.advance("a", RowState.AVATAR_REQUESTED, user_id="U1")
    await expire_leases(postgres_dsn, "a")
    assert (await second.holdings()).expired == frozenset({"a"})
    [record] = await second.claim(["a"], export=False, retry_failed=False)
    assert (record.state, record.user_id) == (RowState.AVATAR_REQUESTED, "U1")


async def test_a_write_after_the_row_was_taken_over_is_refused(
    start_run: Runs, postgres_dsn: str
) -> None:
    first, second = await start_run(), await start_run()
    await rows(first, "a")
    await claim(first, "a")
    await expire_leases(postgres_dsn, "a")
    await claim(second, "a")
    with pytest.raises(LeaseLostError):
        await first.advance("a", RowState.USER_REQUESTED)
    record = await second.record("a")
    assert record is not None
    assert record.state is RowState.NEW


async def test_a_renewal_that_finds_the_row_taken_reports_the_loss(
    start_run: Runs, postgres_dsn: str
) -> None:
    first, second = await start_run(), await start_run()
    await rows(first, "a")
    await claim(first, "a")
    lost = anyio.Event()
    first.on_lease_lost("a", lost.set)
    await expire_leases(postgres_dsn, "a")
    await claim(second, "a")
    await first.renew()
    assert lost.is_set()


async def test_renewals_keep_a_row_held_past_its_lease(start_run: Runs) -> None:
    first, second = await start_run(lease=1.0), await start_run()
    await rows(first, "a")
    await claim(first, "a")
    with anyio.fail_after(10):
        while first.renewals < 5:  # noqa: ASYNC110 - counts renewals, over a lease in all
            await anyio.sleep(0.05)
    assert await claim(second, "a") == []


async def test_a_row_that_failed_in_one_run_is_left_to_a_rerun(start_run: Runs) -> None:
    first, second = await start_run(), await start_run()
    await rows(first, "a")
    await claim(first, "a")
    await first.fail("a", "api", "refused")
    await first.release("a")
    assert await claim(second, "a") == []
    assert await claim(await start_run(), "a") == ["a"]


async def test_a_row_let_go_by_an_interrupted_run_is_free_at_once(start_run: Runs) -> None:
    first, second = await start_run(), await start_run()
    await rows(first, "a")
    await claim(first, "a")
    await first.end_run("interrupted")
    assert await claim(second, "a") == ["a"]


async def test_runs_reading_the_same_manifest_share_its_rows(start_run: Runs) -> None:
    first, second = await start_run(), await start_run()
    await first.register([RowEntry(line=2, key="a")])
    [same] = await second.register([RowEntry(line=2, key="a")])
    assert same is not None
    assert same.record is not None


async def test_a_key_on_another_line_of_a_live_run_is_a_duplicate(start_run: Runs) -> None:
    first, second = await start_run(), await start_run()
    await first.register([RowEntry(line=2, key="a")])
    [other] = await second.register([RowEntry(line=7, key="a")])
    assert other is not None
    assert (other.record, other.duplicate_of) == (None, 2)


async def test_status_counts_the_live_runs(start_run: Runs) -> None:
    first = await start_run()
    await start_run()
    assert (await first.status()).live_runs == 2


async def test_a_lease_under_a_second_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="lease"):
        await PostgresJournal.open("postgresql://u@localhost/db", lease=0.5)


async def test_a_malformed_dsn_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        await PostgresJournal.open("postgresql://u@localhost:notaport/db")


async def test_an_unreachable_server_is_a_typed_error_without_the_password() -> None:
    dsn = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/db"
    with pytest.raises(StorageUnavailableError) as caught:
        await PostgresJournal.open(dsn)
    assert "s3cret" not in str(caught.value)


async def test_an_onboarding_survives_a_server_restart_mid_run(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    manifest = write_sample_manifest(tmp_path, 12)
    dsn = postgres_server.dsn
    async with AvaturnEmulator(processing_delay=0.3) as emu, AvaturnClient(
        emu.api_key, base_url=emu.base_url
    ) as client:
        journal = await PostgresJournal.open(dsn, lease=5.0)
        summary = OnboardingSummary()
        async with anyio.create_task_group() as group:

            async def restart_once_rows_are_waiting() -> None:
                with anyio.fail_after(20):
                    while not emu.avatars:  # noqa: ASYNC110 - counted in the emulator
                        await anyio.sleep(0.01)
                await anyio.to_thread.run_sync(postgres_server.restart)

            group.start_soon(restart_once_rows_are_waiting)
            with Manifest(manifest) as rows:
                settings = OnboardSettings(poll_interval=0.05)
                await onboard(client, rows, journal=journal, summary=summary, settings=settings)
        await journal.aclose()
    assert (summary.ready, summary.failed) == (12, 0), (summary.failed_by_kind, summary.failures)
    assert len(emu.avatars) == 12


async def test_a_claim_repeated_after_a_lost_answer_returns_the_same_rows(
    start_run: Runs,
) -> None:
    journal = await start_run()
    await rows(journal, "a", "b")
    await claim(journal, "a", "b")
    assert await claim(journal, "a", "b") == ["a", "b"]


async def test_a_row_taken_over_and_let_go_again_is_finished_by_its_first_run(
    tmp_path: Path, postgres_dsn: str
) -> None:
    manifest = write_sample_manifest(tmp_path, 4)
    thief = await PostgresJournal.open(postgres_dsn)
    async with AvaturnEmulator(processing_delay=1.0) as emu, AvaturnClient(
        emu.api_key, base_url=emu.base_url
    ) as client:
        journal = await PostgresJournal.open(postgres_dsn, lease=3.0)
        summary = OnboardingSummary()
        lost = anyio.Event()
        async with anyio.create_task_group() as group:

            async def steal_a_waiting_row_then_let_go() -> None:
                with anyio.fail_after(20):
                    while not emu.avatars:  # noqa: ASYNC110 - counted in the emulator
                        await anyio.sleep(0.01)
                await expire_leases(postgres_dsn, "sample-00001")
                await thief.begin_run("elsewhere")
                assert await claim(thief, "sample-00001") == ["sample-00001"]
                journal.on_lease_lost("sample-00001", lost.set)
                await journal.renew()  # the victim learns at its next renewal
                await thief.end_run("interrupted")  # unfinished: free for the others

            group.start_soon(steal_a_waiting_row_then_let_go)
            with Manifest(manifest) as rows:
                settings = OnboardSettings(poll_interval=0.05)
                await onboard(client, rows, journal=journal, summary=summary, settings=settings)
        await journal.aclose()
    record = await thief.record("sample-00001")
    await thief.aclose()
    assert lost.is_set()
    assert (summary.ready, summary.elsewhere) == (4, 0)
    assert record is not None
    assert record.state is RowState.READY
    assert len(emu.avatars) == 4
