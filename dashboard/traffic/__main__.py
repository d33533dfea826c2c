"""`python -m dashboard.traffic URL ...`: the traffic engine on its own, reporting like `hey`.

Prints the per-pod split (with the spread expected by chance), latency percentiles, errors by
kind and status codes. ``--json`` prints the same numbers as one JSON object (bench scripts use it).
Bad flags exit with status 2 and a message saying what is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

from dashboard.traffic.engine import MODES, LoadSpec, SpecError, Target, TrafficEngine, new_event_loop
from dashboard.traffic.stats import ERROR_KINDS, PERCENTILES, TrafficStats


def build_parser() -> argparse.ArgumentParser:
    """The command line, `hey`-like."""
    parser = argparse.ArgumentParser(
        prog="python -m dashboard.traffic",
        description="Send HTTP traffic to a URL and show which pod served each request.")
    parser.add_argument("url", help="http://host[:port][/path], e.g. a Service's ClusterIP or NodePort")
    parser.add_argument("--mode", choices=MODES, default="keepalive",
                        help="reuse each connection (keepalive, default) or open one per request (new-conn)")
    parser.add_argument("-c", "--conns", type=int, default=None,
                        help="client connections (default: the concurrency, or 4)")
    load = parser.add_mutually_exclusive_group()
    load.add_argument("-q", "--rps", type=float, help="open loop: requests per second in total")
    load.add_argument("--concurrency", type=int, help="closed loop: requests in flight (default: --conns)")
    bound = parser.add_mutually_exclusive_group()
    bound.add_argument("-z", "--duration", type=float, help="seconds to run (default 10)")
    bound.add_argument("-n", "--requests", type=int, help="number of requests to send")
    parser.add_argument("--max-per-conn", type=int, default=0,
                        help="close and reopen a connection after this many requests (0 = never)")
    parser.add_argument("-t", "--timeout", type=float, default=5.0, help="per-request timeout in seconds")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def spec_from_args(args: argparse.Namespace) -> LoadSpec:
    """Turn parsed flags into a checked LoadSpec (SpecError if inconsistent)."""
    conns = args.conns if args.conns is not None else (args.concurrency or 4)
    duration = args.duration if args.duration is not None or args.requests is not None else 10.0
    return LoadSpec(mode=args.mode, conns=conns, rps=args.rps, concurrency=args.concurrency,
                    duration=duration, requests=args.requests, max_per_conn=args.max_per_conn,
                    timeout=args.timeout).check()


def format_report(stats: TrafficStats, *, elapsed: float, target: Target, spec: LoadSpec) -> str:
    """A human report like hey's: summary, per-pod table, split, latency, errors, statuses."""
    summary = stats.summary()
    lat = summary["latency_ms"]
    out = [f"Target: {target.url}  mode: {spec.mode}  connections: {spec.conns}  "
           + (f"rate: {spec.rps:g}/s" if spec.rps else f"concurrency: {spec.workers}"),
           "", "Summary:",
           f"  Total:\t{elapsed:.4f} secs",
           f"  Requests:\t{stats.requests} ({stats.ok} ok)",
           f"  Requests/sec:\t{stats.requests / elapsed if elapsed else 0:.1f}",
           f"  Connections:\t{stats.connections} opened"]
    if stats.unsent:
        out.append(f"  Unsent:\t{stats.unsent} (the target was too slow for the rate)")
    out += ["", "Pods:"]
    rows = summary["pods"]
    width = max([len("POD"), *(len(row["pod"]) for row in rows)])
    out.append(f"  {'POD':<{width}}  {'IP':<15}  {'REQUESTS':>8}  {'SHARE':>6}  {'EVEN':>6}  {'CONNS':>6}")
    for row in rows:
        even = f"{row['even'] * 100:5.1f}%" if row["even"] is not None else "     -"
        out.append(f"  {row['pod']:<{width}}  {row['ip']:<15}  {row['requests']:>8}  "
                   f"{row['share'] * 100:5.1f}%  {even}  {row['conns']:>6}")
    if not rows:
        out.append("  (no pod answered)")
    split = summary["split"]
    if split["max_deviation"] is not None:
        line = f"  Split: furthest pod is {split['max_deviation'] * 100:.1f} pp from its expected share"
        if split["chance_sd"] is not None:
            line += (f"; chance alone gives ±{split['chance_sd'] * 100:.1f} pp (1 sd) with "
                     f"{split['connections']} connection(s) balanced")
        if split["p_value"] is not None:
            line += f"; chi-square on connections p = {split['p_value']:.3g}"
        out.append(line)
        out.append(f"  Expected: {split['basis_text']}")
    out += ["", "Latency distribution:"]
    out += [f"  {p}% in {lat[f'p{p}'] / 1000:.4f} secs" for p in PERCENTILES]
    out.append(f"  fastest {lat['min'] / 1000:.4f}, mean {lat['mean'] / 1000:.4f}, "
               f"slowest {lat['max'] / 1000:.4f} secs")
    out += ["", "Errors: " + ", ".join(f"{kind} {summary['errors'][kind]}" for kind in ERROR_KINDS)]
    out += ["", "Status code distribution:"]
    out += [f"  [{code}]\t{count} responses" for code, count in summary["statuses"].items()] or ["  (none)"]
    return "\n".join(out)


async def _run(target: Target, spec: LoadSpec) -> tuple[TrafficStats, float]:
    engine = TrafficEngine(target, spec, TrafficStats())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, engine.stop)
    started = time.perf_counter()
    stats = await engine.run()
    return stats, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        target = Target.from_url(args.url)
        spec = spec_from_args(args)
    except SpecError as error:
        parser.error(str(error))
    loop = new_event_loop()
    try:
        stats, elapsed = loop.run_until_complete(_run(target, spec))
    finally:
        loop.close()
    if args.json:
        print(json.dumps({"elapsed": elapsed, "rps": stats.requests / elapsed if elapsed else 0.0,
                          **stats.summary()}))
    else:
        print(format_report(stats, elapsed=elapsed, target=target, spec=spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
