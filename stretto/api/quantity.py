"""Kubernetes resource quantities ("10Gi", "500m", "1e3") as exact numbers.

One parser for every part: the API models, the operator's pod builder and the extender's cache.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    **{suffix: Decimal(value) for suffix, value in _BINARY.items()},
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([a-zA-Z]{0,2})$")

# The regular expression the CRD schema uses for memory quantities (non-negative, byte units).
MEMORY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"


def parse_quantity(value: str | int | float) -> Decimal:
    """The quantity's value in base units; ValueError ("invalid quantity ...") on anything else."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"invalid quantity {value!r}")
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.match(value.strip())
    if match is None or match.group(2) not in _SUFFIXES:
        raise ValueError(f"invalid quantity {value!r} (expected e.g. 10Gi, 500m, 4)")
    number, suffix = match.groups()
    if suffix and "e" in number.lower():
        raise ValueError(f"invalid quantity {value!r}")
    try:
        return Decimal(number) * _SUFFIXES[suffix]
    except ArithmeticError as exc:  # decimal's Overflow (1e999999999) and InvalidOperation
        raise ValueError(f"invalid quantity {value[:40]!r}: out of range") from exc


def parse_bytes(value: str | int | float) -> int:
    return int(parse_quantity(value))


def to_millis(value: str | int | float) -> int:
    """A CPU quantity in millicores, rounded up as the API server does."""
    return math.ceil(parse_quantity(value) * 1000)


def to_units(value: str | int | float) -> int:
    """A byte or count quantity as an integer, rounded up."""
    return math.ceil(parse_quantity(value))


def format_bytes(value: int) -> str:
    """The shortest exact binary-suffixed form: 10737418240 -> '10Gi'."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = _BINARY[suffix]
        if value >= unit and value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)


def format_cpu(cores: float) -> str:
    millis = round(cores * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
