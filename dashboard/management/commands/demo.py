"""`python manage.py demo`: run the whole lab in the foreground until Ctrl-C.

Without --kubeconfig it starts the local sandbox cluster (`python -m sandbox up`); with it,
the dashboard watches that cluster instead. It prints a login URL carrying a one-time token,
and this lab's own addresses of the sample Service — the NodePort on a node's IP and the
ClusterIP —, with commands that use them: on a machine running two labs, 127.0.0.1:30080 may
belong to the other one. On the sandbox it also lets the page load images into the node
(LBDEMO_IMAGE_LOAD_COMMAND, the sandbox's documented `python -m sandbox image load`).

Log hygiene: the token is printed to the terminal only. The log files the demo keeps in the
state directory (dashboard.log, sandbox.log) and the dashboard's database are created 0600
(readable by the user only) before any child opens them, and the dashboard scrubs tokens from
what it logs (dashboard.logredact), so nothing written to disk logs anyone in.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.settings import private_file
from lab.launcher import BASE_DIR, Lab, LabError, LabInterrupted


def port_number(raw: str) -> int:
    """argparse type for a TCP port."""
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError(raw)
    return value


def service_addresses(kubeconfig: str, *, context: str, namespace: str, service: str,
                      timeout: float = 20.0) -> list[tuple[str, str]]:
    """(kind, URL) of the Service in this cluster: each node's InternalIP with the NodePort, then
    the ClusterIP and port. Waits up to ``timeout`` for the Service (the sandbox creates it on
    first boot); [] if it does not appear or the cluster cannot be read."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=kubeconfig, context=context or None)
    try:
        core = client.CoreV1Api(api)
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = core.read_namespaced_service(service, namespace, _request_timeout=5)
                break
            except Exception:
                if time.monotonic() > deadline:
                    return []
                time.sleep(0.5)
        port = (found.spec.ports or [None])[0]
        out: list[tuple[str, str]] = []
        if port is not None and port.node_port:
            try:
                nodes = core.list_node(_request_timeout=5).items
            except Exception:  # a namespaced Role may not read Nodes
                nodes = []
            for node in sorted(nodes, key=lambda n: n.metadata.name):
                for address in node.status.addresses or []:
                    if address.type == "InternalIP":
                        out.append((f"NodePort on {node.metadata.name}", f"http://{address.address}:{port.node_port}/"))
        if port is not None and found.spec.cluster_ip and found.spec.cluster_ip != "None":
            out.append(("ClusterIP", f"http://{found.spec.cluster_ip}:{port.port}/"))
        return out
    finally:
        api.close()


class Command(BaseCommand):
    """Start the sandbox (unless a cluster is given) and the dashboard; stop both on Ctrl-C."""

    help = "Run the lb-demo lab: sandbox cluster (or your cluster) plus the live dashboard."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the demo's flags."""
        parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG", ""),
                            help="use this cluster instead of starting the sandbox")
        parser.add_argument("--context", default="", help="kubeconfig context to use")
        parser.add_argument("--namespace", default="default", help="namespace to watch and act in")
        parser.add_argument("--port", type=port_number, default=8000, help="dashboard port on 127.0.0.1")
        parser.add_argument("--api-port", type=port_number, default=6443, help="sandbox API server port")
        parser.add_argument("--nodes", type=int, choices=range(1, 51), default=3, metavar="1..50",
                            help="number of sandbox nodes")
        parser.add_argument("--state-dir", default=str(BASE_DIR / ".sandbox"), help="sandbox state directory")

    def handle(self, *args: object, **options: Any) -> None:
        """Start the lab, print the login URL, and wait until interrupted or a child dies."""
        lab = Lab()

        def request_stop(signum: int, frame: object) -> None:
            lab.interrupted = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        state_dir = Path(str(options["state_dir"])).resolve()
        state_dir.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(24)
        for name in ("dashboard.log", "sandbox.log", "dashboard.sqlite3"):
            private_file(state_dir / name)
        env = {
            "LBDEMO_LOGIN_TOKEN": token,
            "LBDEMO_NAMESPACE": str(options["namespace"]),
            "LBDEMO_DB_PATH": str(state_dir / "dashboard.sqlite3"),
        }
        try:
            kubeconfig = str(options["kubeconfig"])
            if kubeconfig:
                if not Path(kubeconfig).exists():
                    raise CommandError(f"kubeconfig {kubeconfig} does not exist")
                self.stdout.write(f"Using the cluster in {kubeconfig}")
            else:
                self.stdout.write("Starting the sandbox cluster ...")
                kubeconfig = str(lab.start_sandbox(state_dir=state_dir, api_port=int(options["api_port"]),
                                                   nodes=int(options["nodes"]),
                                                   log_file=state_dir / "sandbox.log"))
                self.stdout.write(f"Sandbox API: https://127.0.0.1:{options['api_port']}  "
                                  f"(KUBECONFIG={kubeconfig} .venv/bin/kubectl get pods)")
                env["LBDEMO_IMAGE_LOAD_COMMAND"] = (
                    f"{shlex.quote(sys.executable)} -m sandbox image load {{image}} "
                    f"--state-dir {shlex.quote(str(state_dir))}")
            env["KUBECONFIG"] = kubeconfig
            if options["context"]:
                env["LBDEMO_CONTEXT"] = str(options["context"])
            lab.check_interrupted()
            lab.start_dashboard(port=int(options["port"]), env=env, log_file=state_dir / "dashboard.log")
            lab.check_interrupted()
            self.stdout.write(self.style.SUCCESS(f"Dashboard: {lab.dashboard_url}?token={token}"))
            self.print_addresses(kubeconfig, context=str(options["context"]),
                                 namespace=str(options["namespace"]))
            self.stdout.write("Press Ctrl-C to stop.")
            while not lab.interrupted:
                dead = lab.first_exited()
                if dead is not None:
                    argv = dead.args if isinstance(dead.args, list) else [dead.args]
                    command = " ".join(map(str, argv[:4]))
                    raise CommandError(f"{command} exited with code {dead.returncode}; "
                                       f"see the logs in {state_dir}")
                time.sleep(0.2)
        except LabInterrupted:
            pass
        except LabError as exc:
            raise CommandError(f"{exc}; see the logs in {state_dir}") from exc
        finally:
            self.stdout.write("Stopping ...")
            lab.stop()

    def print_addresses(self, kubeconfig: str, *, context: str, namespace: str) -> None:
        """This lab's addresses of the sample Service, and the README's commands using them."""
        service = settings.LBDEMO_SERVICE
        addresses = service_addresses(kubeconfig, context=context, namespace=namespace, service=service)
        if not addresses:
            self.stdout.write(f"Service {service}: not found in namespace {namespace} (yet)")
            return
        self.stdout.write(f"Service {service} in this lab:")
        for kind, url in addresses:
            self.stdout.write(f"  {url:<32} {kind}")
        url = addresses[0][1]
        self.stdout.write(f"  try: curl -s {url}")
        self.stdout.write(f"       .venv/bin/python -m dashboard.traffic {url} --mode keepalive --conns 4 "
                          "--duration 5")
