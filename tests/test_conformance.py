"""The emulator conforms to the API's OpenAPI document (``docs/openapi.yaml``).

Schemathesis generates valid requests for each of the ten operations and checks
every answer: no 5xx, a documented status code, a documented content type and a
body matching the documented schema. Generated ids are random, so most would only
ever meet a 404; half of the examples therefore swap in real ids (a seeded user and
a ready, customized avatar, or fresh ones for the deletes) and real asset ids, so
the success answers are checked too. Examples are derandomized: a run is
reproducible, and its size is bounded by ``EXAMPLES`` per operation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from avaturn_async import AssetSlot, AssetSlots, AvaturnClient, ExternalAvatarCustomization
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator

OPENAPI = Path(__file__).resolve().parents[1] / "docs" / "openapi.yaml"
EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPERATIONS = [
    "POST /api/v1/users/new",
    "DELETE /api/v1/users/{user_id}",
    "POST /api/v1/sessions/new",
    "GET /api/v1/users/{user_id}/avatars",
    "POST /api/v1/avatars/new",
    "GET /api/v1/avatars/{id}/customization",
    "PUT /api/v1/avatars/{id}/customization",
    "DELETE /api/v1/users/{user_id}/avatars/{avatar_id}",
    "POST /api/v1/renders/new",
    "POST /api/v1/exports/new",
]


@pytest.fixture(scope="module")
def schema() -> Any:
    return schemathesis.openapi.from_path(OPENAPI)


def operation(schema: Any, label: str) -> Any:
    for result in schema.get_all_operations():
        found = result.ok()
        if found.label == label:
            return found
    raise LookupError(label)


def test_openapi_document_is_valid_openapi_3_1(schema: Any) -> None:
    schema.validate()
    assert schema.raw_schema["openapi"] == "3.1.0"


def test_openapi_document_has_the_ten_endpoints(schema: Any) -> None:
    assert sorted(result.ok().label for result in schema.get_all_operations()) == sorted(OPERATIONS)


class RealIds:
    """Ids that exist on the emulator, put into generated cases in place of random ones."""

    def __init__(self, emu: AvaturnEmulator, http: requests.Session, user: str, avatar: str):
        self._emu = emu
        self._http = http
        self.user = user
        self.avatar = avatar

    def _post(self, path: str, body: Any = None) -> Any:
        response = self._http.post(f"{self._emu.base_url}/api/v1/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def apply(self, case: Any) -> None:
        fresh = case.method == "DELETE"  # deletes get their own user or avatar
        path = case.path_parameters or {}
        if "avatar_id" in path:
            path["user_id"] = self.user
            path["avatar_id"] = self._post("avatars/new", {"user_id": self.user})["avatar_id"]
        elif "user_id" in path:
            path["user_id"] = self._post("users/new")["id"] if fresh else self.user
        if "id" in path:
            path["id"] = self.avatar
        if case.query and "avatar_id" in case.query:
            case.query["avatar_id"] = self.avatar
        if isinstance(case.body, dict):
            self._apply_to_body(case.body)

    def _apply_to_body(self, body: dict[str, Any]) -> None:
        if "user_id" in body:
            body["user_id"] = self.user
        config = body.get("config")
        if isinstance(config, dict) and "avatar_id" in config:
            config["avatar_id"] = self.avatar
        assets = body.get("assets")
        for slot, chosen in (assets or {}).items():
            if isinstance(chosen, dict) and slot in self._emu.SAMPLE_ASSETS:
                chosen["id"] = self._emu.SAMPLE_ASSETS[slot]


async def seed(emu: AvaturnEmulator) -> tuple[str, str]:
    """A user and one ready, customized avatar of theirs: (user id, avatar id)."""
    frontal, side_1, side_2 = sample_photo_paths()
    outfit = ExternalAvatarCustomization(
        assets=AssetSlots(clothing=AssetSlot(id=emu.SAMPLE_ASSETS["clothing"]))
    )
    async with AvaturnClient(emu.api_key, base_url=emu.base_url) as client:
        user = await client.users.create()
        job = await client.avatars.create_from_photos(
            user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="female"
        )
        with anyio.fail_after(10):
            await job.wait(poll_interval=0.01)
        await client.avatars.set_customization(job.avatar_id, outfit)
    return user.id, job.avatar_id


def exercise(op: Any, emu: AvaturnEmulator, user: str, avatar: str) -> None:
    """Run ``EXAMPLES`` generated requests against ``op``; raise on the first failure."""
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {emu.api_key}"
        ids = RealIds(emu, http, user, avatar)

        @hypothesis.settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @hypothesis.given(case=op.as_strategy(), real=st.booleans())
        def check(case: Any, real: bool) -> None:
            if real:
                ids.apply(case)
            response = case.call(base_url=emu.base_url, session=http)
            case.validate_response(response, checks=CHECKS)

        check()


async def run_against_emulator(
    schema: Any, label: str, emu: AvaturnEmulator, run: Callable[..., None] = exercise
) -> None:
    user, avatar = await seed(emu)
    # Schemathesis is synchronous: it runs in a thread while this loop serves the emulator.
    with anyio.fail_after(120):
        await anyio.to_thread.run_sync(run, operation(schema, label), emu, user, avatar)


@pytest.mark.parametrize("label", OPERATIONS)
async def test_emulator_answers_conform_to_the_openapi_document(
    schema: Any, emulator: AvaturnEmulator, label: str
) -> None:
    await run_against_emulator(schema, label, emulator)
