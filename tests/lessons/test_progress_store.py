"""The lessons engine's database hand-off: a learner's progress reaches the database whatever
context changed it — here from inside a sync view's ``async_to_sync`` call that has returned
before the write runs, which with ``sync_to_async`` failed ("CurrentThreadExecutor already quit
or is not running") and lost the progress — in the order it was made, from a copy taken when
it changed."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth import get_user_model

from dashboard.lessons.engine import ACTIVE, DONE, LessonEngine, Progress, UserLessons, db_call, load_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in its own thread, like daphne's."""
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join(timeout=10)
    running.close()


def engine_on(loop: asyncio.AbstractEventLoop) -> LessonEngine:
    """An engine with no hub (the database path needs none)."""
    engine = LessonEngine.__new__(LessonEngine)
    engine.loop = loop
    engine.users = {}
    engine._dirty = set()
    engine._flush_scheduled = False
    return engine


def learner_id() -> int:
    user, _ = get_user_model().objects.get_or_create(username="grace")
    return int(user.pk)


def test_progress_changed_inside_a_finished_async_to_sync_call_is_saved(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    user_id = learner_id()
    engine = engine_on(loop)
    user = UserLessons(user_id=user_id, progress={}, commands=[])
    progress = Progress(lesson="disposable", state=ACTIVE, started_at=1.0)

    async def changed() -> None:  # on the loop, in the context of the sync view's call
        # A change made a little later in this context (as when the call first awaits the
        # user's load): by then the view's call has returned.
        asyncio.get_running_loop().call_later(0.2, engine._changed, user, progress)

    def sync_view() -> None:  # a sync view (in a worker thread) reaching the engine on the loop
        async_to_sync(changed)()

    async def request() -> None:
        await sync_to_async(sync_view)()
        await asyncio.sleep(0.5)  # the write runs after the view's call has returned

    with caplog.at_level(logging.ERROR):
        asyncio.run_coroutine_threadsafe(request(), loop).result(timeout=30)
        db_call(lambda: None).result(timeout=30)  # every write queued before it has landed
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert db_call(load_user, user_id).result(timeout=30).progress["disposable"].state == ACTIVE


def test_writes_land_in_order_from_the_state_at_each_change() -> None:
    user_id = learner_id()
    progress = Progress(lesson="rolling", state=ACTIVE, started_at=1.0,
                        checks={"two-replicasets": {"state": "failed", "figure": "one"}})
    LessonEngine._save(user_id, progress)
    progress.state = DONE
    progress.checks["two-replicasets"] = {"state": "passed", "figure": "two ReplicaSets"}
    last = LessonEngine._save(user_id, progress)
    progress.checks.clear()  # the live object moves on; what is written is the copy
    progress.state = ACTIVE
    last.result(timeout=30)
    saved = db_call(load_user, user_id).result(timeout=30).progress["rolling"]
    assert saved.state == DONE
    assert saved.checks == {"two-replicasets": {"state": "passed", "figure": "two ReplicaSets"}}
