"""Logging set-up for the command-line entry points: one JSON object per line, or plain text.

Library code only uses module loggers with lazy %-formatting and a stable event name first
(``"outbox.pruned rows=%d"``); only a CLI calls :func:`configure_logging`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["json", "text"]


def add_logging_options(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` (env ``CUSTOS_LOG_LEVEL``) and ``--log-format`` (env
    ``CUSTOS_LOG_FORMAT``) on ``parser``, for :func:`configure_logging`."""
    parser.add_argument(
        "--log-level",
        default=os.environ.get("CUSTOS_LOG_LEVEL", "info"),
        help="debug, info, warning or error (env CUSTOS_LOG_LEVEL; default %(default)s)",
    )
    parser.add_argument(
        "--log-format",
        choices=("json", "text"),
        default=os.environ.get("CUSTOS_LOG_FORMAT", "text"),
        help="log lines as text, or one JSON object each for journald and collectors of logs "
        "(env CUSTOS_LOG_FORMAT; default %(default)s)",
    )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        event, _, detail = message.partition(" ")
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event,
            "msg": message,
        }
        if detail:
            entry["detail"] = detail
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "info", fmt: LogFormat = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("paho").setLevel(logging.WARNING)
