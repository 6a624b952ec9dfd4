"""`venue loadgen`: the SBE load client against ScriptedVenue, a test double of the gateway (the real
gateway is separate work), and its planned-time latency logic driven by a deterministic clock."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import loadgen
from bench.loadclient import LoadClient
from bench.loadgen import Credential, LoadgenError, hdr_histogram, latency_summary_us, run_loadgen
from sbe_schemas import codecs
from venue import cli

SECRET = bytes(range(32))
KEY = 5
ACCOUNT = 7
SIGNED = codecs.HEADER_SIZE + codecs.Logon.BLOCK_LENGTH - 32  # header + block up to the signature


# ---- the test double -----------------------------------------------------------------------------


@dataclass
class _Conn:
    sock: socket.socket
    session_id: int
    buf: bytearray = field(default_factory=bytearray)
    logged_on: bool = False
    out_seq: int = 1
    orders: int = 0
    paused_until: float = 0.0  # monotonic: not read before then


class ScriptedVenue:
    """Test double of the SBE gateway, speaking the protocol with the generated codecs: checks the
    Logon signature against known secrets, answers each NewOrder with an ExecutionReport NEW, or
    (by the order's seqNum) a Reject THROTTLED, or nothing; records everything it received.

    end_session {session id: (action, n)}: after answering the session's n-th order, "close" the
    connection, "logout" (Logout SHUTDOWN, then close) or send "garbage" (a frame of another schema).
    stall_s: read nothing from a connection for that long after its first order (with a small
    receive buffer, so the client's socket blocks)."""

    def __init__(self, secrets: dict[int, bytes], *, throttle_every: int = 0, drop_every: int = 0,
                 end_session: dict[int, tuple[str, int]] | None = None, stall_s: float = 0.0) -> None:
        self.secrets = secrets
        self.throttle_every = throttle_every
        self.drop_every = drop_every
        self.end_session = end_session or {}
        self.stall_s = stall_s
        self.logons: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []  # with "session" and "arrival" (monotonic s)
        self.heartbeats: list[tuple[int, int]] = []  # (session, nextSeqNum)
        self.logouts: list[tuple[int, int]] = []
        self.throttled = 0
        self.dropped = 0
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        if stall_s:
            self._server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # accepted sockets inherit it
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._dec = codecs.Decoder()
        self._out = bytearray(512)

    def __enter__(self) -> ScriptedVenue:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()

    def _serve(self) -> None:
        conns: dict[socket.socket, _Conn] = {}
        while not self._stop.is_set():
            now = time.monotonic()
            reading = [s for s, c in conns.items() if c.paused_until <= now]
            readable, _, _ = select.select([self._server, *reading], [], [], 0.02)
            for sock in readable:
                if sock is self._server:
                    s, _ = self._server.accept()
                    self.connections += 1
                    conns[s] = _Conn(s, self.connections)  # session ids 1, 2, ... in connection order
                    continue
                conn = conns[sock]
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:  # the client closed a session it had dropped, unread
                    data = b""
                conn.buf += data
                if not data or not self._handle(conn):
                    del conns[sock]
                    sock.close()
        for sock in conns:
            sock.close()

    def _send(self, conn: _Conn, fw: Any) -> None:
        n = fw.frame()
        fw.release()
        conn.sock.sendall(bytes(self._out[:n]))

    def _encode(self, cls: Any) -> Any:
        return cls().wrap_encode(self._out, codecs.SOFH_SIZE)

    def _handle(self, conn: _Conn) -> bool:
        """Every complete frame in conn.buf; False when the connection is to be closed."""
        while True:
            n = self._dec.frame_length(conn.buf) if len(conn.buf) >= codecs.SOFH_SIZE else 0
            if not n or len(conn.buf) < n:
                return True
            frame = bytes(conn.buf[:n])
            del conn.buf[:n]
            msg = self._dec.decode(frame)
            if not conn.logged_on:
                return self._logon(conn, frame, msg)
            if isinstance(msg, codecs.NewOrder):
                if not self._order(conn, msg):
                    return False
                if self.stall_s and conn.orders == 1:
                    conn.paused_until = time.monotonic() + self.stall_s
                    return True  # the rest stays in conn.buf until the stall is over
            elif isinstance(msg, codecs.Heartbeat):
                self.heartbeats.append((conn.session_id, msg.next_seq_num))
            elif isinstance(msg, codecs.Logout):
                self.logouts.append((conn.session_id, msg.next_seq_num))
                m = self._encode(codecs.Logout)
                m.next_seq_num, m.timestamp_ns, m.reason = conn.out_seq, time.time_ns(), 1
                self._send(conn, m)
                return False

    def _logon(self, conn: _Conn, frame: bytes, msg: Any) -> bool:
        assert isinstance(msg, codecs.Logon)
        secret = self.secrets.get(msg.key_id)
        expected = secret and hmac.new(secret, frame[codecs.SOFH_SIZE:codecs.SOFH_SIZE + SIGNED],
                                       hashlib.sha256).digest()
        ok = bool(expected) and hmac.compare_digest(expected, msg.signature)
        self.logons.append({**msg.to_dict(), "signature_ok": ok})
        if not ok:
            m = self._encode(codecs.LogonReject)
            m.timestamp_ns = time.time_ns()
            m.reason = codecs.LogonRejectReason.UNKNOWN_KEY if secret is None \
                else codecs.LogonRejectReason.BAD_SIGNATURE
            self._send(conn, m)
            return False
        m = self._encode(codecs.LogonAck)
        m.session_id, m.timestamp_ns, m.next_seq_num = conn.session_id, time.time_ns(), 1
        m.account_id, m.heartbeat_interval_ms = ACCOUNT, msg.heartbeat_interval_ms
        self._send(conn, m)
        conn.logged_on = True
        return True

    def _order(self, conn: _Conn, msg: Any) -> bool:
        """Answer one NewOrder; False when the connection is to be closed."""
        self.orders.append({**msg.to_dict(), "session": conn.session_id, "arrival": time.monotonic()})
        conn.orders += 1
        seq = msg.seq_num
        if self.drop_every and seq % self.drop_every == 0:
            self.dropped += 1
            return True
        if self.throttle_every and seq % self.throttle_every == 0:
            self.throttled += 1
            m = self._encode(codecs.Reject)
            m.seq_num, m.ref_seq_num, m.timestamp_ns = conn.out_seq, seq, time.time_ns()
            m.ref_template_id, m.reason = codecs.NewOrder.TEMPLATE_ID, codecs.SessionRejectReason.THROTTLED
        else:
            m = self._encode(codecs.ExecutionReport)
            m.seq_num, m.cl_ord_id, m.order_id, m.exec_id = conn.out_seq, msg.cl_ord_id, len(self.orders), 1
            m.account_id, m.price, m.order_qty, m.leaves_qty = ACCOUNT, msg.price, msg.qty, msg.qty
            m.symbol_id, m.side = msg.symbol_id, msg.side
            m.exec_type, m.ord_status = codecs.ExecType.NEW, codecs.OrdStatus.NEW
        conn.out_seq += 1
        self._send(conn, m)
        action, after = self.end_session.get(conn.session_id, ("", 0))
        if conn.orders != after:
            return True
        if action == "logout":
            lo = self._encode(codecs.Logout)
            lo.next_seq_num, lo.timestamp_ns = conn.out_seq, time.time_ns()
            lo.reason = codecs.LogoutReason.SHUTDOWN
            self._send(conn, lo)
        elif action == "garbage":
            hb = self._encode(codecs.Heartbeat)
            hb.next_seq_num, hb.timestamp_ns = conn.out_seq, time.time_ns()
            frame = bytearray(self._out[:hb.frame()])
            hb.release()
            frame[codecs.SOFH_SIZE + 4] ^= 0xFF  # the header's schema id
            conn.sock.sendall(frame)
            return True
        return action not in ("close", "logout")


CREDS = [Credential(account=ACCOUNT, key_id=KEY, secret=SECRET)]


# ---- against the test double ---------------------------------------------------------------------


def test_signed_logon_numbered_orders_and_schedule() -> None:
    with ScriptedVenue({KEY: SECRET}) as venue:
        t_start = time.monotonic()
        r = run_loadgen(port=venue.port, credentials=CREDS, sessions=3, rate=2000, duration=0.5,
                        drain_timeout=2, cl_ord_id_base=1000)
    # logon: signed over header + block up to the signature, strictly increasing nonces on the one key
    assert len(venue.logons) == 3 and all(lg["signature_ok"] for lg in venue.logons)
    assert all(lg["key_id"] == KEY and lg["cancel_on_disconnect"] == 1 and lg["heartbeat_interval_ms"] == 1000
               for lg in venue.logons)
    nonces = [lg["nonce"] for lg in venue.logons]
    assert nonces == sorted(nonces) and len(set(nonces)) == 3
    assert all(abs(lg["timestamp_ns"] - time.time_ns()) < 10e9 for lg in venue.logons)
    # every planned order sent and answered, each with one latency
    assert r.planned == r.sent == 1000 and r.not_sent == 0
    assert r.answered == 1000 and r.unanswered == 0 and r.responses["new"] == 1000
    assert len(r.latencies_ns) == r.answered == r.latency_us["count"]
    assert (r.latencies_ns > 0).all()
    assert r.ok and all(s.clean_logout and s.session_id > 0 and s.account_id == ACCOUNT for s in r.sessions)
    # seqNums 1..n per session; clOrdIds unique, base + k, below 2**40; the order fields
    orders = venue.orders
    for sid in (1, 2, 3):
        seqs = [o["seq_num"] for o in orders if o["session"] == sid]
        assert seqs == list(range(1, len(seqs) + 1))
    ids = [o["cl_ord_id"] for o in orders]
    assert sorted(ids) == list(range(1000, 2000)) and max(ids) < 2**40
    for o in orders:
        assert o["account_id"] == 0 and o["symbol_id"] == 1 and o["ord_type"] == codecs.OrdType.LIMIT
        assert o["stop_price"] is None and o["display_qty"] is None
        assert o["stp_mode"] == codecs.StpMode.NONE and o["flags"] == 0
        assert o["time_in_force"] in (codecs.TimeInForce.GTC, codecs.TimeInForce.IOC)
        assert abs(o["price"] - 6_000_000) <= 3 and 1 <= o["qty"] <= 10
    assert {o["side"] for o in orders} == {codecs.Side.BUY, codecs.Side.SELL}
    # round robin: order k on session k % 3 (sessions are numbered by the venue from 1)
    assert all(o["session"] == (o["cl_ord_id"] - 1000) % 3 + 1 for o in orders)
    # schedule: spread over the 0.5 s (not sent in one burst), evenly
    arrivals = sorted(o["arrival"] for o in orders)
    assert 0.35 < arrivals[-1] - arrivals[0] < 0.9
    first_half = sum(a < arrivals[0] + 0.25 for a in arrivals)
    assert 350 < first_half < 650
    assert arrivals[0] - t_start < 2
    # logout: every session said goodbye with its next seqNum
    per_session = {sid: sum(o["session"] == sid for o in orders) for sid in (1, 2, 3)}
    assert sorted(venue.logouts) == [(sid, per_session[sid] + 1) for sid in (1, 2, 3)]
    assert r.messages["seq_gaps"] == 0 and r.send_rate > 1500 and r.answer_rate > 1500


def test_throttled_and_unanswered_orders_are_counted() -> None:
    with ScriptedVenue({KEY: SECRET}, throttle_every=7, drop_every=10) as venue:
        r = run_loadgen(port=venue.port, credentials=CREDS, sessions=2, rate=1000, duration=0.4,
                        drain_timeout=0.3)
    assert r.sent == 400 == len(venue.orders)
    assert venue.dropped == 40 and venue.throttled > 0
    assert r.unanswered == venue.dropped
    assert r.responses["throttled"] == venue.throttled
    assert r.session_reject_reasons == {"THROTTLED": venue.throttled}
    assert r.responses["new"] == 400 - venue.dropped - venue.throttled
    assert r.answered + r.unanswered == r.sent
    assert len(r.latencies_ns) == r.answered


@pytest.mark.parametrize(("action", "error"), [
    ("close", "the venue closed the connection"),
    ("logout", "the venue logged the session out during the run (SHUTDOWN)"),
    ("garbage", "undecodable message from the venue (WRONG_SCHEMA: "),
])
def test_session_ended_by_the_venue_mid_run(action: str, error: str) -> None:
    # the pump hands the ended session to Python and goes on with the others
    with ScriptedVenue({KEY: SECRET}, end_session={2: (action, 5)}) as venue:
        r = run_loadgen(port=venue.port, credentials=CREDS, sessions=3, rate=1500, duration=0.4,
                        drain_timeout=0.5)
    ended, others = r.sessions[1], (r.sessions[0], r.sessions[2])
    assert ended.error is not None and ended.error.startswith(error)
    assert not ended.clean_logout and not r.ok
    assert 5 <= ended.sent < 200 and r.not_sent == 200 - ended.sent
    assert all(s.error is None and s.clean_logout and s.sent == 200 for s in others)
    assert sum(o["session"] != 2 for o in venue.orders) == 400 and r.answered >= 400 + 5
    assert sorted(sid for sid, _ in venue.logouts) == [1, 3]
    assert f"session 1 (key {KEY}, session id 2): {error}" in loadgen.format_report(r)


def test_blocked_socket_sends_everything_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # The venue reads nothing for 0.4 s: the client's socket blocks and overdue orders wait in its
    # buffer. The venue answers nothing, so only EPOLLOUT (not an arrival) wakes the client to write
    # the backlog: without it, 100 ms idle waits would not get 8,000 orders out before the give-up.
    connect = socket.create_connection

    def small_send_buffer(*args: Any, **kwargs: Any) -> socket.socket:
        sock = connect(*args, **kwargs)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # no autotuning to megabytes
        return sock

    monkeypatch.setattr(loadgen.socket, "create_connection", small_send_buffer)
    with ScriptedVenue({KEY: SECRET}, stall_s=0.4, drop_every=1) as venue:
        r = run_loadgen(port=venue.port, credentials=CREDS, sessions=1, rate=20_000, duration=0.5,
                        drain_timeout=1.0)
    assert r.planned == r.sent == 10_000 and r.unanswered == 10_000 and r.sessions[0].clean_logout
    assert [o["seq_num"] for o in venue.orders] == list(range(1, 10_001))
    assert r.send_lag_us["max"] > 50_000  # orders waited for room in the buffer


def test_heartbeat_when_idle() -> None:
    with ScriptedVenue({KEY: SECRET}) as venue:
        r = run_loadgen(port=venue.port, credentials=CREDS, sessions=1, rate=5, duration=0.6,
                        heartbeat_ms=100)
    assert r.sent == 3 and r.answered == 3
    assert len(venue.heartbeats) >= 2 and r.messages["heartbeats_out"] == len(venue.heartbeats)
    # a heartbeat carries the next seqNum: 1 + the orders already sent on the session
    for _, next_seq in venue.heartbeats:
        assert 1 <= next_seq <= 4


def test_logon_reject_reason_is_the_error() -> None:
    with ScriptedVenue({KEY: SECRET}) as venue:
        with pytest.raises(LoadgenError, match="logon rejected: BAD_SIGNATURE"):
            run_loadgen(port=venue.port, credentials=[Credential(ACCOUNT, KEY, b"wrong")], sessions=1,
                        rate=10, duration=0.1)
        with pytest.raises(LoadgenError, match="logon rejected: UNKNOWN_KEY"):
            run_loadgen(port=venue.port, credentials=[Credential(ACCOUNT, 99, SECRET)], sessions=1,
                        rate=10, duration=0.1)
        # a later session refused: the ones already logged on log out before the error is raised
        with pytest.raises(LoadgenError, match="session 1 .*UNKNOWN_KEY"):
            run_loadgen(port=venue.port, credentials=[*CREDS, Credential(ACCOUNT, 99, SECRET)], sessions=2,
                        rate=10, duration=0.1)
        deadline = time.monotonic() + 2
        while not venue.logouts and time.monotonic() < deadline:
            time.sleep(0.01)
    assert [lg["signature_ok"] for lg in venue.logons] == [False, False, True, False]
    assert venue.logouts == [(3, 1)] and venue.orders == []


def _creds_file(tmp_path: Path, secret: bytes, lines: bool = False) -> str:
    entry = {"account": ACCOUNT, "key_id": KEY, "secret_hex": secret.hex()}
    path = tmp_path / "creds.json"
    path.write_text(json.dumps(entry) + "\n" if lines else json.dumps([entry]))
    return str(path)


def test_cli_json_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with ScriptedVenue({KEY: SECRET}) as venue:
        rc = cli.main(["loadgen", "--protocol", "sbe", "--sessions", "2", "--rate", "500",
                       "--duration", "0.2", "--port", str(venue.port),
                       "--credentials", _creds_file(tmp_path, SECRET, lines=True), "--json"])
        out = json.loads(capsys.readouterr().out)
        assert rc == 0
        assert out["sent"] == out["answered"] == out["planned"] == 100 and out["unanswered"] == 0
        assert set(out["latency_us"]) >= {"p50", "p99", "p99.9", "max"} and out["latency_hdr"]
        assert out["config"]["sessions"] == 2 and out["config"]["port"] == venue.port
        # a refused logon: one line, exit 1
        rc = cli.main(["loadgen", "--rate", "10", "--duration", "0.1", "--port", str(venue.port),
                       "--credentials", _creds_file(tmp_path, b"bad")])
        err = capsys.readouterr().err
        assert rc == 1 and err.count("\n") == 1 and "logon rejected: BAD_SIGNATURE" in err
    # only sbe
    with pytest.raises(SystemExit) as exc:
        cli.main(["loadgen", "--protocol", "fix", "--port", "1", "--credentials", "x"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "'fix' is not supported" in err


def test_text_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with ScriptedVenue({KEY: SECRET}) as venue:
        rc = loadgen.main(["--rate", "300", "--duration", "0.2", "--sessions", "2",
                           "--port", str(venue.port), "--credentials", _creds_file(tmp_path, SECRET),
                           "--json", str(tmp_path / "r.json")])
    text = capsys.readouterr().out
    assert rc == 0
    assert f"127.0.0.1:{venue.port}; 2 sessions; 300 orders/s for 0.2 s = 60 planned; seed 42" in text
    assert "answered   60 = " in text and "unanswered 0" in text and "p99.9" in text
    assert json.loads((tmp_path / "r.json").read_text())["answered"] == 60


def test_sink_measures_the_client(capsys: pytest.CaptureFixture[str]) -> None:
    rc = loadgen.main(["--sink", "--rate", "2000", "--duration", "0.3", "--sessions", "2", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["sent"] == out["answered"] == 600 and out["config"]["sink"]
    assert out["sink_cpu_s"] is not None and out["client_cpu_s"] > 0


def test_credentials_file(tmp_path: Path) -> None:
    assert loadgen.load_credentials(_creds_file(tmp_path, SECRET)) == CREDS
    assert loadgen.load_credentials(_creds_file(tmp_path, SECRET, lines=True)) == CREDS
    bad = tmp_path / "bad.json"
    bad.write_text('[{"account": 1, "key_id": 2}]')
    with pytest.raises(LoadgenError, match="entry 1"):
        loadgen.load_credentials(bad)
    with pytest.raises(LoadgenError, match="no such file|No such file"):
        loadgen.load_credentials(tmp_path / "missing.json")


def test_unreachable_venue_is_one_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    with pytest.raises(LoadgenError, match="cannot connect"):
        run_loadgen(port=port, credentials=CREDS, sessions=1, rate=10, duration=0.1)


# ---- the planned-time latency logic, on a deterministic clock ------------------------------------

T0 = 1_000_000_000
MS = 1_000_000  # ns; at 1000 orders/s order k is planned at T0 + k ms


def _client(sessions: int = 2, total: int = 20, max_resting: int = 100, ioc_share: float = 0.0) -> LoadClient:
    c = LoadClient(sessions, total, 1000.0, cl_ord_id_base=500, seed=1, symbol_id=3, mid_ticks=1000,
                   spread_ticks=2, qty_min=1, qty_max=5, ioc_share=ioc_share,
                   max_resting=[max_resting] * sessions)
    c.start(T0)
    for i in range(sessions):
        c.attach(i, -1, 1, 10_000 * MS, T0)  # no socket: output stays in the buffer
    return c


def _frames(data: bytes) -> list[dict[str, Any]]:
    dec, off, out = codecs.Decoder(), 0, []
    while off < len(data):
        n = dec.frame_length(data, off)
        msg = dec.decode(data, off, n)
        out.append({"type": type(msg).__name__, **msg.to_dict()})
        off += n
    return out


def _report(cl_ord_id: int, exec_type: Any = codecs.ExecType.NEW, status: Any = codecs.OrdStatus.NEW,
            leaves: int = 1, fills: tuple[tuple[int, int], ...] = ()) -> bytes:
    buf = bytearray(512)
    m = codecs.ExecutionReport().wrap_encode(buf, codecs.SOFH_SIZE)
    m.seq_num, m.cl_ord_id, m.exec_type, m.ord_status, m.leaves_qty = 1, cl_ord_id, exec_type, status, leaves
    group = m.begin_fills(len(fills))
    for trade_id, liquidity in fills:
        group.next()
        group.trade_id, group.fill_qty, group.liquidity = trade_id, 1, liquidity
    return bytes(buf[:m.frame()])


def _reject(ref_seq: int, reason: Any) -> bytes:
    buf = bytearray(128)
    m = codecs.Reject().wrap_encode(buf, codecs.SOFH_SIZE)
    m.seq_num, m.ref_seq_num, m.ref_template_id, m.reason = 1, ref_seq, codecs.NewOrder.TEMPLATE_ID, reason
    return bytes(buf[:m.frame()])


def test_schedule_and_overdue_batch() -> None:
    c = _client()
    assert [c.planned_ns(k) for k in range(3)] == [T0, T0 + MS, T0 + 2 * MS]
    c.send_due(T0 + 2 * MS + MS // 2)  # orders 0, 1, 2 are due
    s0, s1 = _frames(c.take_output(0)), _frames(c.take_output(1))
    assert [m["cl_ord_id"] for m in s0] == [500, 502] and [m["seq_num"] for m in s0] == [1, 2]
    assert [m["cl_ord_id"] for m in s1] == [501] and [m["seq_num"] for m in s1] == [1]
    # late: everything overdue goes at once, stamped with the same send time
    late = T0 + 9 * MS
    c.send_due(late)
    assert [m["cl_ord_id"] for m in _frames(c.take_output(0))] == [504, 506, 508]
    assert [m["cl_ord_id"] for m in _frames(c.take_output(1))] == [503, 505, 507, 509]
    assert list(c.sent_ns[:10]) == [T0 + 2 * MS + MS // 2] * 3 + [late] * 7
    assert c.unsent() == 10 and c.next_wake_ns() == T0 + 10 * MS
    assert c.send_due(late) == 0 and c.take_output(0) == b""  # nothing new due at the same instant


def test_latency_from_planned_time() -> None:
    c = _client()
    c.send_due(T0 + 5 * MS)  # orders 0..5, sent 5 ms late for order 0
    c.take_output(0), c.take_output(1)
    c.feed(1, _report(501), T0 + 7 * MS)  # order 1 planned at T0 + 1 ms
    assert c.latency_ns[1] == 6 * MS
    c.feed(1, _report(501, codecs.ExecType.FILL, codecs.OrdStatus.FILLED, 0), T0 + 9 * MS)  # later, as maker
    assert c.latency_ns[1] == 6 * MS
    # a Reject answers the order with that seqNum: session 0's seqNum 2 is order 2
    c.feed(0, _reject(2, codecs.SessionRejectReason.THROTTLED), T0 + 8 * MS)
    assert c.latency_ns[2] == 6 * MS
    c.feed(0, _reject(3, codecs.SessionRejectReason.BUSY), T0 + 8 * MS)  # seqNum 3 of session 0: order 4
    c.feed(0, _report(999_999), T0 + 8 * MS)  # not ours
    c.feed(0, _report(500, codecs.ExecType.FILL, codecs.OrdStatus.FILLED, 0,
                      fills=((77, codecs.LiquidityIndicator.TAKER), (78, codecs.LiquidityIndicator.TAKER))),
           T0 + 10 * MS)
    assert c.latency_ns[0] == 10 * MS and c.latency_ns[4] == 4 * MS
    n = c.counters()
    assert n["answered"] == 4 and c.outstanding() == 2
    assert (n["new"], n["fill"], n["throttled"], n["busy"]) == (1, 1, 1, 1)
    assert (n["later_reports"], n["unknown_reports"], n["taker_fills"]) == (1, 1, 2)
    assert list(c.trade_ids[:c.trade_count]) == [77, 78]
    assert c.reports_by_exec_type() == {codecs.ExecType.NEW: 2, codecs.ExecType.FILL: 2}  # unknown too
    assert c.session_reject_reasons() == {codecs.SessionRejectReason.THROTTLED: 1,
                                          codecs.SessionRejectReason.BUSY: 1}


def test_rejected_report_reason_counted() -> None:
    c = _client()
    c.send_due(T0)
    c.feed(0, _report(500, codecs.ExecType.REJECTED, codecs.OrdStatus.REJECTED, 0), T0 + MS)
    buf = c.reject_reasons()
    assert c.counters()["rejected"] == 1 and sum(buf.values()) == 1


def test_resting_bound_switches_to_ioc() -> None:
    c = _client(sessions=1, total=12, max_resting=2)
    c.send_due(T0 + MS)  # orders 0, 1: GTC (ioc_share 0)
    first = _frames(c.take_output(0))
    assert [m["time_in_force"] for m in first] == [codecs.TimeInForce.GTC] * 2
    for m in first:  # both rest on the book
        c.feed(0, _report(m["cl_ord_id"], leaves=m["qty"]), T0 + 2 * MS)
    assert c.session_info(0)["resting_buy"] + c.session_info(0)["resting_sell"] == 2
    c.send_due(T0 + 3 * MS)
    assert [m["time_in_force"] for m in _frames(c.take_output(0))] == [codecs.TimeInForce.IOC] * 2
    # one of them fills as maker: below the bound again, GTC again
    c.feed(0, _report(first[0]["cl_ord_id"], codecs.ExecType.FILL, codecs.OrdStatus.FILLED, 0), T0 + 4 * MS)
    c.send_due(T0 + 4 * MS)
    assert [m["time_in_force"] for m in _frames(c.take_output(0))] == [codecs.TimeInForce.GTC]


def test_heartbeat_after_idle_interval() -> None:
    c = _client(sessions=1, total=1)
    c.send_due(T0)
    c.take_output(0)
    c.send_due(T0 + 10_000 * MS, schedule=False)
    assert [(m["type"], m["next_seq_num"]) for m in _frames(c.take_output(0))] == [("Heartbeat", 2)]
    c.logout(0, T0 + 10_001 * MS)
    assert [(m["type"], m["next_seq_num"], m["reason"]) for m in _frames(c.take_output(0))] == \
        [("Logout", 2, codecs.LogoutReason.CLIENT_REQUEST)]


def test_workload_is_seeded() -> None:
    def orders(seed: int) -> list[tuple[int, int, int]]:
        c = LoadClient(1, 50, 1000.0, cl_ord_id_base=1, seed=seed, symbol_id=1, mid_ticks=1000,
                       spread_ticks=3, qty_min=1, qty_max=9, ioc_share=0.1, max_resting=[1000])
        c.start(T0)
        c.attach(0, -1, 1, 10_000 * MS, T0)
        c.send_due(T0 + 49 * MS)
        return [(m["side"], m["price"], m["qty"]) for m in _frames(c.take_output(0))]

    assert orders(42) == orders(42) != orders(43)
    assert {p for _, p, _ in orders(42)} <= set(range(997, 1004))


# ---- statistics ----------------------------------------------------------------------------------


def test_bulk_hdr_recording_equals_record_value() -> None:
    from hdrh.histogram import HdrHistogram

    rng = random.Random(3)
    values = np.array([int(rng.lognormvariate(11, 1.5)) for _ in range(20_000)] + [0, 1, 2047, 2048, 2**40],
                      dtype=np.int64)
    bulk = hdr_histogram(values)
    one = HdrHistogram(1, loadgen.HDR_MAX_NS, 3)
    for v in values.tolist():
        one.record_value(v)
    ps = [50, 90, 99, 99.9, 100]
    assert bulk.get_total_count() == one.get_total_count() == values.size
    assert bulk.get_percentile_to_value_dict(ps) == one.get_percentile_to_value_dict(ps)
    summary = latency_summary_us(values, bulk)
    assert summary["max"] == 2**40 / 1000 and summary["count"] == values.size
