"""A collector started with a settings file (``--config``), for benchmarks that need what only the
settings file can say: webhook endpoints, the faults' grace period.

Like ``bench.rig.start_collector`` otherwise: devices enrolled from a registry, the process
registered on the cleanup stack, healthy before this returns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.core import BenchContext
from bench.payloads import write_registry
from simulators.broker import MosquittoBroker
from simulators.procs import CollectorProcess


@dataclass(frozen=True)
class Webhook:
    name: str
    url: str
    secret_file: str
    min_severity: str = "low"


def settings_toml(
    *,
    webhooks: Sequence[Webhook] = (),
    grace_s: float | None = None,
    keepalive_s: int | None = None,
) -> str:
    """The parts of a collector settings file (see ``deploy/collector.toml``) benchmarks set."""
    lines: list[str] = []
    if keepalive_s is not None:
        lines.append(f"keepalive_s = {keepalive_s}")
    if grace_s is not None:
        lines += ["[faults]", f"grace_s = {grace_s}", ""]
    for hook in webhooks:
        lines += [
            "[[alerts.webhooks]]",
            f'name = "{hook.name}"',
            f'url = "{hook.url}"',
            f'secret_file = "{hook.secret_file}"',
            f'min_severity = "{hook.min_severity}"',
            "",
        ]
    return "\n".join(lines) + "\n"


def start_configured_collector(
    ctx: BenchContext,
    broker: MosquittoBroker,
    device_ids: list[str],
    settings: str,
    name: str = "collector",
    *,
    timeout_s: float = 120.0,
) -> CollectorProcess:
    """``custos-collector serve --config FILE --registry FILE``."""
    base = ctx.subdir(name)
    registry = write_registry(base / "registry.toml", device_ids)
    config = base / "collector.toml"
    config.write_text(settings, encoding="utf-8")
    collector = CollectorProcess(
        broker.url,
        base / "data",
        client_id=f"bench-{name}",
        extra=["--config", str(config), "--registry", str(registry), "--log-level", "warning"],
    )
    collector.start()
    ctx.cleanup.callback(collector.stop)
    started = time.monotonic()
    collector.wait_healthy(timeout=timeout_s)
    ctx.log(
        f"    {name}: healthy with {len(device_ids)} devices in {time.monotonic() - started:.1f} s"
    )
    return collector
