"""Reading proxies and TLS settings (``_network``): pure, no server."""

from __future__ import annotations

import ssl

import pytest
import yarl

from avaturn_async import AvaturnClient, ConfigurationError
from avaturn_async._network import NoProxy, parse_proxy, read_network


def proxy_of(environ: dict[str, str], url: str) -> str | None:
    settings = read_network(proxy=None, trust_env=True, ssl_context=None, environ=environ)
    proxy = settings.proxy_for(yarl.URL(url))
    return None if proxy is None else str(proxy.url)


def test_https_urls_take_https_proxy() -> None:
    environ = {"HTTPS_PROXY": "http://secure:1", "HTTP_PROXY": "http://plain:2"}
    assert proxy_of(environ, "https://api.avaturn.me/x") == "http://secure:1"


def test_http_urls_take_http_proxy() -> None:
    environ = {"HTTPS_PROXY": "http://secure:1", "HTTP_PROXY": "http://plain:2"}
    assert proxy_of(environ, "http://api.avaturn.me/x") == "http://plain:2"


def test_all_proxy_serves_a_scheme_without_its_own() -> None:
    assert proxy_of({"ALL_PROXY": "http://every:3"}, "https://api.avaturn.me") == "http://every:3"


def test_the_lower_case_spelling_wins() -> None:
    environ = {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"}
    assert proxy_of(environ, "https://api.avaturn.me") == "http://lower:2"


def test_a_proxy_without_a_scheme_is_http() -> None:
    assert proxy_of({"HTTPS_PROXY": "proxy.internal:3128"}, "https://a.b") == (
        "http://proxy.internal:3128"
    )


@pytest.mark.parametrize(
    ("entries", "host", "port", "bypassed"),
    [
        ("*", "api.avaturn.me", 443, True),
        ("avaturn.me", "api.avaturn.me", 443, True),
        ("avaturn.me", "avaturn.me", 443, True),
        ("avaturn.me", "notavaturn.me", 443, False),
        (".avaturn.me", "avaturn.me", 443, False),
        (".avaturn.me", "api.avaturn.me", 443, True),
        ("*.avaturn.me", "api.avaturn.me", 443, True),
        ("api.avaturn.me:8443", "api.avaturn.me", 443, False),
        ("api.avaturn.me:8443", "api.avaturn.me", 8443, True),
        ("10.0.0.0/8", "10.1.2.3", 80, True),
        ("10.0.0.0/8", "11.1.2.3", 80, False),
        ("192.168.1.5", "192.168.1.5", 80, True),
        ("[::1]", "::1", 80, True),
        (" a.com , b.com ", "b.com", 80, True),
    ],
)
def test_no_proxy_entries(entries: str, host: str, port: int, bypassed: bool) -> None:
    assert NoProxy.parse(entries).matches(host, port) is bypassed


def test_loopback_names_never_take_an_environment_proxy() -> None:
    environ = {"ALL_PROXY": "http://every:3"}
    assert [proxy_of(environ, f"http://{h}:8080") for h in ("localhost", "127.0.0.2", "[::1]")] == [
        None,
        None,
        None,
    ]


def test_an_unsupported_proxy_in_the_environment_is_ignored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert proxy_of({"ALL_PROXY": "socks5://user:pw@tor:9050"}, "https://a.b") is None
    assert "ALL_PROXY" in caplog.text
    assert "pw" not in caplog.text


def test_an_unsupported_explicit_proxy_is_a_configuration_error_without_its_password() -> None:
    with pytest.raises(ConfigurationError) as raised:
        AvaturnClient("k", proxy="socks5://user:hunter2@tor:9050")
    assert "hunter2" not in str(raised.value)
    assert "socks5://***@tor:9050" in str(raised.value)


def test_the_proxy_repr_hides_its_credentials() -> None:
    assert repr(parse_proxy("http://user:hunter2@proxy:3128")) == "Proxy('http://***@proxy:3128')"


def test_ssl_must_be_a_context() -> None:
    with pytest.raises(ConfigurationError, match="SSLContext"):
        AvaturnClient("k", ssl=True)  # type: ignore[arg-type]


def test_ssl_and_proxy_with_a_custom_transport_are_refused() -> None:
    from avaturn_async import AiohttpTransport

    with pytest.raises(ConfigurationError, match="transport"):
        AvaturnClient("k", transport=AiohttpTransport(), ssl=ssl.create_default_context())


def test_trust_env_false_reads_nothing() -> None:
    settings = read_network(
        proxy=None, trust_env=False, ssl_context=None, environ={"ALL_PROXY": "http://p:1"}
    )
    assert settings.uses_proxies is False
