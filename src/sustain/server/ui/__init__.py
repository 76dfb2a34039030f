"""The web UI served by ``sustain serve`` under ``/ui`` (and ``GET /workers``).

Server-rendered HTML, no build step: ``routes`` (ASGI routing, auth, CSRF), ``queries``
(read-only store transactions over the ``Tx`` protocol), ``views`` (HTML as escaped strings)
and ``static/`` (one small ES module for live refresh, one stylesheet; nothing loaded from a
CDN).  ``server.app.App`` hands every ``/ui`` and ``/workers`` request to ``UiRoutes``.
"""

from sustain.server.ui.routes import UiRoutes
from sustain.server.ui.services import UiServices

__all__ = ["UiRoutes", "UiServices"]
