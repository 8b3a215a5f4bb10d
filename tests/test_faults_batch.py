"""Batch onboarding under a mixed fault plan, checked against the emulator's own state.

300 rows against an emulator that answers 429 (with and without ``Retry-After``),
500, 502 and 503, resets connections, cuts answers off (before or after acting),
adds latency, reads some uploads slowly, and drops, duplicates, delays and
reorders webhooks. The run is made once and shared by the tests below; each
checks one property of its outcome.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import attrs
import pytest

from avaturn_async import AvaturnClient, EventHub, RetryPolicy
from avaturn_async._adaptive import AdaptiveConcurrency
from avaturn_async.batch import (
    Journal,
    JournalStatus,
    Manifest,
    OnboardingSummary,
    OnboardSettings,
    RowRecord,
    RowState,
    onboard,
    write_sample_manifest,
)
from avaturn_async.testing import (
    AvaturnEmulator,
    FaultKind,
    FaultPlan,
    RouteFaults,
    WebhookFaults,
    make_webhook_secret,
)
from avaturn_async.webhooks import WebhookPipeline, WebhookRouter, WebhookVerifier
from avaturn_async.webhooks.aiohttp import serve_webhooks

ROWS = 300
FAILING_EVERY = 40
PLAN = FaultPlan(
    seed=20241124,
    routes={
        "upload": RouteFaults(
            rate_500=0.04,
            rate_503=0.04,
            rate_reset=0.03,
            rate_cutoff=0.03,
            slow_upload=0.1,
            upload_bytes_per_second=256 * 1024,
            latency=(0.0, 0.005),
        ),
    },
    default=RouteFaults(
        rate_429=0.03,
        rate_429_no_retry_after=0.02,
        rate_500=0.03,
        rate_502=0.03,
        rate_503=0.03,
        rate_reset=0.02,
        rate_cutoff=0.02,
        retry_after=0.01,
        latency=(0.0, 0.005),
    ),
    webhooks=WebhookFaults(drop=0.15, duplicate=0.15, delay=(0.0, 0.2), reorder=True),
)


@attrs.frozen
class Run:
    emulator: AvaturnEmulator
    summary: OnboardingSummary
    records: list[RowRecord]
    status: JournalStatus

    def by_user(self) -> dict[str, list[str]]:
        avatars: dict[str, list[str]] = {}
        for avatar in self.emulator.avatars.values():
            avatars.setdefault(avatar.user_id, []).append(avatar.id)
        return avatars

    def ambiguous(self, route: str) -> set[str]:
        return set(self.emulator.stats.ambiguous_creates.get(route, []))


async def onboard_under_faults(folder: Path) -> Run:
    manifest = write_sample_manifest(folder, ROWS)
    hub, router, secret = EventHub(), WebhookRouter(), make_webhook_secret()
    hub.attach(router)
    processed = itertools.count(1)
    async with (
        serve_webhooks(WebhookPipeline(WebhookVerifier(secret), router)) as receiver,
        AvaturnEmulator(
            webhook_url=receiver.url,
            webhook_secret=secret,
            processing_delay=0.02,
            webhook_retry_delay=0.01,
            faults=PLAN,
        ) as emu,
        AvaturnClient(
            emu.api_key,
            base_url=emu.base_url,
            event_hub=hub,
            retry=RetryPolicy(max_attempts=6, initial_delay=0.005, max_delay=0.05),
            adaptive=AdaptiveConcurrency(default_pause=0.02, max_pause=0.1),
        ) as client,
    ):
        # A few avatars fail processing, so some rows must end failed with a reason.
        emu.avatar_outcome = lambda _: "failed" if next(processed) % FAILING_EVERY == 0 else "ready"
        with Manifest(manifest) as rows:
            summary = await onboard(
                client,
                rows,
                journal=folder / "journal.db",
                settings=OnboardSettings(concurrency=16, poll_interval=0.2, ready_timeout=60),
            )
    with Journal(folder / "journal.db") as journal:
        return Run(emu, summary, list(journal.records()), journal.status())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One onboarding under faults, shared by the tests of this module (it is the slow part)."""
    return anyio.run(onboard_under_faults, tmp_path_factory.mktemp("faults"))


def test_every_row_is_ready_or_failed_with_a_reason(run: Run) -> None:
    assert len(run.records) == ROWS
    unfinished = [r for r in run.records if r.state is not RowState.READY]
    assert all(r.error_kind and r.error for r in unfinished), unfinished
    assert (run.summary.ready, run.summary.failed) == (ROWS - len(unfinished), len(unfinished))


def test_most_rows_get_through_the_faults(run: Run) -> None:
    assert run.summary.ready >= ROWS * 0.9


def test_the_plan_injected_every_kind_of_fault(run: Run) -> None:
    stats = run.emulator.stats
    assert {kind.value for kind in FaultKind} == {
        key.split(":")[1] for key in stats.faults if key.count(":") == 2
    }
    assert stats.fault_count(acted=True) > 0
    assert stats.fault_count(acted=False) > 0
    assert {"upload:slow_upload", "webhook:drop", "webhook:duplicate", "webhook:delay"} <= set(
        stats.faults
    )


def test_no_user_exists_beyond_the_rows_and_the_ambiguous_creates(run: Run) -> None:
    row_users = {r.user_id for r in run.records if r.user_id is not None}
    extra = set(run.emulator.users) - row_users
    assert row_users <= set(run.emulator.users)
    assert extra <= run.ambiguous("users.create")
    assert run.emulator.stats.users_created == len(row_users) + len(extra)


def test_no_avatar_exists_beyond_the_rows_and_the_ambiguous_creates(run: Run) -> None:
    row_avatars = {r.avatar_id for r in run.records if r.avatar_id is not None}
    ambiguous = run.ambiguous("avatars.create")
    assert set(run.emulator.avatars) - row_avatars <= ambiguous
    assert row_avatars.isdisjoint(ambiguous)
    assert run.emulator.stats.avatars_created == len(row_avatars | ambiguous)


def test_each_ready_row_has_exactly_its_one_ready_avatar(run: Run) -> None:
    by_user = run.by_user()
    for record in run.records:
        if record.state is RowState.READY:
            assert record.user_id is not None
            assert by_user.get(record.user_id) == [record.avatar_id]
            assert run.emulator.avatars[str(record.avatar_id)].status == "ready"


def test_the_journal_agrees_with_the_emulator(run: Run) -> None:
    avatars, by_user = run.emulator.avatars, run.by_user()
    expected_status = {RowState.READY: "ready", RowState.AVATAR_FAILED: "failed"}
    for record in run.records:
        if record.avatar_id is not None:
            avatar = avatars[record.avatar_id]
            assert avatar.user_id == record.user_id
            assert avatar.status == expected_status.get(record.state, avatar.status)
        if record.user_id is not None:
            others = set(by_user.get(record.user_id, [])) - {record.avatar_id}
            assert others <= run.ambiguous("avatars.create"), record
    assert run.status.possible_orphans >= len(run.ambiguous("users.create"))
    assert run.status.by_state.get("ready", 0) == run.summary.ready


def dropped_avatar_events(run: Run) -> Iterator[str]:
    for event in run.emulator.dropped_webhooks:
        if event["event"] == "avatar.ready" and event["status"] == "ready":
            yield str(event["avatar_id"])


def test_avatars_whose_webhook_was_dropped_were_found_by_polling(run: Run) -> None:
    dropped = set(dropped_avatar_events(run))
    # A row that gave up uploading (its photos landed unanswered) never waited.
    waited = [
        r for r in run.records if r.avatar_id in dropped and r.state is not RowState.UPLOADING
    ]
    assert waited
    assert Counter(r.state for r in waited) == {RowState.READY: len(waited)}
