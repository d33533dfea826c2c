"""Django settings for the lb-demo dashboard, read from the environment.

Every knob a user or operator may turn is an ``LBDEMO_*`` environment variable, so the same
code runs under `make demo`, in tests and in a cluster. Production deployments use
``dashboard.settings_production``, which layers the HTTPS hardening on top of this module.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    """Read a yes/no environment variable; anything unrecognised is a configuration error."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int = 1_000_000) -> int:
    """Read a bounded integer environment variable, refusing values outside the bounds."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, not {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated environment variable."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("LBDEMO_DEBUG", False)

# A per-process random key is fine for the local lab (sessions die with the process);
# real deployments set LBDEMO_SECRET_KEY from a Secret.
SECRET_KEY = os.environ.get("LBDEMO_SECRET_KEY") or secrets.token_urlsafe(50)

ALLOWED_HOSTS = env_list("LBDEMO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("LBDEMO_CSRF_TRUSTED_ORIGINS", [])

# --- The cluster lb-demo looks at -------------------------------------------------------
# KUBECONFIG / LBDEMO_CONTEXT select a cluster; with neither, in-cluster config is tried.
LBDEMO_KUBECONFIG = os.environ.get("KUBECONFIG", "")
LBDEMO_CONTEXT = os.environ.get("LBDEMO_CONTEXT", "")
LBDEMO_NAMESPACE = os.environ.get("LBDEMO_NAMESPACE", "default")
LBDEMO_DEPLOYMENT = os.environ.get("LBDEMO_DEPLOYMENT", "backend")
LBDEMO_SERVICE = os.environ.get("LBDEMO_SERVICE", "backend-service")
LBDEMO_SELECTOR = os.environ.get("LBDEMO_SELECTOR", "app=backend")
LBDEMO_MAX_REPLICAS = env_int("LBDEMO_MAX_REPLICAS", 10, minimum=0, maximum=100)
# One-time login token printed by `make demo`; LBDEMO_TOKEN is a long-lived one for deployments.
LBDEMO_LOGIN_TOKEN = os.environ.get("LBDEMO_LOGIN_TOKEN", "")
LBDEMO_TOKEN = os.environ.get("LBDEMO_TOKEN", "")
# Optional operator override of where traffic is sent (never typed in the page).
LBDEMO_TRAFFIC_URL = os.environ.get("LBDEMO_TRAFFIC_URL", "")
LBDEMO_TRAFFIC_MAX_RPS = env_int("LBDEMO_TRAFFIC_MAX_RPS", 2000, minimum=1, maximum=100_000)
LBDEMO_TRAFFIC_MAX_CONNS = env_int("LBDEMO_TRAFFIC_MAX_CONNS", 64, minimum=1, maximum=4096)
LBDEMO_TRAFFIC_MAX_SECONDS = env_int("LBDEMO_TRAFFIC_MAX_SECONDS", 120, minimum=1, maximum=3600)
# All traffic runs together (every user): beyond this a new run is refused with 429.
LBDEMO_TRAFFIC_TOTAL_RPS = env_int("LBDEMO_TRAFFIC_TOTAL_RPS", 4000, minimum=1, maximum=1_000_000)
LBDEMO_TRAFFIC_TOTAL_CONNS = env_int("LBDEMO_TRAFFIC_TOTAL_CONNS", 256, minimum=1, maximum=65_536)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "dashboard",
    "dashboard.lessons",
]

MIDDLEWARE = [
    # First: a request that cannot be parsed gets a 400 and one log line, never a traceback.
    "dashboard.middleware.MalformedRequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
ASGI_APPLICATION = "dashboard.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]



def private_file(path: str | Path) -> None:
    """Make ``path`` readable by its owner only (0600), creating it empty if its folder exists.

    The dashboard's database holds sessions (a session id is a login) and its log the requests;
    like the kubeconfig they are nobody else's business. SQLite gives its journal and WAL files
    the database file's mode, and an empty file is a valid new database.
    """
    path = Path(path)
    if str(path) in {"", ":memory:"} or str(path).startswith("file:"):
        return
    try:
        if not path.exists():
            if not path.parent.is_dir():
                return
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(path, 0o600)
    except OSError:
        pass  # a read-only location is the operator's choice; the database open will say more


# Users and sessions live in a small SQLite file; the cluster state itself is never stored here.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("LBDEMO_DB_PATH", str(BASE_DIR / ".sandbox" / "dashboard.sqlite3")),
    }
}
private_file(DATABASES["default"]["NAME"])

# One dashboard process owns one watch hub, so the in-memory layer is the right trade-off;
# several replicas would need channels_redis.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# Only for an operator who runs collectstatic; nothing in lb-demo needs it.
STATIC_ROOT = os.environ.get("LBDEMO_STATIC_ROOT") or None
# daphne serves no static files itself; WhiteNoise does, straight from the apps' static
# folders, so neither the lab nor the image needs a collectstatic step.
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# A refused POST answers {"error": …} to htmx/JSON clients, like every other action error.
CSRF_FAILURE_VIEW = "dashboard.views.csrf_failure"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# No secret in any log: the redaction filter scrubs ``token=`` values and the configured tokens
# and key from every record (daphne's access log is scrubbed in dashboard.asgi).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "dashboard.logredact.RedactSecretsFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LBDEMO_LOG_LEVEL", "INFO")},
}

# --- Live cluster view (issue 6) -----------------------------------------------------------
# A strict Content-Security-Policy on every response (no inline script, htmx loaded from self).
MIDDLEWARE.append("dashboard.middleware.ContentSecurityPolicyMiddleware")
LOGIN_URL = "login"
# A form login without ?next= lands on the live page (Django's default is /accounts/profile/).
LOGIN_REDIRECT_URL = "index"
# Failed logins (form passwords and ?token= guesses) each client, and each account, may make
# within the window; beyond that the answer is 429 until the oldest failure ages out.
LBDEMO_LOGIN_FAILURES_PER_CLIENT = env_int("LBDEMO_LOGIN_FAILURES_PER_CLIENT", 20, minimum=1, maximum=100_000)
LBDEMO_LOGIN_FAILURES_PER_ACCOUNT = env_int("LBDEMO_LOGIN_FAILURES_PER_ACCOUNT", 10, minimum=1,
                                            maximum=100_000)
LBDEMO_LOGIN_FAILURE_WINDOW = env_int("LBDEMO_LOGIN_FAILURE_WINDOW", 600, minimum=1, maximum=86_400)
# The largest websocket message the transport accepts (daphne's default, 1 MiB): snapshots and
# frames are split into messages below it (dashboard.stream).
LBDEMO_WS_MESSAGE_LIMIT = env_int("LBDEMO_WS_MESSAGE_LIMIT", 1024 * 1024, minimum=16 * 1024,
                                  maximum=64 * 1024 * 1024)
# Flow control of each page's websocket (dashboard.consumers): messages and bytes it may leave
# unacknowledged; a page stuck at that limit for SLOW_CLIENT seconds, or leaving a message
# unacknowledged for ACK_TIMEOUT seconds, is closed (4013) and reconnects.
LBDEMO_WS_MAX_IN_FLIGHT = env_int("LBDEMO_WS_MAX_IN_FLIGHT", 8, minimum=1, maximum=1000)
LBDEMO_WS_MAX_UNACKED_BYTES = env_int("LBDEMO_WS_MAX_UNACKED_BYTES", 4 * 1024 * 1024, minimum=64 * 1024,
                                      maximum=256 * 1024 * 1024)
LBDEMO_WS_SLOW_CLIENT_SECONDS = env_int("LBDEMO_WS_SLOW_CLIENT_SECONDS", 10, minimum=1, maximum=3600)
LBDEMO_WS_ACK_TIMEOUT_SECONDS = env_int("LBDEMO_WS_ACK_TIMEOUT_SECONDS", 20, minimum=1, maximum=3600)
# Cluster actions (scale, kill, readiness) each user may send per minute; more get 429.
LBDEMO_ACTIONS_PER_MINUTE = env_int("LBDEMO_ACTIONS_PER_MINUTE", 120, minimum=1, maximum=100_000)
# Watch streams: the server ends each watch after this many seconds; the client gives up on a
# stream that stays silent (no event, no bookmark) for the read timeout and re-lists.
LBDEMO_WATCH_TIMEOUT_SECONDS = env_int("LBDEMO_WATCH_TIMEOUT_SECONDS", 300, minimum=5, maximum=3600)
LBDEMO_WATCH_READ_TIMEOUT = env_int("LBDEMO_WATCH_READ_TIMEOUT", 60, minimum=2, maximum=3600)

# --- Lessons rail (issue 11) -----------------------------------------------------------------
# How the page loads an image into the cluster's nodes: an argv template with {image}, run by the
# dashboard (`manage.py demo` sets the sandbox's `python -m sandbox image load {image} --state-dir
# …`). Unset (a real cluster): the lesson prints `minikube image load {image}` instead of a button.
LBDEMO_IMAGE_LOAD_COMMAND = os.environ.get("LBDEMO_IMAGE_LOAD_COMMAND", "")
