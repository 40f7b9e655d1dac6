"""Where the broker is and how to log in to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

_SCHEMES = {"mqtt": False, "mqtts": True}
_DEFAULT_PORTS = {False: 1883, True: 8883}


@dataclass(frozen=True)
class BrokerAddress:
    """A broker endpoint. ``tls`` uses ``ssl.create_default_context()`` (system CAs, hostname
    checked). The password never appears in ``repr``."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("broker host must not be empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"broker port {self.port} is outside 1..65535")

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse ``mqtt://host:port``, ``mqtts://user:pass@host:8883``, ``host:port`` or ``host``.

        User name and password may be percent-encoded. The port defaults to 1883 (8883 for
        ``mqtts``). Anything else (another scheme, a path, a query, a bad port) is a ValueError.
        """
        text = url.strip()
        if not text:
            raise ValueError("empty broker URL")
        if "://" not in text:
            text = "mqtt://" + text
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"invalid broker URL {url!r}: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ValueError(f"invalid broker URL {url!r}: scheme must be mqtt or mqtts")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"invalid broker URL {url!r}: no path, query or fragment allowed")
        host = parts.hostname
        if not host:
            raise ValueError(f"invalid broker URL {url!r}: no host")
        tls = _SCHEMES[scheme]
        return cls(
            host=host,
            port=_DEFAULT_PORTS[tls] if port is None else port,
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
            tls=tls,
        )

    @property
    def url(self) -> str:
        """The address without credentials, for logs."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"
