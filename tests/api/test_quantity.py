from decimal import Decimal

import pytest

from stretto.api.quantity import parse_quantity, to_millis, to_units


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("1", Decimal(1)), ("500m", Decimal("0.5")), ("1.5", Decimal("1.5")), ("768Gi", Decimal(768 * 2**30)),
        ("1k", Decimal(1000)), ("100M", Decimal(10**8)), ("1e3", Decimal(1000)), ("1E", Decimal(10**18)),
        (4, Decimal(4)), (".5", Decimal("0.5")),
    ],
    ids=lambda v: str(v),
)
def test_parse_quantity(raw, want):
    assert parse_quantity(raw) == want


@pytest.mark.parametrize("raw", ["", "abc", "1Qi", "1e3Gi", "--1", None, True, [1], "1 Gi x"])
def test_parse_quantity_rejects(raw):
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(raw)


@pytest.mark.parametrize(("raw", "millis"), [("2", 2000), ("250m", 250), ("0.0001", 1), ("96", 96000)])
def test_to_millis_rounds_up(raw, millis):
    assert to_millis(raw) == millis


def test_to_units_rounds_up():
    assert to_units("1.5") == 2
    assert to_units("1Gi") == 2**30
