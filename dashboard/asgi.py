"""ASGI entry point: plain HTTP goes to Django, websockets to the Channels router.

Websockets are origin-checked against ALLOWED_HOSTS (a page on another site cannot open a
socket with the user's cookies) and carry the Django session and user, which every consumer
checks (dashboard.auth.AuthenticatedConsumerMixin).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from dashboard import gatekeeper  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
# New backend pods start serving: the readiness-gate rule runs whether or not a page is open.
gatekeeper.start()
