"""ASGI entry point: plain HTTP goes to Django, websockets to the Channels router.

Websockets are origin-checked like Django's CSRF check — scheme, host and port of the Origin
must be the page's own (dashboard.auth.OriginValidator), so a page on another site or another
local port cannot open a socket with the user's cookies — and carry the Django session and
user, which every consumer checks (dashboard.auth.AuthenticatedConsumerMixin). A path no
consumer serves is closed with 4404 (dashboard.routing), never a 500.

Importing this module also scrubs login tokens from daphne's access log
(dashboard.logredact): daphne imports it in its own process before serving anything.
Importing it starts no thread: the watch hub (and the serving-gate rule on it, so new backend
pods start serving whether or not a page is open) starts at the ASGI lifespan's startup under
a server that sends one (uvicorn, hypercorn), and on the first request under daphne, which
sends none (on a cluster that is the first startup probe, ``/healthz``); the lifespan's
shutdown stops both (:class:`StartsTheHub`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from dashboard import hub  # noqa: E402
from dashboard.auth import OriginValidator  # noqa: E402
from dashboard.logredact import install_access_log_redaction  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402

log = logging.getLogger(__name__)

install_access_log_redaction()


class StartsTheHub:
    """ASGI middleware: start the process's hub before anyone needs it, stop it at shutdown.

    A ``lifespan`` scope is answered here (startup: start the hub; shutdown: stop it); any other
    scope starts the hub first if nothing has yet (daphne sends no lifespan). A hub that cannot
    start (no cluster configuration) is logged and tried again on the next request: the pages
    then say what is wrong."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.started = False

    def start(self) -> None:
        """Start the hub (and the serving-gate rule on it) once; call on the event loop."""
        if self.started:
            return
        try:
            hub.get_hub()
        except Exception as exc:
            log.warning("the watch hub did not start (%s: %s); trying again on the next request",
                        type(exc).__name__, exc)
            return
        self.started = True

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            self.start()
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(hub.shutdown)  # joins the hub's threads: not on the loop
                self.started = False
                await send({"type": "lifespan.shutdown.complete"})
                return


application = StartsTheHub(ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
))
