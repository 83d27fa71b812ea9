"""Store URLs: one string names one store, and it never prints its password.

``StoreURL.parse("postgres://user:secret@host:5432/db?table=kv")`` splits a URL into parts.
``str(url)`` and ``repr(url)`` always show ``***`` in place of a password and of the value of
any parameter whose name looks secret (``password``, ``sslpassword``, ``token``, ``secret``,
``api_key``, …: :data:`SECRET_PARAM`); ``url.render(reveal_password=True)`` is the only way to
get the secrets back, for the driver that connects. Every secret a URL carries is also
remembered (:func:`remember_secret`), so :func:`redact` masks it in any text, tracebacks and
library messages included. Drivers read their query parameters with the ``take_*`` helpers and call
:meth:`StoreURL.reject_unknown` to refuse anything they did not take.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from lakekv.errors import ConfigurationError

_SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*$")
_MASK = "***"


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL. Immutable; query parameters keep their order."""

    scheme: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    path: str = ""
    query: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> StoreURL:
        """Parse ``text``; raise :class:`ConfigurationError` (password-free) if it is malformed."""
        if "://" not in text:
            raise ConfigurationError(
                f"not a store URL: {redact(text)!r} (expected scheme://..., e.g. sqlite:///kv.db)"
            )
        scheme = text.split("://", 1)[0]
        if not _SCHEME_RE.match(scheme):
            raise ConfigurationError(f"invalid URL scheme {scheme!r} in {redact(text)!r}")
        try:
            parts = urlsplit(text)
            hostinfo = parts.netloc.rpartition("@")[2]
            if "," in hostinfo:  # several servers: host is "h1:p1,h2:p2", see host_list()
                _split_hosts(hostinfo, 0)
                host: str | None = hostinfo.lower()
                port = None
            else:
                host, port = parts.hostname, parts.port
        except ValueError as exc:
            raise ConfigurationError(f"invalid store URL {redact(text)!r}: {exc}") from None
        query = tuple(parse_qsl(parts.query, keep_blank_values=True))
        if parts.password:
            remember_secret(parts.password)
            remember_secret(unquote(parts.password))
        for name, value in query:
            if SECRET_PARAM.search(name):
                remember_secret(value)
        return cls(
            scheme=scheme.lower(),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            host=host,
            port=port,
            path=unquote(parts.path),
            query=query,
        )

    # --- rendering -------------------------------------------------------------------------

    def render(self, *, reveal_password: bool = False) -> str:
        """The URL as text; the password is masked unless ``reveal_password`` is true."""
        netloc = ""
        if self.username is not None:
            netloc += quote(self.username, safe="")
            if self.password is not None:
                secret = quote(self.password, safe="") if reveal_password else _MASK
                netloc += ":" + secret
            netloc += "@"
        if self.host:
            bracket = ":" in self.host and "," not in self.host
            netloc += f"[{self.host}]" if bracket else self.host
        if self.port is not None:
            netloc += f":{self.port}"
        text = f"{self.scheme}://{netloc}{quote(self.path, safe='/:~.-_')}"
        if self.query:
            query = (
                self.query
                if reveal_password
                else tuple((k, _MASK if SECRET_PARAM.search(k) else v) for k, v in self.query)
            )
            text += "?" + urlencode(query, safe=":/{}*")
        return text

    def public(self) -> str:
        """The URL for reports, dump headers and checkpoints: without user name, password,
        or any parameter whose name looks secret (the one rendering of "a URL without
        credentials")."""
        query = tuple((k, v) for k, v in self.query if not SECRET_PARAM.search(k))
        return StoreURL(
            self.scheme, host=self.host, port=self.port, path=self.path, query=query
        ).render()

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"StoreURL({self.render()!r})"

    def host_list(self, default_port: int) -> list[tuple[str, int]]:
        """Every ``(host, port)`` the URL names: ``scheme://h1:p1,h2:p2/...`` lists several
        servers (a cluster's seeds); a missing port is ``default_port``. Empty without a host."""
        if not self.host:
            return []
        if "," not in self.host:
            return [(self.host, self.port if self.port is not None else default_port)]
        return _split_hosts(self.host, default_port)

    # --- query parameters --------------------------------------------------------------------

    def params(self) -> dict[str, str]:
        """Query parameters as a dict (the last value wins for a repeated name)."""
        return dict(self.query)

    def with_params(self, **params: str | int) -> StoreURL:
        """A copy with the given query parameters set (replacing existing ones of that name)."""
        kept = [(k, v) for k, v in self.query if k not in params]
        kept.extend((k, str(v)) for k, v in params.items())
        return StoreURL(
            self.scheme, self.username, self.password, self.host, self.port, self.path, tuple(kept)
        )

    def without_params(self) -> StoreURL:
        """A copy without any query parameter."""
        return StoreURL(self.scheme, self.username, self.password, self.host, self.port, self.path)


def _split_hosts(text: str, default_port: int) -> list[tuple[str, int]]:
    """``h1:p1,h2,[::1]:p3`` as ``(host, port)`` pairs; ValueError if malformed."""
    out: list[tuple[str, int]] = []
    for item in text.split(","):
        parts = urlsplit("//" + item)
        if not parts.hostname:
            raise ValueError(f"empty host in {text!r}")
        out.append((parts.hostname, parts.port if parts.port is not None else default_port))
    return out


class ParamReader:
    """Takes typed query parameters out of a URL; refuses leftovers.

    Usage in a driver's ``from_url``::

        p = ParamReader(url)
        table = p.take_str("table", "kv")
        pool = p.take_int("pool_size", 10, minimum=1)
        p.reject_unknown()
    """

    def __init__(self, url: StoreURL) -> None:
        self._url = url
        self._left = dict(url.query)

    def take_str(self, name: str, default: str) -> str:
        """The parameter's value, or ``default`` when absent."""
        return self._left.pop(name, default)

    def take_optional(self, name: str) -> str | None:
        """The parameter's value, or ``None`` when absent."""
        return self._left.pop(name, None)

    def take_int(self, name: str, default: int, *, minimum: int | None = None) -> int:
        """An integer parameter; a non-integer or a value under ``minimum`` is a config error."""
        raw = self._left.pop(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigurationError(
                f"{self._url}: parameter {name}={raw!r} is not an integer"
            ) from None
        if minimum is not None and value < minimum:
            raise ConfigurationError(f"{self._url}: parameter {name} must be >= {minimum}")
        return value

    def take_float(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        """A float parameter; a non-number or a value under ``minimum`` is a config error."""
        raw = self._left.pop(name, None)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigurationError(
                f"{self._url}: parameter {name}={raw!r} is not a number"
            ) from None
        if value < minimum:
            raise ConfigurationError(f"{self._url}: parameter {name} must be >= {minimum}")
        return value

    def take_bool(self, name: str, default: bool) -> bool:
        """A boolean parameter: 1/0, true/false, yes/no, on/off."""
        raw = self._left.pop(name, None)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigurationError(f"{self._url}: parameter {name}={raw!r} is not a boolean")

    def reject_unknown(self, also_allowed: Iterable[str] = ()) -> None:
        """Raise :class:`ConfigurationError` naming every parameter nobody took."""
        unknown = sorted(set(self._left) - set(also_allowed))
        if unknown:
            raise ConfigurationError(
                f"{self._url}: unknown parameter(s) {', '.join(unknown)} for {self._url.scheme}://"
            )


_SECRET_WORDS = r"pass|pwd|secret|token|cred|auth|api_?key|access_?key|private_?key"
SECRET_PARAM = re.compile(f"(?i){_SECRET_WORDS}")
"""Names of URL parameters (and ``name=value`` pairs) whose values are masked."""
# The lookbehinds let a match start only where the leftmost match could start anyway (a run
# of name characters is matched from its first one), so a long word costs linear time, not
# quadratic (a 63 KB key in an error message took minutes).
_PASSWORD_IN_URL = re.compile(
    r"(?<![a-zA-Z])(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)@"
)
_SECRET_IN_KV = re.compile(
    rf"(?i)(?<![\w.-])(?P<pre>[\w.-]*(?:{_SECRET_WORDS})[\w.-]*\s*=\s*)"
    r"""(?P<pw>'[^']*'|"[^"]*"|[^\s&'",;)]+)"""
)
_MIN_REMEMBERED = 8
_remembered: set[str] = set()
_remembered_lock = threading.Lock()


def remember_secret(secret: str) -> None:
    """Have :func:`redact` mask ``secret`` wherever it appears from now on (this process).

    Secrets shorter than 8 characters are not remembered (masking a short word such as
    ``test`` everywhere would garble paths and names); URL userinfo, secret-looking URL
    parameters and ``name=value`` pairs still hide them.
    """
    if len(secret) >= _MIN_REMEMBERED and secret != _MASK:
        with _remembered_lock:
            _remembered.add(secret)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask secrets in free text: URL userinfo, secret-looking ``name=value`` pairs (also
    URL parameters), the given ``secrets`` and every secret remembered so far."""
    text = _PASSWORD_IN_URL.sub(lambda m: m.group("pre") + _MASK + "@", text)
    text = _SECRET_IN_KV.sub(
        lambda m: m.group("pre") + (m.group("pw") if m.group("pw") == _MASK else _MASK), text
    )
    with _remembered_lock:
        known = sorted(_remembered, key=len, reverse=True)
    for secret in [*secrets, *known]:
        if secret:
            text = text.replace(secret, _MASK)
    return text
