"""The emulator's records: what it stores of users, avatars, renders, exports and sessions.

Plain dataclasses, mutated only by :class:`~._state.EmulatorState`; tests
read them through the emulator's read-only views (``emu.users``, ``emu.avatars``...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = ["AvatarRecord", "ExportRecord", "Outcome", "RenderRecord", "SessionRecord", "UserRecord"]

Outcome = Literal["ready", "failed"]
"""How processing, a render or an export ends."""


@dataclass
class UserRecord:
    id: str
    created_at: datetime


@dataclass
class AvatarRecord:
    """One avatar. ``status`` follows pending -> processing -> ready | failed."""

    id: str
    user_id: str
    created_at: datetime
    upload_signature: str = field(repr=False)
    status: str = "pending"
    upload_state: Literal["none", "receiving", "done"] = "none"
    body_type: str | None = None
    telephoto: bool | None = None
    upload_bytes: int = 0
    photo_sizes: dict[str, int] = field(default_factory=dict)
    photo_sha256: dict[str, str] = field(default_factory=dict)
    customization: dict[str, Any] | None = None
    version: int = 0

    @property
    def customized(self) -> bool:
        return self.customization is not None

    def list_item(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "created_at": self.created_at.isoformat()}


@dataclass
class RenderRecord:
    id: str
    avatar_id: str
    user_id: str
    scene: str
    format: str
    status: str = "pending"


@dataclass
class ExportRecord:
    """One export job of one avatar version; ``token`` names its file."""

    token: str
    avatar_id: str
    user_id: str
    version: int
    status: str = "pending"


@dataclass
class SessionRecord:
    id: str
    user_id: str
    config: dict[str, Any]
