"""Property tests: the webhook parser and verifier under arbitrary input.

Whatever arrives, the only exceptions are our typed ``WebhookError`` subclasses,
and a valid signature never vouches for a body it was not made for.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from avaturn_async.testing import make_webhook_secret, sign_webhook
from avaturn_async.webhooks import (
    AvatarReady,
    ExportReady,
    RenderReady,
    UnknownEvent,
    WebhookParseError,
    WebhookPayloadTooLargeError,
    WebhookVerificationError,
    WebhookVerifier,
    parse_event,
)

TOKEN = "s3cret-shared-token-1"
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
SECRET = make_webhook_secret()
NOW = 1_700_000_000
LIMIT = 4096
VERIFIER = WebhookVerifier(SECRET, max_body_size=LIMIT, now=lambda: float(NOW))
TOKEN_VERIFIER = WebhookVerifier.shared_token(TOKEN, query_param="token", max_body_size=LIMIT)
TYPED = {"avatar.ready": AvatarReady, "export.ready": ExportReady, "render.ready": RenderReady}

HEADER_NAMES = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "x-avaturn-token",
    "content-type",
)
FIELD_NAMES = (
    "event",
    "avatar_id",
    "user_id",
    "status",
    "id",
    "session_id",
    "export_url",
    "render_url",
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), inner, max_size=6),
    max_leaves=12,
)
event_like = st.fixed_dictionaries(
    {"event": st.sampled_from([*TYPED, "avatar.deleted"]) | json_scalars},
    optional={name: json_values for name in FIELD_NAMES[1:]},
)


def random_case(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda flips: "".join(c.upper() if up else c for c, up in zip(name, flips, strict=True))
    )


header_names = (st.sampled_from(HEADER_NAMES).flatmap(random_case)) | st.text(max_size=12)
header_values = (
    st.text(max_size=60)
    | st.integers(min_value=-(10**20), max_value=10**20).map(str)
    | st.binary(max_size=40).map(lambda raw: "v1," + raw.hex())
    | st.just(str(NOW))
)
headers = st.dictionaries(header_names, header_values, max_size=6)
bodies = st.binary(max_size=LIMIT + 64) | event_like.map(lambda d: json.dumps(d).encode())


def parse_or_typed_error(body: bytes) -> object:
    try:
        return parse_event(body, max_body_size=LIMIT)
    except (WebhookParseError, WebhookPayloadTooLargeError) as exc:
        return exc


@SETTINGS
@given(st.binary(max_size=LIMIT + 64))
def test_arbitrary_bytes_parse_or_raise_a_typed_error(body: bytes) -> None:
    parse_or_typed_error(body)


@SETTINGS
@given(event_like)
def test_event_like_json_parses_to_its_type_or_raises_a_parse_error(data: dict[str, Any]) -> None:
    result = parse_or_typed_error(json.dumps(data).encode())
    if isinstance(result, Exception):
        assert isinstance(result, WebhookParseError)
        return
    expected = TYPED.get(data["event"], UnknownEvent)
    assert type(result) is expected


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=1, max_value=100_000), st.booleans())
def test_deeply_nested_json_is_a_parse_error(depth: int, arrays: bool) -> None:
    body = b"[" * depth + b"]" * depth if arrays else b'{"a":' * depth + b"1" + b"}" * depth
    try:
        parse_event(body, max_body_size=10**7)
    except WebhookParseError:
        return
    raise AssertionError("nested JSON without an event name was accepted")


@SETTINGS
@given(bodies, headers)
def test_arbitrary_unsigned_deliveries_are_rejected_with_a_typed_error(
    body: bytes, given_headers: dict[str, str]
) -> None:
    try:
        VERIFIER.verify_and_parse(body, given_headers)
    except (WebhookVerificationError, WebhookPayloadTooLargeError):
        return
    raise AssertionError("a delivery without a valid signature was accepted")


@SETTINGS
@given(bodies, headers, st.dictionaries(st.sampled_from(["token", "x"]), st.text(max_size=12)))
def test_arbitrary_deliveries_without_the_token_are_rejected_with_a_typed_error(
    body: bytes, given_headers: dict[str, str], query: dict[str, str]
) -> None:
    try:
        TOKEN_VERIFIER.verify_and_parse(body, given_headers, query=query)
    except (WebhookVerificationError, WebhookPayloadTooLargeError):
        return
    raise AssertionError("a delivery without the shared token was accepted")


@SETTINGS
@given(bodies)
def test_arbitrary_bodies_with_a_valid_signature_parse_or_raise_a_parse_error(body: bytes) -> None:
    signed_body, signed_headers = sign_webhook(body, SECRET, timestamp=NOW)
    try:
        event = VERIFIER.verify_and_parse(signed_body, signed_headers)
    except (WebhookParseError, WebhookPayloadTooLargeError):
        return
    assert isinstance(event, (*TYPED.values(), UnknownEvent))


@st.composite
def mutated(draw: st.DrawFn, body: bytes) -> bytes:
    """``body`` changed by a bit flip, an insertion, a deletion or a truncation."""
    kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
    if kind == "insert" or not body:
        at = draw(st.integers(0, len(body)))
        return body[:at] + draw(st.binary(min_size=1, max_size=8)) + body[at:]
    at = draw(st.integers(0, len(body) - 1))
    if kind == "flip":
        bit = 1 << draw(st.integers(0, 7))
        return body[:at] + bytes([body[at] ^ bit]) + body[at + 1 :]
    if kind == "delete":
        return body[:at] + body[at + 1 :]
    return body[:at]


@SETTINGS
@given(st.data(), bodies.filter(lambda body: len(body) <= LIMIT))
def test_a_valid_signature_over_a_mutated_body_never_verifies(
    data: st.DataObject, body: bytes
) -> None:
    _, signed_headers = sign_webhook(body, SECRET, timestamp=NOW)
    changed = data.draw(mutated(body))
    assume(changed != body and len(changed) <= LIMIT)
    try:
        VERIFIER.verify(changed, signed_headers)
    except WebhookVerificationError:
        return
    raise AssertionError("a signature verified a body it was not made for")


@SETTINGS
@given(event_like, st.sampled_from(["webhook-id", "webhook-timestamp"]), st.integers(1, 10**6))
def test_a_valid_signature_with_a_changed_id_or_timestamp_never_verifies(
    data: dict[str, Any], header: str, shift: int
) -> None:
    body, signed_headers = sign_webhook(json.dumps(data).encode(), SECRET, timestamp=NOW)
    changed = dict(signed_headers)
    if header == "webhook-id":
        changed[header] = changed[header] + str(shift)
    else:
        changed[header] = str(NOW + (shift % 300) + 1)
    try:
        VERIFIER.verify(body, changed)
    except WebhookVerificationError:
        return
    raise AssertionError("a signature verified a changed id or timestamp")


@SETTINGS
@given(event_like)
def test_a_signed_delivery_verifies_as_sent(data: dict[str, Any]) -> None:
    body, signed_headers = sign_webhook(json.dumps(data).encode(), SECRET, timestamp=NOW)
    assume(len(body) <= LIMIT)  # larger bodies are refused by size, tested on their own
    VERIFIER.verify(body, signed_headers)
