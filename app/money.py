"""Money on the wire: a decimal string in major units ("250.00") next to a currency code. In the
database it is an integer number of minor units. Every currency we price in has two decimals."""

from __future__ import annotations

import re
from decimal import Decimal

MINOR_PER_MAJOR = 100
# ASCII digits only (``\d`` would also take other scripts' digits); no sign, exponent, NaN or
# infinity. Trailing zeros past the second decimal are harmless ("100.000" is 100.00).
_MAJOR = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,6})?")


def parse_money(text: str) -> int:
    """A non-negative major-unit decimal string ("100", "100.5", "100.00") as minor units.

    Raises ValueError, saying why, for anything else, including a fraction of a minor unit.
    """
    if not _MAJOR.fullmatch(text):
        raise ValueError('must be a decimal string in major units, such as "250.00"')
    minor = Decimal(text) * MINOR_PER_MAJOR
    if minor != minor.to_integral_value():
        raise ValueError("has more decimal places than the currency has")
    return int(minor)


def format_money(minor: int) -> str:
    """Minor units as the wire's decimal string in major units."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), MINOR_PER_MAJOR)
    return f"{sign}{whole}.{cents:02d}"
