"""The SBE gateway over real TCP, against a real engine process (tests/venue_harness.py).

Sessions: logon, orders, fills on both sides, cancel, replace, mass cancel, logout; cancel-on-
disconnect; permissions between accounts; sequence numbers, throttling, heartbeats; bad frames and
bad logons that never disturb another session; a full command ring answered "busy"; a gateway
killed and restarted while the engine runs.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sbe_gateway.client import LogonRefused, SbeClient
from sbe_schemas import codecs
from tests.venue_harness import RunningVenue, frame, next_id, running_venue, wait_until_stopped

BTC = 1  # symbol id of BTC-USDT (first instrument of the shipped config)
MID = 6_000_000  # 60000.00 in ticks of 0.01
ER = "ExecutionReport"
NEW, FILL, PARTIAL = codecs.ExecType.NEW, codecs.ExecType.FILL, codecs.ExecType.PARTIAL_FILL


@pytest.fixture(scope="module")
def shared_venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningVenue]:
    with running_venue(tmp_path_factory.mktemp("sbe")) as running:
        yield running


@pytest.fixture
def venue(shared_venue: RunningVenue) -> Iterator[RunningVenue]:
    yield shared_venue
    shared_venue.close_clients()


def report(client: SbeClient, cl_ord_id: int, exec_type: codecs.ExecType | None = None,
           template: str = ER) -> dict:
    message, _ = client.wait_for(lambda m: m["template"] == template and m.get("cl_ord_id") == cl_ord_id
                                 and (exec_type is None or m.get("exec_type") == exec_type))
    return message


def test_full_session_trades_cancels_replaces_and_logs_out(venue: RunningVenue) -> None:
    maker = venue.client("demo-1")
    taker = venue.client("demo-2")
    sell, buy = next_id(), next_id()
    price = MID + 100_000  # far from the demo's prices: only these two orders meet here
    maker.new_order(cl_ord_id=sell, symbol_id=BTC, side=codecs.Side.SELL, qty=10, price=price)
    ack = report(maker, sell, NEW)
    assert ack["order_id"] == (venue.accounts["demo-1"] << 40) | sell
    assert (ack["leaves_qty"], ack["cum_qty"], ack["order_qty"], ack["seq_num"]) == (10, 0, 10, 1)
    assert ack["ord_status"] == codecs.OrdStatus.NEW and ack["account_id"] == venue.accounts["demo-1"]

    taker.new_order(cl_ord_id=buy, symbol_id=BTC, side=codecs.Side.BUY, qty=4, price=price)
    assert report(taker, buy, NEW)["leaves_qty"] == 4
    fill = report(taker, buy, FILL)
    assert (fill["last_px"], fill["last_qty"], fill["leaves_qty"], fill["cum_qty"]) == (price, 4, 0, 4)
    assert [f["liquidity"] for f in fill["fills"]] == [codecs.LiquidityIndicator.TAKER]
    maker_fill = report(maker, sell, PARTIAL)
    assert (maker_fill["leaves_qty"], maker_fill["cum_qty"], maker_fill["order_qty"]) == (6, 4, 10)
    assert maker_fill["fills"][0]["liquidity"] == codecs.LiquidityIndicator.MAKER
    assert maker_fill["fills"][0]["trade_id"] == fill["fills"][0]["trade_id"]  # one trade, two sides
    assert maker_fill["exec_id"] != fill["exec_id"]

    # Replace gives the order a new clOrdId; a cancel by that id then finds it.
    new_id = next_id()
    maker.replace(cl_ord_id=new_id, orig_cl_ord_id=sell, qty=12, price=price + 1, symbol_id=BTC)
    replaced = report(maker, new_id, codecs.ExecType.REPLACED)
    assert (replaced["order_qty"], replaced["leaves_qty"], replaced["price"]) == (12, 8, price + 1)
    maker.cancel(cl_ord_id=next_id(), orig_cl_ord_id=new_id, symbol_id=BTC)
    cancelled = report(maker, new_id, codecs.ExecType.CANCELLED)
    assert cancelled["leaves_qty"] == 0 and cancelled["reason"] == codecs.RejectReason.USER_CANCEL
    # Cancelling it again: the engine no longer knows it.
    again = next_id()
    maker.cancel(cl_ord_id=again, orig_cl_ord_id=new_id)
    reject = report(maker, again, template="CancelReject")
    assert reject["reason"] == codecs.RejectReason.UNKNOWN_ORDER and reject["engine_seq"] > 0

    # Mass cancel of the account's resting orders on the symbol.
    resting = [next_id() for _ in range(3)]
    for cl in resting:
        maker.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.SELL, qty=1, price=price + 50)
    for cl in resting:
        report(maker, cl, NEW)
    mass = next_id()
    maker.mass_cancel(cl_ord_id=mass, symbol_id=BTC)
    done = report(maker, mass, template="MassCancelReport")
    assert done["cancelled_count"] >= 3 and done["account_id"] == venue.accounts["demo-1"]

    # Outbound sequence numbers have no gap.
    maker.logout()
    messages = [ack, maker_fill]
    last, before = maker.wait_for(lambda m: m["template"] == "Logout")
    assert last["reason"] == codecs.LogoutReason.CLIENT_REQUEST
    seqs = [m["seq_num"] for m in before if "seq_num" in m]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert messages


def test_orders_in_the_same_write_as_the_logon_are_handled(venue: RunningVenue) -> None:
    client = venue.connect()
    frames: list[bytes] = []
    real_send, client.send_raw = client.send_raw, lambda data: frames.append(bytes(data))
    cl = next_id()
    client.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID - 100_000)
    client.send_raw = real_send
    client.send_raw(client.logon_frame(*venue.keys["demo-3"]) + frames[0])  # one write, one segment
    ack, _ = client.wait_for(lambda m: m["template"] == "LogonAck")
    assert ack["account_id"] == venue.accounts["demo-3"]
    assert report(client, cl, NEW)["account_id"] == venue.accounts["demo-3"]


def test_an_account_sees_and_touches_only_its_own_orders(venue: RunningVenue) -> None:
    alice, bob = venue.client("demo-1"), venue.client("demo-2")
    cl = next_id()
    alice.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID - 100_000)
    order_id = report(alice, cl, NEW)["order_id"]
    # Bob names Alice's order by its venue id: refused at the gateway.
    bad = next_id()
    bob.cancel(cl_ord_id=bad, order_id=order_id)
    refused = report(bob, bad, template="CancelReject")
    assert refused["reason"] == codecs.RejectReason.ACCOUNT_NOT_PERMITTED
    # Bob trades for Alice's account: refused.
    other = next_id()
    bob.new_order(cl_ord_id=other, symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID,
                  account_id=venue.accounts["demo-1"])
    assert report(bob, other)["reason"] == codecs.RejectReason.ACCOUNT_NOT_PERMITTED
    # Bob never saw a report about Alice's order.
    time.sleep(0.2)
    assert all(m.get("order_id") != order_id for m in bob.read(0.2))
    alice.cancel(cl_ord_id=next_id(), orig_cl_ord_id=cl)
    report(alice, cl, codecs.ExecType.CANCELLED)


def test_a_granted_key_names_the_other_accounts_orders_by_account_and_orig_cl_ord_id(
        venue: RunningVenue) -> None:
    owner = venue.client("demo-1")
    demo1, demo3 = venue.accounts["demo-1"], venue.accounts["demo-3"]
    desk = venue.connect()
    desk.logon(*venue.new_key("demo-2", grants=[demo1]))
    cl = next_id()
    owner.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.SELL, qty=2, price=MID + 80_000)
    report(owner, cl, NEW)
    # Without accountId, origClOrdId is looked up on the desk key's own account: no such order there.
    probe = next_id()
    desk.cancel(cl_ord_id=probe, orig_cl_ord_id=cl)
    assert report(desk, probe, template="CancelReject")["reason"] == codecs.RejectReason.UNKNOWN_ORDER
    # An account the key was not granted: refused at the gateway, for a cancel and a replace.
    for send in (desk.cancel, lambda **kw: desk.replace(qty=1, **kw)):
        bad = next_id()
        send(cl_ord_id=bad, orig_cl_ord_id=cl, account_id=demo3)
        refused = report(desk, bad, template="CancelReject")
        assert refused["reason"] == codecs.RejectReason.ACCOUNT_NOT_PERMITTED
    # With the granted account: the replace and then the cancel (by the replace's new id) find the
    # order, and both the desk and the owner's session hear of each.
    new_cl = next_id()
    desk.replace(cl_ord_id=new_cl, orig_cl_ord_id=cl, account_id=demo1, qty=3, price=MID + 80_000)
    replaced = report(desk, new_cl, codecs.ExecType.REPLACED)
    assert replaced["order_id"] == (demo1 << 40) | cl
    assert (replaced["account_id"], replaced["leaves_qty"]) == (demo1, 3)
    report(owner, new_cl, codecs.ExecType.REPLACED)
    desk.cancel(cl_ord_id=next_id(), orig_cl_ord_id=new_cl, account_id=demo1)
    assert report(desk, new_cl, codecs.ExecType.CANCELLED)["order_id"] == (demo1 << 40) | cl
    assert report(owner, new_cl, codecs.ExecType.CANCELLED)["reason"] == codecs.RejectReason.USER_CANCEL


def test_a_resent_client_order_id_never_makes_a_second_order(venue: RunningVenue) -> None:
    client = venue.client("demo-3")
    cl = next_id()
    for _ in range(2):
        client.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID - 100_000)
    report(client, cl, NEW)
    duplicate = report(client, cl, codecs.ExecType.REJECTED)
    assert duplicate["reason"] == codecs.RejectReason.DUPLICATE_CL_ORD_ID
    for bad in (0, 1 << 40):  # outside 1..2^40-1
        seq = client.new_order(cl_ord_id=bad, symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID)
        reject, _ = client.wait_for(lambda m, s=seq: m["template"] == "Reject" and m["ref_seq_num"] == s)
        assert reject["reason"] == codecs.SessionRejectReason.INVALID_VALUE
    client.mass_cancel(cl_ord_id=next_id())


def test_cancel_on_disconnect_cancels_the_sessions_orders_only(venue: RunningVenue) -> None:
    watcher = venue.connect()
    watcher.logon(*venue.new_key("demo-2"))  # a second key of the same account sees its reports
    kept = next_id()
    watcher.new_order(cl_ord_id=kept, symbol_id=BTC, side=codecs.Side.SELL, qty=1, price=MID + 80_000)
    report(watcher, kept, NEW)
    dropper = venue.connect()
    dropper.logon(*venue.keys["demo-2"], cancel_on_disconnect=True)
    ids = [next_id() for _ in range(3)]
    for cl in ids:
        dropper.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.SELL, qty=2, price=MID + 80_000)
    report(dropper, ids[0], NEW)
    dropper.sock.close()  # no Logout, maybe with orders still in flight: the connection just drops
    for cl in ids:  # one mass cancel of the orders entered by that session
        assert report(watcher, cl, codecs.ExecType.CANCELLED)["reason"] == codecs.RejectReason.MASS_CANCEL
    # The other session's order of the same account was not touched.
    watcher.cancel(cl_ord_id=next_id(), orig_cl_ord_id=kept)
    assert report(watcher, kept, codecs.ExecType.CANCELLED)["reason"] == codecs.RejectReason.USER_CANCEL


def test_sequence_errors_throttling_and_one_session_per_key(tmp_path: Path) -> None:
    with running_venue(tmp_path, ["sbe.throttle_per_s=20", "sbe.throttle_burst=5"]) as venue:
        client = venue.client("demo-1")
        with pytest.raises(LogonRefused, match="ALREADY_LOGGED_IN"):
            venue.client("demo-1")
        # 30 orders at once: the burst passes, the rest is throttled, nothing reaches the engine twice.
        ids = [next_id() for _ in range(30)]
        for cl in ids:
            client.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID - 100_000)
        deadline, answers = time.monotonic() + 5, []
        while len(answers) < 30 and time.monotonic() < deadline:
            answers += [m for m in client.read(0.1) if m["template"] in ("Reject", ER)]
        throttled = [m for m in answers if m["template"] == "Reject"]
        assert all(m["reason"] == codecs.SessionRejectReason.THROTTLED for m in throttled)
        assert 15 <= len(throttled) <= 25 and len(answers) == 30
        time.sleep(0.5)
        # A repeated seqNum is rejected and ignored; the session goes on.
        seq = client.next_seq
        client.new_order(cl_ord_id=next_id(), symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID,
                         seq=seq - 1)
        reject, _ = client.wait_for(lambda m: m["template"] == "Reject")
        assert reject["reason"] == codecs.SessionRejectReason.SEQUENCE_ERROR
        assert reject["ref_seq_num"] == seq - 1
        cl = next_id()
        client.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID - 100_000)
        report(client, cl, NEW)
        # A gap ends the session.
        client.new_order(cl_ord_id=next_id(), symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID,
                         seq=client.next_seq + 5)
        logout, _ = client.wait_for(lambda m: m["template"] == "Logout")
        assert logout["reason"] == codecs.LogoutReason.SEQUENCE_ERROR
        # A silent session is logged out after 2 heartbeat intervals + 1 s.
        quiet = venue.client("demo-2", heartbeat_ms=100)
        quiet.heartbeat_s = 0  # this client stops sending heartbeats
        logout, _ = quiet.wait_for(lambda m: m["template"] == "Logout", timeout=5)
        assert logout["reason"] == codecs.LogoutReason.HEARTBEAT_TIMEOUT


def test_bad_input_gets_specific_rejects_and_never_disturbs_other_sessions(venue: RunningVenue) -> None:
    bystander = venue.client("demo-3")
    key_id, secret = venue.new_key("demo-1")

    # Not logged in yet: anything but a Logon is refused and the connection closed.
    early = venue.connect()
    early.send_raw(frame(4, bytes(16)))
    reject, _ = early.wait_for(lambda m: m["template"] == "Reject")
    assert reject["reason"] == codecs.SessionRejectReason.NOT_LOGGED_IN
    with pytest.raises(ConnectionError):
        early.wait_for(lambda m: False, timeout=2)

    # Bad logons: each refused with its reason.
    for options, secret_used, reason in [
        ({}, b"x" * 32, "BAD_SIGNATURE"),
        ({"timestamp_ns": time.time_ns() - 60 * 10**9}, secret, "STALE_TIMESTAMP"),
        ({"heartbeat_ms": 10}, secret, "BAD_HEARTBEAT_INTERVAL"),
    ]:
        with pytest.raises(LogonRefused, match=reason):
            venue.connect().logon(key_id, secret_used, **options)
    with pytest.raises(LogonRefused, match="UNKNOWN_KEY"):
        venue.connect().logon(12345, secret)

    # Logged in: delimited bad frames get a Reject and the session goes on.
    client = venue.client("demo-1")
    cases = [(frame(99, bytes(8)), codecs.SessionRejectReason.UNKNOWN_TEMPLATE),
             (frame(10, bytes(65), version=7), codecs.SessionRejectReason.WRONG_VERSION),
             (frame(10, bytes(65), schema=1), codecs.SessionRejectReason.WRONG_SCHEMA),
             (frame(10, bytes(12)), codecs.SessionRejectReason.BAD_BLOCK_LENGTH),
             (frame(20, bytes(112), groups=struct.pack("<HH", 33, 0)),
              codecs.SessionRejectReason.UNEXPECTED_MESSAGE)]
    for data, reason in cases:
        client.send_raw(data)
        got, _ = client.wait_for(lambda m: m["template"] == "Reject")
        assert got["reason"] == reason, (data, got)
    cl = next_id()
    client.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID - 100_000)
    report(client, cl, NEW)

    # A bad framing header cannot be resynchronised: Reject, Logout(PROTOCOL_ERROR), close.
    for data, reason in [(frame(4, bytes(16), encoding=0x1234), codecs.SessionRejectReason.BAD_ENCODING_TYPE),
                         (frame(4, bytes(16), length=1 << 20), codecs.SessionRejectReason.OVERSIZED_FRAME)]:
        victim = venue.connect()
        victim.logon(*venue.new_key("demo-1"))
        victim.send_raw(data)
        got, _ = victim.wait_for(lambda m: m["template"] == "Reject")
        assert got["reason"] == reason
        logout, _ = victim.wait_for(lambda m: m["template"] == "Logout")
        assert logout["reason"] == codecs.LogoutReason.PROTOCOL_ERROR
    # A connection that dies mid-frame (a short read) is just closed.
    short = venue.connect()
    short.logon(*venue.new_key("demo-1"))
    short.send_raw(frame(10, bytes(65))[:20])
    short.close()

    # The bystander noticed nothing and still trades.
    cl = next_id()
    bystander.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.SELL, qty=1, price=MID + 100_000)
    report(bystander, cl, NEW)
    bystander.cancel(cl_ord_id=next_id(), orig_cl_ord_id=cl)
    report(bystander, cl, codecs.ExecType.CANCELLED)
    assert venue.supervisor.gateways[0].restarts == 0


def test_a_replayed_logon_is_refused(venue: RunningVenue) -> None:
    key_id, secret = venue.new_key("demo-2")
    first = venue.connect()
    logon = first.logon_frame(key_id, secret)
    first.send_raw(logon)
    first.wait_for(lambda m: m["template"] == "LogonAck")
    first.logout()
    first.wait_for(lambda m: m["template"] == "Logout")
    replay = venue.connect()
    replay.send_raw(logon)  # byte for byte the same, signature valid
    refused, _ = replay.wait_for(lambda m: m["template"] == "LogonReject")
    assert refused["reason"] == codecs.LogonRejectReason.NONCE_REUSED




def test_a_full_command_ring_answers_busy(tmp_path: Path) -> None:
    with running_venue(tmp_path, ["engine.command_ring_slots=64", "sbe.throttle_per_s=0"]) as venue:
        client = venue.client("demo-1")
        engine = venue.supervisor.engine.process.pid
        os.kill(engine, signal.SIGSTOP)  # the engine stops taking: the ring fills
        wait_until_stopped(engine)  # (a signal lands when the process next runs: not at once)
        try:
            ids = [next_id() for _ in range(100)]
            for cl in ids:
                client.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.BUY, qty=1,
                                 price=MID - 100_000)
            # The gateway takes the orders in turn: once the last one is refused, every order was
            # either put in the ring or refused while the engine was stopped (resuming it earlier
            # would let the orders still unread make room for themselves).
            last, _ = client.wait_for(lambda m: m["template"] == "Reject" and m["ref_seq_num"] == len(ids),
                                      timeout=10)
            assert last["reason"] == codecs.SessionRejectReason.BUSY
        finally:
            os.kill(engine, signal.SIGCONT)
        answers = {ids[-1]: last}
        deadline = time.monotonic() + 10
        while len(answers) < 100 and time.monotonic() < deadline:
            for m in client.read(0.1):
                if m["template"] == ER:
                    answers[m["cl_ord_id"]] = m
                elif m["template"] == "Reject":
                    answers[ids[m["ref_seq_num"] - 1]] = m
        # Every order got exactly one answer: accepted (it was in the ring) or busy (it was not).
        assert len(answers) == 100
        accepted = [cl for cl in ids if answers[cl]["template"] == ER]
        assert 50 <= len(accepted) <= 64
        busy_ones = [answers[cl] for cl in ids if cl not in accepted]
        assert all(m["reason"] == codecs.SessionRejectReason.BUSY for m in busy_ones)


def _small_window_client(venue: RunningVenue, name: str) -> SbeClient:
    """A session whose socket takes little at a time, so the gateway's output must wait for it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window follows
    sock.settimeout(5.0)
    sock.connect(("127.0.0.1", venue.port))
    client = SbeClient(sock)
    venue.clients.append(client)
    client.logon(*venue.keys[name])
    return client


def _send_iocs(client: SbeClient, count: int) -> list[int]:
    ids = [next_id() for _ in range(count)]
    for cl in ids:  # far from the book: each is accepted, then expires (two reports)
        client.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID - 100_000,
                         tif=codecs.TimeInForce.IOC)
    return ids


def test_a_slow_reader_gets_every_report_and_one_that_never_reads_is_cut_off(tmp_path: Path) -> None:
    with running_venue(tmp_path, ["sbe.throttle_per_s=0", "sbe.max_pending_out=1048576",
                                  "engine.command_ring_slots=16384"]) as venue:
        # ~600 kB of reports for a socket that takes a few kB at a time: the gateway queues them and
        # writes as the client reads, in order, none lost.
        slow = _small_window_client(venue, "demo-1")
        ids = _send_iocs(slow, 2500)
        time.sleep(0.5)
        reports: list[dict] = []
        deadline = time.monotonic() + 20
        while len(reports) < 2 * len(ids) and time.monotonic() < deadline:
            reports += [m for m in slow.read(0.2) if m["template"] == ER]
        assert [m["cl_ord_id"] for m in reports[::2]] == ids
        assert all(m["exec_type"] == NEW for m in reports[::2])
        seqs = [m["seq_num"] for m in reports]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

        # One that never reads: over max_pending_out queued, the gateway disconnects it; another
        # session on the gateway notices nothing.
        stuck = _small_window_client(venue, "demo-2")
        # ~9 MB of reports: over what the kernel buffers (its send buffer grows to 4 MB) + 1 MB
        try:
            _send_iocs(stuck, 40_000)
        except ConnectionError:
            pass  # cut off while still sending
        other = venue.client("demo-3")
        cl = next_id()
        other.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID - 100_000)
        assert report(other, cl, NEW)["account_id"] == venue.accounts["demo-3"]
        time.sleep(1.0)
        got = 0
        with pytest.raises(ConnectionError):  # what was in flight, then the connection is gone
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                got += len(stuck.read(0.2))
        assert got < 2 * 40_000  # cut off, not served in full


def test_a_killed_gateway_is_restarted_and_the_engine_keeps_its_state(tmp_path: Path) -> None:
    with running_venue(tmp_path) as venue:
        client = venue.client("demo-1")
        cl = next_id()
        client.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.SELL, qty=3, price=MID + 70_000)
        report(client, cl, NEW)
        taker = venue.client("demo-3")
        take = next_id()
        taker.new_order(cl_ord_id=take, symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID + 70_000)
        report(taker, take, FILL)
        report(client, cl, PARTIAL)  # 1 of 3 filled before the kill
        # A cancel-on-disconnect session's order: the gateway dies without a chance to cancel it.
        careful = venue.client("demo-2", cancel_on_disconnect=True)
        guarded = next_id()
        careful.new_order(cl_ord_id=guarded, symbol_id=BTC, side=codecs.Side.SELL, qty=1, price=MID + 70_000)
        report(careful, guarded, NEW)
        # The same account's session without it: its order must outlive the gateway.
        second_key = venue.new_key("demo-2")
        bystander = venue.connect()
        bystander.logon(*second_key)
        kept = next_id()
        bystander.new_order(cl_ord_id=kept, symbol_id=BTC, side=codecs.Side.SELL, qty=1, price=MID + 70_000)
        report(bystander, kept, NEW)
        gateway = venue.supervisor.gateways[0]
        os.kill(gateway.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while gateway.restarts == 0 and time.monotonic() < deadline:
            assert venue.supervisor.check() is None  # the engine is fine
            time.sleep(0.05)
        assert gateway.restarts == 1 and gateway.process.is_alive()
        # Same port; the order placed before the kill is still in the book and can be cancelled.
        for _ in range(50):
            try:
                again = venue.client("demo-1")
                break
            except (ConnectionRefusedError, ConnectionResetError):
                time.sleep(0.1)
        # Reports about it come out whole, though the new gateway never saw it placed or filled.
        venue.clients.remove(taker)
        taker = venue.client("demo-3")
        take = next_id()
        taker.new_order(cl_ord_id=take, symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID + 70_000)
        maker_fill = report(again, cl, PARTIAL)
        assert (maker_fill["order_qty"], maker_fill["cum_qty"], maker_fill["leaves_qty"]) == (3, 2, 1)
        again.cancel(cl_ord_id=next_id(), orig_cl_ord_id=cl)
        cancelled = report(again, cl, codecs.ExecType.CANCELLED)
        assert cancelled["order_id"] == (venue.accounts["demo-1"] << 40) | cl
        assert (cancelled["order_qty"], cancelled["cum_qty"], cancelled["leaves_qty"]) == (3, 2, 0)
        assert any("restarted" in line for line in venue.log)
        # The restarted gateway redid the dead one's cancel-on-disconnect: the order is gone.
        venue.clients.remove(careful)
        other = venue.client("demo-2")
        probe = next_id()
        other.cancel(cl_ord_id=probe, orig_cl_ord_id=guarded)
        assert report(other, probe, template="CancelReject")["reason"] == codecs.RejectReason.UNKNOWN_ORDER
        venue.clients.remove(bystander)
        again_bystander = venue.connect()
        again_bystander.logon(*second_key)
        again_bystander.cancel(cl_ord_id=next_id(), orig_cl_ord_id=kept)
        cancelled_kept = report(again_bystander, kept, codecs.ExecType.CANCELLED)
        assert cancelled_kept["reason"] == codecs.RejectReason.USER_CANCEL


def test_a_lapped_gateway_logs_its_sessions_out_and_carries_on(tmp_path: Path) -> None:
    from sbe_gateway.server import gateway_main

    # A batch's outcomes must fit the ring, or every reader would be lapped at once.
    with running_venue(tmp_path, ["engine.outcome_ring_slots=256", "engine.max_batch=16",
                                  "sbe.throttle_per_s=0"]) as venue:
        slow = venue.client("demo-1")
        second = venue.supervisor.start_gateway(2, gateway_main, port=0)
        busy = SbeClient.connect("127.0.0.1", second["port"])
        venue.clients.append(busy)
        busy.logon(*venue.keys["demo-2"])
        gateway = venue.supervisor.gateways[0].process.pid
        os.kill(gateway, signal.SIGSTOP)  # gateway 1 stops reading outcomes
        wait_until_stopped(gateway)
        try:
            for _ in range(10):  # 600 outcomes at least: over twice the ring
                ids = [next_id() for _ in range(60)]
                for cl in ids:
                    busy.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.BUY, qty=1,
                                   price=MID - 100_000)
                for cl in ids:
                    report(busy, cl, NEW)  # the engine and gateway 2 never waited for gateway 1
        finally:
            os.kill(gateway, signal.SIGCONT)
        logout, _ = slow.wait_for(lambda m: m["template"] == "Logout")
        assert logout["reason"] == codecs.LogoutReason.SHUTDOWN
        # Gateway 1 carries on from the newest outcome: a new session there trades normally.
        again = venue.client("demo-3")
        cl = next_id()
        again.new_order(cl_ord_id=cl, symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID - 100_000)
        assert report(again, cl, NEW)["account_id"] == venue.accounts["demo-3"]
        assert venue.supervisor.gateways[0].restarts == 0


def test_a_dead_engine_stops_the_venue_with_a_clear_message(tmp_path: Path) -> None:
    with running_venue(tmp_path) as venue:
        client = venue.client("demo-1")
        os.kill(venue.supervisor.engine.process.pid, signal.SIGKILL)
        venue.supervisor.engine.process.join(10)
        message = venue.supervisor.check()
        assert message is not None and "engine process exited unexpectedly (exit code -9)" in message
        # The gateway notices its engine is gone and ends its sessions instead of taking orders.
        with pytest.raises((ConnectionError, TimeoutError)):
            client.wait_for(lambda m: False, timeout=5)
