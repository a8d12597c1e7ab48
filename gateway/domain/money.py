"""Money: integer fen everywhere (1 yuan = 100 fen), never float; rounding is exact.

One bound serves every amount a request may carry: ``MAX_AMOUNT_FEN`` (100 million yuan), far above any one
person's transfer or bill, far below int64 overflow.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TypeGuard

__all__ = ["MAX_AMOUNT_FEN", "is_int", "round_down", "round_half_up"]

MAX_AMOUNT_FEN = 10_000_000_000


def is_int(value: object) -> TypeGuard[int]:
    """An ``int`` and not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def round_half_up(value: Fraction) -> int:
    """To the nearest integer, halves up (towards +infinity)."""
    return (value.numerator * 2 + value.denominator) // (value.denominator * 2)


def round_down(value: Fraction) -> int:
    """Down to the integer below (towards -infinity)."""
    return value.numerator // value.denominator
