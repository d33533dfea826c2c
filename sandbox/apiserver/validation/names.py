"""Name formats, the sandbox's `k8s.io/apimachinery/pkg/util/validation`: DNS-1123 labels and
subdomains, DNS-1035 labels, qualified names (label and annotation keys), label values, IP
addresses, with apimachinery's exact wording (each returns the list of messages, empty if valid).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, TypeGuard

from sandbox.apiserver.validation.fielderrors import Errors

DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + ")*"
DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE = "(" + QUALIFIED_NAME + ")?"
CONFIG_MAP_KEY = "[-._a-zA-Z0-9]+"
FORMATS = {p: re.compile("^" + p + "$") for p in
         (DNS1123_LABEL, DNS1123_SUBDOMAIN, DNS1035_LABEL, QUALIFIED_NAME, LABEL_VALUE, CONFIG_MAP_KEY)}


def regex_error(msg: str, pattern: str, *examples: str) -> str:
    shown = ",  or ".join(f"'{e}'" for e in examples)
    return f"{msg} (e.g. {shown}, regex used for validation is '{pattern}')"


def _name_errors(value: str, *, max_length: int, pattern: str, rule: str,
                 examples: tuple[str, ...]) -> list[str]:
    """Length and format errors of a name, worded like apimachinery's validators."""
    errs = []
    if len(value) > max_length:
        errs.append(f"must be no more than {max_length} characters")
    if not FORMATS[pattern].match(value):
        errs.append(regex_error(rule, pattern, *examples))
    return errs


def dns1123_label_errors(value: str) -> list[str]:
    """`IsDNS1123Label`."""
    return _name_errors(value, max_length=63, pattern=DNS1123_LABEL, examples=("my-name", "123-abc"),
                        rule="a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                             "or '-', and must start and end with an alphanumeric character")


def dns1123_subdomain_errors(value: str) -> list[str]:
    """`IsDNS1123Subdomain`."""
    return _name_errors(value, max_length=253, pattern=DNS1123_SUBDOMAIN, examples=("example.com",),
                        rule="a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                             "characters, '-' or '.', and must start and end with an alphanumeric character")


def dns1035_label_errors(value: str) -> list[str]:
    """`IsDNS1035Label` (Service names)."""
    return _name_errors(value, max_length=63, pattern=DNS1035_LABEL, examples=("my-name", "abc-123"),
                        rule="a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                             "start with an alphabetic character, and end with an alphanumeric character")


def qualified_name_errors(value: str) -> list[str]:
    """`IsQualifiedName` (label and annotation keys)."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
        errs: list[str] = []
    elif len(parts) == 2:
        prefix, name = parts
        errs = []
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + e for e in dns1123_subdomain_errors(prefix))
    else:
        return [regex_error("a qualified name must consist of alphanumeric characters, '-', '_' or '.', "
                             "and must start and end with an alphanumeric character", QUALIFIED_NAME,
                             "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not FORMATS[QUALIFIED_NAME].match(name):
        errs.append(regex_error("name part must consist of alphanumeric characters, '-', '_' or '.', and "
                                 "must start and end with an alphanumeric character", QUALIFIED_NAME,
                                 "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    """`IsValidLabelValue`."""
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not FORMATS[LABEL_VALUE].match(value):
        errs.append(regex_error("a valid label must be an empty string or consist of alphanumeric "
                                 "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                                 "character", LABEL_VALUE, "MyValue", "my_value", "12345"))
    return errs


def config_map_key_errors(value: str) -> list[str]:
    """`IsConfigMapKey` (keys of a Secret's data, a ConfigMap's data and binaryData)."""
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not FORMATS[CONFIG_MAP_KEY].match(value):
        errs.append(regex_error("a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                                CONFIG_MAP_KEY, "key.name", "KEY_NAME", "key-name"))
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def path_segment_name_errors(value: str) -> list[str]:
    """`IsValidPathSegmentName` (RBAC object names such as `system:basic-user`)."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


NAME_CHECKS = {"label": dns1123_label_errors, "subdomain": dns1123_subdomain_errors,
               "dns1035": dns1035_label_errors, "path": path_segment_name_errors}


def validate_ip(errs: Errors, value: Any, path: str) -> None:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        errs.invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")


def _sloppy(value: str) -> str:
    """The CIDR Go's `ParseCIDRSloppy` would read: leading 0s in IPv4 octets and the prefix dropped."""
    ip, _, prefix = value.partition("/")
    if "." in ip and ":" not in ip:
        ip = ".".join(part.lstrip("0") or "0" for part in ip.split("."))
    return f"{ip}/{prefix.lstrip('0') or '0'}" if prefix else ip


def cidr_errors(value: str) -> list[str]:
    """`IsValidCIDRForLegacyField` with strict validation (StrictIPCIDRValidation, 1.37's default)."""
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        try:
            ipaddress.ip_network(_sloppy(value), strict=False)
        except ValueError:
            return ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
        return ["must not have leading 0s in IP or prefix length"] if "/" in value else [
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    if "/" not in value:
        return ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    prefix = value.split("/", 1)[1]
    if _sloppy(value) != value or (len(prefix) > 1 and prefix.startswith("0")):
        return ["must not have leading 0s in IP or prefix length"]
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped is not None:
        return ["must not have an IPv4-mapped IPv6 address"]
    if ipaddress.ip_interface(value).ip != network.network_address:
        return ["must not have bits set beyond the prefix length"]
    return []
