"""What the request handlers and background tasks share, under one typed ``AppKey``."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry

from collector.alerts.delivery import AlertDelivery
from collector.alerts.engine import AlertEngine
from collector.alerts.hub import AlertHub
from collector.faults.engine import FaultEngine
from collector.ingest.intake import Intake
from collector.metrics import IngestMetrics
from collector.settings import CollectorSettings
from collector.store.readers import ReadPool
from collector.store.writer import DbWriter
from protocol.clock import Clock


@dataclass
class Services:
    settings: CollectorSettings
    clock: Clock
    metrics: IngestMetrics
    writer: DbWriter
    readers: ReadPool
    intake: Intake
    prometheus: CollectorRegistry


SERVICES = web.AppKey("services", Services)


@dataclass
class AlertServices:
    engine: AlertEngine
    hub: AlertHub
    delivery: AlertDelivery


ALERTS = web.AppKey("alerts", AlertServices)
FAULTS = web.AppKey("faults", FaultEngine)
