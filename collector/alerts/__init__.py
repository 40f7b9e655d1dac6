"""Alerts for the command center: rules over the event stream and device state, a persisted
lifecycle with escalation, and delivery on MQTT, signed webhooks and a live stream."""
