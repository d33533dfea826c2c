"""Benchmark of the ingress controller: keep-alive HTTP throughput next to HAProxy in HTTP mode.

Starts a private sandbox, scales the backend to ``--pods`` (5) Ready pods and starts HAProxy
(Debian's, one thread, HTTP mode, ``balance roundrobin``, ``http-reuse always``, adding the same
X-Forwarded-For/-Host/-Port/-Proto and X-Real-IP request headers) over the same pod addresses the
ingress controller balances over. Then, alternating the two for ``--rounds``
rounds (the machine is shared and noisy), ``wrk`` sends keep-alive requests over
``--connections`` (32) connections for ``--duration`` seconds to each: through the sandbox's
Ingress (``k8s/ingress.yaml``, address from its status) and through HAProxy. Both proxies pick a
pod per request, round-robin, and keep their upstream connections alive; both run at the same
scheduling priority. Prints the medians (requests/s and CPU microseconds per request of the
proxy process) and the ratio; target: at least 0.8 of HAProxy's throughput.

Two kinds of requests (``--requests``, default both): ``same``, wrk's default, every request of
a connection identical (the ingress reuses the head it parsed last, see
`sandbox.ingress_proxy.RequestHead`), and ``distinct``, every request with its own query
string (a wrk Lua script), so every head is parsed. ``--compare REV`` (repeatable) also runs
the ingress data plane of git revision REV (``sandbox/`` as of REV, a standalone process
serving the same pods at the same priority) in the same rounds: an A/B at the same moment on
a busy machine.

Run: ``.venv/bin/python bench/ingress.py [--duration S] [--connections N] [--pods N] [--rounds N]
[--requests same|distinct|both] [--compare REV]`` (``make bench`` installs wrk and haproxy with
apt-get when missing).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.launcher import Lab, free_port  # noqa: E402

# The sandbox benchmark's helpers (its small API client, polling, wrk runner); loaded by path
# because bench/ is a folder of scripts, not a package.
_spec = importlib.util.spec_from_file_location("bench_sandbox", REPO / "bench" / "sandbox.py")
assert _spec is not None and _spec.loader is not None
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)


def start_haproxy(backends: list[str], workdir: Path) -> tuple[subprocess.Popen, int]:
    """HAProxy in HTTP mode, round-robin per request over ``backends``, upstream keep-alive."""
    port = free_port()
    servers = "\n".join(f"    server s{i} {b}" for i, b in enumerate(backends))
    config = workdir / "haproxy-http.cfg"
    config.write_text(f"""global
    maxconn 4000
    nbthread 1
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    balance roundrobin
    http-reuse always
    # The same request headers the ingress controller adds (as ingress-nginx does), so that the
    # pods parse the same requests behind both proxies.
    option forwardfor
    http-request set-header X-Real-IP %[src]
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-request set-header X-Forwarded-Port %[dst_port]
    http-request set-header X-Forwarded-Proto http
{servers}
""")
    nice = ["nice", "-n", "-10"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(
        [*nice, "haproxy", "-f", str(config), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    common.wait_for(lambda: common._listening(port), timeout=10, what="haproxy")
    return proc, port


# Every request of a wrk connection with its own query string: no two request heads alike.
DISTINCT_LUA = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, "/?n=" .. counter)
end
"""

# A standalone ingress data plane (as of some revision) over the given pods: argv = port, pod
# addresses. The same API every revision has had: IngressProxy().update/listen/run_sweeper.
STANDALONE = """
import asyncio, os, sys
sys.path.insert(0, os.getcwd())
from sandbox.ingress_proxy import IngressProxy
from sandbox.ingress_rules import Backend, RouteTable, Target
from sandbox.procutil import run_main

async def main():
    backend = Backend("default", "backend-service", 80)
    proxy = IngressProxy()
    eps = [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1]), f"pod-{i}") for i, a in enumerate(sys.argv[2:])]
    proxy.update(RouteTable(default=Target(backend, "default/backend", "")), {backend: eps})
    await proxy.listen("127.0.0.1", int(sys.argv[1]))
    await proxy.run_sweeper()

run_main(main())
"""


def start_revision(rev: str, backends: list[str], workdir: Path) -> tuple[subprocess.Popen, int]:
    """The ingress data plane of git revision ``rev``, standalone, over ``backends``."""
    tree = workdir / f"rev-{rev}"
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "sandbox"], capture_output=True,
                             check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    port = free_port()
    nice = ["nice", "-n", "-10"] if os.geteuid() == 0 else []
    proc = subprocess.Popen([*nice, sys.executable, "-c", STANDALONE, str(port), *backends], cwd=tree,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    common.wait_for(lambda: common._listening(port), timeout=20, what=f"the ingress of {rev}")
    return proc, port


def run_wrk(url: str, *, script: Path | None, duration: int, connections: int,
            proc: psutil.Process) -> tuple[float, float]:
    """(req/s, CPU microseconds of ``proc`` per request) for one keep-alive wrk run; every answer
    must be a 2xx."""
    before, began = common.cpu_seconds(proc), time.monotonic()
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s",
                          *(["-s", str(script)] if script else []), url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    cpu = (common.cpu_seconds(proc) - before) / (time.monotonic() - began)
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"failed requests against {url}:\n{out[-1500:]}")
    rate = common.parse_wrk(out)
    common.LOADS.append(os.getloadavg()[0])
    return rate, (cpu / rate * 1e6 if rate else 0.0)


def ingress_url(api: object) -> str:
    """The sample Ingress's address as its status publishes it."""

    def published() -> str | None:
        ing = api.get("/apis/networking.k8s.io/v1/namespaces/default/ingresses/backend")  # type: ignore[attr-defined]
        entries = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if not entries:
            return None
        port = (entries[0].get("ports") or [{"port": 80}])[0]["port"]
        return f"http://{entries[0]['ip']}:{port}/"

    return common.wait_for(published, timeout=60, interval=0.5, what="the Ingress's address")


def main() -> None:
    """Start a sandbox and HAProxy, measure both, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (wrk -c)")
    parser.add_argument("--pods", type=int, default=5, help="backend pods behind both proxies")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per proxy")
    parser.add_argument("--requests", choices=("same", "distinct", "both"), default="both",
                        help="identical requests per connection, each with its own query string, or both")
    parser.add_argument("--compare", action="append", default=[], metavar="REV",
                        help="also run the ingress data plane of this git revision (standalone)")
    args = parser.parse_args()
    for tool in ("wrk", "haproxy"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (make bench installs it with apt-get)")
    workdir = Path(tempfile.mkdtemp(prefix="lb-demo-bench-ingress-"))
    (workdir / "distinct.lua").write_text(DISTINCT_LUA)
    lab = Lab()
    haproxy = None
    others: list[subprocess.Popen] = []
    try:
        kubeconfig = lab.start_sandbox(state_dir=workdir / "state", api_port=free_port(), nodes=args.nodes,
                                       log_file=workdir / "sandbox.log")
        api = common.Api(kubeconfig)
        common.wait_for(lambda: len(api.ready_backend_pods()) == 3, timeout=120, what="the 3 sample pods")
        api.scale(args.pods)
        common.wait_for(lambda: len(api.all_backend_pods()) == args.pods
                        and len(api.ready_backend_pods()) == args.pods, timeout=120, what=f"{args.pods} pods")
        url = ingress_url(api)
        backends = sorted(f"{p['status']['podIP']}:8080" for p in api.ready_backend_pods())
        haproxy, port = start_haproxy(backends, workdir)
        root = psutil.Process(lab.processes[0].pid)
        ingress = next(p for p in root.children() if "sandbox.ingress" in " ".join(p.cmdline()))
        targets = {"haproxy": (f"http://127.0.0.1:{port}/", psutil.Process(haproxy.pid)),
                   "sandbox ingress": (url, ingress)}
        for rev in args.compare:
            child, rev_port = start_revision(rev, backends, workdir)
            others.append(child)
            targets[f"ingress@{rev}"] = (f"http://127.0.0.1:{rev_port}/", psutil.Process(child.pid))
        kinds = ("same", "distinct") if args.requests == "both" else (args.requests,)
        samples: dict[tuple[str, str], list[tuple[float, float]]] = {
            (k, n): [] for k in kinds for n in targets
        }
        for _ in range(args.rounds):
            for kind in kinds:
                script = workdir / "distinct.lua" if kind == "distinct" else None
                for name, (target, measured) in targets.items():
                    samples[(kind, name)].append(run_wrk(target, script=script, duration=args.duration,
                                                         connections=args.connections, proc=measured))
        print(f"Ingress controller vs HAProxy (mode http, nbthread 1), both round-robin per request over "
              f"the same {len(backends)} pods, upstream keep-alive, wrk {args.connections} conns, "
              f"median of {args.rounds}, load average {common.loads_seen()}:")
        for kind in kinds:
            h_rate, _ = common.median(samples[(kind, "haproxy")])
            what = "identical requests" if kind == "same" else "every request distinct"
            print(f"{what} (target: the sandbox ingress >= 0.8x HAProxy):")
            for name in targets:
                rate, cpu = common.median(samples[(kind, name)])
                rounds = ", ".join(f"{r:,.0f}" for r, _ in samples[(kind, name)])
                ratio = "" if name == "haproxy" else f" -> {rate / h_rate if h_rate else 0:.2f}x"
                print(f"  {name}: {rate:,.0f} req/s ({cpu:.0f} us CPU/req){ratio}; rounds {rounds}")
    finally:
        for child in [*others, *([haproxy] if haproxy is not None else [])]:
            child.terminate()
            child.wait(10)
        lab.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
