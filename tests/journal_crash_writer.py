"""Writer process for the journal crash test: recover, then append seeded random flow until killed.

Usage: journal_crash_writer.py JOURNAL ACK_FILE --seed N [--durability sync|async] [--batch N]
       [--snapshot-every EVENTS] [--explicit-snapshot-every BATCHES] [--book N] [--max-seconds S]

After each committed batch it appends "ack <last cmd seq> <last event seq>" to ACK_FILE; around an
explicit snapshot it appends "snap-begin <cmd seq>" / "snap-done <cmd seq>". Lines go straight to
the kernel (os.write), so a SIGKILL cannot lose an acknowledgement that was made.
Order ids are BASE + the command's seq, so they stay unique across restarts.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from journal.flow import instrument_commands, random_flow, resting_book
from journal.sequencer import JournaledEngine

ORDER_ID_BASE = 1_000_000_000
N_SYMBOLS = 4


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
    args = parser.parse_args()

    ack_fd = os.open(args.ack_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def note(line: str) -> None:
        os.write(ack_fd, (line + "\n").encode())

    rng = np.random.default_rng(args.seed)
    je = JournaledEngine.open(args.journal, durability=args.durability,
                              snapshot_every_events=args.snapshot_every, verify_events=True)
    note(f"ready {je.last_cmd_seq} {je.last_event_seq}")
    clock = time.time_ns()

    def submit(cmds: np.ndarray) -> None:
        nonlocal clock
        clock += 1_000
        je.submit(cmds, clock)
        note(f"ack {je.last_cmd_seq} {je.last_event_seq}")

    if je.last_cmd_seq == 0:
        submit(instrument_commands(N_SYMBOLS))
        if args.book:
            submit(resting_book(rng, args.book, n_symbols=N_SYMBOLS,
                                first_order_id=ORDER_ID_BASE + je.last_cmd_seq + 1))
    deadline = time.monotonic() + args.max_seconds
    batches = 0
    while time.monotonic() < deadline:
        first_order_id = ORDER_ID_BASE + je.last_cmd_seq + 1
        submit(random_flow(rng, args.batch, n_symbols=N_SYMBOLS, first_order_id=first_order_id))
        batches += 1
        if args.explicit_snapshot_every and batches % args.explicit_snapshot_every == 0:
            note(f"snap-begin {je.last_cmd_seq}")
            je.snapshot()
            note(f"snap-done {je.last_cmd_seq}")
    je.close()


if __name__ == "__main__":
    main()
