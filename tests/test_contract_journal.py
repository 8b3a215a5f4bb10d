"""The journal seam's contract: every JournalStore behaves alike for one run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from avaturn_async.batch import JournalStore, RowEntry, RowState, SQLiteJournalStore

Opener = Callable[[], Awaitable[JournalStore]]


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh journal of the parametrized kind: a file path or a PostgreSQL DSN."""
    if request.param == "sqlite":
        return str(tmp_path / "journal.db")
    return str(request.getfixturevalue("postgres_dsn"))


@pytest.fixture
async def open_store(location: str) -> AsyncIterator[Opener]:
    """Opens stores (one per run) on the one journal at ``location``."""
    opened: list[JournalStore] = []

    async def opener() -> JournalStore:
        if location.startswith("postgresql://"):
            from avaturn_async.postgres import PostgresJournal

            store: JournalStore = await PostgresJournal.open(location)
        else:
            store = await SQLiteJournalStore.open(location)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        await store.aclose()


@pytest.fixture
async def store(open_store: Opener) -> JournalStore:
    opened = await open_store()
    await opened.begin_run("people.csv")
    return opened


async def registered(store: JournalStore, *keys: str) -> None:
    """Register ``keys`` on lines 2, 3, ... and hold them (writes need a hold)."""
    await store.register([RowEntry(line=i + 2, key=key) for i, key in enumerate(keys)])
    await store.claim(list(keys), export=False, retry_failed=False)


async def claimed(store: JournalStore, keys: list[str], **flags: bool) -> list[str]:
    """Let go of ``keys`` and claim them again; the keys claimed."""
    for key in keys:
        await store.release(key)
    options = {"export": False, "retry_failed": False, **flags}
    return [record.key for record in await store.claim(keys, **options)]


async def test_a_store_satisfies_the_protocol(store: JournalStore) -> None:
    assert isinstance(store, JournalStore)


async def test_a_registered_row_starts_new(store: JournalStore) -> None:
    [registration] = await store.register([RowEntry(line=2, key="alice")])
    assert registration is not None
    assert registration.record is not None
    assert registration.record.state is RowState.NEW


async def test_a_keyless_line_is_rejected(store: JournalStore) -> None:
    [registration] = await store.register([RowEntry(line=2, key=None, problem="no key")])
    assert registration is None
    assert (await store.status()).rejected_last_run == 1


async def test_the_same_key_on_another_line_is_a_duplicate(store: JournalStore) -> None:
    _, second = await store.register([RowEntry(line=2, key="a"), RowEntry(line=3, key="a")])
    assert second is not None
    assert (second.record, second.duplicate_of) == (None, 2)


async def test_claim_returns_the_rows_that_need_work_in_line_order(store: JournalStore) -> None:
    await registered(store, "a", "b", "c")
    await store.advance("b", RowState.READY)
    assert await claimed(store, ["c", "b", "a"]) == ["a", "c"]


async def test_claim_leaves_rows_with_bad_input(store: JournalStore) -> None:
    await store.register([RowEntry(line=2, key="a", problem="no frontal photo")])
    assert await store.claim(["a"], export=False, retry_failed=False) == []


async def test_claim_takes_failed_avatars_only_when_retrying(store: JournalStore) -> None:
    await registered(store, "a")
    await store.fail("a", "avatar_failed", "processing failed", state=RowState.AVATAR_FAILED)
    assert await claimed(store, ["a"]) == []
    assert await claimed(store, ["a"], retry_failed=True) == ["a"]


async def test_a_ready_row_still_needs_its_export(store: JournalStore) -> None:
    await registered(store, "a")
    await store.advance("a", RowState.READY)
    assert await claimed(store, ["a"], export=True) == ["a"]


async def test_advance_keeps_columns_it_is_not_given(store: JournalStore) -> None:
    await registered(store, "a")
    await store.advance("a", RowState.AVATAR_REQUESTED, user_id="U1")
    await store.advance("a", RowState.UPLOADING, avatar_id="A1")
    record = await store.record("a")
    assert record is not None
    assert (record.state, record.user_id, record.avatar_id) == (RowState.UPLOADING, "U1", "A1")


async def test_a_failure_keeps_the_state_unless_told(store: JournalStore) -> None:
    await registered(store, "a")
    await store.advance("a", RowState.AVATAR_REQUESTED, user_id="U1")
    await store.fail("a", "network", "timed out")
    record = await store.record("a")
    assert record is not None
    assert (record.state, record.error_kind) == (RowState.AVATAR_REQUESTED, "network")


async def test_advancing_clears_the_last_error(store: JournalStore) -> None:
    await registered(store, "a")
    await store.fail("a", "network", "timed out")
    await store.advance("a", RowState.USER_REQUESTED)
    record = await store.record("a")
    assert record is not None
    assert record.error is None


async def test_url_query_strings_are_never_stored(store: JournalStore) -> None:
    await registered(store, "a")
    await store.fail("a", "api", "PUT https://bucket.example/u?X-Signature=secret failed")
    record = await store.record("a")
    assert record is not None
    assert record.error is not None
    assert "secret" not in record.error


async def test_possible_orphans_are_counted(store: JournalStore) -> None:
    await registered(store, "a")
    await store.note("a", "possible_orphan_user", "no answer", orphan=True)
    await store.note("a", "possible_orphan_user", "no answer", orphan=True)
    assert (await store.status()).possible_orphans == 2


async def test_status_counts_rows_by_state_and_failures(store: JournalStore) -> None:
    await registered(store, "a", "b", "c")
    await store.advance("a", RowState.READY)
    await store.fail("b", "api", "bad")
    status = await store.status()
    assert (status.rows, status.by_state, status.failed) == (3, {"ready": 1, "new": 2}, 1)


async def test_ending_the_run_reports_its_failures(store: JournalStore) -> None:
    await registered(store, "a", "b")
    await store.fail("b", "api", "refused")
    failures, total = await store.end_run("finished")
    assert ([(f.key, f.kind, f.reason) for f in failures], total) == ([("b", "api", "refused")], 1)


async def test_a_rerun_sees_the_rows_of_the_last_run(open_store: Opener) -> None:
    first = await open_store()
    await first.begin_run()
    await registered(first, "a")
    await first.advance("a", RowState.PROCESSING, user_id="U", avatar_id="A")
    await first.end_run("interrupted")
    await first.aclose()
    second = await open_store()
    await second.begin_run()
    [registration] = await second.register([RowEntry(line=2, key="a")])
    assert registration is not None
    assert registration.record is not None
    assert registration.record.state is RowState.PROCESSING


async def test_nothing_is_held_elsewhere_when_one_run_is_alone(store: JournalStore) -> None:
    await registered(store, "a")
    await store.claim(["a"], export=False, retry_failed=False)
    holdings = await store.holdings()
    assert (holdings.live, holdings.expired) == (0, frozenset())


async def test_status_counts_rows_with_bad_input(store: JournalStore) -> None:
    await store.register([RowEntry(line=2, key="a", problem="no frontal photo")])
    status = await store.status()
    assert (status.invalid, status.failed) == (1, 1)
