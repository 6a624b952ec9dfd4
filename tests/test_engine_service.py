"""The engine process's glue (venue/engine_service.py, core_cython/envelope.pyx), in process: requests
from the command ring are journaled and applied, and their outcomes published, without postings,
each tagged with its request's origin; only order entry passes; leftovers of a crashed run are
discarded at start and whatever is queued at a clean stop is applied."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("core_cython.engine")

from core_cython.broadcast import Broadcast, BroadcastReader  # noqa: E402
from core_cython.envelope import (  # noqa: E402
    OUTCOME_SIZE,
    REQUEST_SIZE,
    BatchIO,
)
from core_cython.records import (  # noqa: E402
    COMMAND_DTYPE,
    EVENT_DTYPE,
    OUTCOME_DTYPE,
    OUTCOME_LAST_OF_COMMAND,
    REQUEST_DTYPE,
    EventType,
    Op,
    Reason,
    Side,
)
from core_cython.ring import WAIT_STRATEGIES, Ring  # noqa: E402
from tests.venue_harness import venue_config  # noqa: E402
from venue.engine_service import COMMANDS_RING, OUTCOMES_RING, EngineService, run_dir  # noqa: E402
from venue.run import open_venue, prepare_demo_accounts  # noqa: E402


def requests(ops: list[int], account: int, gateway: int = 1) -> np.ndarray:
    reqs = np.zeros(len(ops), REQUEST_DTYPE)
    for i, op in enumerate(ops):
        cmd = reqs[i]["cmd"]
        cmd["op"], cmd["account"], cmd["symbol"], cmd["side"] = op, account, 1, Side.BUY
        cmd["order_id"], cmd["price"], cmd["qty"], cmd["ord_type"], cmd["tif"] = (account << 40) | (i + 1), \
            5_900_000, 1, 1, 1
        reqs[i]["request_id"], reqs[i]["session"], reqs[i]["gateway"] = 100 + i, 7, gateway
    return reqs


SPIN = WAIT_STRATEGIES.index("spin")


@pytest.fixture
def rings(tmp_path: Path) -> Iterator[tuple[Ring, Broadcast, BroadcastReader]]:
    """A command ring, an outcome ring and a reader of it, as the engine service and a gateway use them."""
    ring = Ring.create(str(tmp_path / "c.ring"), 64, REQUEST_SIZE)
    outcomes = Broadcast.create(str(tmp_path / "o.ring"), 256, OUTCOME_SIZE)
    reader = BroadcastReader.attach(str(tmp_path / "o.ring"))
    yield ring, outcomes, reader
    reader.close()
    outcomes.close()
    ring.close()


def test_only_order_entry_passes_whatever_the_origin_claims(
        rings: tuple[Ring, Broadcast, BroadcastReader]) -> None:
    ring, outcomes, reader = rings
    ops = [Op.NEW, Op.ADD_INSTRUMENT, Op.DEPOSIT, Op.TRANSFER, Op.CANCEL, Op.MASS_CANCEL, Op.REPLACE, 200]
    cmds = np.zeros(len(ops), COMMAND_DTYPE)
    io = BatchIO(ring, outcomes, cmds, len(ops))
    for gateway in (0, 1):  # 0 would be the admin path: a gateway can write it, so it grants nothing
        before = io.refused
        ring.publish_many(requests(ops, 16, gateway).tobytes())
        assert io.take(0, SPIN, 0) == len(ops) and io.refused - before == 4
        assert cmds["op"].tolist() == [Op.NEW, 0, 0, 0, Op.CANCEL, Op.MASS_CANCEL, Op.REPLACE, 0]
        events = np.zeros(len(ops), EVENT_DTYPE)  # one answer per command: each carries its origin
        events["cmd_seq"] = np.arange(1, len(ops) + 1)
        assert io.publish(events, 1) == len(ops)
        out = np.zeros(len(ops), OUTCOME_DTYPE)
        assert reader.take(out) == len(ops)
        assert out["request_id"].tolist() == [100 + i for i in range(len(ops))]
        assert set(out["gateway"].tolist()) == {gateway} and set(out["session"].tolist()) == {7}


def test_outcomes_skip_postings_and_mark_each_commands_last(
        rings: tuple[Ring, Broadcast, BroadcastReader]) -> None:
    ring, outcomes, reader = rings
    io = BatchIO(ring, outcomes, np.zeros(3, COMMAND_DTYPE), 3)
    reqs = requests([Op.NEW, Op.NEW, Op.NEW], 16)
    reqs["request_id"] = [11, 12, 13]
    ring.publish_many(reqs.tobytes())
    assert io.take(0, SPIN, 0) == 3
    events = np.zeros(6, EVENT_DTYPE)
    events["cmd_seq"] = [5, 5, 5, 6, 7, 7]
    events["type"] = [EventType.ACCEPTED, EventType.POSTING, EventType.TRADE, EventType.POSTING,
                      EventType.REJECTED, EventType.POSTING]
    events["seq"] = np.arange(1, 7)
    assert io.publish(events, 5) == 3
    out = np.zeros(6, OUTCOME_DTYPE)
    n = reader.take(out)
    assert n == 3
    assert out["ev"]["seq"][:n].tolist() == [1, 3, 5]
    assert out["request_id"][:n].tolist() == [11, 11, 13]
    assert out["flags"][:n].tolist() == [0, OUTCOME_LAST_OF_COMMAND, OUTCOME_LAST_OF_COMMAND]
    ring.publish_many(reqs[:2].tobytes())
    assert io.take(0, SPIN, 0) == 2
    with pytest.raises(ValueError, match="outside the batch"):  # cmd seq 7 is not among these two
        io.publish(events, 5)


def test_batch_io_splits_what_it_takes_and_publishes_joined_outcomes(
        rings: tuple[Ring, Broadcast, BroadcastReader]) -> None:
    ring, outcomes, reader = rings
    cmds = np.zeros(4, COMMAND_DTYPE)
    with pytest.raises(ValueError, match="at least 8"):
        BatchIO(ring, outcomes, cmds, 8)
    io = BatchIO(ring, outcomes, cmds, 2)
    ring.publish_many(requests([Op.NEW, Op.DEPOSIT, Op.CANCEL], 16).tobytes())
    assert io.take(0, SPIN, 0) == 2  # max_batch at a time, straight into the engine's array
    assert cmds["op"][:2].tolist() == [Op.NEW, 0] and io.refused == 1
    events = np.zeros(20, EVENT_DTYPE)  # more than the 8 per command planned for: the buffer grows
    events["cmd_seq"] = [5] * 10 + [6] * 10
    events["type"] = EventType.ACCEPTED
    events["seq"] = np.arange(1, 21)
    with pytest.raises(ValueError, match="outside the batch"):
        io.publish(events, 6)
    with pytest.raises(ValueError, match="C-contiguous array of"):
        io.publish(events.view(np.uint8), 5)
    assert io.publish(events, 5) == 20
    out = np.zeros(32, OUTCOME_DTYPE)
    n = reader.take(out)
    assert out["request_id"][:n].tolist() == [100] * 10 + [101] * 10
    assert out["ev"]["seq"][:n].tolist() == list(range(1, 21))
    last = [0] * 9 + [OUTCOME_LAST_OF_COMMAND]
    assert out["flags"][:n].tolist() == last + last
    assert io.take(0, SPIN, 0) == 1 and cmds["op"][0] == Op.CANCEL and io.take(0, SPIN, 0) == 0
    ring.close()
    with pytest.raises(ValueError, match="closed"):
        io.take(0, SPIN, 0)


def test_service_journals_then_publishes_and_handles_leftovers(tmp_path: Path) -> None:
    config = venue_config(tmp_path)
    try:
        with open_venue(config) as venue:
            _, accounts = prepare_demo_accounts(venue, config)
            account = accounts["demo-1"]
            service = EngineService(venue.engine, config)
            ring = Ring.attach(str(run_dir(config) / COMMANDS_RING))
            reader = BroadcastReader.attach(str(run_dir(config) / OUTCOMES_RING))
            before = venue.engine.last_cmd_seq
            assert ring.publish_many(requests([Op.NEW, Op.DEPOSIT], account).tobytes()) == 2
            assert service.step() == 2
            assert venue.engine.last_cmd_seq == before + 2  # journaled (the step returned after commit)
            out = np.zeros(16, OUTCOME_DTYPE)
            n = reader.take(out)
            got = out[:n]
            assert got["ev"]["type"].tolist() == [EventType.ACCEPTED, EventType.REJECTED]  # no postings
            assert got["ev"]["reason"][1] == Reason.UNKNOWN_OP and got["request_id"].tolist() == [100, 101]
            assert set(got["session"].tolist()) == {7} and set(got["gateway"].tolist()) == {1}

            # A clean stop applies what is still queued (e.g. cancel-on-disconnect of the last sessions).
            ring.publish_many(requests([Op.MASS_CANCEL], account).tobytes())
            assert service.drain() == 1 and venue.engine.last_cmd_seq == before + 3
            # Requests left by a run that crashed are dropped at the next start, not executed.
            ring.publish_many(requests([Op.NEW, Op.NEW], account).tobytes())
            reader.close()
            service.close()
            ring.close()
            again = EngineService(venue.engine, config)
            assert again.discard_leftovers() == 2 and again.step(timeout_ns=0) == 0
            assert venue.engine.last_cmd_seq == before + 3
            assert (run_dir(config).stat().st_mode & 0o777) == 0o700
            again.close()
    finally:
        shutil.rmtree(run_dir(config), ignore_errors=True)
