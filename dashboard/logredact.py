"""No secret in any log: scrub login tokens from log records and from daphne's access log.

A login link carries ``?token=…`` (the one-time token `make demo` prints, or the reusable
``LBDEMO_TOKEN``). daphne's access log writes every request line, query string included, and
anyone who may read the dashboard's log (``kubectl logs`` needs only pods/log) could log in
with a reusable token. So:

- :func:`redact` replaces the value of every ``token=`` parameter, and any configured secret
  (LBDEMO_TOKEN, LBDEMO_LOGIN_TOKEN, SECRET_KEY) wherever it appears, with ``[redacted]``;
- :class:`RedactSecretsFilter` applies it to every record of the Python logging handlers
  (settings.LOGGING);
- :func:`install_access_log_redaction` applies it to daphne's access log lines (called by
  dashboard.asgi, which daphne imports in its own process before it serves anything).
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"
# token=..., also percent-encoded (token%3D...) and in any case; up to the next separator.
_TOKEN_PARAM = re.compile(r"(?i)((?:^|[?&;\s\"'])token(?:=|%3D))[^&;\s\"'#]*")


def _secrets() -> list[str]:
    """The configured secrets worth scrubbing (long enough not to blank ordinary words)."""
    try:
        from django.conf import settings

        values = [settings.LBDEMO_TOKEN, settings.LBDEMO_LOGIN_TOKEN, settings.SECRET_KEY]
    except Exception:  # settings not configured (a plain script): only the pattern applies
        return []
    return [v for v in values if isinstance(v, str) and len(v) >= 8]


def redact(text: str) -> str:
    """``text`` with token parameters and configured secrets replaced by ``[redacted]``."""
    text = _TOKEN_PARAM.sub(lambda m: m.group(1) + REDACTED, text)
    for secret in _secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactSecretsFilter(logging.Filter):
    """A logging filter that scrubs secrets from the formatted message (and any traceback text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Called per record: replace the message by its redacted rendering; never drop it."""
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_access_log_redaction() -> None:
    """Make daphne's access log (its NCSA-style request lines) write redacted request lines."""
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:  # served by another ASGI server: nothing to patch
        return
    if getattr(AccessLogGenerator, "_lbdemo_redacted", False):
        return
    original = AccessLogGenerator.write_entry

    def write_entry(self: Any, host: Any, date: Any, request: str, *args: Any, **kwargs: Any) -> None:
        original(self, host, date, redact(str(request)), *args, **kwargs)

    AccessLogGenerator.write_entry = write_entry
    AccessLogGenerator._lbdemo_redacted = True
