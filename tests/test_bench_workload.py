"""The synthetic bench workload: deterministic per seed, the stated mix, plausible cancel targets, and
a funds-mode setup that the engine accepts and that funds the orders it claims to."""

from __future__ import annotations

import numpy as np
import pytest

from bench.workload import BASE_PER_LOT, FEES, MIX, QUOTE_PER_TICK_LOT, WorkloadConfig, generate, mix
from core_cython.records import (
    COMMAND_DTYPE,
    FIRST_CUSTOMER_ACCOUNT,
    EventType,
    Op,
    OrdType,
    Reason,
    Side,
    Tif,
)

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


# ---------------------------------------------------------------- funds mode


def test_core_and_funds_share_the_measured_stream_and_preload(wl) -> None:
    assert wl.setup_for(False) is wl.setup
    preload = wl.setup[SMALL.symbols:]
    assert wl.funds_setup[-preload.size:].tobytes() == preload.tobytes()  # same book to start from
    # Account ids are customer ids of funds mode, in both modes.
    assert wl.commands["account"].min() >= FIRST_CUSTOMER_ACCOUNT
    assert wl.commands["account"].max() < FIRST_CUSTOMER_ACCOUNT + SMALL.accounts


def test_funds_setup_same_seed_same_bytes(wl) -> None:
    assert generate(SMALL).funds_setup.tobytes() == wl.funds_setup.tobytes()
    other = generate(WorkloadConfig(**{**SMALL.__dict__, "seed": 8}))
    assert other.funds_setup.tobytes() != wl.funds_setup.tobytes()


def test_funds_setup_layout(wl) -> None:
    fs = wl.funds_setup
    ops = fs["op"][: fs.size - SMALL.preload]
    n_assets = SMALL.symbols + 1
    expected = ([Op.ADD_ASSET] * n_assets + [Op.ADD_INSTRUMENT] * SMALL.symbols
                + [Op.SET_FEES] * 2 * SMALL.symbols + [Op.SET_LIMITS] * SMALL.symbols
                + [Op.CREATE_ACCOUNT] * SMALL.accounts + [Op.DEPOSIT] * SMALL.accounts * n_assets)
    assert ops.tolist() == [int(op) for op in expected]
    assert wl.funds_counts["setup"] == fs.size
    fees = fs[fs["op"] == Op.SET_FEES]
    assert (fees["price"] < 0).all() and (fees["qty"] > 0).all()  # a maker rebate and a taker fee
    assert (fees["price"] + fees["qty"] >= 0).all()
    assert 0 < wl.funds_counts["underfunded_accounts"] < SMALL.accounts / 5


def _run_funds(work) -> tuple[object, dict[str, int], np.ndarray]:
    """Setup, then the measured stream on a funds-mode engine: (engine, setup rejects, stream events)."""
    from bench.engine_bench import chunks, load_engine

    eng, setup_rejects = load_engine(work.funds_setup, funds=True)
    cmds = work.commands.copy()
    events = []
    for s in chunks(cmds.size):
        eng.process(cmds[s])
        events.append(eng.events().copy())
    return eng, setup_rejects, np.concatenate(events)


@pytest.fixture(scope="module")
def funds_run(wl):
    pytest.importorskip("core_cython.engine")
    return _run_funds(wl)


def test_funds_setup_is_accepted_whole(wl, funds_run) -> None:
    eng, setup_rejects, _ = funds_run
    assert setup_rejects == {}  # every asset, instrument, fee, limit, account, deposit and preload order
    assert eng.fee_rates(FIRST_CUSTOMER_ACCOUNT, 1) == FEES[1]  # the most active account: maker tier
    assert eng.fee_rates(FIRST_CUSTOMER_ACCOUNT + SMALL.accounts - 1, 1) == FEES[0]
    ins = eng.instrument(2)
    assert (ins["base_per_lot"], ins["quote_per_tick_lot"]) == (BASE_PER_LOT[1], QUOTE_PER_TICK_LOT[1])
    assert ins["max_notional"] > 0
    assert len(eng.accounts()) == SMALL.accounts + 3  # and the three built-in accounts


def test_funds_stream_rejects_are_few_and_from_underfunded_accounts(wl, funds_run) -> None:
    eng, _, ev = funds_run
    rejected = ev[ev["type"] == EventType.REJECTED]
    poor = rejected[rejected["reason"] == Reason.INSUFFICIENT_FUNDS]
    assert 0 < poor.size < 0.02 * SMALL.commands
    assert np.unique(poor["account"]).size <= wl.funds_counts["underfunded_accounts"]
    assert (ev["type"] == EventType.POSTING).sum() > SMALL.commands  # settlement is on
    # The ledger balances: every asset sums to zero over all accounts (EXTERNAL is the contra side).
    totals: dict[int, int] = {}
    for (_, asset), (avail, held) in eng.balances().items():
        totals[asset] = totals.get(asset, 0) + avail + held
    assert set(totals.values()) == {0}


def test_fully_funded_accounts_never_lack_funds() -> None:
    pytest.importorskip("core_cython.engine")
    full = generate(WorkloadConfig(seed=5, commands=10_000, symbols=2, accounts=200, preload=2_000,
                                   underfunded=0.0))
    assert full.funds_counts["underfunded_accounts"] == 0
    _, setup_rejects, ev = _run_funds(full)
    assert setup_rejects == {}
    rejected = ev[ev["type"] == EventType.REJECTED]
    assert not (rejected["reason"] == Reason.INSUFFICIENT_FUNDS).any()
    assert (ev["type"] == EventType.ACCEPTED).sum() > 0.6 * full.commands.size


def test_bad_underfunded_share_is_refused() -> None:
    with pytest.raises(ValueError):
        generate(WorkloadConfig(commands=1_000, underfunded=1.5))
