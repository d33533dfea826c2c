"""The traffic lab: send HTTP traffic to a Service and see which pod served each request.

`engine` generates the load, `stats` aggregates it, `runs` manages the dashboard's runs (one per
user, capped), `targets` resolves Services of the watched namespace to addresses, and `views`,
`consumers`, `urls`, `routing` wire it into the dashboard. `python -m dashboard.traffic` runs the
engine on its own.
"""
