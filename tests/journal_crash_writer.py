"""Writer process for the journal crash test: recover, then append seeded random flow until killed.

Usage: journal_crash_writer.py JOURNAL ACK_FILE --seed N [--durability sync|async] [--batch N]
       [--snapshot-every EVENTS] [--explicit-snapshot-every BATCHES] [--book N] [--max-seconds S] [--funds]

After each committed batch it appends "ack <last cmd seq> <last event seq>" to ACK_FILE; around an
explicit snapshot it appends "snap-begin <cmd seq>" / "snap-done <cmd seq>". Lines go straight to
the kernel (os.write), so a SIGKILL cannot lose an acknowledgement that was made.
Order ids are BASE + the command's seq, so they stay unique across restarts.
--funds: the engine in funds mode; an empty journal first gets two assets, funded accounts (the
flow's accounts, moved to the customer id range) and fees, so the flow trades through risk and
settlement.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from core_cython.records import FIRST_CUSTOMER_ACCOUNT, Op, new_commands, ref_hash, set_instrument, set_money
from journal.flow import instrument_commands, random_flow, resting_book
from journal.sequencer import JournaledEngine

ORDER_ID_BASE = 1_000_000_000
N_SYMBOLS = 4
N_ACCOUNTS = 50
BASE, QUOTE = 1, 2  # funds mode: asset ids
FUNDING = {BASE: 10**13, QUOTE: 10**15}  # per account: far more than the flow ever holds


def funds_setup() -> np.ndarray:
    """Assets, instruments with their assets, fees and funded accounts: what a funds journal starts with."""
    cmds = new_commands(2 + 2 * N_SYMBOLS + N_ACCOUNTS * (1 + len(FUNDING)))
    set_money(cmds[0], Op.ADD_ASSET, asset=BASE, qty=8)
    set_money(cmds[1], Op.ADD_ASSET, asset=QUOTE, qty=6)
    slot = 2
    for symbol in range(1, N_SYMBOLS + 1):
        set_instrument(cmds[slot], symbol, max_price=1_000_000, min_qty=1, max_qty=1_000_000,
                       market_band_bps=500, base_asset=BASE, quote_asset=QUOTE, base_per_lot=100,
                       quote_per_tick_lot=1)
        set_money(cmds[slot + 1], Op.SET_FEES, symbol=symbol, price=2, qty=5)  # tier 0: maker 2, taker 5 bps
        slot += 2
    for n in range(N_ACCOUNTS):
        account = FIRST_CUSTOMER_ACCOUNT + n
        set_money(cmds[slot], Op.CREATE_ACCOUNT, account=account, qty=1_000_000)
        slot += 1
        for asset, amount in FUNDING.items():
            aux1, aux2 = ref_hash(f"funding:{account}:{asset}")
            set_money(cmds[slot], Op.DEPOSIT, account=account, asset=asset, qty=amount, aux1=aux1, aux2=aux2)
            slot += 1
    return cmds


def to_customers(cmds: np.ndarray) -> np.ndarray:
    """The flow's accounts 1..N as customer accounts (0, the operator, stays 0)."""
    named = cmds["account"] != 0
    cmds["account"][named] += FIRST_CUSTOMER_ACCOUNT - 1
    return cmds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("journal")
    parser.add_argument("ack_file")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--durability", choices=["sync", "async"], default="sync")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--snapshot-every", type=int, default=20_000)
    parser.add_argument("--explicit-snapshot-every", type=int, default=0)
    parser.add_argument("--book", type=int, default=0, help="resting orders to add to an empty journal")
    parser.add_argument("--max-seconds", type=float, default=30.0)
    parser.add_argument("--funds", action="store_true", help="the engine in funds mode")
    args = parser.parse_args()
    flow = to_customers if args.funds else (lambda cmds: cmds)

    ack_fd = os.open(args.ack_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def note(line: str) -> None:
        os.write(ack_fd, (line + "\n").encode())

    rng = np.random.default_rng(args.seed)
    je = JournaledEngine.open(args.journal, durability=args.durability,
                              snapshot_every_events=args.snapshot_every, verify_events=True, funds=args.funds)
    note(f"ready {je.last_cmd_seq} {je.last_event_seq}")
    clock = time.time_ns()

    def submit(cmds: np.ndarray) -> None:
        nonlocal clock
        clock += 1_000
        je.submit(cmds, clock)
        note(f"ack {je.last_cmd_seq} {je.last_event_seq}")

    if je.last_cmd_seq == 0:
        submit(funds_setup() if args.funds else instrument_commands(N_SYMBOLS))
        if args.book:
            submit(flow(resting_book(rng, args.book, n_symbols=N_SYMBOLS, n_accounts=N_ACCOUNTS,
                                     first_order_id=ORDER_ID_BASE + je.last_cmd_seq + 1)))
    deadline = time.monotonic() + args.max_seconds
    batches = 0
    while time.monotonic() < deadline:
        first_order_id = ORDER_ID_BASE + je.last_cmd_seq + 1
        submit(flow(random_flow(rng, args.batch, n_symbols=N_SYMBOLS, first_order_id=first_order_id,
                                n_accounts=N_ACCOUNTS)))
        batches += 1
        if args.explicit_snapshot_every and batches % args.explicit_snapshot_every == 0:
            note(f"snap-begin {je.last_cmd_seq}")
            je.snapshot()
            note(f"snap-done {je.last_cmd_seq}")
    je.close()


if __name__ == "__main__":
    main()
