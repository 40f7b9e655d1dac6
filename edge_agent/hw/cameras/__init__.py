"""Camera adapters: each implements :class:`edge_agent.capture.ports.MediaSource` and hands
H.264 packets to the loop. PyAV and picamera2 are imported lazily, inside the adapters."""
