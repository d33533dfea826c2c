"""Tie a child process's life to its parent's (Linux ``PR_SET_PDEATHSIG``), and run a
component process's main coroutine.

Every process lb-demo starts — the sandbox under `manage.py demo`, the sandbox's components,
the pods' containers — must not outlive whoever started it, even when that parent is
SIGKILLed and gets no chance to clean up. The kernel sends the chosen signal to the child
when the parent thread that forked it exits.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
from collections.abc import Coroutine
from typing import Any

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """In a forked child (a ``preexec_fn``): get ``signum`` when the parent dies; exit at once if
    the parent is already gone (the child was re-parented to init before the call)."""
    _libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if os.getppid() == 1:
        os._exit(128 + signum)


def run_main(main: Coroutine[Any, Any, None]) -> None:
    """Run a component process's main coroutine on uvloop (lower watch and proxy latency, see
    bench/apiserver.py), or on asyncio's own loop where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
