"""backend_pod: the sample backend that every lb-demo pod runs (image ``lb-demo``).

It answers each request with who served it — the pod (name, IP, node, namespace, version,
colour) and the TCP connection (a connection id unique across pods, the request's number on
that connection, the connection's age) — so a client can see that a Kubernetes Service balances
connections, not requests. It also has the knobs a load-balancing lesson needs: readiness and
liveness switches, a start-up delay, slow and failing responses, connection recycling and two
SIGTERM behaviours (drain or abrupt). Run it with ``python -m backend_pod --help``.
"""
