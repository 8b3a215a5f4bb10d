"""Several Avaturn projects, one client: ``with_options(api_key=..., base_url=...)``,
against two emulators with different keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from avaturn_async import (
    AuthenticationError,
    AvaturnClient,
    ClientClosedError,
    ConfigurationError,
    UnsafeURLError,
)
from avaturn_async.testing import AvaturnEmulator
from tests.client_support import exported_url


@pytest.fixture
async def project_a() -> AsyncIterator[AvaturnEmulator]:
    async with AvaturnEmulator(api_key="key-of-project-a") as emulator:
        yield emulator


@pytest.fixture
async def project_b() -> AsyncIterator[AvaturnEmulator]:
    async with AvaturnEmulator(
        api_key="key-of-project-b", processing_delay=0.01, require_customization=False
    ) as emulator:
        yield emulator


async def test_a_derived_client_serves_another_project(
    project_a: AvaturnEmulator, project_b: AvaturnEmulator
) -> None:
    async with AvaturnClient(project_a.api_key, base_url=project_a.base_url) as client:
        other = client.with_options(api_key=project_b.api_key, base_url=project_b.base_url)
        in_b = await other.users.create()
        in_a = await client.users.create()
    assert (list(project_a.users), list(project_b.users)) == ([in_a.id], [in_b.id])


async def test_the_key_alone_changes_for_a_project_on_the_same_server(
    project_a: AvaturnEmulator,
) -> None:
    async with AvaturnClient(project_a.api_key, base_url=project_a.base_url) as client:
        with pytest.raises(AuthenticationError):
            await client.with_options(api_key="key-of-project-b").users.create()
        await client.users.create()  # the original keeps its own key
    assert len(project_a.users) == 1


async def test_a_derived_client_shares_the_pool_and_its_limits(
    project_a: AvaturnEmulator, project_b: AvaturnEmulator
) -> None:
    client = AvaturnClient(project_a.api_key, base_url=project_a.base_url, max_concurrency=3)
    other = client.with_options(api_key=project_b.api_key, base_url=project_b.base_url)
    await other.users.create()
    await client.aclose()
    assert (other.concurrency_limit, other.backoff is client.backoff) == (3, True)
    with pytest.raises(ClientClosedError):
        await other.users.create()  # closing the pool's owner closed it for both


def test_the_key_never_shows_in_the_derived_clients_repr_or_options() -> None:
    client = AvaturnClient("key-a", base_url="https://a.test")
    other = client.with_options(api_key="secret-key-b", base_url="https://b.test")
    shown = f"{other!r} {other.options!r}"
    assert "secret-key-b" not in shown
    assert "https://b.test" in shown


@pytest.mark.parametrize("changes", [{"api_key": ""}, {"api_key": None}, {"base_url": "ftp://x"}])
def test_a_bad_key_or_base_url_is_refused_at_once(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        AvaturnClient("k").with_options(**changes)  # type: ignore[arg-type]


async def test_a_derived_clients_downloads_may_reach_its_own_base_url(
    project_b: AvaturnEmulator, tmp_path: Path
) -> None:
    async with AvaturnClient(project_b.api_key, base_url=project_b.base_url) as direct:
        url = await exported_url(direct)
    async with AvaturnClient("key-a", base_url="https://api.avaturn.me") as client:
        other = client.with_options(api_key=project_b.api_key, base_url=project_b.base_url)
        with pytest.raises(UnsafeURLError):  # 127.0.0.1 is not the original's base URL
            await client.download(url, tmp_path / "refused.glb")
        saved = await other.download(url, tmp_path / "avatar.glb")
    assert saved.size == project_b.export_size
