"""The lab orchestrator: starts and stops the sandbox cluster and the dashboard server as one lab.

Used by `manage.py demo`, the tests and the benchmarks; neither Docker image ships it (the
dashboard image copies only `dashboard/`, the backend image only `backend_pod/`), so the
dashboard itself never depends on the sandbox.
"""
