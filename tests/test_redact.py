"""URL redaction: one rule for reprs, logs, inbox errors and the onboarding journal."""

from __future__ import annotations

from avaturn_async._redact import redact_url, redact_urls


def test_redact_url_cuts_query_and_fragment() -> None:
    assert redact_url("https://cdn.example/a.glb?sig=s3cr3t#t") == "https://cdn.example/a.glb?<redacted>"


def test_redact_url_keeps_a_url_without_query() -> None:
    assert redact_url("https://cdn.example/a.glb") == "https://cdn.example/a.glb"


def test_redact_urls_cuts_the_query_of_every_url_in_a_text() -> None:
    text = "fetch 'https://a.example/x?sig=1' then http://b.example/y#tok=2 failed"
    assert redact_urls(text) == (
        "fetch 'https://a.example/x?<redacted>' then http://b.example/y?<redacted> failed"
    )


def test_redact_urls_leaves_a_text_without_urls_alone() -> None:
    assert redact_urls("no url here? #none") == "no url here? #none"
