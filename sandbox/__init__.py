"""The sandbox: a single-machine, Kubernetes-API-compatible cluster for lb-demo.

`python -m sandbox up` runs it; see `sandbox/up.py`. Its parts are named after the Kubernetes
components they stand in for: `apiserver/`, the controllers, scheduler, kubelet and proxy.
"""
