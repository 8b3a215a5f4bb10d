"""What a type checker sees: closed sets are Literal types, SDK results have metadata."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

from avaturn_async import NewUserResponse, response_of

SNIPPET = textwrap.dedent(
    """
    from avaturn_async import AvaturnClient, response_of

    async def observed(client: AvaturnClient) -> int:
        user = await client.users.create()
        meta = response_of(user)
        return meta.status + meta.attempts  # no `assert meta` needed

    async def listed(client: AvaturnClient) -> int:
        return response_of(await client.avatars.list("u")).status

    async def bad_format(client: AvaturnClient) -> None:
        await client.renders.create("a", format="gif")  # line 13

    async def bad_body(client: AvaturnClient) -> None:
        await client.avatars.upload_photos(
            "u", frontal=b"", side_1=b"", side_2=b"", body_type="other"  # line 17
        )
    """
)


@pytest.mark.slow
def test_type_checker_refuses_bad_literals_and_needs_no_assert_on_metadata(
    tmp_path: Path,
) -> None:
    source = tmp_path / "snippet.py"
    source.write_text(SNIPPET)
    out, _, _ = api.run(["--strict", "--no-error-summary", "--hide-error-context", str(source)])
    flagged = sorted({int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line})
    assert flagged == [13, 17], out


def test_response_of_a_model_built_by_hand_raises_lookup_error() -> None:
    with pytest.raises(LookupError, match="not returned by an AvaturnClient call"):
        response_of(NewUserResponse(id="U"))


SYNC_SNIPPET = textwrap.dedent(
    """
    from avaturn_async import AvatarReady, NewUserResponse, sync

    def calls(client: sync.AvaturnClient) -> None:
        user: NewUserResponse = client.users.create()
        job = client.avatars.create_from_photos(
            user.id, frontal=b"", side_1=b"", side_2=b"", body_type="male"
        )
        ready: AvatarReady = job.wait(timeout=1)
        name: str = job.avatar_id + ready.avatar_id
        client.renders.create("a", format="gif")  # line 11
        client.users.create(bogus=1)  # line 12
        client.exports.create("a").url.upper()  # line 13: str | None
    """
)


@pytest.mark.slow
def test_the_sync_facade_has_the_async_methods_signatures_and_sync_jobs(tmp_path: Path) -> None:
    source = tmp_path / "sync_snippet.py"
    source.write_text(SYNC_SNIPPET)
    out, _, _ = api.run(["--strict", "--no-error-summary", "--hide-error-context", str(source)])
    flagged = sorted({int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line})
    assert flagged == [11, 12, 13], out
