"""The verifier's boundary: input types, weak or missing secrets, bounded work per delivery."""

from __future__ import annotations

import base64

import pytest

from avaturn_async import ConfigurationError, WebhookError, WebhookInputError
from avaturn_async.testing import DEFAULT_WEBHOOK_SECRET, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import VerificationFailure, WebhookVerificationError, WebhookVerifier
from avaturn_async.webhooks._signing import SigningKey, decode_secret, sign, signed_content
from avaturn_async.webhooks._token import MIN_TOKEN_LENGTH
from avaturn_async.webhooks._verifier import (
    MAX_ID_LENGTH,
    MAX_SIGNATURE_ENTRIES,
    MAX_SIGNATURE_HEADER_LENGTH,
    MIN_SECRET_BYTES,
)

NOW = 1_700_000_000
SECRET = make_webhook_secret()
BODY = b'{"event":"render.ready","avatar_id":"a","user_id":"u","id":"r","status":"ready"}'
TOKEN = "a-shared-token-long-enough"


def verifier(secrets: object = SECRET) -> WebhookVerifier:
    return WebhookVerifier(secrets, now=lambda: NOW)  # type: ignore[arg-type]


def signed_headers(secret: str = SECRET, msg_id: str = "msg_1") -> dict[str, str]:
    return sign_webhook(BODY, secret, msg_id=msg_id, timestamp=NOW)[1]


@pytest.fixture
def hmac_count(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts HMAC computations made by every SigningKey."""
    count = [0]
    original = SigningKey.digest

    def counting(self: SigningKey, message: bytes) -> bytes:
        count[0] += 1
        return original(self, message)

    monkeypatch.setattr(SigningKey, "digest", counting)
    return count


# -- header and body types ---------------------------------------------------------


def test_bytes_header_values_verify() -> None:
    headers = {name: value.encode() for name, value in signed_headers().items()}
    assert verifier().verify_and_parse(BODY, headers).event == "render.ready"


def test_raw_asgi_header_pairs_in_a_dict_verify() -> None:
    raw = {name.encode().upper(): value.encode() for name, value in signed_headers().items()}
    verifier().verify(BODY, raw)


@pytest.mark.parametrize("bad", [12345, None, 1.5, ["v1,x"]], ids=["int", "None", "float", "list"])
def test_a_header_value_of_another_type_is_a_webhook_input_error(bad: object) -> None:
    headers: dict[str, object] = {**signed_headers(), "webhook-signature": bad}
    with pytest.raises(WebhookInputError, match="must be str or bytes"):
        verifier().verify(BODY, headers)  # type: ignore[arg-type]


def test_a_str_body_is_a_webhook_input_error_asking_for_the_raw_bytes() -> None:
    with pytest.raises(WebhookInputError, match="raw request body as bytes") as info:
        verifier().verify_and_parse(BODY.decode(), signed_headers())  # type: ignore[arg-type]
    assert isinstance(info.value, WebhookError)
    assert isinstance(info.value, TypeError)
    assert "break the signature" in str(info.value)


def test_a_bytearray_body_verifies() -> None:
    verifier().verify(bytearray(BODY), signed_headers())  # type: ignore[arg-type]


def test_headers_that_are_not_a_mapping_are_a_webhook_input_error() -> None:
    pairs = list(signed_headers().items())
    with pytest.raises(WebhookInputError, match="mapping"):
        verifier().verify(BODY, pairs)  # type: ignore[arg-type]


# -- secrets -------------------------------------------------------------------------


def test_unset_secret_is_a_configuration_error_naming_the_problem() -> None:
    with pytest.raises(ConfigurationError, match="not set"):
        WebhookVerifier(None)  # type: ignore[arg-type]


def test_a_secret_of_another_type_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="str or bytes"):
        WebhookVerifier(1234)  # type: ignore[arg-type]


def test_a_one_byte_hmac_key_is_refused_with_how_to_generate_one() -> None:
    with pytest.raises(ConfigurationError, match="too weak") as info:
        WebhookVerifier("whsec_AA")
    assert "secrets.token_bytes(32)" in str(info.value)


def test_keys_shorter_than_the_minimum_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        WebhookVerifier(b"k" * (MIN_SECRET_BYTES - 1))


def test_a_key_of_the_minimum_length_is_accepted() -> None:
    WebhookVerifier("whsec_" + base64.b64encode(b"k" * MIN_SECRET_BYTES).decode())


def test_one_weak_secret_among_several_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="too weak"):
        WebhookVerifier([SECRET, b"short"])


@pytest.mark.parametrize(
    "token",
    ["x" * (MIN_TOKEN_LENGTH - 1), " " * 40, "\t\n" * 10, " " + TOKEN],
    ids=["short", "spaces", "whitespace", "leading-space"],
)
def test_weak_shared_tokens_are_refused_with_how_to_generate_one(token: str) -> None:
    with pytest.raises(ConfigurationError, match="too weak") as info:
        WebhookVerifier.shared_token(token)
    assert "secrets.token_urlsafe(32)" in str(info.value)


def test_unset_shared_token_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not set"):
        WebhookVerifier.shared_token(None)  # type: ignore[arg-type]


def test_the_secrets_our_helpers_generate_are_strong_enough() -> None:
    assert len(decode_secret(make_webhook_secret())) >= MIN_SECRET_BYTES
    assert len(decode_secret(DEFAULT_WEBHOOK_SECRET)) >= MIN_SECRET_BYTES


# -- bounded work --------------------------------------------------------------------


def test_a_huge_signature_header_costs_no_hmac(hmac_count: list[int]) -> None:
    secrets = [make_webhook_secret() for _ in range(50)]
    headers = {**signed_headers(), "webhook-signature": "v1,AAAA " * 130_000}
    checker = verifier(secrets)
    hmac_count[0] = 0
    with pytest.raises(WebhookVerificationError) as info:
        checker.verify(BODY, headers)
    assert info.value.reason == VerificationFailure.HEADER_TOO_LONG
    assert hmac_count[0] == 0


def test_a_huge_webhook_id_costs_no_hmac(hmac_count: list[int]) -> None:
    headers = signed_headers(msg_id="m" * (MAX_ID_LENGTH + 1))
    hmac_count[0] = 0
    with pytest.raises(WebhookVerificationError) as info:
        verifier().verify(BODY, headers)
    assert info.value.reason == VerificationFailure.HEADER_TOO_LONG
    assert hmac_count[0] == 0


def test_a_full_length_hostile_header_costs_one_hmac_per_secret(hmac_count: list[int]) -> None:
    secrets = [make_webhook_secret() for _ in range(50)]
    entry = "v1," + base64.b64encode(b"\0" * 32).decode() + " "
    hostile = (entry * (MAX_SIGNATURE_HEADER_LENGTH // len(entry))).strip()
    headers = {**signed_headers(), "webhook-signature": hostile}
    checker = verifier(secrets)
    hmac_count[0] = 0
    with pytest.raises(WebhookVerificationError) as info:
        checker.verify(BODY, headers)
    assert info.value.reason == VerificationFailure.NO_MATCHING_SIGNATURE
    assert hmac_count[0] == len(secrets)


def _with_valid_entry_at(position: int) -> dict[str, str]:
    headers = signed_headers()
    decoy = "v1," + base64.b64encode(b"\0" * 32).decode()
    entries = [decoy] * (position - 1) + [headers["webhook-signature"]]
    return {**headers, "webhook-signature": " ".join(entries)}


def test_a_valid_signature_within_the_entries_considered_verifies() -> None:
    verifier().verify(BODY, _with_valid_entry_at(MAX_SIGNATURE_ENTRIES))


def test_entries_past_the_cap_are_not_considered() -> None:
    with pytest.raises(WebhookVerificationError) as info:
        verifier().verify(BODY, _with_valid_entry_at(MAX_SIGNATURE_ENTRIES + 1))
    assert info.value.reason == VerificationFailure.NO_MATCHING_SIGNATURE


def test_a_signature_made_by_sign_matches_signed_content() -> None:
    key = decode_secret(SECRET)
    expected = SigningKey(key).signature(signed_content("msg_1", str(NOW), BODY))
    assert sign(key, "msg_1", NOW, BODY) == expected
