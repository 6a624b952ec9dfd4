"""Hypothesis strategies shared by the engine and funds-mode property tests: a narrow price grid
around 100 (so orders cross a lot), small quantities, and rare invalid values of every field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hypothesis.strategies as st

from core_cython.records import Reason, Stp
from tests.engine_helpers import BUY, FOK, GTC, IOC, LIMIT, MARKET, SELL

SYMBOLS = (1, 2)


def mostly(common: Sequence[Any], rare: Sequence[Any], one_in: int) -> st.SearchStrategy[Any]:
    """A common value, or about once in one_in draws a rare (usually invalid) one.

    One flat sampled_from keeps generation cheap; common values come first so that shrinking
    moves towards them.
    """
    reps = max(1, round(len(rare) * (one_in - 1) / len(common)))
    return st.sampled_from([*common] * reps + [*rare])


PRICES = mostly(range(97, 104), [-1, 0, 1, 150, 151, 200, 201], 25)
QTYS = mostly(range(1, 11), [-1, 0, 29, 30, 31, 40, 41], 25)
SYMBOL = mostly(SYMBOLS, [0, 3], 40)
SIDES = mostly([BUY, SELL], [0, 3], 60)
ORD_TYPES = mostly([LIMIT, LIMIT, LIMIT, MARKET], [0, 3], 60)
TIFS = mostly([GTC, GTC, GTC, GTC, GTC, IOC, FOK], [0, 4], 60)
STPS = mostly(list(Stp), [4], 60)
STOPS = mostly([0], range(96, 105), 7)
BAD_STOPS = [-1, 151, 201]
EDGE_REJECTS = mostly([0], [Reason.OFF_TICK, Reason.OFF_LOT, Reason.MALFORMED], 60)
