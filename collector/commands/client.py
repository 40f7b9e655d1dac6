"""A small JSON client for the collector's API (standard library only)."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080"


class CommandError(Exception):
    """What to tell the user; the command exits non-zero."""


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("CUSTOS_URL", DEFAULT_URL),
        help="the collector's base URL (env CUSTOS_URL; default %(default)s)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("CUSTOS_ADMIN_TOKEN"),
        help="admin token (env CUSTOS_ADMIN_TOKEN)",
    )


class ApiClient:
    def __init__(self, url: str, token: str | None) -> None:
        self._url = url.rstrip("/")
        self._token = token

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ApiClient:
        return cls(args.url, args.token)

    def get(self, path: str) -> Any:
        return json.loads(self._call("GET", path, None))

    def get_text(self, path: str) -> str:
        return self._call("GET", path, None).decode("utf-8")

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return json.loads(self._call("POST", path, body))

    def delete(self, path: str, body: dict[str, Any]) -> Any:
        return json.loads(self._call("DELETE", path, body))

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> bytes:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self._url}{path}", data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                content: bytes = response.read()
                return content
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = exc.reason
            raise CommandError(f"refused ({exc.code}): {message}") from None
        except OSError as exc:
            raise CommandError(f"cannot reach {self._url}: {exc}") from None
