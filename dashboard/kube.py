"""How the dashboard reaches its cluster: one place that turns settings into API clients.

The dashboard only ever talks to Kubernetes through the official client, so the same code
serves the sandbox, minikube and a cloud cluster: kubeconfig (+ context) when configured,
in-cluster service-account config otherwise.

Every call passes a ``_request_timeout``; the client never retries on its own (urllib3 would
otherwise repeat a timed-out GET or DELETE three more times, turning a 5 s timeout into 20 s):
the hub has its own back-off and actions answer the learner at once.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from kubernetes import client, config


@cache
def cluster_configuration() -> client.Configuration:
    """Load the cluster configuration once per process (kubeconfig first, then in-cluster)."""
    configuration = client.Configuration()
    if settings.LBDEMO_KUBECONFIG:
        config.load_kube_config(config_file=settings.LBDEMO_KUBECONFIG,
                                context=settings.LBDEMO_CONTEXT or None,
                                client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    configuration.retries = False
    return configuration


def api_client() -> client.ApiClient:
    """A new ApiClient (not thread-safe to share a connection pool across many watch threads)."""
    return client.ApiClient(configuration=cluster_configuration())
