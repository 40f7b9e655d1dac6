"""Errors of the capture adapters (cameras and microphones), translated at the adapter seam.

Library errors (``av.FFmpegError``, ``sounddevice.PortAudioError``, ``OSError`` from a missing
PortAudio) never leave an adapter as they are: they become one of these.
"""

from __future__ import annotations


class CaptureError(Exception):
    """A source cannot capture."""

    retryable = False


class SourceUnavailableError(CaptureError):
    """The device or stream is not there now (unplugged, unreachable, busy): try again later."""

    retryable = True


class SourceConfigError(CaptureError):
    """The source cannot work as configured (unsupported codec, missing library): a person must
    fix the configuration or the installation."""
