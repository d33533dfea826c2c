"""The engine against real backend_pod processes behind a per-connection balancer.

These are the lessons at engine level: a keep-alive connection sticks to one pod, new
connections spread, recycling spreads again; errors are classified by kind.
"""

from __future__ import annotations

import asyncio

import pytest

from dashboard.traffic.engine import LoadSpec, SpecError, Target, TrafficEngine, run_traffic
from dashboard.traffic.stats import TrafficStats
from lab.launcher import free_port
from tests.traffic.helpers import own_loop


def served(stats: TrafficStats) -> dict[str, int]:
    return {row["pod"]: row["requests"] for row in stats.pod_table() if row["requests"]}


@own_loop
async def test_one_keepalive_connection_is_served_by_one_pod(three_pods) -> None:
    stats = await run_traffic(Target.from_url(three_pods.url), LoadSpec(conns=1, requests=300, duration=None))
    assert stats.ok == 300
    assert stats.connections == 1
    assert len(served(stats)) == 1


@own_loop
async def test_new_connection_per_request_reaches_every_pod(three_pods) -> None:
    spec = LoadSpec(mode="new-conn", conns=4, requests=120, duration=None)
    stats = await run_traffic(Target.from_url(three_pods.url), spec)
    assert stats.ok == 120
    assert stats.connections == 120
    assert set(served(stats)) == {"pod-a", "pod-b", "pod-c"}


@own_loop
async def test_recycling_after_n_requests_opens_new_connections(three_pods) -> None:
    spec = LoadSpec(conns=1, requests=200, duration=None, max_per_conn=10)
    stats = await run_traffic(Target.from_url(three_pods.url), spec)
    assert stats.ok == 200
    assert stats.connections == 20
    assert len(served(stats)) >= 2
    lanes = stats.lane_view()[0]["segments"]
    assert all(segment[4] == 10 for segment in lanes)


@own_loop
async def test_open_loop_sends_every_planned_request(three_pods) -> None:
    spec = LoadSpec(conns=4, rps=200, duration=1.0)
    engine = TrafficEngine(Target.from_url(three_pods.url), spec, TrafficStats())
    stats = await engine.run()
    assert engine.sent + engine.unsent == 200
    assert stats.requests == engine.sent
    assert stats.connections == 4


@own_loop
async def test_open_loop_counts_queueing_as_latency(three_pods) -> None:
    # One connection, each request takes >= 200 ms, but 20 are due per second: the ones that
    # wait must show their wait (no coordinated omission), and the ones never sent are counted.
    target = Target.from_url(three_pods.url + "delay?ms=200")
    engine = TrafficEngine(target, LoadSpec(conns=1, rps=20, duration=1.0), TrafficStats())
    stats = await engine.run()
    assert engine.unsent > 0
    assert stats.latency.max >= 0.5


@own_loop
async def test_refused_connections_are_counted_as_refused() -> None:
    target = Target(host="127.0.0.1", port=free_port())
    stats = await run_traffic(target, LoadSpec(conns=2, requests=10, duration=None))
    assert stats.errors["refused"] == 10
    assert stats.ok == 0


@own_loop
async def test_server_errors_are_counted_as_5xx(three_pods) -> None:
    stats = await run_traffic(
        Target.from_url(three_pods.url + "status/503"), LoadSpec(conns=1, requests=20, duration=None)
    )
    assert stats.errors["5xx"] == 20
    assert stats.statuses[503] == 20


@own_loop
async def test_slow_answers_time_out(three_pods) -> None:
    stats = await run_traffic(
        Target.from_url(three_pods.url + "delay?ms=3000"),
        LoadSpec(conns=2, requests=2, duration=None, timeout=0.3),
    )
    assert stats.errors["timeout"] == 2


@own_loop
async def test_connections_closed_mid_request_are_resets() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.abort()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        stats = await run_traffic(
            Target(host="127.0.0.1", port=port), LoadSpec(conns=1, requests=5, duration=None)
        )
    assert stats.errors["reset"] == 5


@own_loop
async def test_chunked_and_close_delimited_bodies_are_read_whole() -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Pod-Name: chunky\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nX-Pod-Name: old\r\n\r\nuntil close",
    ]

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for response in answers:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(response)
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        stats = await run_traffic(
            Target(host="127.0.0.1", port=port), LoadSpec(conns=1, requests=2, duration=None)
        )
    assert stats.ok == 2
    assert served(stats) == {"chunky": 1, "old": 1}
    assert stats.connections == 1


@own_loop
async def test_stop_ends_a_run_early(three_pods) -> None:
    engine = TrafficEngine(
        Target.from_url(three_pods.url), LoadSpec(conns=2, rps=100, duration=60), TrafficStats()
    )
    task = asyncio.ensure_future(engine.run())
    while engine.done < 10:
        await asyncio.sleep(0.05)
    engine.stop()
    stats = await asyncio.wait_for(task, 30)
    assert engine.finished and stats.requests < 6000


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (LoadSpec(mode="udp"), "mode"),
        (LoadSpec(conns=0), "connections"),
        (LoadSpec(rps=10, concurrency=2, conns=2), "not both"),
        (LoadSpec(concurrency=5, conns=2), "cannot exceed"),
        (LoadSpec(duration=None, requests=None), "either"),
        (LoadSpec(rps=float("inf")), "rate"),
        (LoadSpec(max_per_conn=-1), "max requests"),
    ],
)
def test_impossible_specs_are_refused(spec: LoadSpec, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        spec.check()


def test_caps_are_enforced() -> None:
    with pytest.raises(SpecError, match="at most 2000"):
        LoadSpec(rps=2001, conns=1).check(max_rps=2000, max_conns=64, max_seconds=120)
    with pytest.raises(SpecError, match="at most 64 connections"):
        LoadSpec(rps=10, conns=65).check(max_rps=2000, max_conns=64, max_seconds=120)
    with pytest.raises(SpecError, match="at most 120 s"):
        LoadSpec(rps=10, conns=1, duration=121).check(max_rps=2000, max_conns=64, max_seconds=120)
    with pytest.raises(SpecError, match="rate must be given"):
        LoadSpec(conns=1).check(max_rps=2000)


def test_only_http_urls_are_targets() -> None:
    assert Target.from_url("http://127.0.0.1:8080/x?y=1") == Target(
        "127.0.0.1", 8080, "/x?y=1", "127.0.0.1:8080"
    )
    for bad in ("https://example.com/", "ftp://x/", "127.0.0.1:80", "http://:80/", "http://h:99999/"):
        with pytest.raises(SpecError):
            Target.from_url(bad)


@own_loop
async def test_idle_connections_closed_without_warning_are_counted_as_dropped() -> None:
    async def answer_then_vanish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pod-Name: flaky\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    server = await asyncio.start_server(answer_then_vanish, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        stats = await run_traffic(
            Target(host="127.0.0.1", port=port), LoadSpec(conns=1, rps=5, requests=3, duration=None)
        )
    assert stats.ok == 3 and sum(stats.errors.values()) == 0
    assert stats.connections == 3
    assert stats.dropped >= 2


@own_loop
async def test_a_draining_pod_loses_no_request(backend_factory) -> None:
    backend = backend_factory("pod-drain", SHUTDOWN_MODE="drain", DRAIN_SECONDS="3")
    engine = TrafficEngine(
        Target.from_url(backend.url), LoadSpec(conns=2, rps=100, duration=2.0), TrafficStats()
    )
    task = asyncio.ensure_future(engine.run())
    while engine.done < 20:
        await asyncio.sleep(0.02)
    backend.proc.terminate()
    stats = await asyncio.wait_for(task, 30)
    assert stats.ok > 20
    assert sum(stats.errors.values()) == 0 and stats.dropped == 0
    assert stats.connections > 2  # Connection: close during the drain made the client reconnect


@own_loop
async def test_an_abruptly_stopped_pod_breaks_its_connections(backend_factory) -> None:
    backend = backend_factory("pod-abrupt", SHUTDOWN_MODE="abrupt")
    engine = TrafficEngine(
        Target.from_url(backend.url), LoadSpec(conns=2, rps=100, duration=1.5), TrafficStats()
    )
    task = asyncio.ensure_future(engine.run())
    while engine.done < 20:
        await asyncio.sleep(0.02)
    backend.proc.terminate()
    stats = await asyncio.wait_for(task, 30)
    assert stats.errors["reset"] + stats.dropped >= 1
    assert stats.errors["refused"] > 0  # nothing listens any more


def test_a_peer_that_accepts_and_closes_at_once_is_a_reset_not_a_failed_run() -> None:
    """uvloop raises RuntimeError on a write to a transport its peer already closed; the engine
    must count that request as a reset and carry on (issue 10: 1 of 30 dashboard runs failed)."""
    from dashboard.traffic.engine import new_event_loop

    async def scenario() -> TrafficStats:
        async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.transport.abort()

        server = await asyncio.start_server(slam, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await run_traffic(
                Target(host="127.0.0.1", port=port),
                LoadSpec(mode="new-conn", conns=8, requests=400, duration=None, timeout=5),
            )

    loop = new_event_loop()
    try:
        stats = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert stats.requests == 400
    assert stats.errors["reset"] + stats.errors["refused"] == 400 and stats.errors["reset"] > 0
