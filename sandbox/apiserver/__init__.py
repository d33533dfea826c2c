"""The sandbox's API server: the Kubernetes REST API over HTTPS, backed by an in-memory,
SQLite-persisted store. `server.ApiServer` is the entry point.

How a request flows, module by module (each module's docstring says more):

- `server.py`     HTTP: routing, bearer-token auth, content negotiation, watch streams
- `discovery.py`  the /api and /apis discovery documents (aggregated v2 and legacy)
- `kinds/`        one module per served kind (its `Resource` entry and `Strategy`: defaults,
                  validation, Table columns and cells, field selectors, subresources,
                  allocations, deletion behaviour); `kinds/__init__.py` says how to add one
- `strategy.py`   the `Resource`, `Subresource` and `Strategy` types the kinds fill in
- `resources.py`  the served kinds looked up by URL, store key, kind or plural
- `selectors.py`  label and field selectors
- `registry.py`   the generic store: what create/update/patch/delete mean for any kind
                  (status split, generation, graceful deletion, finalizers, scale)
- `gc.py`         the garbage collector (ownerReferences, propagation, namespace termination)
- `store.py`      objects in memory + SQLite, the global resourceVersion, watch history
- `validation/`   rules kinds share (names, metadata, labels, ports, pod spec) and field errors
- `printing.py`, `tables.py`  Table formatting helpers, and Tables built from the strategies
- `patch.py`, `openapi.py`, `schemas.py`, `protobuf.py`, `query.py`
                  patches, OpenAPI, official schemas, kubectl's protobuf request bodies,
                  query parameters
- `certs.py`, `logs.py`  the cluster CA / serving certificate, and `pods/log` from the
                  container log files
"""
