"""Helpers for client tests: a ready export's URL, and an emulator served from a thread
(for the sync client, whose calls block the thread they are made in)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from anyio.from_thread import start_blocking_portal

from avaturn_async import AvaturnClient
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator


async def exported_url(client: AvaturnClient) -> str:
    """The URL of a ready export of a new avatar (the emulator must not require customization)."""
    frontal, side_1, side_2 = sample_photo_paths()
    user = await client.users.create()
    job = await client.avatars.create_from_photos(
        user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="male"
    )
    await job.wait(poll_interval=0.01)
    ready = await (await client.exports.create(job.avatar_id)).wait(poll_interval=0.01)
    assert ready.export_url is not None
    return ready.export_url


@contextmanager
def threaded_emulator(**options: Any) -> Iterator[AvaturnEmulator]:
    """An emulator running in an event loop of its own thread, for blocking callers."""
    settings = {"processing_delay": 0.01, "export_delay": 0.01, "render_delay": 0.01, **options}
    with start_blocking_portal() as portal:
        emulator = AvaturnEmulator(**settings)
        portal.call(emulator.start)
        try:
            yield emulator
        finally:
            portal.call(emulator.aclose)
