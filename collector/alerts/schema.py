"""Tables of the alert domain (their own migration set)."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("custos-alerts")


@MIGRATIONS()
def m001_alerts(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            dedup_key TEXT NOT NULL,
            rule TEXT NOT NULL,
            device_id TEXT,
            site TEXT,
            room TEXT,
            severity TEXT NOT NULL,
            level INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL,
            latched INTEGER NOT NULL,
            condition_active INTEGER NOT NULL,
            title TEXT NOT NULL,
            detail TEXT NOT NULL,
            occurrences INTEGER NOT NULL DEFAULT 1,
            raised_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            acknowledged_at TEXT,
            acknowledged_by TEXT,
            ack_comment TEXT,
            cleared_at TEXT,
            cleared_by TEXT,
            clear_reason TEXT,
            next_escalation_at TEXT
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX alerts_open_key ON alerts (dedup_key) WHERE state != 'cleared'")
    db.execute("CREATE INDEX alerts_state ON alerts (state, severity)")
    db.execute(
        """
        CREATE TABLE alert_transitions (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL REFERENCES alerts (id),
            at TEXT NOT NULL,
            transition TEXT NOT NULL,
            payload TEXT NOT NULL,
            mqtt_published_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX alert_transitions_alert ON alert_transitions (alert_id)")
    db.execute(
        "CREATE INDEX alert_transitions_unpublished ON alert_transitions (id) "
        "WHERE mqtt_published_at IS NULL"
    )
    db.execute(
        """
        CREATE TABLE webhook_deliveries (
            id INTEGER PRIMARY KEY,
            endpoint TEXT NOT NULL,
            transition_id INTEGER NOT NULL REFERENCES alert_transitions (id),
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL,
            last_status INTEGER,
            last_error TEXT,
            delivered_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX webhook_pending ON webhook_deliveries (endpoint, state, id)")


@MIGRATIONS()
def m002_alert_messages(db: Database) -> None:
    # The detail as a message key with parameters (JSON), so people read it in their language;
    # NULL for alerts raised before, which keep their English detail.
    db.execute("ALTER TABLE alerts ADD COLUMN message TEXT")
