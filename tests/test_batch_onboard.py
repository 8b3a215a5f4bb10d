"""``onboard()`` end to end against the emulator over loopback."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from avaturn_async import (
    AuthenticationError,
    AvaturnClient,
    ConfigurationError,
    EventHub,
    RetryPolicy,
)
from avaturn_async.batch import (
    Journal,
    Manifest,
    OnboardingAbortedError,
    OnboardingSummary,
    OnboardRow,
    OnboardSettings,
    RowState,
    onboard,
)
from avaturn_async.batch import write_sample_manifest as write_manifest
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import (
    AvaturnEmulator,
    FaultPlan,
    WebhookFaults,
    make_webhook_secret,
)
from avaturn_async.webhooks import WebhookPipeline, WebhookRouter, WebhookVerifier
from avaturn_async.webhooks.aiohttp import serve_webhooks

FAST = {"processing_delay": 0.01, "export_delay": 0.01, "webhook_retry_delay": 0.01}


@asynccontextmanager
async def with_webhooks(**options: Any) -> AsyncIterator[tuple[AvaturnEmulator, AvaturnClient]]:
    """An emulator whose signed webhooks feed the client's hub through a real receiver."""
    hub = EventHub()
    router = WebhookRouter()
    hub.attach(router)
    secret = make_webhook_secret()
    async with (
        serve_webhooks(WebhookPipeline(WebhookVerifier(secret), router)) as server,
        AvaturnEmulator(webhook_url=server.url, webhook_secret=secret, **{**FAST, **options})
        as emu,
        AvaturnClient(api_key=emu.api_key, base_url=emu.base_url, event_hub=hub) as client,
    ):
        yield emu, client


@asynccontextmanager
async def polling_only(**options: Any) -> AsyncIterator[tuple[AvaturnEmulator, AvaturnClient]]:
    """An emulator that sends no webhooks and a client without an event hub."""
    async with (
        AvaturnEmulator(**{**FAST, **options}) as emu,
        AvaturnClient(api_key=emu.api_key, base_url=emu.base_url) as client,
    ):
        yield emu, client


def journal_rows(path: Path) -> list[Any]:
    with Journal(path) as journal:
        return list(journal.records())


def assert_one_user_and_one_ready_avatar_per_row(
    emu: AvaturnEmulator, journal: Path, rows: int
) -> None:
    """The emulator's own state: each row's user holds exactly its one ready avatar.

    A user no row owns is allowed only as a reported possible orphan (a Create
    User cut off by a cancellation: the server may have acted).
    """
    records = journal_rows(journal)
    assert len(records) == rows
    assert {r.state for r in records} <= {RowState.READY, RowState.EXPORTED}
    users = {r.user_id for r in records}
    assert len(users) == rows
    assert users <= set(emu.users)
    assert len(set(emu.users) - users) <= sum(r.possible_orphans for r in records)
    by_user: dict[str, list[str]] = {}
    for avatar in emu.avatars.values():
        by_user.setdefault(avatar.user_id, []).append(avatar.id)
    assert {r.user_id: [r.avatar_id] for r in records} == by_user
    assert {avatar.status for avatar in emu.avatars.values()} == {"ready"}


async def test_a_few_hundred_rows_get_exactly_one_user_and_one_avatar_each(
    tmp_path: Path,
) -> None:
    manifest = write_manifest(tmp_path, 300)
    async with with_webhooks() as (emu, client):
        with Manifest(manifest) as rows:
            settings = OnboardSettings(concurrency=16)
            summary = await onboard(client, rows, journal=tmp_path / "j.db", settings=settings)
    assert (summary.ready, summary.failed, summary.exit_code) == (300, 0, 0)
    assert (emu.stats.users_created, emu.stats.avatars_created, emu.stats.uploads) == (300,) * 3
    assert_one_user_and_one_ready_avatar_per_row(emu, tmp_path / "j.db", 300)


async def test_a_rerun_sends_nothing_for_finished_rows(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, 20)
    async with with_webhooks() as (emu, client):
        with Manifest(manifest) as rows:
            await onboard(client, rows, journal=tmp_path / "j.db")
        before = dict(emu.stats.requests)
        with Manifest(manifest) as rows:
            again = await onboard(client, rows, journal=tmp_path / "j.db")
    assert (again.already_done, again.ready) == (20, 0)
    assert emu.stats.requests == before


def bad_manifest(folder: Path) -> Path:
    frontal, side_1, side_2 = sample_photo_paths()
    shutil.copy(frontal, folder / "f.jpg")
    shutil.copy(side_1, folder / "s1.jpg")
    shutil.copy(side_2, folder / "s2.jpg")
    (folder / "not.jpg").write_bytes(b"GIF89a" + bytes(20))
    lines = [
        "key,frontal,side_1,side_2,body_type",
        "good-1,f.jpg,s1.jpg,s2.jpg,female",  # line 2
        "missing,f.jpg,gone.jpg,s2.jpg,male",  # 3
        "notjpeg,not.jpg,s1.jpg,s2.jpg,male",  # 4
        "robot,f.jpg,s1.jpg,s2.jpg,robot",  # 5
        "good-1,f.jpg,s1.jpg,s2.jpg,female",  # 6: duplicate of line 2
        ",f.jpg,s1.jpg,s2.jpg,male",  # 7: no key
        "good-2,f.jpg,s1.jpg,s2.jpg,male",  # 8
    ]
    path = folder / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_bad_rows_are_recorded_with_line_and_reason_and_the_others_finish(
    tmp_path: Path,
) -> None:
    async with with_webhooks() as (emu, client):
        with Manifest(bad_manifest(tmp_path)) as rows:
            summary = await onboard(client, rows, journal=tmp_path / "j.db")
    assert (summary.ready, summary.invalid, summary.exit_code) == (2, 5, 1)
    assert len(emu.users) == 2
    reported = {(f.line, f.kind, f.reason.split(":")[0]) for f in summary.failures}
    assert reported == {
        (3, "input", "side_1 photo not found"),
        (4, "input", "frontal photo is not a JPEG, PNG, WebP or HEIC image"),
        (5, "input", "body_type must be 'male' or 'female', not 'robot'"),
        (6, "rejected", "duplicate key 'good-1' (first seen on line 2)"),
        (7, "rejected", "missing key"),
    }


async def test_polling_mode_without_webhooks_completes(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, 20)
    async with polling_only() as (emu, client):
        with Manifest(manifest) as rows:
            settings = OnboardSettings(poll_interval=0.02)
            summary = await onboard(client, rows, journal=tmp_path / "j.db", settings=settings)
    assert summary.ready == 20
    assert emu.stats.requests["avatars.list"] >= 20
    assert_one_user_and_one_ready_avatar_per_row(emu, tmp_path / "j.db", 20)


async def test_duplicate_and_reordered_webhooks_do_not_confuse_correlation(
    tmp_path: Path,
) -> None:
    manifest = write_manifest(tmp_path, 40)
    chaos = FaultPlan(webhooks=WebhookFaults(duplicate=1.0, reorder=True))
    async with with_webhooks(faults=chaos) as (emu, client):
        with Manifest(manifest) as rows, anyio.fail_after(20):
            # Polling would start after a minute: only the webhooks can finish the rows.
            settings = OnboardSettings(poll_interval=60)
            summary = await onboard(client, rows, journal=tmp_path / "j.db", settings=settings)
        copies = {d.copy for d in emu.webhook_deliveries}
    assert summary.ready == 40
    assert copies == {1, 2}
    assert emu.stats.requests["avatars.list"] == 0
    assert_one_user_and_one_ready_avatar_per_row(emu, tmp_path / "j.db", 40)


async def test_stages_are_bounded_by_concurrency(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, 24)
    async with with_webhooks(response_delay=0.02) as (emu, client):
        with Manifest(manifest) as rows:
            settings = OnboardSettings(concurrency=3)
            await onboard(client, rows, journal=tmp_path / "j.db", settings=settings)
    assert 2 <= emu.stats.max_in_flight <= 3


async def test_export_downloads_one_model_file_per_row(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, 5)
    models = tmp_path / "models"
    async with with_webhooks() as (_, client):
        with Manifest(manifest) as rows:
            settings = OnboardSettings(export=True, export_dir=models)
            summary = await onboard(client, rows, journal=tmp_path / "j.db", settings=settings)
    assert summary.ready == 5
    paths = sorted(Path(r.export_path) for r in journal_rows(tmp_path / "j.db"))
    assert paths == sorted(models.glob("*.glb"))
    assert {path.read_bytes()[:4] for path in paths} == {b"glTF"}


async def test_a_failed_avatar_is_recorded_and_a_rerun_does_not_retry_it(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, 4)  # alternating female / male
    async with with_webhooks() as (emu, client):
        emu.avatar_outcome = lambda avatar: "failed" if avatar.body_type == "male" else "ready"
        with Manifest(manifest) as rows:
            first = await onboard(client, rows, journal=tmp_path / "j.db")
        with Manifest(manifest) as rows:
            again = await onboard(client, rows, journal=tmp_path / "j.db")
    assert first.failed_by_kind == {"avatar_failed": 2}
    assert (again.failed, again.already_done, emu.stats.avatars_created) == (2, 2, 4)


async def test_retry_failed_gives_a_failed_row_a_new_avatar_and_drops_the_old(
    tmp_path: Path,
) -> None:
    manifest = write_manifest(tmp_path, 2)
    async with with_webhooks() as (emu, client):
        emu.avatar_outcome = lambda avatar: "failed"
        with Manifest(manifest) as rows:
            await onboard(client, rows, journal=tmp_path / "j.db")
        emu.avatar_outcome = None
        with Manifest(manifest) as rows:
            settings = OnboardSettings(retry_failed=True)
            again = await onboard(client, rows, journal=tmp_path / "j.db", settings=settings)
    assert (again.ready, again.avatars_replaced, emu.stats.avatars_created) == (2, 2, 4)
    assert_one_user_and_one_ready_avatar_per_row(emu, tmp_path / "j.db", 2)


async def test_a_row_not_ready_in_time_fails_and_a_rerun_waits_for_the_same_avatar(
    tmp_path: Path,
) -> None:
    manifest = write_manifest(tmp_path, 1)
    async with with_webhooks(processing_delay=0.5) as (emu, client):
        with Manifest(manifest) as rows:
            settings = OnboardSettings(ready_timeout=0.05)
            late = await onboard(client, rows, journal=tmp_path / "j.db", settings=settings)
        with Manifest(manifest) as rows:
            settings = OnboardSettings(poll_interval=0.05)
            again = await onboard(client, rows, journal=tmp_path / "j.db", settings=settings)
    assert late.failed_by_kind == {"timeout": 1}
    assert (again.ready, emu.stats.avatars_created) == (1, 1)


async def test_cancelling_a_run_propagates_and_the_rerun_finishes_every_row(
    tmp_path: Path,
) -> None:
    manifest = write_manifest(tmp_path, 60)
    async with with_webhooks(processing_delay=0.05) as (emu, client):
        with Manifest(manifest) as rows, anyio.CancelScope() as scope:

            def cancel_after_ten(summary: OnboardingSummary) -> None:
                if summary.ready >= 10:
                    scope.cancel()

            await onboard(
                client,
                rows,
                journal=tmp_path / "j.db",
                settings=OnboardSettings(concurrency=4),
                progress=cancel_after_ten,
            )
        with Manifest(manifest) as rows:
            settings = OnboardSettings(poll_interval=0.05)
            again = await onboard(client, rows, journal=tmp_path / "j.db", settings=settings)
        await emu.wait_idle()
    assert scope.cancelled_caught
    assert 10 <= again.already_done < 60
    assert_one_user_and_one_ready_avatar_per_row(emu, tmp_path / "j.db", 60)


async def test_an_async_iterable_of_rows_is_accepted(tmp_path: Path) -> None:
    frontal, side_1, side_2 = sample_photo_paths()

    async def people() -> AsyncIterator[OnboardRow]:
        for n in range(3):
            yield OnboardRow(
                key=f"p{n}", frontal=frontal, side_1=side_1, side_2=side_2, body_type="male"
            )

    async with with_webhooks() as (_, client):
        summary = await onboard(client, people(), journal=tmp_path / "j.db")
    assert summary.ready == 3
    assert [r.line for r in journal_rows(tmp_path / "j.db")] == [1, 2, 3]


async def test_a_rejected_api_key_stops_the_run_instead_of_failing_every_row(
    tmp_path: Path,
) -> None:
    manifest = write_manifest(tmp_path, 50)
    async with polling_only() as (emu, _):
        async with AvaturnClient(api_key="wrong", base_url=emu.base_url) as client:
            settings = OnboardSettings(concurrency=2)
            with Manifest(manifest) as rows, pytest.raises(AuthenticationError):
                await onboard(client, rows, journal=tmp_path / "j.db", settings=settings)
    assert emu.stats.requests["users.create"] < 10


async def test_a_run_that_cannot_reach_the_api_stops_early(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, 200)
    async with AvaturnEmulator() as emu:
        base_url = emu.base_url  # closed below: connections are refused
    async with AvaturnClient(
        api_key="k", base_url=base_url, retry=RetryPolicy.off()
    ) as client:
        settings = OnboardSettings(concurrency=2)
        with Manifest(manifest) as rows, pytest.raises(OnboardingAbortedError):
            await onboard(client, rows, journal=tmp_path / "j.db", settings=settings)
    failed = [r for r in journal_rows(tmp_path / "j.db") if r.error_kind == "network"]
    assert 20 <= len(failed) < 200


async def test_a_source_that_breaks_mid_way_raises_its_own_error(tmp_path: Path) -> None:
    frontal, side_1, side_2 = sample_photo_paths()

    def people() -> Iterator[OnboardRow]:
        yield OnboardRow(
            key="p0", frontal=frontal, side_1=side_1, side_2=side_2, body_type="male"
        )
        raise OSError("the manifest's disk went away")

    async with with_webhooks() as (_, client):
        with pytest.raises(OSError, match="disk went away"):
            await onboard(client, people(), journal=tmp_path / "j.db")


async def test_the_old_keywords_still_work_with_a_deprecation_warning(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, 2)
    models = tmp_path / "models"
    async with with_webhooks() as (_, client):
        with Manifest(manifest) as rows, pytest.deprecated_call(match="OnboardSettings"):
            summary = await onboard(
                client, rows, journal=tmp_path / "j.db", export=True, export_dir=models
            )
    assert (summary.ready, len(list(models.glob("*.glb")))) == (2, 2)


async def test_an_unknown_keyword_is_still_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="concurrenci"), pytest.deprecated_call():
        await onboard(None, [], journal=tmp_path / "j.db", concurrenci=2)  # type: ignore[arg-type]


def test_settings_refuse_export_without_a_folder() -> None:
    with pytest.raises(ConfigurationError, match="export_dir"):
        OnboardSettings(export=True)


def test_settings_refuse_fewer_rows_in_flight_than_concurrency() -> None:
    with pytest.raises(ConfigurationError, match="max_in_flight"):
        OnboardSettings(concurrency=4, max_in_flight=2)


def test_rows_in_flight_default_to_eight_times_concurrency() -> None:
    assert OnboardSettings(concurrency=3).in_flight == 24
