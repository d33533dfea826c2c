"""`python manage.py demo`: run the whole lab in the foreground until Ctrl-C.

Without --kubeconfig it starts the local sandbox cluster (`python -m sandbox up`); with it,
the dashboard watches that cluster instead. It prints a login URL carrying a one-time token.

Log hygiene: the token is printed to the terminal only. The log files the demo keeps in the
state directory (dashboard.log, sandbox.log) and the dashboard's database are created 0600
(readable by the user only) before any child opens them, and the dashboard scrubs tokens from
what it logs (dashboard.logredact), so nothing written to disk logs anyone in.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.settings import private_file
from lab.launcher import BASE_DIR, Lab, LabError, LabInterrupted


def port_number(raw: str) -> int:
    """argparse type for a TCP port."""
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError(raw)
    return value


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

    def handle(self, *args: object, **options: object) -> None:
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
            env["KUBECONFIG"] = kubeconfig
            if options["context"]:
                env["LBDEMO_CONTEXT"] = str(options["context"])
            lab.check_interrupted()
            lab.start_dashboard(port=int(options["port"]), env=env, log_file=state_dir / "dashboard.log")
            lab.check_interrupted()
            self.stdout.write(self.style.SUCCESS(f"Dashboard: {lab.dashboard_url}?token={token}"))
            self.stdout.write("Press Ctrl-C to stop.")
            while not lab.interrupted:
                dead = lab.first_exited()
                if dead is not None:
                    command = " ".join(map(str, dead.args[:4]))
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
