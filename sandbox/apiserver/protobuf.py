"""Decoding the Kubernetes protobuf request bodies that `kubectl create <kind>` sends.

kubectl's typed clients (`kubectl create namespace|deployment|configmap|secret|service|
serviceaccount|role|rolebinding|clusterrole|clusterrolebinding|token|pdb`, `kubectl auth`,
`kubectl autoscale`, `kubectl drain`'s Evictions and DeleteOptions, `kubectl debug --copy-to`'s
Pod) send
`application/vnd.kubernetes.protobuf` and, unlike for CBOR, never fall back to JSON. The
sandbox serves JSON, so it decodes those bodies here:

    "k8s\\0" + runtime.Unknown{typeMeta{apiVersion, kind}, raw=<the object message>}

The message layouts below (field number -> JSON name and type) cover the kinds and fields
those commands set; the field numbers are the stable ones of Kubernetes' `generated.proto`
files. gogo-protobuf writes every non-pointer field, so empty strings, zeros and empty
messages are dropped like JSON's `omitempty`; fields marked `keep` are pointers in Go and
keep an explicit zero (`--replicas=0`). A non-empty field this table does not know is an
error (415) rather than silently dropped data.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from sandbox.apiserver.protobuf_pod import POD_MESSAGES

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """A body that is not a decodable Kubernetes protobuf object."""


class Unsupported(ProtobufError):
    """A kind or field this decoder does not know."""


# type codes: "s" string, "b" bytes, "i" integer, "k" integer kept when zero, "?" bool, "!" bool
# kept when false, "t" Time, "q" Quantity, "io" IntOrString; a leading "*" means repeated; "{s" map
# of strings, "{b" map of bytes, "{q" map of Quantity; anything else names a message below ("&Name":
# a pointer, kept even when empty). A field with an empty JSON name is an embedded struct, inlined.
MESSAGES: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {
        1: ("typeMeta", "TypeMeta"),
        2: ("raw", "b"),
        3: ("contentEncoding", "s"),
        4: ("contentType", "s"),
    },
    "TypeMeta": {1: ("apiVersion", "s"), 2: ("kind", "s")},
    "ObjectMeta": {
        1: ("name", "s"),
        2: ("generateName", "s"),
        3: ("namespace", "s"),
        4: ("selfLink", "s"),
        5: ("uid", "s"),
        6: ("resourceVersion", "s"),
        7: ("generation", "i"),
        8: ("creationTimestamp", "t"),
        9: ("deletionTimestamp", "t"),
        10: ("deletionGracePeriodSeconds", "i"),
        11: ("labels", "{s"),
        12: ("annotations", "{s"),
        13: ("ownerReferences", "*OwnerReference"),
        14: ("finalizers", "*s"),
    },
    "OwnerReference": {
        1: ("kind", "s"),
        3: ("name", "s"),
        4: ("uid", "s"),
        5: ("apiVersion", "s"),
        6: ("controller", "?"),
        7: ("blockOwnerDeletion", "?"),
    },
    "Namespace": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "NamespaceSpec"),
        3: ("status", "NamespaceStatus"),
    },
    "NamespaceSpec": {1: ("finalizers", "*s")},
    "NamespaceStatus": {1: ("phase", "s")},
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "{s"),
        3: ("binaryData", "{b"),
        4: ("immutable", "?"),
    },
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta"),
        2: ("secrets", "*ObjectReference"),
        3: ("imagePullSecrets", "*LocalObjectReference"),
        4: ("automountServiceAccountToken", "?"),
    },
    "ObjectReference": {
        1: ("kind", "s"),
        2: ("namespace", "s"),
        3: ("name", "s"),
        4: ("uid", "s"),
        5: ("apiVersion", "s"),
        6: ("resourceVersion", "s"),
        7: ("fieldPath", "s"),
    },
    "LocalObjectReference": {1: ("name", "s")},
    "Service": {1: ("metadata", "ObjectMeta"), 2: ("spec", "ServiceSpec"), 3: ("status", "Empty")},
    "ServiceSpec": {
        1: ("ports", "*ServicePort"),
        2: ("selector", "{s"),
        3: ("clusterIP", "s"),
        4: ("type", "s"),
        5: ("externalIPs", "*s"),
        7: ("sessionAffinity", "s"),
        8: ("loadBalancerIP", "s"),
        9: ("loadBalancerSourceRanges", "*s"),
        10: ("externalName", "s"),
        11: ("externalTrafficPolicy", "s"),
        12: ("healthCheckNodePort", "i"),
        13: ("publishNotReadyAddresses", "?"),
        18: ("clusterIPs", "*s"),
    },
    "ServicePort": {
        1: ("name", "s"),
        2: ("protocol", "s"),
        3: ("port", "i"),
        4: ("targetPort", "io"),
        5: ("nodePort", "i"),
        6: ("appProtocol", "s"),
    },
    "Deployment": {1: ("metadata", "ObjectMeta"), 2: ("spec", "DeploymentSpec"), 3: ("status", "Empty")},
    "DeploymentSpec": {
        1: ("replicas", "k"),
        2: ("selector", "LabelSelector"),
        3: ("template", "PodTemplateSpec"),
        4: ("strategy", "DeploymentStrategy"),
        5: ("minReadySeconds", "i"),
        6: ("revisionHistoryLimit", "k"),
        7: ("paused", "?"),
        9: ("progressDeadlineSeconds", "k"),
    },
    "DeploymentStrategy": {1: ("type", "s")},
    "LabelSelector": {1: ("matchLabels", "{s"), 2: ("matchExpressions", "*LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", "s"), 2: ("operator", "s"), 3: ("values", "*s")},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "PodSpec": {
        2: ("containers", "*Container"),
        3: ("restartPolicy", "s"),
        4: ("terminationGracePeriodSeconds", "k"),
        5: ("activeDeadlineSeconds", "k"),
        6: ("dnsPolicy", "s"),
        7: ("nodeSelector", "{s"),
        8: ("serviceAccountName", "s"),
        9: ("serviceAccount", "s"),
        10: ("nodeName", "s"),
        11: ("hostNetwork", "?"),
        12: ("hostPID", "?"),
        13: ("hostIPC", "?"),
        16: ("hostname", "s"),
        17: ("subdomain", "s"),
        19: ("schedulerName", "s"),
        20: ("initContainers", "*Container"),
        24: ("priorityClassName", "s"),
    },
    "Container": {
        1: ("name", "s"),
        2: ("image", "s"),
        3: ("command", "*s"),
        4: ("args", "*s"),
        5: ("workingDir", "s"),
        6: ("ports", "*ContainerPort"),
        7: ("env", "*EnvVar"),
        8: ("resources", "ResourceRequirements"),
        13: ("terminationMessagePath", "s"),
        14: ("imagePullPolicy", "s"),
        16: ("stdin", "?"),
        17: ("stdinOnce", "?"),
        18: ("tty", "?"),
        20: ("terminationMessagePolicy", "s"),
    },
    "ContainerPort": {
        1: ("name", "s"),
        2: ("hostPort", "i"),
        3: ("containerPort", "i"),
        4: ("protocol", "s"),
        5: ("hostIP", "s"),
    },
    "EnvVar": {1: ("name", "s"), 2: ("value", "s")},
    "ResourceRequirements": {1: ("limits", "{q"), 2: ("requests", "{q")},
    "Role": {1: ("metadata", "ObjectMeta"), 2: ("rules", "*PolicyRule")},
    "PolicyRule": {
        1: ("verbs", "*s"),
        2: ("apiGroups", "*s"),
        3: ("resources", "*s"),
        4: ("resourceNames", "*s"),
        5: ("nonResourceURLs", "*s"),
    },
    "RoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "*Subject"), 3: ("roleRef", "RoleRef")},
    "Subject": {1: ("kind", "s"), 2: ("apiGroup", "s"), 3: ("name", "s"), 4: ("namespace", "s")},
    "RoleRef": {1: ("apiGroup", "s"), 2: ("kind", "s"), 3: ("name", "s")},
    "ClusterRole": {
        1: ("metadata", "ObjectMeta"),
        2: ("rules", "*PolicyRule"),
        3: ("aggregationRule", "AggregationRule"),
    },
    "AggregationRule": {1: ("clusterRoleSelectors", "*LabelSelector")},
    "ClusterRoleBinding": {
        1: ("metadata", "ObjectMeta"),
        2: ("subjects", "*Subject"),
        3: ("roleRef", "RoleRef"),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "{b"),
        3: ("type", "s"),
        4: ("stringData", "{s"),
        5: ("immutable", "?"),
    },
    "TokenRequest": {1: ("metadata", "ObjectMeta"), 2: ("spec", "TokenRequestSpec"), 3: ("status", "Empty")},
    "TokenRequestSpec": {
        1: ("audiences", "*s"),
        3: ("boundObjectRef", "BoundObjectReference"),
        4: ("expirationSeconds", "k"),
    },
    "BoundObjectReference": {1: ("kind", "s"), 2: ("apiVersion", "s"), 3: ("name", "s"), 4: ("uid", "s")},
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta"), 2: ("status", "Empty")},
    "SelfSubjectAccessReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SelfSubjectAccessReviewSpec"),
        3: ("status", "Empty"),
    },
    "SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes"),
        2: ("nonResourceAttributes", "NonResourceAttributes"),
    },
    "ResourceAttributes": {
        1: ("namespace", "s"),
        2: ("verb", "s"),
        3: ("group", "s"),
        4: ("version", "s"),
        5: ("resource", "s"),
        6: ("subresource", "s"),
        7: ("name", "s"),
    },
    "NonResourceAttributes": {1: ("path", "s"), 2: ("verb", "s")},
    "SelfSubjectRulesReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SelfSubjectRulesReviewSpec"),
        3: ("status", "Empty"),
    },
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "s")},
    # autoscaling/v2 (`kubectl autoscale`)
    "HorizontalPodAutoscaler": {1: ("metadata", "ObjectMeta"), 2: ("spec", "HorizontalPodAutoscalerSpec"),
                                3: ("status", "Empty")},
    "HorizontalPodAutoscalerSpec": {
        1: ("scaleTargetRef", "CrossVersionObjectReference"),
        2: ("minReplicas", "k"),
        3: ("maxReplicas", "i"),
        4: ("metrics", "*MetricSpec"),
    },
    "CrossVersionObjectReference": {1: ("kind", "s"), 2: ("name", "s"), 3: ("apiVersion", "s")},
    "MetricSpec": {1: ("type", "s"), 4: ("resource", "ResourceMetricSource")},
    "ResourceMetricSource": {1: ("name", "s"), 2: ("target", "MetricTarget")},
    "MetricTarget": {1: ("type", "s"), 2: ("value", "q"), 3: ("averageValue", "q"),
                     4: ("averageUtilization", "k")},
    # batch/v1 (`kubectl create job|cronjob`, `create job --from=cronjob/NAME` copies a whole JobSpec)
    "Job": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec"), 3: ("status", "Empty")},
    "JobSpec": {
        1: ("parallelism", "k"),
        2: ("completions", "k"),
        3: ("activeDeadlineSeconds", "k"),
        4: ("selector", "LabelSelector"),
        5: ("manualSelector", "?"),
        6: ("template", "PodTemplateSpec"),
        7: ("backoffLimit", "k"),
        8: ("ttlSecondsAfterFinished", "k"),
        9: ("completionMode", "s"),
        10: ("suspend", "?"),
        12: ("backoffLimitPerIndex", "k"),
        13: ("maxFailedIndexes", "k"),
        14: ("podReplacementPolicy", "s"),
        15: ("managedBy", "s"),
    },
    "CronJob": {1: ("metadata", "ObjectMeta"), 2: ("spec", "CronJobSpec"), 3: ("status", "Empty")},
    "CronJobSpec": {
        1: ("schedule", "s"),
        2: ("startingDeadlineSeconds", "k"),
        3: ("concurrencyPolicy", "s"),
        4: ("suspend", "?"),
        5: ("jobTemplate", "JobTemplateSpec"),
        6: ("successfulJobsHistoryLimit", "k"),
        7: ("failedJobsHistoryLimit", "k"),
        8: ("timeZone", "s"),
    },
    "JobTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec")},
    # policy/v1 and DeleteOptions (`kubectl create pdb`, `kubectl drain`'s evictions and deletions)
    "PodDisruptionBudget": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodDisruptionBudgetSpec"),
                            3: ("status", "Empty")},
    "PodDisruptionBudgetSpec": {1: ("minAvailable", "io"), 2: ("selector", "LabelSelector"),
                                3: ("maxUnavailable", "io"), 4: ("unhealthyPodEvictionPolicy", "s")},
    "Eviction": {1: ("metadata", "ObjectMeta"), 2: ("deleteOptions", "DeleteOptions")},
    "DeleteOptions": {1: ("gracePeriodSeconds", "k"), 2: ("preconditions", "Preconditions"),
                      3: ("orphanDependents", "?"), 4: ("propagationPolicy", "s"), 5: ("dryRun", "*s"),
                      6: ("ignoreStoreReadErrorWithClusterBreakingPotential", "?")},
    "Preconditions": {1: ("uid", "s"), 2: ("resourceVersion", "s")},
    "Empty": {},
}
# The complete core/v1 Pod layouts (a superset of the PodSpec/Container entries above).
MESSAGES.update(POD_MESSAGES)
KINDS = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "ServiceAccount"),
    ("v1", "Service"),
    ("v1", "Secret"),
    ("authentication.k8s.io/v1", "TokenRequest"),
    ("authentication.k8s.io/v1", "SelfSubjectReview"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("apps/v1", "Deployment"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("policy/v1", "PodDisruptionBudget"),
    ("policy/v1", "Eviction"),
    ("policy/v1beta1", "Eviction"),   # the eviction subresource accepts both versions
    # DeleteOptions is registered in every group version a typed client encodes it with
    ("v1", "DeleteOptions"),
    ("meta.k8s.io/v1", "DeleteOptions"),
    ("policy/v1", "DeleteOptions"),
    ("policy/v1beta1", "DeleteOptions"),
    ("v1", "Pod"),
}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read a base-128 varint."""
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """The (field number, value) pairs of one message; values are ints or bytes."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated field")
            out.append((number, data[pos : pos + length]))
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return out


def _signed(value: int) -> int:
    """Two's-complement int64 from a varint."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: int | bytes) -> str:
    """A string field."""
    if not isinstance(value, bytes):
        raise ProtobufError("expected a length-delimited string")
    return value.decode("utf-8")


def _scalar(kind: str, value: int | bytes) -> Any:
    """One non-repeated, non-map value of a type code (None when empty)."""
    if kind == "s":
        return _text(value) or None
    if kind == "b":
        return base64.b64encode(value).decode() if isinstance(value, bytes) and value else None
    if kind in ("i", "k"):
        if not isinstance(value, int):
            raise ProtobufError("expected an integer")
        number = _signed(value)
        return number if number or kind == "k" else None
    if kind == "?":
        return True if value else None
    if kind == "!":
        return bool(value)
    if kind == "q":
        parts = dict(_fields(value)) if isinstance(value, bytes) else {}
        return _text(parts[1]) if 1 in parts else None
    if kind == "t":
        parts = dict(_fields(value)) if isinstance(value, bytes) else {}
        seconds = parts.get(1, 0)
        if not seconds:
            return None
        return datetime.fromtimestamp(_signed(int(seconds)), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "io":
        parts = dict(_fields(value)) if isinstance(value, bytes) else {}
        if parts.get(1, 0):
            return _text(parts.get(3, b""))
        return _signed(int(parts.get(2, 0)))
    if not isinstance(value, bytes):
        raise ProtobufError(f"expected a {kind} message")
    if kind.startswith("&"):
        return _message(kind[1:], value)
    return _message(kind, value) or None


def _message(name: str, data: bytes) -> dict:
    """Decode one message of a known layout into JSON form (`Empty`: a status the server
    computes itself, ignored whatever it holds)."""
    if name == "Empty":
        return {}
    layout = MESSAGES[name]
    out: dict = {}
    for number, value in _fields(data):
        if number not in layout:
            if value in (0, b""):
                continue
            raise Unsupported(f"field {number} of {name} is not supported by this sandbox")
        field, kind = layout[number]
        if kind.startswith("{"):
            entry = dict(_fields(value)) if isinstance(value, bytes) else {}
            key = _text(entry.get(1, b""))
            item = _scalar(kind[1:], entry.get(2, b""))
            out.setdefault(field, {})[key] = item if item is not None else ""
        elif kind.startswith("*"):
            item = _scalar(kind[1:], value)
            out.setdefault(field, []).append(item if item is not None else ({} if kind[1].isupper() or
                                                                            kind[1] == "&" else ""))
        else:
            item = _scalar(kind, value)
            if not field:
                out.update(item or {})
            elif item is not None:
                out[field] = item
            else:
                out.pop(field, None)
    return out


def decode_object(body: bytes) -> dict:
    """A protobuf-encoded Kubernetes object as a JSON-compatible dict."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic number")
    try:
        envelope = dict(_fields(body[len(MAGIC) :]))
        raw_type_meta = envelope.get(1)
        type_meta = _message("TypeMeta", raw_type_meta) if isinstance(raw_type_meta, bytes) else {}
        api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
        if (api_version, kind) not in KINDS:
            raise Unsupported(
                f"protobuf bodies of {kind or 'unknown kind'} ({api_version or '?'}) are not "
                "supported by this sandbox"
            )
        raw = envelope.get(2, b"")
        if not isinstance(raw, bytes):
            raise ProtobufError("missing object bytes")
        obj = _message(kind, raw)
    except UnicodeDecodeError as exc:
        raise ProtobufError(f"invalid UTF-8 in a string field: {exc}") from None
    obj.pop("status", None)
    return {"apiVersion": api_version, "kind": kind, **obj}
