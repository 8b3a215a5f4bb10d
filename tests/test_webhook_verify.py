"""WebhookVerifier: Standard Webhooks signatures, shared tokens, interoperability."""

from __future__ import annotations

import base64
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest
import standardwebhooks
import svix
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from avaturn_async._errors import ConfigurationError
from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import (
    RenderReady,
    VerificationFailure,
    Verifier,
    WebhookPayloadTooLargeError,
    WebhookVerificationError,
    WebhookVerifier,
)
from avaturn_async.webhooks._signing import SigningKey, decode_secret, sign

TOKEN = "s3cret-shared-token-1"

NOW = 1_700_000_000
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
BODY = b'{"event":"render.ready","avatar_id":"a","user_id":"u","id":"r","status":"ready"}'


def verifier(secret: object = SECRET, **kwargs: object) -> WebhookVerifier:
    return WebhookVerifier(secret, now=lambda: NOW, **kwargs)  # type: ignore[arg-type]


def signed(
    body: bytes = BODY, secret: str = SECRET, *, msg_id: str = "msg_1", timestamp: int = NOW
) -> tuple[bytes, dict[str, str]]:
    return sign_webhook(body, secret, msg_id=msg_id, timestamp=timestamp)


def rejection(body: bytes, headers: object, v: Verifier | None = None) -> str:
    with pytest.raises(WebhookVerificationError) as info:
        (v or verifier()).verify(body, headers)  # type: ignore[arg-type]
    return info.value.reason


def test_valid_signature_verifies() -> None:
    body, headers = signed()
    verifier().verify(body, headers)  # raises WebhookVerificationError when it does not


def test_verify_and_parse_returns_a_typed_event() -> None:
    body, headers = signed()
    event = verifier().verify_and_parse(body, headers)
    assert isinstance(event, RenderReady)
    assert event.id == "r"


def test_tampered_body_has_no_matching_signature() -> None:
    _, headers = signed()
    assert rejection(BODY.replace(b'"r"', b'"x"'), headers) == "no_matching_signature"


def test_reserialized_body_does_not_verify() -> None:
    body, headers = signed()
    reserialized = json.dumps(json.loads(body)).encode()
    assert rejection(reserialized, headers) == "no_matching_signature"


def test_wrong_secret_has_no_matching_signature() -> None:
    body, headers = signed(secret=OTHER_SECRET)
    assert rejection(body, headers) == "no_matching_signature"


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_rejected(name: str) -> None:
    body, headers = signed()
    del headers[name]
    assert rejection(body, headers) == VerificationFailure.MISSING_HEADER


def test_missing_header_message_names_the_header() -> None:
    body, headers = signed()
    del headers["webhook-timestamp"]
    with pytest.raises(WebhookVerificationError, match="webhook-timestamp"):
        verifier().verify(body, headers)


def test_empty_header_counts_as_missing() -> None:
    body, headers = signed()
    headers["webhook-id"] = ""
    assert rejection(body, headers) == "missing_header"


@pytest.mark.parametrize(
    "stamp", ["abc", "1700000000.5", "-5", "+1700000000", " 1700000000", "\u0661\u0667", "9" * 5000]
)
def test_non_integer_timestamp_is_invalid(stamp: str) -> None:
    body, headers = signed()
    headers["webhook-timestamp"] = stamp
    assert rejection(body, headers) == "invalid_timestamp"


def test_timestamp_older_than_tolerance_is_rejected() -> None:
    body, headers = signed(timestamp=NOW - 301)
    assert rejection(body, headers) == "timestamp_too_old"


def test_timestamp_newer_than_tolerance_is_rejected() -> None:
    body, headers = signed(timestamp=NOW + 301)
    assert rejection(body, headers) == "timestamp_too_new"


@pytest.mark.parametrize("offset", [-300, 300])
def test_timestamp_at_the_tolerance_edge_is_accepted(offset: int) -> None:
    body, headers = signed(timestamp=NOW + offset)
    verifier().verify(body, headers)


def test_custom_tolerance_is_used() -> None:
    body, headers = signed(timestamp=NOW - 61)
    assert rejection(body, headers, verifier(tolerance=timedelta(minutes=1))) == "timestamp_too_old"


def test_any_one_matching_signature_among_several_is_enough() -> None:
    body, headers = signed()
    wrong = sign(decode_secret(OTHER_SECRET), "msg_1", NOW, body)
    headers["webhook-signature"] = f"v2,abc {wrong} {headers['webhook-signature']}"
    verifier().verify(body, headers)


def test_only_unknown_signature_versions_are_unsupported() -> None:
    body, headers = signed()
    headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    assert rejection(body, headers) == "unsupported_signature_version"


@pytest.mark.parametrize(
    "value",
    ["v1,not*base64", "v1", "v1,YWJj", "v1,ä", "garbage"],
    ids=["bad-base64", "no-comma", "wrong-length", "non-ascii", "no-version"],
)
def test_malformed_signature_is_invalid(value: str) -> None:
    body, headers = signed()
    headers["webhook-signature"] = value
    assert rejection(body, headers) == "invalid_signature"


def test_well_formed_wrong_signature_wins_over_malformed_entries() -> None:
    body, headers = signed()
    wrong = sign(decode_secret(OTHER_SECRET), "msg_1", NOW, body)
    headers["webhook-signature"] = f"v1,!!! {wrong}"
    assert rejection(body, headers) == "no_matching_signature"


def test_non_canonical_base64_of_the_right_signature_is_accepted() -> None:
    body, headers = signed()
    encoded = headers["webhook-signature"][3:]
    # The 43rd character carries 2 unused bits: flipping them keeps the same bytes.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(encoded[42]) ^ 1]
    headers["webhook-signature"] = f"v1,{encoded[:42]}{last}="
    assert headers["webhook-signature"] != signed()[1]["webhook-signature"]
    verifier().verify(body, headers)


def test_extra_spaces_between_signatures_are_tolerated() -> None:
    body, headers = signed()
    headers["webhook-signature"] = f"  v2,x   {headers['webhook-signature']}  "
    verifier().verify(body, headers)


def test_raw_bytes_secret_equals_whsec_secret() -> None:
    body, headers = signed()
    verifier(b"k" * 32).verify(body, headers)


def test_any_of_several_secrets_verifies_during_rotation() -> None:
    rotating = verifier([OTHER_SECRET, SECRET])
    for secret in (SECRET, OTHER_SECRET):
        body, headers = signed(secret=secret)
        rotating.verify(body, headers)


def test_svix_header_names_are_accepted() -> None:
    body, headers = signed()
    aliased = {k.replace("webhook-", "svix-"): v for k, v in headers.items()}
    verifier().verify(body, aliased)


@pytest.mark.parametrize("case", [str.upper, str.title])
def test_header_names_in_a_plain_dict_are_case_insensitive(case: object) -> None:
    body, headers = signed()
    verifier().verify(body, {case(k): v for k, v in headers.items()})  # type: ignore[operator]


def test_aiohttp_cimultidict_headers_are_accepted() -> None:
    body, headers = signed()
    verifier().verify(body, CIMultiDict({k.title(): v for k, v in headers.items()}))


def test_body_over_the_limit_is_refused_before_hashing() -> None:
    body, headers = signed(b"x" * 101)
    with pytest.raises(WebhookPayloadTooLargeError) as info:
        verifier(max_body_size=100).verify(body, headers)
    assert info.value.limit == 100


def test_verification_error_is_a_value_error() -> None:
    assert issubclass(WebhookVerificationError, ValueError)


def test_error_messages_never_echo_secret_or_expected_signature() -> None:
    body, headers = signed()
    expected = headers["webhook-signature"][3:]
    headers["webhook-signature"] = "v1," + base64.b64encode(b"\0" * 32).decode()
    with pytest.raises(WebhookVerificationError) as info:
        verifier().verify(body, headers)
    text = str(info.value) + repr(info.value)
    assert expected not in text
    assert SECRET[6:] not in text


def test_repr_does_not_show_secrets() -> None:
    text = repr(verifier([SECRET, OTHER_SECRET]))
    assert SECRET[6:] not in text
    assert OTHER_SECRET[6:] not in text
    assert "secrets=2" in text


def test_injected_clock_is_used() -> None:
    body, headers = signed(timestamp=NOW)
    later = WebhookVerifier(SECRET, now=lambda: NOW + 3600)
    assert rejection(body, headers, later) == "timestamp_too_old"


@pytest.mark.parametrize(
    "secret", [[], "whsec_***", b"", "whsec_"], ids=["none", "bad-base64", "empty-bytes", "empty"]
)
def test_unusable_secrets_are_a_configuration_error(secret: object) -> None:
    with pytest.raises(ConfigurationError):
        verifier(secret)


@pytest.mark.parametrize("factory", [WebhookVerifier, WebhookVerifier.shared_token])
def test_non_positive_body_limit_is_a_configuration_error(factory: object) -> None:
    with pytest.raises(ConfigurationError):
        factory(SECRET, max_body_size=0)  # type: ignore[operator]


def test_negative_tolerance_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        verifier(tolerance=timedelta(seconds=-1))


@given(key=st.binary(min_size=1, max_size=200), message=st.binary(max_size=300))
def test_keyed_hmac_copy_equals_one_shot_stdlib_hmac(key: bytes, message: bytes) -> None:
    signing_key = SigningKey(key)
    signing_key.digest(b"an earlier message must not leak into the next digest")
    assert signing_key.digest(message) == hmac.digest(key, message, "sha256")


@given(
    msg_id=st.text(max_size=20),
    stamp=st.text(max_size=12),
    signature=st.text(max_size=60),
)
def test_arbitrary_headers_only_ever_raise_verification_errors(
    msg_id: str, stamp: str, signature: str
) -> None:
    headers = {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": signature}
    with pytest.raises(WebhookVerificationError):
        verifier().verify(BODY, headers)


# -- interoperability with the reference implementations ----------------------------


def reference_headers(signer: object, msg_id: str, body: bytes) -> dict[str, str]:
    now = datetime.now(tz=timezone.utc)
    signature = signer.sign(msg_id, now, body.decode())  # type: ignore[attr-defined]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def test_standardwebhooks_signature_verifies_with_ours() -> None:
    secret = make_webhook_secret()
    headers = reference_headers(standardwebhooks.Webhook(secret), "msg_ref", BODY)
    WebhookVerifier(secret).verify(BODY, headers)


def test_our_signature_verifies_with_standardwebhooks() -> None:
    secret = make_webhook_secret()
    body, headers = sign_webhook(make_render_ready(), secret)
    assert standardwebhooks.Webhook(secret).verify(body, headers) == json.loads(body)


def test_svix_signature_with_svix_headers_verifies_with_ours() -> None:
    secret = make_webhook_secret()
    headers = reference_headers(svix.Webhook(secret), "msg_svix", BODY)
    svix_headers = {k.replace("webhook-", "svix-"): v for k, v in headers.items()}
    WebhookVerifier(secret).verify(BODY, svix_headers)


def test_our_signature_verifies_with_svix() -> None:
    secret = make_webhook_secret()
    body, headers = sign_webhook(make_render_ready(), secret)
    svix.Webhook(secret).verify(
        body, {k.replace("webhook-", "svix-"): v for k, v in headers.items()}
    )


def test_reference_rejects_what_we_reject_for_a_wrong_secret() -> None:
    body, headers = sign_webhook(BODY, make_webhook_secret())
    other = make_webhook_secret()
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(other).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        WebhookVerifier(other).verify(body, headers)


# -- shared-token mode ----------------------------------------------------------------


def test_shared_token_header_matches() -> None:
    WebhookVerifier.shared_token(TOKEN).verify(BODY, {"x-avaturn-token": TOKEN})


def test_shared_token_header_name_is_case_insensitive() -> None:
    v = WebhookVerifier.shared_token(TOKEN, header="X-Hook-Token")
    v.verify(BODY, {"X-HOOK-TOKEN": TOKEN})


def test_wrong_shared_token_is_invalid() -> None:
    v = WebhookVerifier.shared_token(TOKEN)
    assert rejection(BODY, {"x-avaturn-token": "nope"}, v) == "invalid_token"


def test_absent_shared_token_is_missing() -> None:
    v = WebhookVerifier.shared_token(TOKEN)
    assert rejection(BODY, {}, v) == "missing_token"


def test_shared_token_from_query_parameter() -> None:
    v = WebhookVerifier.shared_token(TOKEN, header=None, query_param="token")
    v.verify(BODY, {}, query={"token": TOKEN})


def test_query_only_token_ignores_the_header() -> None:
    v = WebhookVerifier.shared_token(TOKEN, header=None, query_param="token")
    with pytest.raises(WebhookVerificationError):
        v.verify(BODY, {"x-avaturn-token": TOKEN})


def test_any_of_several_shared_tokens_matches() -> None:
    v = WebhookVerifier.shared_token(["old-shared-token-01", "new-shared-token-01"])
    v.verify(BODY, {"x-avaturn-token": "old-shared-token-01"})
    v.verify(BODY, {"x-avaturn-token": "new-shared-token-01"})


def test_shared_token_repr_hides_the_token() -> None:
    assert TOKEN not in repr(WebhookVerifier.shared_token(TOKEN))


def test_shared_token_error_does_not_echo_the_token() -> None:
    with pytest.raises(WebhookVerificationError) as info:
        WebhookVerifier.shared_token(TOKEN).verify(BODY, {"x-avaturn-token": "guess"})
    assert TOKEN not in str(info.value)
    assert "guess" not in str(info.value)


def test_shared_token_needs_somewhere_to_read_it() -> None:
    with pytest.raises(ConfigurationError):
        WebhookVerifier.shared_token(TOKEN, header=None)


def test_empty_shared_token_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        WebhookVerifier.shared_token("")
