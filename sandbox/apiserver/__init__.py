"""The sandbox's API server: the Kubernetes REST API over HTTP, backed by an in-memory,
SQLite-persisted store. `server.ApiServer` is the entry point; see each module's docstring."""
