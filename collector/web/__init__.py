"""The command center's web page (``/``): Simplified Chinese by default, English on request."""

from collector.web.page import setup_web

__all__ = ["setup_web"]
