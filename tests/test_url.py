"""StoreURL parsing, parameter handling and password redaction."""

from __future__ import annotations

import pytest

from lakekv.errors import ConfigurationError
from lakekv.kv.url import ParamReader, StoreURL, redact


def test_parse_full_url() -> None:
    url = StoreURL.parse("postgres://user:s%40cret@db.example:6543/lakefs?table=kv&pool_size=5")
    assert url.scheme == "postgres"
    assert url.username == "user"
    assert url.password == "s@cret"
    assert url.host == "db.example"
    assert url.port == 6543
    assert url.path == "/lakefs"
    assert url.params() == {"table": "kv", "pool_size": "5"}


def test_password_never_printed() -> None:
    url = StoreURL.parse("postgres://user:topsecret@host/db")
    for text in (str(url), repr(url), url.render(), f"{url}", str(url.with_params(a=1))):
        assert "topsecret" not in text
        assert "***" in text
    assert "topsecret" in url.render(reveal_password=True)
    assert "topsecret" not in repr([url])


def test_render_round_trips() -> None:
    text = "postgres://user:pw@127.0.0.1:5432/test?table=kv"
    assert StoreURL.parse(text).render(reveal_password=True) == text
    assert StoreURL.parse("sqlite:///./lakekv.db").render() == "sqlite:///./lakekv.db"
    assert StoreURL.parse("memory://").render() == "memory://"


@pytest.mark.parametrize(
    "text", ["", "just-a-path.db", "postgres//x", "1abc://x", "postgres://u:pw@host:notaport/db"]
)
def test_malformed_urls(text: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        StoreURL.parse(text)
    assert "pw" not in str(info.value).replace("pw@", "") or "***" in str(info.value)
    assert ":pw@" not in str(info.value)


def test_param_reader_types_and_unknown() -> None:
    url = StoreURL.parse("x://h/?a=1&b=yes&c=2.5&d=text&zz=1")
    p = ParamReader(url)
    assert p.take_int("a", 0) == 1
    assert p.take_bool("b", False) is True
    assert p.take_float("c", 0.0) == 2.5
    assert p.take_str("d", "") == "text"
    assert p.take_int("missing", 7) == 7
    with pytest.raises(ConfigurationError, match="zz"):
        p.reject_unknown()


@pytest.mark.parametrize(
    ("query", "call"),
    [
        ("a=x", lambda p: p.take_int("a", 0)),
        ("a=0", lambda p: p.take_int("a", 1, minimum=1)),
        ("a=maybe", lambda p: p.take_bool("a", False)),
        ("a=fast", lambda p: p.take_float("a", 1.0)),
    ],
)
def test_param_reader_rejects_bad_values(query: str, call: object) -> None:
    p = ParamReader(StoreURL.parse(f"x://h/?{query}"))
    with pytest.raises(ConfigurationError):
        call(p)  # type: ignore[operator]


def test_redact_free_text() -> None:
    text = "failed: postgres://bob:hunter2@db/x and password=hunter2 and 'hunter2'"
    out = redact(text, ["hunter2"])
    assert "hunter2" not in out
    assert "postgres://bob:***@db/x" in out


def test_several_hosts_parse_list_and_render_back() -> None:
    url = StoreURL.parse("redis+cluster://u:pw@127.0.0.1:1,127.0.0.1:2,Host3?namespace=x")
    assert url.host_list(6379) == [("127.0.0.1", 1), ("127.0.0.1", 2), ("host3", 6379)]
    assert url.port is None
    assert str(url) == "redis+cluster://u:***@127.0.0.1:1,127.0.0.1:2,host3?namespace=x"
    assert StoreURL.parse(url.render(reveal_password=True)) == url
    assert StoreURL.parse("etcd://[::1]:2,a").host_list(2379) == [("::1", 2), ("a", 2379)]
    assert StoreURL.parse("redis://h:5/0").host_list(6379) == [("h", 5)]
    with pytest.raises(ConfigurationError):
        StoreURL.parse("etcd://a:1,b:x")
    with pytest.raises(ConfigurationError):
        StoreURL.parse("etcd://a:1,,b:2")
