"""The sandbox's API server: the Kubernetes REST API over HTTPS, backed by an in-memory,
SQLite-persisted store. `server.ApiServer` is the entry point.

How a request flows, module by module (each module's docstring says more):

- `server.py`     HTTP: routing, bearer-token auth, content negotiation, watch streams, pods/log
- `discovery.py`  the /api and /apis discovery documents (aggregated v2 and legacy)
- `resources.py`  the registry of served kinds: one `Resource` entry per kind
- `selectors.py`  label and field selectors
- `registry.py`   what create/update/patch/delete mean (status split, generation, graceful
                  deletion, finalizers, Service IP/port allocation, scale, binding)
- `gc.py`         the garbage collector (ownerReferences, propagation, namespace termination)
- `store.py`      objects in memory + SQLite, the global resourceVersion, watch history
- `validation.py`, `patch.py`, `tables.py`, `openapi.py`, `schemas.py`, `protobuf.py`
                  pure helpers: defaults and validation, patches, printer columns, OpenAPI,
                  official schemas, kubectl's protobuf request bodies
- `certs.py`, `logs.py`  the cluster CA / serving certificate, and the container log files
"""
