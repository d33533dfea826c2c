"""Short pauses of Python's cyclic garbage collector while the cache holds 10,000 pods.

The informer cache keeps every pod as decoded JSON, some fifty dicts and lists each: a full
(generation 2) collection walks all of them, 0.1-0.4 s at 10,000 pods, holding the GIL, so the
frame being rendered, the websocket sends and the watch all wait — the tail of change -> DOM
under 100 pod events/s (bench/dashboard.py). Decoded objects hold no reference cycles and are
freed by reference counting when the cache replaces them: the collector never finds garbage
among them, it only pays for walking them.

:func:`install` adds a collector callback: when a full collection ends, everything that survived
it is moved to the permanent generation (``gc.freeze()``), which later collections skip, so each
full collection walks only what survived since the last one. Every :data:`THAW_EVERY` seconds
the first full collection starts by handing the permanent generation back (``gc.unfreeze()``):
one collection then walks everything and reclaims any cycle that formed meanwhile among
objects that had been frozen (a closed socket's transport and protocol, say), so nothing leaks
for longer than that.

Installed (:func:`install_for`) by the first page load or live-view snapshot that shows
:data:`INSTALL_AT` pods or more: below that a full collection is short and the policy buys nothing.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

INSTALL_AT = 2000
THAW_EVERY = 600.0  # s

_lock = threading.Lock()
_installed = False
_thawed_at = 0.0


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    """gc callback: thaw before the first full collection of a period, freeze after every one."""
    global _thawed_at
    if info.get("generation") != 2:
        return
    if phase == "start":
        now = time.monotonic()
        if now - _thawed_at >= THAW_EVERY:
            _thawed_at = now
            gc.unfreeze()
    elif phase == "stop":
        gc.freeze()


def install() -> None:
    """Start the policy for this process (idempotent)."""
    global _installed, _thawed_at
    with _lock:
        if _installed:
            return
        _installed = True
        _thawed_at = time.monotonic()
        gc.callbacks.append(_on_collection)


def install_for(pods: int) -> None:
    """Start the policy once the cache holds :data:`INSTALL_AT` pods or more."""
    if pods >= INSTALL_AT and not _installed:
        install()


def uninstall() -> None:
    """Stop the policy and thaw everything (a test that installed it restores the process)."""
    global _installed
    with _lock:
        if _on_collection in gc.callbacks:
            gc.callbacks.remove(_on_collection)
        _installed = False
        gc.unfreeze()
