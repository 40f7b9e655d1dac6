"""``create_app()``: the collector as one aiohttp application, and its one composition root.

Each domain registers its routes with its ``setup(app, …)`` here; the parts themselves (the
database and its writer thread, the read pool, the alert and fault engines, the evidence store,
the MQTT intake) are built and started by ``_lifetime`` in the background once the port is
open, and stopped in reverse order when the application shuts down. Until every part runs, the
readiness middleware answers each request ``503`` with ``Retry-After``; no handler can reach a
part that has not started. A part that fails to start, or a writer that ends by itself (it
crashed, or gave up committing), is fatal: ``app[FATAL]`` says so, and whoever serves the app
(``collector.runner.serve``) stops it and exits with an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from collector import evidence
from collector.alerts import api as alerts_api
from collector.alerts.delivery import AlertDelivery
from collector.alerts.engine import AlertEngine
from collector.alerts.hub import AlertHub
from collector.alerts.schema import MIGRATIONS as ALERT_MIGRATIONS
from collector.alerts.system_alerts import StorageAlerts
from collector.alerts.tamper import TamperAlerts
from collector.alerts.webhooks import WebhookDispatcher
from collector.api import devices, system
from collector.api.context import STORE, Slot, StoreAccess
from collector.api.errors import REFUSALS, ApiRefusals, auth_middleware, errors_middleware
from collector.api.readiness import READINESS, Phase, Readiness, readiness_middleware
from collector.enrollment import enroll, enroll_many, read_registry_file
from collector.evidence.hooks import TamperHooks
from collector.evidence.metrics import EvidenceCollector
from collector.evidence.retention import check_retention
from collector.evidence.service import EvidenceConfig
from collector.faults import api as faults_api
from collector.faults.engine import FaultEngine
from collector.faults.schema import MIGRATIONS as FAULT_MIGRATIONS
from collector.ingest.intake import Intake
from collector.ingest.processor import IngestProcessor
from collector.ingest.queue import IngestQueue
from collector.maintenance import MaintenanceCalendar
from collector.metrics import ApiRefusalsCollector, CustosCollector, IngestMetrics, build_registry
from collector.registry import Registry
from collector.reports import api as reports_api
from collector.runner import FATAL, Fatal
from collector.settings import CollectorSettings
from collector.store.database import open_database
from collector.store.readers import ReadPool
from collector.store.reserve import RESERVE_FILE, SpaceReserve
from collector.store.writer import DbWriter
from collector.web import setup_web
from protocol.clock import Clock, SystemClock

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", CollectorSettings)
CLOCK = web.AppKey("clock", Clock)
INTAKE: web.AppKey[Slot[Intake]] = web.AppKey("intake")


def create_app(settings: CollectorSettings, *, clock: Clock | None = None) -> web.Application:
    clock = clock or SystemClock()
    app = web.Application(
        middlewares=[
            readiness_middleware,
            errors_middleware,
            auth_middleware(settings.admin_token),
        ],
        client_max_size=1024 * 1024,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[FATAL] = Fatal()
    app[READINESS] = Readiness()
    app[REFUSALS] = ApiRefusals()
    app[STORE] = Slot("the database")
    app[INTAKE] = Slot("the MQTT intake")
    app.cleanup_ctx.append(_lifetime)
    timezone = settings.alerts.default_site.timezone
    system.setup(app)
    devices.setup(app)
    evidence.setup(app)
    alerts_api.setup(app)
    faults_api.setup(app)
    reports_api.setup(app, timezone=timezone)
    setup_web(app, timezone=timezone, clock=clock)
    return app


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    """Start the parts in the background (the port is open meanwhile; requests get 503), then
    stop whatever was started, in reverse order, when the application shuts down."""
    readiness = app[READINESS]
    async with contextlib.AsyncExitStack() as parts:
        starting = asyncio.get_running_loop().create_task(
            _start(app, parts), name="collector-start"
        )
        starting.add_done_callback(lambda task: _started(app, task))
        try:
            yield
        finally:
            readiness.phase = Phase.STOPPING
            if not starting.done():
                starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
    log.info("collector.stopped")


def _started(app: web.Application, task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("collector.start_failed", exc_info=error)
        app[FATAL].fail(f"start-up failed: {type(error).__name__}: {error}")
        return
    if app[READINESS].phase is Phase.STARTING:
        app[READINESS].phase = Phase.RUNNING


async def _start(app: web.Application, parts: contextlib.AsyncExitStack) -> None:
    settings, clock = app[SETTINGS], app[CLOCK]
    loop = asyncio.get_running_loop()
    connection, path = await asyncio.to_thread(
        open_database,
        settings.data_dir,
        [ALERT_MIGRATIONS, FAULT_MIGRATIONS, evidence.MIGRATIONS],
    )
    parts.callback(connection.close)
    metrics = IngestMetrics()
    registry = Registry()
    calendar = MaintenanceCalendar()
    engine = AlertEngine(connection, registry, settings.alerts, clock, calendar)
    faults = FaultEngine(
        connection,
        registry,
        settings.faults,
        alerts=engine,
        calendar=calendar,
        clock=clock,
        clock_skew_limit_ms=settings.clock_skew_limit_ms,
    )
    processor = IngestProcessor(
        connection,
        registry,
        clock,
        metrics,
        heartbeat_timeout_factor=settings.heartbeat_timeout_factor,
        clock_skew_limit_ms=settings.clock_skew_limit_ms,
        hooks=[engine, faults],
    )
    queue = IngestQueue(processor, max_batch=settings.max_batch)
    writer = DbWriter(
        connection,
        queue,
        clock,
        tick_s=settings.tick_s,
        reserve=SpaceReserve(settings.data_dir / RESERVE_FILE),
        storage_watch=StorageAlerts(engine),
    )
    readers = ReadPool(path)
    parts.callback(readers.close)
    intake = Intake(
        settings.broker_address(),
        settings.client_id,
        writer,
        clock,
        metrics,
        queue=queue,
        keepalive_s=settings.keepalive_s,
        backlog_pause=settings.backlog_pause,
    )
    exporter = CustosCollector(metrics)
    exporter.add_gauge(
        "custos_device_last_seen_timestamp_seconds",
        "When each device was last heard from (collector clock, Unix seconds)",
        ["device"],
        lambda: _last_seen(processor),
    )
    exporter.add_gauge(
        "custos_writer_healthy",
        "1 while the database writer runs, commits and has room on its disk",
        [],
        lambda: [({}, float(writer.healthy))],
    )
    exporter.add_gauge(
        "custos_writer_backlog",
        "Messages waiting for the database writer",
        [],
        lambda: [({}, float(queue.backlog))],
    )
    prometheus = build_registry(exporter)
    prometheus.register(ApiRefusalsCollector(app[REFUSALS].counts))
    hub = AlertHub()
    dispatcher = WebhookDispatcher(settings.alerts, readers, writer, clock)
    delivery = AlertDelivery(
        hub, dispatcher, channel=intake, writer=writer, readers=readers, clock=clock
    )
    exporter.add_gauge(
        "custos_alert_delivery_failures",
        "Alert publishes the broker did not acknowledge, and republish rounds that failed",
        ["what"],
        lambda: [
            ({"what": "publish"}, float(delivery.publish_failures)),
            ({"what": "round"}, float(delivery.round_failures)),
        ],
    )
    intake.listeners.append(lambda result: delivery.deliver(result.alerts))
    writer.start(loop, intake.on_result, on_failure=app[FATAL].fail)
    parts.push_async_callback(asyncio.to_thread, writer.stop)
    if settings.registry_file is not None:
        await enroll_many(writer, processor, read_registry_file(settings.registry_file), clock)
        log.info("collector.registry_loaded file=%s", settings.registry_file)
    hooks = TamperHooks(TamperAlerts(engine, writer, delivery))
    service = await evidence.start_service(
        EvidenceConfig(
            retention_days=check_retention(settings.retention_days),
            max_upload_bytes=settings.max_upload_bytes,
            purge_interval_s=settings.purge_interval_s,
            upload_expiry_days=settings.upload_expiry_days,
            sync_interval_s=settings.evidence_sync_s,
        ),
        settings.data_dir,
        writer=writer,
        readers=readers,
        clock=clock,
        hooks=hooks,
    )
    parts.push_async_callback(service.stop)
    prometheus.register(EvidenceCollector(service.metrics))
    intake_task = loop.create_task(intake.run(), name="mqtt-intake")
    parts.push_async_callback(_stop_intake, intake, intake_task)
    alert_tasks = [
        loop.create_task(delivery.run(), name="alerts-mqtt"),
        loop.create_task(dispatcher.run(), name="alerts-webhooks"),
    ]
    parts.push_async_callback(_cancel, alert_tasks)
    # Every part runs: what the handlers use, then the requests.
    app[STORE].fill(StoreAccess(readers, writer, clock))
    app[system.SYSTEM].fill(
        system.SystemContext(
            mqtt_sessions=lambda: {
                "ingest": intake.ingest.is_connected,
                "alarm": intake.alarm.is_connected,
            },
            prometheus=prometheus,
            backlog=lambda: queue.backlog,
            devices=lambda: len(registry),
        )
    )
    app[devices.ENROLL].fill(lambda enrollment: enroll(writer, processor, enrollment, clock))
    app[alerts_api.ALERTS].fill(alerts_api.AlertsContext(engine, hub, delivery))
    app[faults_api.FAULTS].fill(faults_api.FaultsContext(faults, delivery.deliver))
    app[evidence.EVIDENCE].fill(evidence.Evidence(service, hooks))
    app[INTAKE].fill(intake)
    log.info(
        "collector.started data_dir=%s broker=%s devices=%d",
        settings.data_dir, settings.broker, len(processor.registry),
    )  # fmt: skip


async def _stop_intake(intake: Intake, task: asyncio.Task[None]) -> None:
    await intake.close()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _last_seen(processor: IngestProcessor) -> list[tuple[dict[str, str], float]]:
    from datetime import datetime

    values = []
    for device_id, runtime in list(processor.devices.items()):
        if runtime.last_seen_at:
            values.append(
                ({"device": device_id}, datetime.fromisoformat(runtime.last_seen_at).timestamp())
            )
    return values
