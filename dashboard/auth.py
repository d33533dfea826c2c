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
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    HttpResponseRedirect,
    JsonResponse,
    QueryDict,
)
from django.urls import reverse

log = logging.getLogger(__name__)

OPERATOR_USERNAME = "lbdemo-operator"
# Websocket close code for "not logged in" (4000-4999 are free for applications).
WS_CLOSE_UNAUTHENTICATED = 4401

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


def _without_token(request: HttpRequest) -> str:
    """The request's path and query string with the ``token`` parameter removed."""
    query: QueryDict = request.GET.copy()
    query.pop("token", None)
    return request.path + (f"?{query.urlencode()}" if query else "")


def error_response(message: str, status: int) -> JsonResponse:
    """The dashboard's one error format for actions and traffic endpoints: ``{"error": message}``."""
    return JsonResponse({"error": message}, status=status)


def _token_login(request: HttpRequest, token: str) -> HttpResponse:
    """Log the browser in with a ``?token=`` and redirect to the URL without it, or refuse."""
    if not check_token(token):
        log.warning("refused a login token from %s", request.META.get("REMOTE_ADDR"))
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
