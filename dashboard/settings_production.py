"""Settings for the dashboard deployed behind HTTPS in a real cluster.

`python manage.py check --deploy --settings=dashboard.settings_production` reports nothing
(a test runs it). A real secret key is required: a random per-process one would log users
out on every restart and break with several replicas. A configured ``LBDEMO_TOKEN`` (a
reusable login) must be a random string of at least 32 characters, or the dashboard refuses
to start.

``X-Forwarded-Proto`` is trusted only when the operator says a TLS-terminating proxy sits in
front (``LBDEMO_TRUST_X_FORWARDED_PROTO=true``); the shipped manifest puts none there, and a
header any client can send must not make a plain-HTTP request look secure.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from dashboard.settings import *  # noqa: F403
from dashboard.settings import env_bool, env_int

DEBUG = False
SECRET_KEY = os.environ.get("LBDEMO_SECRET_KEY", "")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured("LBDEMO_SECRET_KEY must be set to a random string of at least 50 characters")


def weak_token(token: str) -> str:
    """Why ``token`` is too weak to be a reusable login ('' if it is fine)."""
    if len(token) < 32:
        return f"it has {len(token)} characters, at least 32 are needed"
    if len(set(token)) < 12:
        return "it repeats too few distinct characters to be random"
    return ""


_configured_token = os.environ.get("LBDEMO_TOKEN", "")
_token_problem = weak_token(_configured_token) if _configured_token else ""
if _token_problem:
    raise ImproperlyConfigured(
        f"LBDEMO_TOKEN is too weak to be a login ({_token_problem}); "
        "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")

SECURE_SSL_REDIRECT = env_bool("LBDEMO_SSL_REDIRECT", True)
if env_bool("LBDEMO_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("LBDEMO_HSTS_SECONDS", 31_536_000, minimum=0, maximum=63_072_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
