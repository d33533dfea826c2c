"""The lessons of the seed notes, one guided experiment each: predict, act, see it verified.

Adding a lesson is adding one :class:`Lesson` to :data:`LESSONS`: a question to answer before
acting, the steps, the actions (each a button and the same action as a command the learner may
run instead), the checks (from dashboard.lessons.checks) and a takeaway. The Ingress and
autoscaling lessons (11, 12) are two such entries.

Commands are templates filled from the dashboard's settings and the watched cluster with
``%(name)s`` fields: ``deployment``, ``service``, ``selector``, ``container``, ``url`` (the
Service's own address in this lab: the NodePort on a node's IP, else the ClusterIP),
``ingress_url`` (the address the Ingress in front of the Service publishes in its status),
``image_load`` (how this cluster loads an image into its nodes) and ``ns`` (`` -n <namespace>``
unless it is ``default``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dashboard.lessons import checks as c

KILL_ONE = "kubectl%(ns)s delete --wait=false $(kubectl%(ns)s get pods -l %(selector)s -o name | head -n 1)"
KILL_TWO = "kubectl%(ns)s delete --wait=false $(kubectl%(ns)s get pods -l %(selector)s -o name | head -n 2)"
TRAFFIC = ".venv/bin/python -m dashboard.traffic %(url)s"


@dataclass(frozen=True)
class Question:
    """Asked before acting; the page keeps the answer and shows whether the cluster agreed."""

    text: str
    choices: tuple[str, ...]
    answer: int


@dataclass(frozen=True)
class Action:
    """A button of a lesson: ``kind`` names a lesson action (dashboard.lessons.actions.ACTIONS),
    ``params`` its fixed arguments, ``command`` what to type instead."""

    kind: str
    label: str
    command: str
    params: dict[str, str | int] = field(default_factory=dict)
    needs: str = ""  # a cluster capability the button needs ("image-load"); without it, only the command


@dataclass(frozen=True)
class Lesson:
    """One guided experiment."""

    id: str
    title: str
    seed: str  # the seed notes' section it teaches
    question: Question
    steps: tuple[str, ...]
    actions: tuple[Action, ...]
    checks: tuple[c.Check, ...]
    takeaway: str


def traffic(label: str, *, mode: str, seconds: int, rps: int = 100, conns: int = 4, via: str = "service",
            path: str = "/") -> Action:
    """A traffic run from the page (the checks read its statistics): through the Service, or
    through the Ingress in front of it (``via="ingress"``), to ``path``."""
    flags = f" --mode {mode} --conns {conns} --rps {rps} --duration {seconds}"
    url = "%(ingress_url)s" if via == "ingress" else "%(url)s"
    if path != "/":
        url = f"'{url}{path.lstrip('/')}'"
    return Action(
        "traffic",
        label,
        f".venv/bin/python -m dashboard.traffic {url}" + flags,
        {"mode": mode, "seconds": seconds, "rps": rps, "conns": conns, "target": via, "path": path},
    )


def scale(replicas: int) -> Action:
    """Scale the Deployment."""
    return Action(
        "scale",
        f"scale to {replicas}",
        f"kubectl%(ns)s scale deployment %(deployment)s --replicas={replicas}",
        {"replicas": replicas},
    )


def set_image(image: str) -> Action:
    """Change the Deployment's image (a rollout)."""
    return Action(
        "set-image",
        f"set image {image}",
        f"kubectl%(ns)s set image deployment/%(deployment)s %(container)s={image}",
        {"image": image},
    )


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        id="disposable",
        title="Pods are disposable",
        seed="2.1 Pod",
        question=Question(
            "You kill one of the backend pods. What takes its place?",
            (
                "The same pod, restarted with its name and IP",
                "A new pod, with a new name and a new IP",
                "Nothing: there is one pod fewer now",
            ),
            1,
        ),
        steps=(
            "Note the names and IPs of the pods.",
            "Kill one pod (button or command).",
            "Watch the replacement appear, get scheduled, run and turn Ready, while the Service keeps "
            "its other endpoints.",
        ),
        actions=(Action("kill", "kill a pod", KILL_ONE, {"count": 1}),),
        checks=(
            c.Check("pod-replaced", "a replacement with a new name and IP becomes Ready", c.pod_replaced),
            c.Check(
                "service-answered", "the Service kept ready endpoints meanwhile", c.service_kept_answering
            ),
        ),
        takeaway="A pod is a replaceable worker, never a server to keep: its name and IP die with it. "
        "Talk to the Service, whose address stays.",
    ),
    Lesson(
        id="replicaset",
        title="ReplicaSet enforces the count, Deployment the intent",
        seed="2.2-2.3",
        question=Question(
            "You kill two pods at once. Which object's spec changes?",
            (
                "The Deployment's: replicas drops by two",
                "The ReplicaSet's: it lowers its count",
                "Neither: the ReplicaSet sees 2 missing and creates 2 new pods",
            ),
            2,
        ),
        steps=(
            "Scale up, then back down: the Deployment's desired count changes and its ReplicaSet follows.",
            "Kill two pods quickly: nothing's spec changes; the ReplicaSet restores the count.",
        ),
        actions=(scale(5), scale(3), Action("kill", "kill two pods", KILL_TWO, {"count": 2})),
        checks=(
            c.Check("scale-up", "scaling up: the ReplicaSet creates pods until all are ready", c.scaled(1)),
            c.Check("scale-down", "scaling down: it deletes pods until the count matches", c.scaled(-1)),
            c.Check("two-killed", "two pods killed: the spec stays, two replacements come", c.two_killed),
        ),
        takeaway="You state intent on the Deployment (replicas: 3); the ReplicaSet only counts and fixes the "
        "count. Killing pods changes no spec — it is the status that the controllers repair.",
    ),
    Lesson(
        id="labels",
        title="Services select by label",
        seed="2.4 Service, diagram 5",
        question=Question(
            "You relabel a running backend pod app=debug. What happens to it?",
            (
                "It is deleted and replaced",
                "It leaves the Service, its ReplicaSet replaces it, and it keeps running on its own",
                "Nothing: its ReplicaSet still owns it",
            ),
            1,
        ),
        steps=(
            "Send traffic through the Service: the frontend pod runs the same image but gets nothing.",
            "Relabel a backend pod app=debug: it leaves the endpoints; its ReplicaSet lets go of it and "
            "creates a replacement; the orphan keeps running (reset removes it).",
        ),
        actions=(
            traffic("traffic (new connections, 8 s)", mode="new-conn", seconds=8),
            Action(
                "relabel",
                "relabel a pod app=debug",
                "kubectl%(ns)s label --overwrite $(kubectl%(ns)s get pods -l %(selector)s -o name | "
                "head -n 1) app=debug",
            ),
        ),
        checks=(
            c.Check("frontend-no-traffic", "the frontend pod gets no Service traffic", c.frontend_no_traffic),
            c.Check("relabel-left", "the relabelled pod leaves the endpoints", c.relabel_left_endpoints),
            c.Check(
                "relabel-replaced",
                "its ReplicaSet releases it and creates a replacement",
                c.released_and_replaced,
            ),
            c.Check("orphan-runs", "the orphan keeps running", c.orphan_keeps_running),
        ),
        takeaway="A Service does not know pods, only a label selector; a ReplicaSet owns only the pods its "
        "selector matches. Change the labels and both let go.",
    ),
    Lesson(
        id="readiness",
        title="Only Ready pods get traffic",
        seed="4 Pod readiness, diagram 7",
        question=Question(
            "A new pod is Running but not Ready yet. How many requests does it get?",
            ("None, until it is Ready", "Its share, like the others", "Only keep-alive requests"),
            0,
        ),
        steps=(
            "Start a new-connection run, then scale to 4 while it runs: the new pod starts "
            "(ContainerCreating, then Running but not ready for 2 s) and gets nothing until Ready.",
            "Switch a pod's readiness off: it leaves the ready endpoints, still Running. Switch it on: it "
            "rejoins.",
        ),
        actions=(
            traffic("traffic (new connections, 15 s)", mode="new-conn", seconds=15),
            scale(4),
            Action("readiness", "make a pod unready", "", {"ready": "false"}),
            Action("readiness", "make it ready again", "", {"ready": "true"}),
            scale(3),
        ),
        checks=(
            c.Check(
                "starting-no-traffic", "a starting pod gets no request until Ready", c.starting_pod_no_traffic
            ),
            c.Check("unready-left", "an unready pod leaves the ready endpoints", c.unready_left_endpoints),
            c.Check("rejoined", "ready again, it rejoins", c.rejoined_endpoints),
        ),
        takeaway="Readiness is the pod's own word that it can serve; the endpoints follow it, and the "
        "Service "
        "sends new connections only to ready endpoints.",
    ),
    Lesson(
        id="keepalive",
        title="Load balancing is per TCP connection",
        seed="3, diagram 6",
        question=Question(
            "Four keep-alive connections are open when you scale 3→5. What do the new pods get?",
            ("Their share at once", "Nothing, until connections are reopened", "Half a share"),
            1,
        ),
        steps=(
            "Run keep-alive traffic: each connection sticks to the pod it reached.",
            "While it runs, scale to 5: the new pods join the endpoints and get nothing.",
            "Run new-connection traffic: every request is a new pick, spread over all pods.",
        ),
        actions=(
            traffic("keep-alive traffic (4 connections, 20 s)", mode="keepalive", seconds=20),
            scale(5),
            traffic("new-connection traffic (8 s)", mode="new-conn", seconds=8, rps=200),
            scale(3),
        ),
        checks=(
            c.Check("keepalive-pinned", "keep-alive: each connection stays on one pod", c.keepalive_pinned),
            c.Check(
                "scaleup-keepalive", "pods added during keep-alive get nothing", c.scale_up_during_keepalive
            ),
            c.Check("newconn-spread", "new connections spread over the pods", c.new_connections_spread),
        ),
        takeaway="A Service (kube-proxy) balances connections, not requests: one pick per TCP connection. "
        "Keep-alive clients stay where they are; L7 balancing per request is an Ingress's job.",
    ),
    Lesson(
        id="scaling",
        title="Scaling is an infrastructure concern",
        seed="5, diagram 8",
        question=Question(
            "You scale 1→5 under traffic. What else must change?",
            ("The image", "The Service's configuration", "Nothing else"),
            2,
        ),
        steps=(
            "Scale to 1 and wait for one ready pod.",
            "Start traffic, then scale to 5 while it runs.",
            "The Service picks up the new pods by itself; no request fails; the image and the Service "
            "stay as they were.",
        ),
        actions=(
            scale(1),
            traffic("traffic (new connections, 20 s)", mode="new-conn", seconds=20),
            scale(5),
            scale(3),
        ),
        checks=(
            c.Check(
                "scaled-under-traffic", "1→5 under traffic without a failed request", c.scale_one_to_five
            ),
            c.Check("nothing-else", "image, code and Service unchanged", c.nothing_else_changed),
        ),
        takeaway="The application never learns it was scaled: same image, same code, same Service; "
        "only the number of pods changed.",
    ),
    Lesson(
        id="image",
        title="Nodes must have the image",
        seed="6 Minikube image, diagram 9",
        question=Question(
            "You set image lb-demo:v3, which this machine has but the node does not. "
            "What do the new pods show?",
            (
                "ErrImagePull / ImagePullBackOff, while the old pods keep serving",
                "CrashLoopBackOff",
                "Every pod goes down",
            ),
            0,
        ),
        steps=(
            "Set the image to lb-demo:v3: the new pod cannot pull it.",
            "Look at the nodes' images: v3 is not there.",
            "Load the image into the node; the pod starts and the rollout completes.",
        ),
        actions=(
            set_image("lb-demo:v3"),
            Action(
                "load-image",
                "load lb-demo:v3 into the nodes",
                "%(image_load)s",
                {"image": "lb-demo:v3"},
                needs="image-load",
            ),
            set_image("lb-demo"),
        ),
        checks=(
            c.Check("pull-failed", "the new pod shows ErrImagePull / ImagePullBackOff", c.image_pull_failed),
            c.Check("old-serving", "the old pods keep serving", c.old_pods_kept_serving),
            c.Check("loaded-started", "once loaded, the pod starts", c.loaded_image_started),
        ),
        takeaway="An image on your laptop is not on the cluster's nodes. A node runs only what it can pull "
        "or "
        "already has — `minikube image load` copies it there.",
    ),
    Lesson(
        id="declarative",
        title="Declarative, not imperative",
        seed="7 Declarative vs imperative",
        question=Question(
            "You change replicas in the Deployment's YAML and apply it. Who creates the pods?",
            ("kubectl", "The controllers, reconciling the new desired state", "The Service"),
            1,
        ),
        steps=(
            "Read the Deployment's desired state below.",
            "Change replicas and apply it.",
            "Delete a pod by hand: the count comes back — deleting is not how you scale.",
        ),
        actions=(
            Action("apply", "apply", "kubectl%(ns)s apply -f backend.yaml"),
            Action("kill", "delete a pod", KILL_ONE, {"count": 1}),
        ),
        checks=(
            c.Check("applied", "the applied desired state is reconciled", c.desired_state_applied),
            c.Check(
                "delete-restored", "a deleted pod is recreated, not scaled away", c.deleting_does_not_scale
            ),
        ),
        takeaway="You describe what you want (replicas: 4) and the controllers make it so, again and again; "
        "commands that touch pods directly are undone.",
    ),
    Lesson(
        id="debugging",
        title="Debugging is observing state",
        seed="8 Debugging",
        question=Question(
            "A rollout's new pod never becomes Ready. Where do you see why?",
            (
                "In the pod's Events (kubectl describe pod)",
                "In the Service's ClusterIP",
                "Nowhere: the Deployment only says Progressing",
            ),
            0,
        ),
        steps=(
            "Break the rollout: a readiness probe on a path that answers 404.",
            "Read the new pod: STATUS Running, READY 0/1; its Events say why; the Service lists it as not "
            "ready while the old pods serve.",
            "Undo the rollout.",
        ),
        actions=(
            Action(
                "break-probe",
                "break the rollout (probe → /broken)",
                "kubectl%(ns)s patch deployment %(deployment)s --type=json -p "
                '\'[{"op":"replace","path":"/spec/template/spec/containers/0/readinessProbe/httpGet/path",'
                '"value":"/broken"}]\'',
            ),
            Action("describe", "describe the pods", "kubectl%(ns)s describe pods -l %(selector)s"),
            Action("undo", "undo the rollout", "kubectl%(ns)s rollout undo deployment/%(deployment)s"),
        ),
        checks=(
            c.Check("probe-event", "the Events show the failing readiness probe", c.probe_event),
            c.Check(
                "not-ready-endpoint", "the Service lists the new pod as not ready", c.endpoints_not_ready
            ),
            c.Check("rolled-back", "undone: every pod Ready on the previous template", c.rolled_back),
        ),
        takeaway="Kubernetes tells you what is wrong if you look: STATUS and READY, the Events, the "
        "endpoints. "
        "kubectl describe shows all three.",
    ),
    Lesson(
        id="rolling",
        title="Rolling update",
        seed="2.2 Deployment (beyond the notes)",
        question=Question(
            "You roll v1 → v2 under traffic, with pods that drain before they stop. How many requests fail?",
            ("About a third", "A few at each pod swap", "Not a single one"),
            2,
        ),
        steps=(
            "Start traffic.",
            "Set image lb-demo:v2: a second ReplicaSet grows while the first shrinks.",
            "The heatmap marks the rollout; v1 rows fade, v2 rows take over; no request fails.",
        ),
        actions=(
            traffic("traffic (new connections, 40 s)", mode="new-conn", seconds=40),
            set_image("lb-demo:v2"),
            set_image("lb-demo"),
        ),
        checks=(
            c.Check("two-replicasets", "two ReplicaSets hand over", c.two_replicasets),
            c.Check("zero-failed", "no request fails during the rollout", c.rollout_zero_failed),
            c.Check("both-versions", "the old version, then the new one answers", c.both_versions_served),
        ),
        takeaway="A rolling update is two ReplicaSets trading pods under one Service; with readiness and "
        "draining, clients never notice.",
    ),
    Lesson(
        id="ingress",
        title="A Service balances connections, an Ingress balances requests",
        seed="3, and beyond the notes: Ingress",
        question=Question(
            "One keep-alive connection sends requests through the Ingress in front of backend-service. "
            "How many pods answer?",
            (
                "One, as through the Service",
                "Every ready pod, in turn",
                "None: an Ingress needs new connections",
            ),
            1,
        ),
        steps=(
            "Send one keep-alive connection through the Service: every request reaches the pod it was "
            "given when it opened (kube-proxy picks per connection, L4).",
            "Send the same run through the Ingress: its controller is an HTTP proxy that reads each request "
            "and picks the next ready pod (L7), keeping its own connections to the pods.",
            "Compare the two runs' rows in the traffic lab: one pod, then all of them.",
        ),
        actions=(
            traffic("one keep-alive connection via the Service (8 s)", mode="keepalive", seconds=8, conns=1),
            traffic("one keep-alive connection via the Ingress (8 s)", mode="keepalive", seconds=8, conns=1,
                    via="ingress"),
            Action("", "look at the Ingress", "kubectl%(ns)s get ingress; kubectl%(ns)s describe ingress"),
        ),
        checks=(
            c.Check("service-pinned", "through the Service, the connection stays on one pod",
                    c.service_one_connection_one_pod),
            c.Check("ingress-spread", "through the Ingress, the same connection reaches every ready pod",
                    c.ingress_one_connection_every_pod),
        ),
        takeaway="An Ingress controller terminates HTTP and balances each request over the Service's ready "
        "endpoints; the Service balances each TCP connection. Keep-alive clients need L7 balancing.",
    ),
    Lesson(
        id="autoscaling",
        title="Autoscaling follows the load",
        seed="5 Scaling, beyond the notes: HorizontalPodAutoscaler",
        question=Question(
            "An HPA keeps CPU at 50% of the pods' request. CPU-heavy traffic starts, then stops. What "
            "happens?",
            (
                "Nothing: replicas are set by hand",
                "Replicas go up within seconds, and come back down a while after the traffic stops",
                "Replicas go up and stay up",
            ),
            1,
        ),
        steps=(
            "Create the HPA (its command; the dashboard's Role may only read HPAs). Its panel shows the "
            "CPU utilisation against the 50 % target.",
            "Start CPU-heavy traffic (GET /work?ms=10 burns 10 ms of CPU per request): utilisation rises "
            "above the target and the HPA raises the replicas; new pods take new connections (with "
            "keep-alive traffic they would not: the connections stay where they are).",
            "When the run ends, utilisation falls; after the scale-down window (30 s in the sandbox, 5 min "
            "by default on a real cluster) the HPA scales back down.",
            "Delete the HPA when done, so replicas are yours again.",
        ),
        actions=(
            Action("", "create the HPA",
                   "kubectl%(ns)s autoscale deployment %(deployment)s --cpu-percent=50 --min=1 --max=10"),
            traffic("CPU-heavy traffic (/work, new connections, 60 s)", mode="new-conn", seconds=60, rps=15,
                    conns=2, path="/work?ms=10"),
            Action("", "watch it", "kubectl%(ns)s get hpa -w"),
            Action("", "delete the HPA", "kubectl%(ns)s delete hpa %(deployment)s"),
        ),
        checks=(
            c.Check("hpa-up", "utilisation above target: the HPA scales up", c.hpa_scaled_up),
            c.Check("new-pods-served", "the new pods take new connections", c.new_pods_took_requests),
            c.Check("hpa-down", "traffic stopped: it scales back down after the window", c.hpa_scaled_down),
        ),
        takeaway="An HPA turns a utilisation target into replicas: desired = ceil(current x utilisation / "
        "target), quickly up, cautiously down. The Service (and the Ingress) pick up the pods it adds.",
    ),
)

BY_ID = {lesson.id: lesson for lesson in LESSONS}
