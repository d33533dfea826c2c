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

Run: ``.venv/bin/python bench/ingress.py [--duration S] [--connections N] [--pods N] [--rounds N]``
(``make bench`` installs wrk and haproxy with apt-get when missing).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
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
    args = parser.parse_args()
    for tool in ("wrk", "haproxy"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (make bench installs it with apt-get)")
    workdir = Path(tempfile.mkdtemp(prefix="lb-demo-bench-ingress-"))
    lab = Lab()
    haproxy = None
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
                   "ingress": (url, ingress)}
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, (target, proc) in targets.items():
                samples[name].append(common.run_load(target, keepalive=True, duration=args.duration,
                                                     connections=args.connections, proc=proc))
        h_rate, h_cpu = common.median(samples["haproxy"])
        i_rate, i_cpu = common.median(samples["ingress"])
        print(f"Ingress controller vs HAProxy (mode http, nbthread 1), both round-robin per request over "
              f"the same {len(backends)} pods, upstream keep-alive, load average {common.loads_seen()}:")
        print(f"keep-alive (wrk), {args.connections} conns, median of {args.rounds}: "
              f"haproxy {h_rate:,.0f} req/s ({h_cpu:.0f} us CPU/req), "
              f"sandbox ingress {i_rate:,.0f} req/s ({i_cpu:.0f} us CPU/req) "
              f"-> {i_rate / h_rate if h_rate else 0:.2f}x (target >= 0.8)")
        print("rounds (req/s): haproxy " + ", ".join(f"{r:,.0f}" for r, _ in samples["haproxy"])
              + "; ingress " + ", ".join(f"{r:,.0f}" for r, _ in samples["ingress"]))
    finally:
        if haproxy is not None:
            haproxy.terminate()
            haproxy.wait(10)
        lab.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
