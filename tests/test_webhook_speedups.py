"""The optional orjson reader (the ``speedups`` extra) changes speed, never results."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from avaturn_async import _events
from avaturn_async.webhooks import WebhookParseError, parse_event

pytest.importorskip("orjson")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
fields = st.fixed_dictionaries(
    {"avatar_id": st.text(), "status": st.sampled_from(["ready", "failed", "new"])},
    optional={"extra": json_values, "user_id": st.text() | st.none()},
)
events = st.builds(
    lambda event, data: {"event": event, **data},
    st.sampled_from(["avatar.ready", "export.ready", "render.ready", "other.event"]),
    fields,
)


def both_ways(body: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """(result or error text) with orjson, then with the standard library alone."""

    def outcome() -> Any:
        try:
            return parse_event(body)
        except WebhookParseError as exc:
            return ("error", str(exc), exc.path)

    fast = outcome()
    with monkeypatch.context() as patched:
        patched.setattr(_events, "_fast_loads", None)
        plain = outcome()
    return fast, plain


@given(events)
def test_orjson_and_the_standard_library_parse_events_alike(data: dict[str, Any]) -> None:
    body = json.dumps(data).encode()
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, plain = both_ways(body, monkeypatch)
    assert fast == plain
    if not isinstance(fast, tuple):
        assert fast.raw == plain.raw


def test_a_body_orjson_refuses_is_read_by_the_standard_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = b'{"event":"avatar.ready","avatar_id":"\\ud800","status":"ready"}'
    fast, plain = both_ways(body, monkeypatch)
    assert fast == plain
    assert fast.raw == plain.raw


def test_integers_past_64_bits_outside_the_typed_fields_read_as_floats_with_orjson(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = b'{"event":"avatar.ready","avatar_id":"a","status":"ready","n":123456789012345678901234}'
    fast, plain = both_ways(body, monkeypatch)
    assert fast == plain  # the typed fields agree
    assert (type(fast.raw["n"]), type(plain.raw["n"])) == (float, int)


@pytest.mark.parametrize(
    "body", [b"{", b"[1,2]", b'{"event": NaN}', b"\xff\xfe", b'{"a":' * 3000 + b"1" + b"}" * 3000]
)
def test_errors_are_worded_the_same_with_or_without_orjson(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, plain = both_ways(body, monkeypatch)
    assert fast == plain
    assert fast[0] == "error"


def test_without_orjson_parsing_uses_the_standard_library() -> None:
    code = (
        "import sys; sys.modules['orjson'] = None\n"
        "from avaturn_async import _events\n"
        "from avaturn_async.webhooks import parse_event\n"
        "print(parse_event(b'{\"event\":\"avatar.ready\",\"avatar_id\":\"a\"}').avatar_id)\n"
        "assert _events._fast_loads is None\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (result.returncode, result.stdout.strip()) == (0, "a"), result.stderr


def test_orjson_is_imported_on_the_first_parse_not_with_the_package() -> None:
    code = (
        "import sys\n"
        "from avaturn_async.webhooks import parse_event\n"
        "before = 'orjson' in sys.modules\n"
        "parse_event(b'{\"event\":\"x\"}')\n"
        "print(before, 'orjson' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "True"], result.stderr
