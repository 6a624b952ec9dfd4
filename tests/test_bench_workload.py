"""The synthetic bench workload: deterministic per seed, the stated mix, plausible cancel targets."""

from __future__ import annotations

import numpy as np
import pytest

from bench.workload import MIX, WorkloadConfig, generate, mix
from core_cython.records import COMMAND_DTYPE, Op, OrdType, Side, Tif

SMALL = WorkloadConfig(seed=7, commands=20_000, symbols=3, accounts=500, preload=5_000)


@pytest.fixture(scope="module")
def wl():
    return generate(SMALL)


def test_same_seed_same_bytes(wl) -> None:
    again = generate(SMALL)
    assert again.setup.tobytes() == wl.setup.tobytes()
    assert again.commands.tobytes() == wl.commands.tobytes()


def test_other_seed_differs(wl) -> None:
    other = generate(WorkloadConfig(**{**SMALL.__dict__, "seed": 8}))
    assert other.commands.tobytes() != wl.commands.tobytes()


def test_layout(wl) -> None:
    assert wl.commands.dtype == COMMAND_DTYPE and wl.commands.flags.c_contiguous
    assert wl.commands.size == SMALL.commands
    assert wl.setup.size == SMALL.symbols + SMALL.preload
    assert (wl.setup["op"][: SMALL.symbols] == Op.ADD_INSTRUMENT).all()
    assert np.all(np.diff(wl.commands["ts"]) > 0)  # stamped in order, as by the sequencer


@pytest.mark.parametrize("commands", [1_000, 20_000, 100_003])
def test_mix_within_tolerance(commands: int) -> None:
    cfg = WorkloadConfig(seed=3, commands=commands, symbols=2, accounts=100, preload=100)
    shares = mix(generate(cfg).commands)
    for kind, target in MIX.items():
        assert abs(shares[kind] - target) < 0.01, (kind, shares[kind])


def test_new_order_ids_unique_and_fresh(wl) -> None:
    new = wl.commands[wl.commands["op"] == Op.NEW]
    ids = np.concatenate([wl.setup["order_id"][SMALL.symbols:], new["order_id"]])
    assert np.unique(ids).size == ids.size


def test_cancels_and_replaces_target_earlier_gtc_orders_once(wl) -> None:
    c = wl.commands
    pos = np.arange(c.size)
    gtc = (c["op"] == Op.NEW) & (c["ord_type"] == OrdType.LIMIT) & (c["tif"] == Tif.GTC)
    placed_at = dict(zip(c["order_id"][gtc].tolist(), pos[gtc].tolist(), strict=True))
    owner = dict(zip(c["order_id"][gtc].tolist(), c["account"][gtc].tolist(), strict=True))
    links = np.flatnonzero((c["op"] == Op.CANCEL) | (c["op"] == Op.REPLACE))
    targets = c["order_id"][links].tolist()
    assert len(set(targets)) == len(targets)  # never twice the same order
    for i, oid in zip(links.tolist(), targets, strict=True):
        assert placed_at[oid] < i  # after the order exists
        assert owner[oid] == c["account"][i]  # by its owner
    # Plausibly live: most are due soon after placement (fleeting quotes), not at random.
    lags = np.array([i - placed_at[o] for i, o in zip(links.tolist(), targets, strict=True)])
    assert np.median(lags) < SMALL.commands / 10


def test_book_shape(wl) -> None:
    c = wl.commands
    gtc = (c["op"] == Op.NEW) & (c["tif"] == Tif.GTC) & (c["symbol"] == 1)
    assert np.unique(c["price"][gtc]).size > 1_000  # a few thousand levels, not a handful
    assert (c["price"][c["op"] == Op.NEW] >= 0).all()
    assert (c["qty"][c["op"] == Op.NEW] >= 1).all()
    pre = wl.setup[SMALL.symbols:]
    # The preloaded book never crosses: every bid is below every ask of its symbol.
    for s in range(1, SMALL.symbols + 1):
        mine = pre[pre["symbol"] == s]
        bids, asks = mine["price"][mine["side"] == Side.BUY], mine["price"][mine["side"] == Side.SELL]
        assert bids.max() < asks.min()
    accounts = np.unique(c["account"])
    assert accounts.size > SMALL.accounts / 2  # many accounts


def test_too_small_is_refused() -> None:
    with pytest.raises(ValueError):
        generate(WorkloadConfig(commands=10))
