"""Appending to a user's command log from any view: every action taken on the page — slider,
kill, readiness, the lessons' buttons, a traffic run — logs the command that does the same.

The log lives in the database and, once the lessons engine runs (a page opened its socket), in
the engine's memory too, which also tells that user's pages. An action taken before any page
was open (a script, a test) only writes the row; the rail reads it when it loads. These helpers
never start the engine (or the watch hub) themselves. A failure to log is reported in the
server log and never fails the action itself.
"""

from __future__ import annotations

import logging
import time

from asgiref.sync import async_to_sync, sync_to_async

log = logging.getLogger(__name__)


async def command_log_append_async(*, user_id: int, command: str) -> None:
    """Log ``command`` for the user (call on the event loop)."""
    from dashboard.lessons.engine import current_engine, save_command

    try:
        engine = current_engine()
        if engine is None:
            await sync_to_async(save_command)(user_id, time.time(), command)
        else:
            await engine.log_command(user_id, command)
    except Exception:
        log.exception("could not log a command for user %s", user_id)


def command_log_append(*, user_id: int, command: str) -> None:
    """Log ``command`` for the user from a sync view."""
    from dashboard.lessons.engine import current_engine, save_command

    if current_engine() is None:
        try:
            save_command(user_id, time.time(), command)
        except Exception:
            log.exception("could not log a command for user %s", user_id)
        return
    async_to_sync(command_log_append_async)(user_id=user_id, command=command)
