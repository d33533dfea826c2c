"""Appending to a user's command log from any view: every action taken on the page — slider,
kill, readiness, the lessons' buttons, a traffic run — logs the command that does the same.

The log lives in the database and, once the lessons engine runs (a page opened its socket), in
the engine's memory too, which also tells that user's pages. An action taken before any page
was open (a script, a test) only writes the row; the rail reads it when it loads. These helpers
never start the engine (or the watch hub) themselves. A failure to log is reported in the
server log and never fails the action itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

log = logging.getLogger(__name__)


async def command_log_append_async(*, user_id: int, command: str) -> None:
    """Log ``command`` for the user (call on the event loop)."""
    from dashboard.lessons.engine import current_engine, db_call, save_command

    try:
        engine = current_engine()
        if engine is None:
            await asyncio.wrap_future(db_call(save_command, user_id, time.time(), command))
        else:
            await engine.log_command(user_id, command)
    except Exception as exc:
        log.error("could not log a command for user %s: %s", user_id, exc)


def command_log_append(*, user_id: int, command: str) -> None:
    """Log ``command`` for the user from a sync view: the row is written here, in the view's
    thread, before the view answers; a running engine is then handed the entry on its loop
    (it touches no database there)."""
    from dashboard.lessons.engine import current_engine, save_command

    at = time.time()
    try:
        save_command(user_id, at, command)
    except Exception as exc:
        log.error("could not log a command for user %s: %s", user_id, exc)
        return
    engine = current_engine()
    if engine is not None:
        # A closed loop (the dashboard is stopping) raises RuntimeError: the row is written anyway.
        with contextlib.suppress(RuntimeError):
            engine.loop.call_soon_threadsafe(engine.command_logged, user_id, at, command)
