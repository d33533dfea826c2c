"""ASGI entry point: plain HTTP goes to Django, websockets to the Channels router.

Websockets are origin-checked like Django's CSRF check — scheme, host and port of the Origin
must be the page's own (dashboard.auth.OriginValidator), so a page on another site or another
local port cannot open a socket with the user's cookies — and carry the Django session and
user, which every consumer checks (dashboard.auth.AuthenticatedConsumerMixin). A path no
consumer serves is closed with 4404 (dashboard.routing), never a 500.

Importing this module also scrubs login tokens from daphne's access log
(dashboard.logredact): daphne imports it in its own process before serving anything.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from dashboard import gatekeeper  # noqa: E402
from dashboard.auth import OriginValidator  # noqa: E402
from dashboard.logredact import install_access_log_redaction  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402

install_access_log_redaction()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
# New backend pods start serving: the readiness-gate rule runs whether or not a page is open.
gatekeeper.start()
