"""Command line of the sandbox: `python -m sandbox <command>`.

Each command is a subparser whose `func` receives the parsed arguments and returns the exit
code, so adding a command is one `add_parser` block.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def port_number(raw: str) -> int:
    """argparse type for a TCP port."""
    value = int(raw)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{raw} is not a TCP port")
    return value


def node_count(raw: str) -> int:
    """argparse type for the number of simulated nodes."""
    value = int(raw)
    if not 1 <= value <= 50:
        raise argparse.ArgumentTypeError("--nodes must be between 1 and 50")
    return value


def simulated_node_count(raw: str) -> int:
    """argparse type for the number of simulated (kwok-like) nodes."""
    from .kubelet.simulated import MAX_SIMULATED_NODES

    value = int(raw)
    if not 0 <= value <= MAX_SIMULATED_NODES:
        raise argparse.ArgumentTypeError(f"--simulated-nodes must be between 0 and {MAX_SIMULATED_NODES}")
    return value


def seconds(raw: str) -> float:
    """argparse type for a delay in seconds."""
    value = float(raw)
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{raw} is not a delay between 0 and 3600 seconds")
    return value


def run_up(args: argparse.Namespace) -> int:
    """`up`: run the cluster in the foreground until SIGTERM/SIGINT."""
    from .kubelet.simulated import SimDelays
    from .up import up

    delays = SimDelays(pending=args.simulated_pending_delay, creating=args.simulated_creating_delay,
                       ready=args.simulated_ready_delay, grace=args.simulated_grace)
    return up(state_dir=Path(args.state_dir), api_port=args.api_port, nodes=args.nodes,
              proxy_mode=args.proxy_mode, ingress_port=args.ingress_port,
              simulated_nodes=args.simulated_nodes, simulated_delays=delays)


def run_image_load(args: argparse.Namespace) -> int:
    """`image load NAME[:TAG]`: copy an image into the node (like `minikube image load`)."""
    from .images import ImageError, sandbox_image_store

    try:
        image = sandbox_image_store(Path(args.state_dir)).load(args.name, nodes=args.node or None)
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    where = ", ".join(args.node) if args.node else "every node"
    print(f"Loaded image {image.name} ({image.id[:19]}) onto {where} of the sandbox")
    return 0


def run_image_ls(args: argparse.Namespace) -> int:
    """`image ls`: every image of the catalogue, and which nodes hold it."""
    from .images import CATALOGUE, ImageError, sandbox_image_store

    try:
        store = sandbox_image_store(Path(args.state_dir))
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    loaded = dict(store.list())
    all_nodes = store.nodes()
    rows = [("IMAGE", "IMAGE ID", "SIZE", "NODES")]
    for name, image in sorted(CATALOGUE.items()):
        entry = loaded.get(name)
        if entry is None:
            why = image.missing()
            nodes = f"<unavailable: {why}>" if why else "<none> (python -m sandbox image load " + name + ")"
        else:
            nodes = ",".join(entry.get("nodes") or all_nodes) or "<all>"
        rows.append((f"docker.io/library/{name}", image.id[7:19], f"{image.size / 2**20:.1f}MB", nodes))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "   " + row[3])
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subparser per command."""
    parser = argparse.ArgumentParser(prog="python -m sandbox",
                                     description="lb-demo's local Kubernetes-compatible cluster")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the sandbox cluster in the foreground")
    up.add_argument("--state-dir", default=".sandbox", help="where state, logs and the kubeconfig live")
    up.add_argument("--api-port", type=port_number, default=6443, help="API server port on 127.0.0.1")
    up.add_argument("--nodes", type=node_count, default=3, help="number of simulated nodes")
    up.add_argument("--proxy-mode", choices=("random", "round-robin", "least-conn"), default="random",
                    help="how the Service proxy picks a pod per connection (default random, like iptables)")
    up.add_argument("--ingress-port", type=port_number, default=8080,
                    help="port of the ingress controller on 127.0.0.1 and the node addresses (default 8080)")
    up.add_argument("--simulated-nodes", type=simulated_node_count, default=0, metavar="N",
                    help="also add N simulated nodes (sandbox-sim-1..N, like kwok): their kubelet runs "
                         "no processes, pods there only walk through their phases and serve no traffic; "
                         "the nodes are labelled and tainted lb-demo.dev/simulated=true:NoSchedule, so only "
                         "pods that tolerate it land there (see docs/examples/crowd.yaml)")
    up.add_argument("--simulated-pending-delay", type=seconds, default=0.5, metavar="S",
                    help="seconds a simulated pod stays Pending after binding (default 0.5)")
    up.add_argument("--simulated-creating-delay", type=seconds, default=1.0, metavar="S",
                    help="seconds a simulated pod stays ContainerCreating (default 1.0)")
    up.add_argument("--simulated-ready-delay", type=seconds, default=1.0, metavar="S",
                    help="seconds from Running to Ready for a container with a readinessProbe (default 1.0; "
                         "without a probe it is ready when it runs)")
    up.add_argument("--simulated-grace", type=seconds, default=1.0, metavar="S",
                    help="cap on a simulated pod's termination grace period (default 1.0)")
    up.set_defaults(func=run_up)
    image = commands.add_parser("image", help="manage the images loaded into the sandbox's node")
    image_commands = image.add_subparsers(dest="image_command", required=True)
    load = image_commands.add_parser("load", help="load an image from the local catalogue into the node")
    load.add_argument("name", help="NAME[:TAG], e.g. lb-demo:v3")
    load.add_argument("--node", action="append", default=[],
                      help="load onto this node only (repeatable; default: every node)")
    load.add_argument("--state-dir", default=".sandbox", help="the sandbox's state directory")
    load.set_defaults(func=run_image_load)
    ls = image_commands.add_parser("ls", help="list the images and the nodes that hold them")
    ls.add_argument("--state-dir", default=".sandbox", help="the sandbox's state directory")
    ls.set_defaults(func=run_image_ls)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the command."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
