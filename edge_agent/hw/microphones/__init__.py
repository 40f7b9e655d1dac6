"""Microphone adapters: each implements :class:`edge_agent.capture.ports.MediaSource`, measures
its level and hands encoded audio (AAC or MP2) to the loop. PyAV and sounddevice are imported
lazily, inside the adapters."""
