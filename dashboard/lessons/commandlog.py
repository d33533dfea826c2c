"""Appending to a user's command log from any view: every action taken on the page — slider,
kill, readiness, the lessons' buttons, a traffic run — logs the command that does the same.

The log lives in the lesson engine (on the event loop) and the database; these helpers hand the
entry over from a sync view (``command_log_append``) or an async one (``command_log_append_async``).
A failure to log is reported in the server log and never fails the action itself.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync

log = logging.getLogger(__name__)


async def command_log_append_async(*, user_id: int, command: str) -> None:
    """Log ``command`` for the user (call on the event loop)."""
    from dashboard.lessons.engine import get_engine

    try:
        await get_engine().log_command(user_id, command)
    except Exception:
        log.exception("could not log a command for user %s", user_id)


def command_log_append(*, user_id: int, command: str) -> None:
    """Log ``command`` for the user from a sync view (runs the append on the event loop)."""
    async_to_sync(command_log_append_async)(user_id=user_id, command=command)
