"""lb-demo's dashboard: a Django Channels project and app in one package.

It streams the Kubernetes watch API to the browser and sends scale / kill / traffic
commands back to the cluster through the official `kubernetes` client.
"""
