"""The Custos edge agent: room sensors, recorder, durable outbox and MQTT uplink."""

__version__ = "0.1.0"
