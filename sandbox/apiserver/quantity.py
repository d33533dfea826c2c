"""Kubernetes resource quantities ("100m", "128Mi", "1.5", "2e3") parsed to exact numbers.

Validation compares requests with limits and defaulting derives a pod's QoS class; both need
quantities as numbers, exactly as `k8s.io/apimachinery/pkg/api/resource` reads them.
"""

from __future__ import annotations

import re
from fractions import Fraction

QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
QUANTITY_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"

_SUFFIXES: dict[str, Fraction] = {
    "": Fraction(1),
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40),
    "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}
_EXPONENT_RE = re.compile(r"^[eE]([-+]?[0-9]+)$")


def parse_quantity(value: object) -> Fraction:
    """Return the exact value of a quantity (a string or a number); ValueError when malformed."""
    if isinstance(value, bool):
        raise ValueError(QUANTITY_ERROR)
    if isinstance(value, int | float):
        return Fraction(str(value))
    if not isinstance(value, str):
        raise ValueError(QUANTITY_ERROR)
    match = QUANTITY_RE.match(value.strip())
    if not match:
        raise ValueError(QUANTITY_ERROR)
    number, suffix = match.groups()
    if number.count(".") > 1 or number.strip("+-") in {"", "."}:
        raise ValueError(QUANTITY_ERROR)
    base = Fraction(number)
    if suffix in _SUFFIXES:
        return base * _SUFFIXES[suffix]
    exponent = _EXPONENT_RE.match(suffix)
    if exponent:
        return base * Fraction(10) ** int(exponent.group(1))
    raise ValueError("unable to parse quantity's suffix")
