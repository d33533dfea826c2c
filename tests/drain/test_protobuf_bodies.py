"""The protobuf bodies kubectl's typed clients send for drain and debug: DeleteOptions, Eviction
and a whole Pod, encoded here field by field as gogo-protobuf writes them and decoded by the API
server's `protobuf.decode_object`. What matters is what a Go pointer means: an explicit zero,
false or empty message that was set must survive (`gracePeriodSeconds: 0` deletes at once)."""

from __future__ import annotations

from sandbox.apiserver.protobuf import MAGIC, decode_object


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return MAGIC + field(1, field(1, api_version) + field(2, kind)) + field(2, raw)


def test_delete_options_keep_an_explicit_zero_grace_period():
    raw = field(1, 0) + field(2, field(1, "uid-1")) + field(4, "Foreground") + field(5, "All")
    assert decode_object(envelope("v1", "DeleteOptions", raw)) == {
        "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
        "preconditions": {"uid": "uid-1"}, "propagationPolicy": "Foreground", "dryRun": ["All"]}


def test_an_eviction_carries_its_delete_options():
    raw = field(1, field(1, "web-1") + field(3, "shop")) + field(2, field(1, 30))
    assert decode_object(envelope("policy/v1", "Eviction", raw)) == {
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-1", "namespace": "shop"},
        "deleteOptions": {"gracePeriodSeconds": 30}}


def test_a_pod_keeps_set_zeros_falses_and_empty_messages_and_inlines_embedded_structs():
    probe = field(1, field(2, field(1, "/healthz") + field(2, field(1, 0) + field(2, 8080)))) + field(4, 2)
    container = field(1, "web") + field(2, "nginx") + field(11, probe)
    volume = field(1, "scratch") + field(2, field(2, b""))          # VolumeSource.emptyDir = {}
    toleration = field(1, "example.com/now") + field(2, "Exists") + field(4, "NoExecute") + field(5, 0)
    # enableServiceLinks (a *bool) false, hostNetwork (a bool) false
    spec = field(1, volume) + field(2, container) + field(22, toleration) + field(30, 0) + field(11, 0)
    raw = field(1, field(1, "p")) + field(2, spec) + field(3, field(1, "Running"))
    pod = decode_object(envelope("v1", "Pod", raw))
    assert pod["spec"] == {
        "volumes": [{"name": "scratch", "emptyDir": {}}],
        "containers": [{"name": "web", "image": "nginx", "readinessProbe": {
            "httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 2}}],
        "tolerations": [{"key": "example.com/now", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 0}],
        "enableServiceLinks": False,
    }
    assert "status" not in pod   # the server computes its own
