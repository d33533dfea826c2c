"""PodDisruptionBudgets and the eviction subresource against the shared sandbox, with real kubectl
(`kubectl create pdb` sends protobuf) and raw API calls where the Status body is what a client
reads (kubectl drain prints only its message)."""

from __future__ import annotations

import json

from tests.conftest import Sandbox
from tests.drain.conftest import Api
from tests.polling import wait_until

REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."
SLEEPER = {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}


def deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [SLEEPER]}}}}


def bare_pod(name: str, labels: dict, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [SLEEPER], **spec}}


def get(box: Sandbox, ns: str, *what: str) -> dict:
    return json.loads(box.kubectl("get", "-n", ns, *what, "-o", "json"))


def budget_status(box: Sandbox, ns: str, name: str) -> dict:
    return get(box, ns, "pdb", name).get("status") or {}


def ready_pods(box: Sandbox, ns: str, selector: str) -> list[str]:
    pods = get(box, ns, "pods", "-l", selector)["items"]
    return sorted(p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or []))


def evict(api: Api, ns: str, pod: str, *, dry_run: bool = False) -> tuple[int, dict]:
    body: dict = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": ns}}
    if dry_run:
        body["deleteOptions"] = {"dryRun": ["All"]}
    return api.call("POST", f"/api/v1/namespaces/{ns}/pods/{pod}/eviction", body)


def test_budget_status_table_and_evictions_it_refuses_and_allows(sandbox: Sandbox, ns: str, api: Api):
    sandbox.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(deployment("web", 2)))
    out = sandbox.kubectl("create", "pdb", "web", "-n", ns, "--selector=app=web", "--min-available=2")
    assert out.strip() == "poddisruptionbudget.policy/web created"
    pods = wait_until(lambda: len(ready := ready_pods(sandbox, ns, "app=web")) == 2 and ready,
                      timeout=90, interval=0.5, what="two ready web pods")
    status = wait_until(lambda: (s := budget_status(sandbox, ns, "web")).get("currentHealthy") == 2 and s,
                        timeout=30, interval=0.3, what="the budget counting both pods")
    assert (status["desiredHealthy"], status["expectedPods"], status["disruptionsAllowed"]) == (2, 2, 0)
    assert status["observedGeneration"] == 1
    (cond,) = status["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "DisruptionAllowed", "False", "InsufficientPods")
    table = sandbox.kubectl("get", "pdb", "-n", ns).splitlines()
    assert table[0].split() == [
        "NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
    assert table[1].split()[:4] == ["web", "2", "N/A", "0"]

    code, refused = evict(api, ns, pods[0])
    assert code == 429
    assert (refused["reason"], refused["message"]) == ("TooManyRequests", REFUSED)
    assert refused["details"]["causes"] == [
        {"reason": "DisruptionBudget",
         "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]
    assert not get(sandbox, ns, "pod", pods[0])["metadata"].get("deletionTimestamp")

    # one disruption allowed: a dry run changes nothing, the eviction spends it, the next is refused
    sandbox.kubectl("patch", "pdb", "web", "-n", ns, "--type=merge", "-p", '{"spec":{"minAvailable":1}}')
    status = wait_until(lambda: (s := budget_status(sandbox, ns, "web")).get("observedGeneration") == 2 and s,
                        timeout=30, interval=0.3, what="the budget's new generation observed")
    assert status["disruptionsAllowed"] == 1
    assert status["conditions"][0]["reason"] == "SufficientPods"
    assert sandbox.kubectl("get", "pdb", "web", "-n", ns, "--no-headers").split()[1:4] == ["1", "N/A", "1"]
    code, _ = evict(api, ns, pods[0], dry_run=True)
    assert code == 201
    assert not get(sandbox, ns, "pod", pods[0])["metadata"].get("deletionTimestamp")
    code, done = evict(api, ns, pods[0])
    assert (code, done["status"]) == (201, "Success")
    evicted = api.call("GET", f"/api/v1/namespaces/{ns}/pods/{pods[0]}")[1]
    if evicted.get("kind") == "Pod":   # (it may already be gone: a 1 s grace period)
        assert evicted["metadata"].get("deletionTimestamp")
        target = [c for c in evicted["status"]["conditions"] if c["type"] == "DisruptionTarget"]
        assert [(c["status"], c["reason"], c["message"]) for c in target] == [
            ("True", "EvictionByEvictionAPI", "Eviction API: evicting")]
    code, refused = evict(api, ns, pods[1])
    assert code == 429
    assert refused["details"]["causes"][0]["message"].startswith(
        "The disruption budget web needs 1 healthy pods")


def test_eviction_without_a_single_healthy_budget(sandbox: Sandbox, ns: str, api: Api):
    labels = {"app": "bare"}
    docs = [bare_pod("fine", labels),
            bare_pod("sick", labels, containers=[{**SLEEPER, "readinessProbe": {
                "exec": {"command": ["false"]}, "periodSeconds": 1}}]),
            bare_pod("stuck", labels, nodeSelector={"lb-demo.dev/no-such-node": "x"})]
    for doc in docs:
        sandbox.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(doc))
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "bare"},
              "spec": {"minAvailable": 2, "selector": {"matchLabels": labels}}}
    sandbox.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(budget))
    wait_until(lambda: get(sandbox, ns, "pod", "sick")["status"].get("phase") == "Running"
               and ready_pods(sandbox, ns, "app=bare") == ["fine"], timeout=90, interval=0.5,
               what="fine ready, sick running but not ready")
    wait_until(lambda: budget_status(sandbox, ns, "bare").get("currentHealthy") == 1, timeout=30,
               interval=0.3, what="the budget seeing one healthy pod")

    # a pending pod never counted: evicted at once, whatever the budget says
    assert evict(api, ns, "stuck")[0] == 201
    wait_until(lambda: api.call("GET", f"/api/v1/namespaces/{ns}/pods/stuck")[0] == 404, timeout=30,
               what="the pending pod gone")
    # IfHealthyBudget (the default): an unready pod is protected while the budget is not met
    code, refused = evict(api, ns, "sick")
    assert code == 429
    assert refused["details"]["causes"][0]["message"] == (
        "The disruption budget bare needs 2 healthy pods and has 1 currently")

    # two budgets over one pod: the eviction subresource refuses to choose
    second = {**budget, "metadata": {"name": "second"}}
    sandbox.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(second))
    code, failure = evict(api, ns, "fine")
    assert (code, failure["status"]) == (500, "Failure")
    assert failure["message"] == (
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
    sandbox.kubectl("delete", "pdb", "second", "-n", ns)

    # AlwaysAllow: unready pods may always go
    sandbox.kubectl("patch", "pdb", "bare", "-n", ns, "--type=merge", "-p",
                    '{"spec":{"unhealthyPodEvictionPolicy":"AlwaysAllow"}}')
    wait_until(lambda: budget_status(sandbox, ns, "bare").get("observedGeneration") == 2, timeout=30,
               interval=0.3, what="the policy change observed")
    assert evict(api, ns, "sick")[0] == 201
    assert evict(api, ns, "fine")[0] == 429   # the ready one is still protected

    code, mismatch = api.call("POST", f"/api/v1/namespaces/{ns}/pods/fine/eviction", {
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}})
    assert (code, mismatch["message"]) == (400, "name in URL does not match name in Eviction object")
    code, missing = evict(api, ns, "nobody")
    assert (code, missing["message"]) == (404, 'pods "nobody" not found')


def test_an_invalid_budget_is_refused_and_nothing_is_created(sandbox: Sandbox, ns: str):
    bad = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "bad"},
           "spec": {"maxUnavailable": "150%", "selector": {"matchLabels": {"app": "x"}},
                    "unhealthyPodEvictionPolicy": "Never"}}
    result = sandbox.run_kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(bad), check=False)
    assert result.returncode == 1
    assert 'The PodDisruptionBudget "bad" is invalid:' in result.stderr
    assert 'spec.maxUnavailable: Invalid value: "150%": must not be greater than 100%' in result.stderr
    assert ('spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": supported values: "AlwaysAllow", '
            '"IfHealthyBudget"') in result.stderr
    assert sandbox.kubectl("get", "pdb", "-n", ns, "-o", "name") == ""
    both = sandbox.run_kubectl("create", "pdb", "both", "-n", ns, "--selector=app=x", "--min-available=1",
                               "--max-unavailable=1", check=False)
    assert both.returncode == 1
    assert "min-available and max-unavailable cannot be both specified" in both.stderr
