"""Who may look at and act on the cluster: login by token or Django user, for pages and sockets.

Every page, action and websocket of the dashboard requires an authenticated Django session.
A browser gets one in one of three ways:

- ``/?token=<LBDEMO_LOGIN_TOKEN>`` — the one-time token `make demo` prints. It logs the browser
  in once and is then spent (for the life of the dashboard process, which is also the token's
  life: `make demo` draws a new one at every start). The redirect that follows drops the token
  from the address bar so it does not linger in history or screenshots.
- ``/?token=<LBDEMO_TOKEN>`` — a long-lived operator token for real deployments; reusable.
- the login form at ``/login/`` for Django users (``manage.py createsuperuser``).

Both tokens log the browser in as the Django user ``lbdemo-operator`` (created on first use,
without a usable password), so everything downstream — CSRF, sessions, per-user rate limits,
Channels' ``scope["user"]`` — works the same for every kind of login.

Failed logins are throttled (:data:`failures`): a client, or an account, that failed
``LBDEMO_LOGIN_FAILURES_PER_CLIENT`` / ``_PER_ACCOUNT`` times within
``LBDEMO_LOGIN_FAILURE_WINDOW`` seconds gets ``429 Too Many Requests`` (with Retry-After)
*before* any password is hashed or token compared, until its oldest failure ages out. Token
guesses count against the client and against one account, ``token``; form logins against the
client and the typed user name.

Websocket handshakes are origin-checked like Django's CSRF check (:func:`origin_allowed`):
the Origin must equal the page's own scheme, host and port (or a CSRF_TRUSTED_ORIGINS entry).

Every view, sync or async (the traffic lab's), is protected by the one guard
:func:`login_required_view`; consumers by :class:`AuthenticatedConsumerMixin`. A refusal of a
non-page request is the JSON error every action and traffic endpoint answers with:
``{"error": "<what is wrong>"}``.
"""

from __future__ import annotations

import functools
import hmac
import inspect
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    HttpResponseRedirect,
    JsonResponse,
    QueryDict,
)
from django.http.request import split_domain_port, validate_host
from django.urls import reverse

log = logging.getLogger(__name__)

OPERATOR_USERNAME = "lbdemo-operator"
# Websocket close code for "not logged in" (4000-4999 are free for applications).
WS_CLOSE_UNAUTHENTICATED = 4401
# ... and for "not from this dashboard's page" (a foreign Origin).
WS_CLOSE_FORBIDDEN = 4403

_spent_lock = threading.Lock()
_login_token_spent = False


def _matches(given: str, expected: str) -> bool:
    """Constant-time comparison that never matches an unset token."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def check_token(token: str) -> bool:
    """True if ``token`` is the reusable operator token, or the one-time token not yet spent.

    Spending the one-time token happens here, atomically, so two racing requests cannot
    both log in with it.
    """
    global _login_token_spent
    if _matches(token, settings.LBDEMO_TOKEN):
        return True
    if not _matches(token, settings.LBDEMO_LOGIN_TOKEN):
        return False
    with _spent_lock:
        if _login_token_spent:
            return False
        _login_token_spent = True
        return True


def operator_user() -> AbstractBaseUser:
    """The Django user a token login is recorded as (created once, no usable password)."""
    user_model = get_user_model()
    user, created = user_model._default_manager.get_or_create(username=OPERATOR_USERNAME)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


class FailureThrottle:
    """Failed login attempts per key in a sliding window, in memory (one dashboard process).

    At most ``max_keys`` keys are remembered (the least recently failed are forgotten first),
    so a flood of distinct names cannot grow it without bound.
    """

    def __init__(self, max_keys: int = 10_000) -> None:
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float, window: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, keys: dict[str, int], *, window: float, now: float | None = None) -> int:
        """Seconds until every key is below its limit again (0: allowed now)."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        with self._lock:
            for key, limit in keys.items():
                times = self._recent(key, now, window)
                if len(times) >= limit:
                    wait = max(wait, times[len(times) - limit] + window - now)
        return math.ceil(wait) if wait > 0 else 0

    def fail(self, keys: dict[str, int], *, now: float | None = None) -> None:
        """Record one failure against each key."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in keys:
                times = self._failures.pop(key, None) or deque(maxlen=100_000)
                times.append(now)
                self._failures[key] = times
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._failures.clear()


failures = FailureThrottle()


def client_address(request: HttpRequest) -> str:
    """The address failures are counted against (the TCP peer; the lab has no proxy)."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def throttle_keys(request: HttpRequest, account: str) -> dict[str, int]:
    """The keys a login attempt counts against, with their limits."""
    return {f"client:{client_address(request)}": settings.LBDEMO_LOGIN_FAILURES_PER_CLIENT,
            f"account:{account.strip().lower()[:150]}": settings.LBDEMO_LOGIN_FAILURES_PER_ACCOUNT}


def too_many_failures(retry_after: int) -> HttpResponse:
    """The 429 a throttled login attempt gets."""
    response = HttpResponse(f"Too many failed login attempts. Try again in {retry_after} s.\n",
                            status=429, content_type="text/plain")
    response["Retry-After"] = str(retry_after)
    return response


class ThrottledLoginView(auth_views.LoginView):
    """Django's login form, refusing (429) clients and accounts with too many recent failures
    before the password is hashed, and landing on the dashboard when there is no ``next``."""

    template_name = "dashboard/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Called for a submitted form: throttle, then let Django authenticate."""
        keys = throttle_keys(request, str(request.POST.get("username", "")))
        wait = failures.retry_after(keys, window=settings.LBDEMO_LOGIN_FAILURE_WINDOW)
        if wait:
            log.warning("refused a login attempt from %s: too many failures (retry in %d s)",
                        client_address(request), wait)
            return too_many_failures(wait)
        response = super().post(request, *args, **kwargs)
        if not request.user.is_authenticated:
            failures.fail(keys)
        return response


def origin_allowed(scope: dict[str, Any]) -> bool:
    """True if a websocket handshake comes from the dashboard's own page (or a trusted origin).

    Like Django's CSRF origin check: the Origin header's scheme, host and port must equal the
    request's own (Host header, http/https from the connection or the opted-in proxy header),
    and the host must be one of ALLOWED_HOSTS; CSRF_TRUSTED_ORIGINS entries match exactly.
    """
    headers: dict[bytes, bytes] = {}
    for name, value in scope.get("headers") or []:
        headers.setdefault(bytes(name).lower(), bytes(value))
    origin = headers.get(b"origin", b"").decode("latin-1").strip()
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    if not origin or not host:
        return False
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    secure = scope.get("scheme") in {"wss", "https"}
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        header = proxy[0].removeprefix("HTTP_").replace("_", "-").lower().encode()
        secure = secure or headers.get(header, b"").decode("latin-1").split(",")[0].strip() == proxy[1]
    own = _origin_tuple(f"{'https' if secure else 'http'}://{host}")
    given = _origin_tuple(origin)
    if given is None:
        return False
    if given == own:
        return True
    return any(given == _origin_tuple(trusted) for trusted in settings.CSRF_TRUSTED_ORIGINS)


def _origin_tuple(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, with the scheme's default port filled in."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


class OriginValidator:
    """ASGI middleware refusing websocket handshakes whose Origin is not the page's own."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        """Called per connection: reject before the application sees a foreign origin."""
        if scope.get("type") == "websocket" and not origin_allowed(scope):
            origin = dict(scope.get("headers") or []).get(b"origin")
            log.info("refused a websocket from origin %.100r", origin)
            await receive()  # the websocket.connect message
            await send({"type": "websocket.close", "code": WS_CLOSE_FORBIDDEN})
            return None
        return await self.application(scope, receive, send)


def _without_token(request: HttpRequest) -> str:
    """The request's path and query string with the ``token`` parameter removed."""
    query: QueryDict = request.GET.copy()
    query.pop("token", None)
    return request.path + (f"?{query.urlencode()}" if query else "")


def error_response(message: str, status: int) -> JsonResponse:
    """The dashboard's one error format for actions and traffic endpoints: ``{"error": message}``."""
    return JsonResponse({"error": message}, status=status)


def _token_login(request: HttpRequest, token: str) -> HttpResponse:
    """Log the browser in with a ``?token=`` and redirect to the URL without it, or refuse
    (429 while the client or the token account has failed too often)."""
    keys = throttle_keys(request, "token")
    wait = failures.retry_after(keys, window=settings.LBDEMO_LOGIN_FAILURE_WINDOW)
    if wait:
        log.warning("refused a login token from %s: too many failures (retry in %d s)",
                    client_address(request), wait)
        return too_many_failures(wait)
    if not check_token(token):
        failures.fail(keys)
        log.warning("refused a login token from %s", client_address(request))
        return HttpResponseForbidden(
            "This login token is not valid or has already been used. "
            "Restart `make demo` for a new one, or log in at /login/.",
            content_type="text/plain")
    login(request, operator_user(), backend="django.contrib.auth.backends.ModelBackend")
    return HttpResponseRedirect(_without_token(request))


def _refusal(request: HttpRequest, *, api: bool) -> HttpResponse:
    """What an anonymous request gets: the login form for a page load, else a JSON 403."""
    if not api and request.method in {"GET", "HEAD"} and not request.headers.get("HX-Request"):
        return HttpResponseRedirect(f"{reverse('login')}?{urlencode({'next': request.get_full_path()})}")
    return error_response("Log in first.", 403)


def login_required_view(view: Callable[..., Any] | None = None, *, api: bool = False) -> Any:
    """Decorate a view, sync or async, so that only logged-in users reach it
    (``@login_required_view``, or ``@login_required_view(api=True)`` for JSON endpoints).

    A ``?token=`` parameter is handled first: a valid token logs the browser in and redirects
    to the same URL without the token; an invalid or spent one is refused with 403. Without a
    session, page loads (GET/HEAD of a non-api view) are redirected to the login form and
    everything else gets a JSON 403, so a script or an htmx request never follows a redirect
    to an HTML form.
    """
    if view is None:
        return functools.partial(login_required_view, api=api)
    if inspect.iscoroutinefunction(view):
        @functools.wraps(view)
        async def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            token = request.GET.get("token")
            if token is not None and request.method in {"GET", "HEAD"}:
                return await sync_to_async(_token_login)(request, token)
            if (await request.auser()).is_authenticated:
                return await view(request, *args, **kwargs)
            return _refusal(request, api=api)
        return guarded

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        token = request.GET.get("token")
        if token is not None and request.method in {"GET", "HEAD"}:
            return _token_login(request, token)
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        return _refusal(request, api=api)

    return wrapper


class AuthenticatedConsumerMixin:
    """Mix into a Channels websocket consumer (before the consumer class) to refuse anonymous
    handshakes: the connection is closed before it is accepted, which the browser sees as a
    rejected handshake. Needs ``AuthMiddlewareStack`` in the ASGI router (dashboard/asgi.py)."""

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        """Called on the handshake: continue only for an authenticated user."""
        user = self.scope.get("user")  # type: ignore[attr-defined]
        if user is None or not user.is_authenticated:
            await self.close(code=WS_CLOSE_UNAUTHENTICATED)  # type: ignore[attr-defined]
            return
        await super().websocket_connect(message)  # type: ignore[misc]
