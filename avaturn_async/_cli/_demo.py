"""``avaturn demo``: every endpoint and every webhook, end to end, against the embedded emulator.

Nothing leaves the machine: the emulator and a webhook receiver listen on
127.0.0.1, the emulator signs its webhooks, the receiver verifies them and
feeds the client's event hub, and the jobs' ``wait()`` resolve from it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

import anyio
import attrs

from .. import _models as m
from .._client import AvaturnClient
from .._hub import EventHub
from ..samples import sample_photo_paths
from ..testing import DEFAULT_WEBHOOK_SECRET, AvaturnEmulator
from ..webhooks import Event, WebhookPipeline, WebhookRouter, WebhookVerifier
from ..webhooks.aiohttp import serve_webhooks

__all__ = ["run_demo", "run_demo_command"]

DEADLINE = 30.0


class _Printer:
    def __init__(self, out: TextIO, quiet: bool) -> None:
        self._out = out
        self._quiet = quiet
        self._started = time.monotonic()

    def step(self, text: str) -> None:
        if not self._quiet:
            elapsed = time.monotonic() - self._started
            print(f"[{elapsed:6.2f}s] {text}", file=self._out, flush=True)


def _customization() -> m.ExternalAvatarCustomization:
    assets = AvaturnEmulator.SAMPLE_ASSETS
    return m.ExternalAvatarCustomization(
        assets=m.AssetSlots(
            clothing=m.AssetSlot(id=assets["clothing"]),
            hair_and_headwear=m.AssetSlotWithColor(id=assets["hair_and_headwear"], color="#3b2a1a"),
        ),
        body="body_1",
        age=m.AgeModel.ADULT,
        metadata={"source": "avaturn demo"},
        bone_scale=m.BoneScale(head=1.0, arms=1.0, chest=1.05),
        skin_tone_correction=0.1,
    )


async def _walk_through(client: AvaturnClient, say: _Printer, workdir: Path) -> None:
    frontal, side_1, side_2 = sample_photo_paths()
    user = await client.users.create()
    say.step(f"users.create -> user {user.id}")
    job = await client.avatars.create_from_photos(
        user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="female"
    )
    upload_status = job.upload.status if job.upload else None
    say.step(f"avatars.create_from_photos -> avatar {job.avatar_id}, upload {upload_status}")
    ready = await job.wait()
    say.step(f"avatar job resolved: {ready.event} status={ready.status}")
    avatars = await client.avatars.list(user.id)
    say.step(f"avatars.list -> {', '.join(f'{a.id} {a.status}' for a in avatars)}")
    session = await client.sessions.create(user.id, config=m.CreateSessionConfig())
    say.step(f"sessions.create -> session {session.id}")
    await client.avatars.set_customization(job.avatar_id, _customization())
    current = await client.avatars.get_customization(job.avatar_id)
    slots = attrs.asdict(current.assets or m.AssetSlots(), recurse=False)
    worn = sorted(slot for slot, asset in slots.items() if asset is not None)
    say.step(f"set/get customization -> body {current.body}, assets in {', '.join(worn)}")
    render = await client.renders.create(job.avatar_id, scene="common/city_full_body", format="png")
    rendered = await render.wait()
    say.step(f"renders.create -> {render.id}; render.ready {rendered.status}")
    export = await client.exports.create(job.avatar_id)
    exported = await export.wait()
    assert exported.export_url is not None
    size = (await client.download(exported.export_url, workdir / "avatar.glb")).size
    say.step(f"exports.create -> {export.status}; export.ready, downloaded {size} bytes")
    again = await client.exports.create(job.avatar_id)
    say.step(f"exports.create again -> {again.status} at once (already exported)")
    await client.avatars.delete(user.id, job.avatar_id)
    await client.users.delete(user.id)
    say.step("avatars.delete, users.delete -> done")


async def run_demo(*, quiet: bool = False, rows: int = 24, out: TextIO | None = None) -> int:
    """Walk through every endpoint, then onboard ``rows`` sample people (0: none); the exit
    code."""
    walk = await _run_walk_through(quiet=quiet, out=out)
    if walk != 0 or rows == 0:
        return walk
    from ._sample import run_sample_onboarding

    return await run_sample_onboarding(rows=rows, out=out or sys.stdout)


async def run_demo_command(args: argparse.Namespace) -> int:
    return await run_demo(quiet=args.quiet, rows=args.rows)


async def _run_walk_through(*, quiet: bool, out: TextIO | None) -> int:
    out = out or sys.stdout
    say = _Printer(out, quiet)
    hub = EventHub()
    router = WebhookRouter()
    hub.attach(router)
    received: list[Event] = []

    @router.on_any
    async def show(event: Event) -> None:
        received.append(event)
        say.step(f"  webhook received: {event.event}")

    verifier = WebhookVerifier(DEFAULT_WEBHOOK_SECRET)
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            serve_webhooks(WebhookPipeline(verifier, router)) as receiver,
            AvaturnEmulator(
                webhook_url=receiver.url, processing_delay=0.2, render_delay=0.1, export_delay=0.1
            ) as emulator,
        ):
            say.step(f"emulator on {emulator.base_url}; webhook receiver on {receiver.url}")
            async with AvaturnClient(
                emulator.api_key, base_url=emulator.base_url, event_hub=hub
            ) as client:
                with anyio.fail_after(DEADLINE):
                    await _walk_through(client, say, Path(tmp))
    verified = f"{len(received)} signed webhooks verified and routed"
    print(f"demo finished: 10 endpoints called, {verified}", file=out, flush=True)
    return 0
