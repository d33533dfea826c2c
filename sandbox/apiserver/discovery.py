"""Discovery documents built from the resource registry.

kubectl 1.37 first asks `/api` and `/apis` for the aggregated (apidiscovery.k8s.io/v2)
form and falls back to the legacy documents (`APIVersions`, `APIGroupList`,
`APIResourceList` per group/version), which the Python client and older tools use.
"""

from __future__ import annotations

from functools import cache

from .resources import RESOURCES, Resource, group_versions

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

SERVER_VERSION = {
    "major": "1", "minor": "37", "emulationMajor": "1", "emulationMinor": "37",
    "minCompatibilityMajor": "1", "minCompatibilityMinor": "36",
    "gitVersion": "v1.37.1", "gitCommit": "lb-demo-sandbox", "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "python", "compiler": "cpython",
    "platform": "linux/amd64",
}


def _aggregated_resource(res: Resource) -> dict:
    """One APIResourceDiscovery entry."""
    entry: dict = {
        "resource": res.plural,
        "responseKind": {"group": "", "version": "", "kind": res.kind},
        "scope": "Namespaced" if res.namespaced else "Cluster",
        "singularResource": res.singular,
        "verbs": list(res.verbs),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.categories:
        entry["categories"] = list(res.categories)
    subs = [{"subresource": sub.name, "responseKind": sub.response_kind(res.kind), "verbs": list(sub.verbs)}
            for sub in res.subresources]
    if subs:
        entry["subresources"] = subs
    return entry


def _aggregated_group(group: str, versions: list[str]) -> dict:
    """One APIGroupDiscovery entry."""
    return {
        "metadata": {"name": group, "creationTimestamp": None},
        "versions": [{
            "version": version,
            "resources": [_aggregated_resource(r) for r in RESOURCES
                          if r.group == group and r.version == version],
            "freshness": "Current",
        } for version in versions],
    }


@cache
def aggregated(core: bool) -> dict:
    """APIGroupDiscoveryList for `/api` (core=True) or `/apis`."""
    items = [_aggregated_group(group, versions) for group, versions in group_versions().items()
             if (group == "") == core]
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": items}


def api_versions() -> dict:
    """Legacy `/api`: APIVersions."""
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}


def _group_entry(group: str, versions: list[str]) -> dict:
    """One APIGroup entry."""
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


@cache
def api_group_list() -> dict:
    """Legacy `/apis`: APIGroupList."""
    groups = [_group_entry(g, vs) for g, vs in group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> dict | None:
    """Legacy `/apis/<group>`: APIGroup, or None if the group is not served."""
    versions = group_versions().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)}


@cache
def api_resource_list(group: str, version: str) -> dict | None:
    """Legacy `/api/v1` or `/apis/<group>/<version>`: APIResourceList, or None if not served."""
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    if not served:
        return None
    resources = []
    for res in served:
        entry: dict = {"name": res.plural, "singularName": res.singular, "namespaced": res.namespaced,
                       "kind": res.kind, "verbs": list(res.verbs)}
        if res.short_names:
            entry["shortNames"] = list(res.short_names)
        if res.categories:
            entry["categories"] = list(res.categories)
        resources.append(entry)
        for sub in res.subresources:
            kind = sub.response_kind(res.kind)
            sub_entry = {"name": f"{res.plural}/{sub.name}", "singularName": "", "namespaced": res.namespaced,
                         "kind": kind["kind"], "verbs": list(sub.verbs)}
            if kind["group"]:
                sub_entry.update(group=kind["group"], version=kind["version"])
            resources.append(sub_entry)
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": resources}


@cache
def root_paths() -> dict:
    """`GET /`: kube-apiserver's index (`routes.Index`), every path it serves, sorted — the
    discovery roots, each group and group/version, the health endpoints and their checks,
    `/metrics`, OpenAPI and `/version`."""
    from .health import ENDPOINTS

    paths = {"/api", "/api/v1", "/apis", "/apis/", "/metrics", "/openapi/v2", "/openapi/v3", "/openapi/v3/",
             "/version"}
    for group, versions in group_versions().items():
        if group:
            paths.add(f"/apis/{group}")
            paths.update(f"/apis/{group}/{v}" for v in versions)
    for endpoint, checks in ENDPOINTS.items():
        paths.add(f"/{endpoint}")
        paths.update(f"/{endpoint}/{check}" for check in checks)
    return {"paths": sorted(paths)}
