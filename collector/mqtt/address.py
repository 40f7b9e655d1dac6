"""Where the broker is and how to log in to it."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

_SCHEMES = {"mqtt": False, "mqtts": True}
_DEFAULT_PORTS = {False: 1883, True: 8883}


@dataclass(frozen=True)
class BrokerAddress:
    """A broker endpoint. With ``tls`` the broker's certificate is verified against ``ca_file``
    (the site CA; the system's CAs without it) and must name ``server_name`` (the host by
    default); ``cert_file`` and ``key_file`` are our client certificate and its key, for a
    broker that asks for one. The password never appears in ``repr``."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("broker host must not be empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"broker port {self.port} is outside 1..65535")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs its key, and a key its certificate")
        if not self.tls and (self.ca_file or self.cert_file or self.server_name):
            raise ValueError("a CA file, a client certificate or a server name need mqtts://")

    def with_tls_files(
        self,
        *,
        ca_file: Path | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        server_name: str | None = None,
    ) -> BrokerAddress:
        """This address with its TLS files (a URL cannot carry them)."""
        return replace(
            self, ca_file=ca_file, cert_file=cert_file, key_file=key_file, server_name=server_name
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of a connection (hostname checked, TLS 1.2 at least), or None for
        plain MQTT. Reads the files now, so a wrong path is an error at each attempt."""
        if not self.tls:
            return None
        context = ssl.create_default_context(
            cafile=None if self.ca_file is None else str(self.ca_file)
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file is not None and self.key_file is not None:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context

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
    def tls_server_name(self) -> str:
        return self.server_name or self.host

    @property
    def url(self) -> str:
        """The address without credentials, for logs."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"
