"""The lessons websocket: one per open page, pushing that user's rail whenever their state changes.

On connect the page gets its rail (lessons, checks, command log) as htmx out-of-band swaps; then
one frame per ``lessons.changed`` message the engine sends to the user's group
(``lessons.user.<pk>``) — a check passed, an answer, a logged command — and nothing for other
users' changes. The page sends nothing this socket needs (the dashboard's script acknowledges
every frame on every socket); whatever it sends is ignored.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from dashboard.auth import AuthenticatedConsumerMixin
from dashboard.lessons.engine import get_engine, user_group
from dashboard.lessons.rail import RailView, rail_view

log = logging.getLogger(__name__)


def render_rail(rail: RailView) -> str:
    """The rail and the command log as out-of-band swaps (pure; safe in a worker thread)."""
    return render_to_string("lessons/_rail.html", {"rail": rail, "oob": "true"}) + render_to_string(
        "lessons/_command_log.html", {"commands": rail.commands, "oob": "true"}
    )


class LessonsConsumer(AuthenticatedConsumerMixin, AsyncWebsocketConsumer):
    """Streams one user's lessons rail to one page."""

    async def connect(self) -> None:
        """Called on an authenticated handshake: accept, join the user's group, send the rail."""
        self.user_id = int(self.scope["user"].pk)
        self.engine = get_engine()
        await self.channel_layer.group_add(user_group(self.user_id), self.channel_name)
        await self.accept()
        await self.send_rail()

    async def disconnect(self, code: int) -> None:
        """Called when the socket closes: leave the group."""
        if hasattr(self, "user_id"):
            await self.channel_layer.group_discard(user_group(self.user_id), self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called for frames from the page: acknowledgements, nothing to do."""

    async def lessons_changed(self, message: dict[str, Any]) -> None:
        """Called (via the channel layer) when this user's lesson state changed."""
        await self.send_rail()

    async def send_rail(self) -> None:
        """Build the rail on the loop (it reads the cache), render it in a worker thread, send it."""
        user = await self.engine.user(self.user_id)
        rail = rail_view(user, self.engine.hub.cache)
        html = await sync_to_async(render_rail, thread_sensitive=False)(rail)
        await self.send(text_data=html)
