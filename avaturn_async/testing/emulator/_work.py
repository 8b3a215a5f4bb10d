"""What the emulator does after answering: photo processing, renders and exports end
after their delays, in success or failure as the test hooks say, and each sends its event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from ._records import AvatarRecord, ExportRecord, Outcome, RenderRecord
from ._state import EmulatorState

if TYPE_CHECKING:
    from ._app import AvaturnEmulator

__all__ = ["SlowWork", "export_url", "render_url"]


def render_url(base_url: str, render: RenderRecord) -> str:
    return f"{base_url}/files/renders/{render.id}.{render.format}"


def export_url(base_url: str, export: ExportRecord) -> str:
    return f"{base_url}/files/exports/{export.token}.glb"


class SlowWork:
    """The jobs spawned by uploads, renders and exports, and the sets that make them fail."""

    def __init__(
        self, host: AvaturnEmulator, state: EmulatorState, emit: Callable[[dict[str, Any]], None]
    ) -> None:
        self._host = host
        self._state = state
        self._emit = emit  # the emulator's: records the event, then delivers its webhook
        self.failing_users: set[str] = set()
        self.failing_renders: set[str] = set()
        self.failing_exports: set[str] = set()

    def clear(self) -> None:
        for failing in (self.failing_users, self.failing_renders, self.failing_exports):
            failing.clear()

    def unfinished(self) -> list[Callable[[], Awaitable[None]]]:
        """The jobs of work a loaded state left under way, to start again."""
        state = self._state
        jobs: list[Callable[[], Awaitable[None]]] = [
            partial(self.process_avatar, avatar.id)
            for avatar in state.avatars.values()
            if avatar.status == "processing"
        ]
        jobs += [
            partial(self.finish_render, render.id, render.avatar_id)
            for render in state.renders.values()
            if render.status == "pending"
        ]
        jobs += [
            partial(self.finish_export, export.token, export.avatar_id)
            for export in state.exports.values()
            if export.status == "pending"
        ]
        return jobs

    def _avatar_outcome(self, avatar: AvatarRecord) -> Outcome:
        decide = self._host.avatar_outcome
        if decide is not None:
            return decide(avatar)
        return "failed" if avatar.user_id in self.failing_users else "ready"

    async def process_avatar(self, avatar_id: str) -> None:
        await anyio.sleep(self._host.processing_delay)
        avatar = self._state.avatars.get(avatar_id)
        if avatar is not None:
            self._emit(self._state.finish_processing(avatar, self._avatar_outcome(avatar)))

    async def finish_render(self, render_id: str, avatar_id: str) -> None:
        await anyio.sleep(self._host.render_delay)
        outcome: Outcome = "failed" if avatar_id in self.failing_renders else "ready"
        render = self._state.finish_render(render_id, outcome)
        if render is not None:
            url = render_url(self._host.base_url, render) if outcome == "ready" else None
            ids = {"avatar_id": render.avatar_id, "user_id": render.user_id, "id": render.id}
            self._emit({"event": "render.ready", **ids, "status": outcome, "render_url": url})

    async def finish_export(self, token: str, avatar_id: str) -> None:
        await anyio.sleep(self._host.export_delay)
        outcome: Outcome = "failed" if avatar_id in self.failing_exports else "ready"
        export = self._state.finish_export(token, outcome)
        if export is not None:
            url = export_url(self._host.base_url, export) if outcome == "ready" else None
            ids = {"avatar_id": export.avatar_id, "user_id": export.user_id}
            self._emit({"event": "export.ready", **ids, "status": outcome, "export_url": url})
