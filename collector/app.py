"""``create_app()``: the collector as one aiohttp application.

Background work is owned by ``cleanup_ctx``: the database writer thread, the read pool and the MQTT
intake start before the first request and stop, in reverse order, when the application shuts down.
A writer that ends by itself (it crashed, or gave up committing) is fatal: ``app[FATAL]`` says so,
and whoever serves the app (``collector.runner.serve``) stops it and exits with an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from collector.alerts import api as alerts_api
from collector.alerts.delivery import AlertDelivery
from collector.alerts.engine import AlertEngine
from collector.alerts.hub import AlertHub
from collector.alerts.schema import MIGRATIONS as ALERT_MIGRATIONS
from collector.alerts.system_alerts import StorageAlerts
from collector.alerts.tamper import TamperAlerts
from collector.alerts.webhooks import WebhookDispatcher
from collector.api import devices, system
from collector.api.errors import auth_middleware, errors_middleware
from collector.enrollment import enroll_many, read_registry_file
from collector.evidence import EVIDENCE, setup_evidence
from collector.evidence import MIGRATIONS as EVIDENCE_MIGRATIONS
from collector.faults import api as faults_api
from collector.faults.engine import FaultEngine
from collector.faults.schema import MIGRATIONS as FAULT_MIGRATIONS
from collector.ingest.intake import Intake
from collector.ingest.processor import IngestProcessor
from collector.maintenance import MaintenanceCalendar
from collector.metrics import CustosCollector, IngestMetrics, build_registry
from collector.registry import Registry
from collector.reports import api as reports_api
from collector.runner import FATAL, Fatal
from collector.services import ALERTS, FAULTS, SERVICES, AlertServices, Services
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


def create_app(settings: CollectorSettings, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(
        middlewares=[errors_middleware, auth_middleware(settings.admin_token)],
        client_max_size=1024 * 1024,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[FATAL] = Fatal()
    app.cleanup_ctx.append(_services)
    app.add_routes(system.routes)
    app.add_routes(devices.routes)
    setup_evidence(app)
    app.add_routes(alerts_api.routes)
    app.add_routes(faults_api.routes)
    app.add_routes(reports_api.routes)
    setup_web(app)
    return app


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings, clock = app[SETTINGS], app[CLOCK]
    loop = asyncio.get_running_loop()
    connection, path = open_database(
        settings.data_dir, [ALERT_MIGRATIONS, FAULT_MIGRATIONS, EVIDENCE_MIGRATIONS]
    )
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
    writer = DbWriter(
        connection,
        processor,
        clock,
        max_batch=settings.max_batch,
        tick_s=settings.tick_s,
        reserve=SpaceReserve(settings.data_dir / RESERVE_FILE),
        storage_watch=StorageAlerts(engine),
    )
    intake = Intake(
        settings.broker_address(),
        settings.client_id,
        writer,
        clock,
        metrics,
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
        lambda: [({}, float(writer.backlog))],
    )
    services = Services(
        settings=settings,
        clock=clock,
        metrics=metrics,
        writer=writer,
        readers=ReadPool(path),
        intake=intake,
        prometheus=build_registry(exporter),
    )
    app[SERVICES] = services
    hub = AlertHub()
    dispatcher = WebhookDispatcher(settings.alerts, services.readers, writer, clock)
    delivery = AlertDelivery(
        hub,
        dispatcher,
        channel=intake,
        writer=writer,
        readers=services.readers,
        clock=clock,
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
    app[ALERTS] = AlertServices(engine, hub, delivery)
    app[FAULTS] = faults
    app[EVIDENCE].hooks.add(TamperAlerts(engine, writer, delivery))
    intake.listeners.append(lambda result: delivery.deliver(result.alerts))
    writer.start(loop, intake.on_result, on_failure=app[FATAL].fail)
    if settings.registry_file is not None:
        await enroll_many(writer, read_registry_file(settings.registry_file), clock)
        log.info("collector.registry_loaded file=%s", settings.registry_file)
    intake_task = loop.create_task(intake.run(), name="mqtt-intake")
    alert_tasks = [
        loop.create_task(delivery.run(), name="alerts-mqtt"),
        loop.create_task(dispatcher.run(), name="alerts-webhooks"),
    ]
    log.info(
        "collector.started data_dir=%s broker=%s devices=%d",
        settings.data_dir, settings.broker, len(processor.registry),
    )  # fmt: skip
    try:
        yield
    finally:
        for task in alert_tasks:
            task.cancel()
        await asyncio.gather(*alert_tasks, return_exceptions=True)
        await intake.close()
        intake_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await intake_task
        await loop.run_in_executor(None, writer.stop)
        services.readers.close()
        connection.close()
        log.info("collector.stopped")


def _last_seen(processor: IngestProcessor) -> list[tuple[dict[str, str], float]]:
    from datetime import datetime

    values = []
    for device_id, runtime in list(processor.devices.items()):
        if runtime.last_seen_at:
            values.append(
                ({"device": device_id}, datetime.fromisoformat(runtime.last_seen_at).timestamp())
            )
    return values
