"""`venue loadgen`: a paced, seeded order flow over SBE sessions; round-trip latency from planned sends.

Offers a crossing order flow to the venue's SBE gateway over N sessions at a fixed planned rate and
measures round-trip latency from each order's planned send time.

Load model (no coordinated omission): order k of the run is planned at t0 + k / rate and belongs to
session k % sessions; when the client falls behind it sends the overdue orders at once, and their
latency still counts from the planned time. Latency = planned send -> arrival of the first venue
message that answers the order (its ExecutionReport, or a Reject naming its seqNum).

The per-message work and the steady-state loop (send on schedule, wait in epoll, receive) are in
Cython (bench/loadclient.pyx, LoadClient.pump); this module logs the sessions on, notes why a session
ended early, logs out and reports. Percentiles come from an HDR histogram (hdrhistogram package, 3
significant digits) filled from the latency array after the run. `--sink` runs the same client
against a built-in sink process that answers every order at once (not a venue): it measures the
client's own cost.

Entry points: main(argv) -> exit status (the CLI), run_loadgen(...) -> LoadgenResult (the API).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import socket
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from bench.loadclient import RECV_EOF, RECV_ERROR, RECV_LOGOUT, RECV_UNDECODABLE, LoadClient, sink_serve
from sbe_gateway import client as sbe_client
from sbe_schemas import codecs
from venue.argtypes import count, non_negative_float, positive_int
from venue.cpu import CpuListError, parse_cpu_list, use_cpus

PROTOCOLS = ("sbe",)
CL_ORD_ID_LIMIT = 1 << 40  # clOrdIds stay below 2**40 (protocol rule)
HDR_MAX_NS = 3_600_000_000_000  # an hour: larger latencies are recorded as an hour
HDR_DIGITS = 3
MAX_ORDERS = 30_000_000  # ~34 bytes of per-order state each (incl. trade ids): about 1 GB at most
PERCENTILES = (("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9))
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class LoadgenError(Exception):
    """A failure the user can act on (bad credentials file, refused logon, unreachable venue)."""


@dataclass(frozen=True)
class Credential:
    account: int
    key_id: int
    secret: bytes = field(repr=False)


@dataclass
class SessionResult:
    index: int
    key_id: int
    account: int  # from the credentials file
    session_id: int  # from LogonAck
    account_id: int  # from LogonAck: the key's default account
    heartbeat_ms: int  # as granted
    sent: int
    max_resting: int
    venue_logout_reason: str | None  # the venue's Logout, if it sent one
    clean_logout: bool  # our Logout answered by the venue's
    error: str | None  # why the session stopped early, if it did


@dataclass
class LoadgenResult:
    config: dict[str, Any]
    planned: int
    sent: int
    not_sent: int  # planned but never written (a session died or the venue stopped reading)
    answered: int
    unanswered: int  # sent, no answer before the drain timeout ended
    send_seconds: float
    answer_seconds: float
    send_rate: float  # orders/s sent, over max(duration, t0 -> last send)
    answer_rate: float  # orders/s answered, over max(duration, t0 -> last first answer)
    latency_us: dict[str, float]  # p50/p99/p99.9 (HDR), max and mean (exact): planned -> first answer
    send_lag_us: dict[str, float]  # planned -> written by the client: its own share of the latency
    # planned -> the engine's transactTime stamp (client, network, gateway, ring) and the rest of the
    # round trip (engine, journal commit, outcome ring, gateway, network, client); one machine only
    to_engine_us: dict[str, float]
    from_engine_us: dict[str, float]
    responses: dict[str, int]  # first answers by kind
    reports: dict[str, int]  # every ExecutionReport by execType (first answers, fills, maker reports)
    reject_reasons: dict[str, int]  # first answers that were ExecutionReport REJECTED, by reason
    session_reject_reasons: dict[str, int]  # every Reject, by SessionRejectReason
    trades: int  # distinct tradeIds in the fills seen
    fills: dict[str, int]
    messages: dict[str, int]
    sessions: list[SessionResult]
    client_cpu_s: float
    wall_s: float
    interrupted: bool
    sink_cpu_s: float | None = None
    latency_hdr: str = ""  # the latency histogram, HdrHistogram V2 base64 (mergeable)
    latencies_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    @property
    def ok(self) -> bool:
        """Every session ran to the end and logged out cleanly."""
        return not self.interrupted and all(
            s.error is None and s.venue_logout_reason in (None, "CLIENT_REQUEST") for s in self.sessions)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["latencies_ns"]
        return out


# ---- credentials ---------------------------------------------------------------------------------


def load_credentials(path: str | os.PathLike[str]) -> list[Credential]:
    """A JSON list of {"account", "key_id", "secret_hex"} objects, or one such object per line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LoadgenError(f"credentials {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise LoadgenError(f"credentials {path}: line {n}: {exc.msg}") from None
    creds = []
    for n, item in enumerate(items, 1):
        try:
            if not isinstance(item, dict):
                raise TypeError
            account, key_id = item["account"], item["key_id"]
            if not isinstance(account, int) or not isinstance(key_id, int) or key_id < 0:
                raise TypeError
            secret = bytes.fromhex(item["secret_hex"])
        except (KeyError, TypeError, ValueError):
            raise LoadgenError(f"credentials {path}: entry {n} is not an object with integer account and "
                               "key_id and a hex secret_hex") from None
        creds.append(Credential(account, key_id, secret))
    if not creds:
        raise LoadgenError(f"credentials {path}: no entries")
    return creds


# ---- latency statistics --------------------------------------------------------------------------


def hdr_histogram(values_ns: np.ndarray) -> Any:
    """An HdrHistogram (1 ns .. 1 h, 3 digits) of values_ns, recorded in bulk: each value is first
    rounded down to the lowest value of its HDR bucket (the quantisation record_value applies), then
    every distinct value is recorded once with its count: thousands of Python calls, not millions."""
    from hdrh.histogram import HdrHistogram

    hist = HdrHistogram(1, HDR_MAX_NS, HDR_DIGITS)
    v = np.clip(np.asarray(values_ns, dtype=np.int64), 0, HDR_MAX_NS)
    if v.size:
        # bit length of (v | sub_bucket_mask), exact: every value is below 2**53
        bits = np.frexp((v | hist.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
        shift = bits - (hist.sub_bucket_half_count_magnitude + 1)  # = bucket index + unit magnitude
        lowest = (v >> shift) << shift
        values, counts = np.unique(lowest, return_counts=True)
        for value, n in zip(values.tolist(), counts.tolist(), strict=True):
            hist.record_value(value, n)
    return hist


def latency_summary_us(values_ns: np.ndarray, hist: Any | None = None) -> dict[str, float]:
    """p50/p99/p99.9 from the HDR histogram, max and mean exact from the array; in µs."""
    if hist is None:
        hist = hdr_histogram(values_ns)
    if len(values_ns) == 0:
        return {name: 0.0 for name, _ in PERCENTILES} | {"max": 0.0, "mean": 0.0, "count": 0}
    at = hist.get_percentile_to_value_dict([p for _, p in PERCENTILES])
    out: dict[str, float] = {name: at[p] / 1000 for name, p in PERCENTILES}
    out["max"] = int(np.max(values_ns)) / 1000
    out["mean"] = float(np.mean(values_ns)) / 1000
    out["count"] = int(len(values_ns))
    return out


# ---- session setup -------------------------------------------------------------------------------


@dataclass
class _Logon:
    session_id: int
    next_seq_num: int
    account_id: int
    heartbeat_ms: int
    leftover: bytes


def _enum_name(enum: Any, value: int) -> str:
    try:
        return str(enum(value).name)
    except ValueError:
        return str(value)


def encode_logon(cred: Credential, nonce: int, heartbeat_ms: int, timestamp_ns: int) -> bytes:
    """The framed Logon, signed: HMAC-SHA256(secret, header + block up to the signature)."""
    return sbe_client.encode_logon(cred.key_id, cred.secret, heartbeat_ms=heartbeat_ms,
                                   cancel_on_disconnect=True, timestamp_ns=timestamp_ns, nonce=nonce)


def _logon(sock: socket.socket, index: int, cred: Credential, nonce: int, heartbeat_ms: int,
           timeout: float) -> _Logon:
    what = f"session {index} (key {cred.key_id})"
    sock.settimeout(timeout)
    dec = codecs.Decoder(max_frame=1 << 18)
    data = b""
    try:
        sock.sendall(encode_logon(cred, nonce, heartbeat_ms, time.time_ns()))
        while True:
            n = dec.frame_length(data) if data else 0
            if n and len(data) >= n:
                break
            chunk = sock.recv(65536)
            if not chunk:
                raise LoadgenError(f"{what}: the venue closed the connection during logon")
            data += chunk
        msg = dec.decode(data, 0, n)
    except TimeoutError:
        raise LoadgenError(f"{what}: no answer to Logon within {timeout:g} s") from None
    except codecs.DecodeError as exc:
        raise LoadgenError(f"{what}: undecodable answer to Logon ({exc.kind}: {exc})") from None
    if isinstance(msg, codecs.LogonReject):
        raise LoadgenError(f"{what}: logon rejected: {_enum_name(codecs.LogonRejectReason, msg.reason)}")
    if isinstance(msg, codecs.Logout):
        raise LoadgenError(f"{what}: the venue answered Logon with Logout "
                           f"({_enum_name(codecs.LogoutReason, msg.reason)})")
    if not isinstance(msg, codecs.LogonAck):
        raise LoadgenError(f"{what}: expected LogonAck, got {type(msg).__name__}")
    ack = _Logon(msg.session_id, msg.next_seq_num, msg.account_id, msg.heartbeat_interval_ms or heartbeat_ms,
                 data[n:])
    msg.release()
    return ack


def _default_cl_ord_id_base(total: int) -> int:
    # Microseconds of the wall clock: a later run starts above the ids of an earlier one unless it
    # sent more than 1 order/µs, or the 2**40 µs (12.7 days) cycle wrapped in between.
    return (time.time_ns() // 1000) % (CL_ORD_ID_LIMIT - total - 2) + 1


def _max_resting(credentials: Sequence[Credential], sessions: int, max_open: int) -> list[int]:
    """Per-session resting bound: the account's budget shared by the sessions trading for it."""
    accounts = [credentials[i % len(credentials)].account for i in range(sessions)]
    per_account = Counter(accounts)
    return [max(1, max_open // per_account[a]) for a in accounts]


# ---- the run -------------------------------------------------------------------------------------


def run_loadgen(*, port: int, credentials: Sequence[Credential], host: str = "127.0.0.1",
                sessions: int = 4, rate: float = 10_000.0, duration: float = 10.0, seed: int = 42,
                symbol_id: int = 1, mid_ticks: int = 6_000_000, qty_lots: tuple[int, int] = (1, 10),
                spread_ticks: int = 3, ioc_share: float = 0.1, max_open: int = 500,
                heartbeat_ms: int = 1000, drain_timeout: float = 5.0, logout_timeout: float = 1.0,
                connect_timeout: float = 5.0, cl_ord_id_base: int | None = None, busy_poll: bool = False,
                cpus: str = "") -> LoadgenResult:
    """Run the load against host:port and return what was measured.

    rate is orders/s over all sessions; ceil(rate x duration) orders are planned. Session i logs on
    with credentials[i % len(credentials)]. Workload: limit orders on symbol_id at mid_ticks +/-
    spread_ticks (buys and sells cross), qty uniform in qty_lots, IOC with probability ioc_share and
    whenever the session has max_open / (sessions of its account) orders resting; sides lean
    against the session's resting imbalance. After the schedule, answers are awaited for up to
    drain_timeout s, then every session logs out (waiting up to logout_timeout s for the venue's
    Logout). busy_poll: never sleep (poll sockets and clock; costs a core); cpus: pin the client to
    these CPUs for the run (taskset list syntax). Raises LoadgenError when a session cannot log on.
    """
    if sessions < 1 or not rate > 0 or not duration > 0 or not credentials:
        raise LoadgenError("need sessions >= 1, rate > 0, duration > 0 and at least one credential")
    if sessions > 500:
        raise LoadgenError("at most 500 sessions (select() is limited to 1024 descriptors)")
    total = max(1, math.ceil(rate * duration - 1e-9))
    if total > MAX_ORDERS:
        raise LoadgenError(f"{total:,} orders planned; at most {MAX_ORDERS:,} per run (lower --rate or "
                           "--duration)")
    qty_min, qty_max = qty_lots
    if not 0 <= ioc_share <= 1 or qty_min < 1 or qty_max < qty_min or spread_ticks < 0 \
            or mid_ticks - spread_ticks < 1 or heartbeat_ms < 1:
        raise LoadgenError("bad workload: need 0 <= ioc share <= 1, 1 <= qty min <= max, "
                           "0 <= spread < mid and heartbeat >= 1 ms")
    base = _default_cl_ord_id_base(total) if cl_ord_id_base is None else cl_ord_id_base
    if not 1 <= base < CL_ORD_ID_LIMIT - total:
        raise LoadgenError(f"clOrdId base {base}: base .. base + {total:,} must stay in 1 .. 2**40 - 1")
    config = {"protocol": "sbe", "host": host, "port": port, "sessions": sessions, "rate": rate,
              "duration": duration, "seed": seed, "symbol_id": symbol_id, "mid_ticks": mid_ticks,
              "spread_ticks": spread_ticks, "qty_lots": [qty_min, qty_max], "ioc_share": ioc_share,
              "max_open": max_open, "heartbeat_ms": heartbeat_ms, "drain_timeout": drain_timeout,
              "cl_ord_id_base": base, "credentials": len(credentials), "busy_poll": busy_poll,
              "cpus": cpus}
    max_resting = _max_resting(credentials, sessions, max_open)
    client = LoadClient(sessions, total, float(rate), cl_ord_id_base=base, seed=seed, symbol_id=symbol_id,
                        mid_ticks=mid_ticks, spread_ticks=spread_ticks, qty_min=qty_min, qty_max=qty_max,
                        ioc_share=ioc_share, max_resting=max_resting)
    client.busy_poll = busy_poll
    try:
        parse_cpu_list(cpus)
    except CpuListError as exc:
        raise LoadgenError(str(exc)) from None
    affinity = os.sched_getaffinity(0)
    use_cpus(cpus)
    try:
        return _run(client, config, credentials, sessions, host, port, heartbeat_ms, connect_timeout,
                    duration, drain_timeout, logout_timeout, max_resting)
    finally:
        os.sched_setaffinity(0, affinity)  # an in-process caller (the bench) gets its CPUs back


def _run(client: LoadClient, config: dict[str, Any], credentials: Sequence[Credential], sessions: int,
         host: str, port: int, heartbeat_ms: int, connect_timeout: float, duration: float,
         drain_timeout: float, logout_timeout: float, max_resting: list[int]) -> LoadgenResult:
    socks: list[socket.socket] = []
    logons: list[_Logon] = []
    started = False
    errors: list[str | None] = [None] * sessions
    clean = [False] * sessions
    cpu0, wall0 = time.process_time(), time.perf_counter()
    interrupted = False
    try:
        last_nonce: dict[int, int] = {}
        for i in range(sessions):
            cred = credentials[i % len(credentials)]
            try:
                sock = socket.create_connection((host, port), timeout=connect_timeout)
            except OSError as exc:
                raise LoadgenError(f"session {i}: cannot connect to {host}:{port}: "
                                   f"{exc.strerror or exc}") from None
            socks.append(sock)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # latency, not Nagle batching
            # The nonce must increase strictly per key, also for sessions sharing one within a ns.
            nonce = max(time.time_ns(), last_nonce.get(cred.key_id, 0) + 1)
            last_nonce[cred.key_id] = nonce
            logons.append(_logon(sock, i, cred, nonce, heartbeat_ms, connect_timeout))
            sock.setblocking(False)
        now = time.monotonic_ns()
        for i, (sock, ack) in enumerate(zip(socks, logons, strict=True)):
            client.attach(i, sock.fileno(), ack.next_seq_num, ack.heartbeat_ms * 1_000_000, now)
        client.start(now)
        started = True
        for i, ack in enumerate(logons):
            _check(client, i, client.feed(i, ack.leftover), errors)
        try:
            _pump(client, errors, duration, drain_timeout)
        except KeyboardInterrupt:
            interrupted = True  # stop offering load, but still log out and report what was measured
        _logout(client, socks, errors, clean, logout_timeout)
    finally:
        if not started:  # a later logon failed: free the keys of the sessions already logged on
            _abandon(socks[:len(logons)], logout_timeout)
        for sock in socks:
            sock.close()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return _result(client, config, logons, credentials, max_resting, errors, clean, cpu, wall, interrupted,
                   duration)


def _abandon(socks: list[socket.socket], timeout: float) -> None:
    """Logout on sessions that logged on but will not run, waiting briefly for the venue to close."""
    buf = bytearray(64)
    m = codecs.Logout().wrap_encode(buf, codecs.SOFH_SIZE)
    m.next_seq_num, m.timestamp_ns, m.reason = 1, time.time_ns(), codecs.LogoutReason.CLIENT_REQUEST
    frame = bytes(buf[:m.frame()])
    m.release()
    end = time.monotonic() + timeout
    for sock in socks:
        try:
            sock.settimeout(max(0.01, end - time.monotonic()))
            sock.sendall(frame)
            while sock.recv(65536):  # until the venue's Logout and close, or the timeout
                pass
        except OSError:
            pass


def _check(client: LoadClient, i: int, status: int, errors: list[str | None]) -> None:
    if status == RECV_EOF and errors[i] is None:
        errors[i] = "the venue closed the connection"
    elif status == RECV_ERROR and errors[i] is None:
        errors[i] = os.strerror(client.session_info(i)["errno"])


def _receive(client: LoadClient, i: int, errors: list[str | None]) -> int:
    try:
        status = int(client.receive(i))
    except codecs.DecodeError as exc:  # the stream cannot be resynchronised: drop the session
        client.close(i)
        errors[i] = f"undecodable message from the venue ({exc.kind}: {exc})"
        return -1
    _check(client, i, status, errors)
    return status


def _live(client: LoadClient, socks: list[socket.socket]) -> list[int]:
    return [i for i in range(len(socks)) if client.alive(i)]


def _ended(client: LoadClient, i: int, status: int, exc: codecs.DecodeError | None,
           errors: list[str | None]) -> None:
    """Why session i stopped during the run, as pump() found it (the first reason wins, except that
    an undecodable stream always names itself)."""
    if status == RECV_UNDECODABLE and exc is not None:
        errors[i] = f"undecodable message from the venue ({exc.kind}: {exc})"
    elif status == RECV_LOGOUT and errors[i] is None:
        reason = _enum_name(codecs.LogoutReason, client.session_info(i)["venue_logout_reason"])
        errors[i] = f"the venue logged the session out during the run ({reason})"
    else:  # EOF, or a failed recv() or send() (errno)
        _check(client, i, status, errors)


def _no_timer_slack() -> None:
    """Timed waits (epoll, select) get the thread's timer slack (50 µs by default) added: that was
    most of the client's own send lag (p50 ~45 µs -> ~30 µs with 1 ns). Linux only; best effort."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(29, ctypes.c_ulong(1), 0, 0, 0)  # PR_SET_TIMERSLACK
    except (OSError, AttributeError):
        pass


def _pump(client: LoadClient, errors: list[str | None], duration: float, drain_timeout: float) -> None:
    """Send on schedule and receive until every order is answered or the drain timeout ends. The loop
    is LoadClient.pump (C); it comes back here only to have a session's end reported."""
    _no_timer_slack()
    drain_ns = int(drain_timeout * 1e9)
    give_up_ns = client.t0_ns + int(duration * 1e9) + drain_ns  # overdue orders are not sent after this
    while (ended := client.pump(give_up_ns, drain_ns)) is not None:
        i, status, exc = ended
        _ended(client, i, status, exc, errors)


def _logout(client: LoadClient, socks: list[socket.socket], errors: list[str | None], clean: list[bool],
            timeout: float) -> None:
    """Send Logout on every live session and wait briefly for the venue's."""
    for i in _live(client, socks):
        client.logout(i)
    end = time.monotonic_ns() + int(timeout * 1e9)
    live = _live(client, socks)
    while live and time.monotonic_ns() < end:
        rl = [socks[i] for i in live]
        wl = [socks[i] for i in live if client.pending_bytes(i)]
        readable, writable, _ = select.select(rl, wl, [], max(0.0, (end - time.monotonic_ns()) / 1e9))
        if writable:
            client.send_due(-1, False)
        for sock in readable:
            i = socks.index(sock)
            if _receive(client, i, errors) == RECV_LOGOUT:
                clean[i] = True
        live = _live(client, socks)


def _result(client: LoadClient, config: dict[str, Any], logons: list[_Logon],
            credentials: Sequence[Credential], max_resting: list[int], errors: list[str | None],
            clean: list[bool], cpu: float, wall: float, interrupted: bool, duration: float) -> LoadgenResult:
    c = client.counters()
    total = client.total
    lat_all = client.latency_ns
    answered_mask = lat_all >= 0
    lat = lat_all[answered_mask]
    sent_ns = client.sent_ns
    sent_mask = sent_ns >= 0
    # The same double arithmetic as LoadClient._planned, so the lags are exact.
    planned = client.t0_ns + (np.arange(total, dtype=np.float64) * client.interval_ns).astype(np.int64)
    lag = sent_ns[sent_mask] - planned[sent_mask]
    inbound_all = client.inbound_ns
    stamped = answered_mask & (inbound_all >= 0)
    # (clipped at 0: the wall clock may be slewed by NTP during a run)
    inbound = inbound_all[stamped]
    outbound = np.maximum(lat_all[stamped] - inbound, 0)
    hist = hdr_histogram(lat)
    t0 = client.t0_ns
    send_s = (client.last_sent_ns - t0) / 1e9 if client.last_sent_ns else 0.0
    answer_s = (client.last_answer_ns - t0) / 1e9 if client.last_answer_ns else 0.0
    sent, answered = int(c["sent"]), int(c["answered"])
    sessions = []
    for i, ack in enumerate(logons):
        info = client.session_info(i)
        reason = info["venue_logout_reason"]
        cred = credentials[i % len(credentials)]
        sessions.append(SessionResult(
            index=i, key_id=cred.key_id, account=cred.account, session_id=ack.session_id,
            account_id=ack.account_id, heartbeat_ms=ack.heartbeat_ms, sent=info["sent"],
            max_resting=max_resting[i],
            venue_logout_reason=None if reason is None else _enum_name(codecs.LogoutReason, reason),
            clean_logout=clean[i], error=errors[i]))
    trade_ids = client.trade_ids[:client.trade_count]
    span = max(duration, 1e-9)
    return LoadgenResult(
        config=config, planned=total, sent=sent, not_sent=total - sent, answered=answered,
        unanswered=sent - answered, send_seconds=send_s, answer_seconds=answer_s,
        send_rate=sent / max(span, send_s), answer_rate=answered / max(span, answer_s),
        latency_us=latency_summary_us(lat, hist), send_lag_us=latency_summary_us(lag),
        to_engine_us=latency_summary_us(inbound), from_engine_us=latency_summary_us(outbound),
        responses={k: int(c[k]) for k in ("new", "partial_fill", "fill", "cancelled", "expired", "rejected",
                                          "other", "throttled", "busy", "session_rejected")},
        reports={_enum_name(codecs.ExecType, t): n for t, n in client.reports_by_exec_type().items()},
        reject_reasons={_enum_name(codecs.RejectReason, r): n for r, n in client.reject_reasons().items()},
        session_reject_reasons={_enum_name(codecs.SessionRejectReason, r): n
                                for r, n in client.session_reject_reasons().items()},
        trades=int(np.unique(trade_ids).size),
        fills={"taker": int(c["taker_fills"]), "maker": int(c["maker_fills"]),
               "taker_qty_lots": int(c["taker_qty"]), "trade_ids_dropped": int(c["trade_ids_dropped"])},
        messages={k: int(c[k]) for k in ("gtc", "ioc", "buys", "reports", "later_reports", "unknown_reports",
                                         "cancel_rejects", "mass_cancel_reports", "other_rejects",
                                         "heartbeats_in", "heartbeats_out", "logouts_in", "unexpected",
                                         "messages_in", "bytes_in", "bytes_out", "seq_gaps")},
        sessions=sessions, client_cpu_s=cpu, wall_s=wall, interrupted=interrupted,
        latency_hdr=hist.encode().decode("ascii") if lat.size else "", latencies_ns=lat)


# ---- the sink of the client-cost measurement -----------------------------------------------------


def _sink_serve(pipe: Any) -> None:
    """Child process of --sink: accept sessions on 127.0.0.1, ack every Logon, answer every NewOrder
    with an ExecutionReport at once (IOC: CANCELLED), until the parent says stop; then report CPU.
    The loop is loadclient.sink_serve (C): a Python loop here cost more than the client it measures."""
    import resource
    import signal

    # Ctrl-C reaches the whole process group: the sink keeps answering while the client logs out,
    # and stops when the parent says so (or dies with it: a daemon process).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)  # accept never waits in the loop
    pipe.send(listener.getsockname()[1])
    sink_serve(listener.fileno(), pipe.fileno())
    pipe.recv()
    use = resource.getrusage(resource.RUSAGE_SELF)
    pipe.send(use.ru_utime + use.ru_stime)


class Sink:
    """The --sink process: start() -> port; stop() -> its CPU seconds."""

    def __init__(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing shared with the client
        self._pipe, child = ctx.Pipe()
        self._proc = ctx.Process(target=_sink_serve, args=(child,), daemon=True)
        self._proc.start()
        child.close()
        try:
            if not self._pipe.poll(30):
                raise EOFError
            self.port: int = self._pipe.recv()
        except (EOFError, OSError):
            self.stop()
            raise LoadgenError("the sink process did not start") from None

    def stop(self) -> float | None:
        cpu = None
        try:
            self._pipe.send("stop")
            if self._pipe.poll(10):
                cpu = float(self._pipe.recv())
        except (OSError, EOFError):
            pass
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        return cpu


# ---- report --------------------------------------------------------------------------------------


def _us(v: float) -> str:
    return f"{v:,.1f} µs"


def _counts(d: dict[str, int]) -> str:
    return "  ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in d.items()) or "-"


def format_report(r: LoadgenResult) -> str:
    c = r.config
    lo, hi = c["qty_lots"]
    target = "the built-in sink (client cost only)" if c.get("sink") else f"{c['host']}:{c['port']}"
    lines = [
        f"config     protocol sbe -> {target}; {c['sessions']} sessions; {c['rate']:,g} orders/s for "
        f"{c['duration']:g} s = {r.planned:,} planned; seed {c['seed']}; symbol {c['symbol_id']} at "
        f"{c['mid_ticks']:,} +/- {c['spread_ticks']} ticks, qty {lo}-{hi} lots, IOC {c['ioc_share']:.0%} "
        f"(and at {c['max_open']:,} open orders per account)"
        + ("; client busy-polls" if c.get("busy_poll") else "")
        + (f"; client on CPUs {c['cpus']}" if c.get("cpus") else ""),
        f"sent       {r.sent:,} = {r.send_rate:,.0f} orders/s (GTC {r.messages['gtc']:,}, "
        f"IOC {r.messages['ioc']:,}, buys {r.messages['buys']:,}); not sent {r.not_sent:,}",
        f"answered   {r.answered:,} = {r.answer_rate:,.0f} orders/s; unanswered {r.unanswered:,} "
        f"(after a {c['drain_timeout']:g} s drain)",
        f"latency    p50 {_us(r.latency_us['p50'])}  p99 {_us(r.latency_us['p99'])}  "
        f"p99.9 {_us(r.latency_us['p99.9'])}  max {_us(r.latency_us['max'])}  "
        f"(planned send -> first answer, {r.answered:,} orders)",
        f"send lag   p50 {_us(r.send_lag_us['p50'])}  p99 {_us(r.send_lag_us['p99'])}  "
        f"max {_us(r.send_lag_us['max'])}  (planned -> written: the client's own share)",
        f"split      to the engine p50 {_us(r.to_engine_us['p50'])} p99 {_us(r.to_engine_us['p99'])}; "
        f"back p50 {_us(r.from_engine_us['p50'])} p99 {_us(r.from_engine_us['p99'])}  "
        f"(at the engine's transactTime stamp)",
        f"responses  {_counts({k: v for k, v in r.responses.items() if v or k in ('new', 'fill')})}",
    ]
    if r.reject_reasons:
        lines.append(f"  rejected   {_counts(r.reject_reasons)}")
    lines.append(f"reports    {_counts(r.reports)}  (every ExecutionReport, by execType)")
    if r.session_reject_reasons:
        lines.append(f"  Reject     {_counts(r.session_reject_reasons)}")
    m = r.messages
    lines += [
        f"trades     {r.trades:,} (fills as taker {r.fills['taker']:,}, as maker {r.fills['maker']:,}; "
        f"later reports {m['later_reports']:,})",
        f"messages   in {m['messages_in']:,} ({m['bytes_in']:,} bytes, heartbeats {m['heartbeats_in']:,}, "
        f"seq gaps {m['seq_gaps']:,}), out {r.sent + m['heartbeats_out']:,} ({m['bytes_out']:,} bytes, "
        f"heartbeats {m['heartbeats_out']:,})",
        f"client     {r.client_cpu_s:.2f} s CPU in {r.wall_s:.2f} s = "
        f"{r.client_cpu_s / max(r.sent, 1) * 1e6:.2f} µs per order sent"
        + (f"; sink {r.sink_cpu_s:.2f} s CPU" if r.sink_cpu_s is not None else ""),
    ]
    for s in r.sessions:
        if s.error or (s.venue_logout_reason not in (None, "CLIENT_REQUEST")) or not s.clean_logout:
            why = s.error or (f"venue Logout {s.venue_logout_reason}" if s.venue_logout_reason
                              else "no Logout from the venue")
            lines.append(f"session {s.index} (key {s.key_id}, session id {s.session_id}): {why}")
    if r.interrupted:
        lines.append("interrupted: the schedule was cut short")
    return "\n".join(lines)


# ---- command line --------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _protocol(text: str) -> str:
    if text not in PROTOCOLS:
        raise argparse.ArgumentTypeError(f"{text!r} is not supported (only {', '.join(PROTOCOLS)})")
    return text


def _positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return value


def _share(text: str) -> float:
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1")
    return value


def _qty_range(text: str) -> tuple[int, int]:
    lo, sep, hi = text.replace("-", ":").partition(":")
    a = positive_int(lo)
    b = positive_int(hi) if sep else a
    if b < a:
        raise argparse.ArgumentTypeError(f"{text}: MIN > MAX")
    return a, b


def _port(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", type=_protocol, default="sbe",
                        help="order-entry protocol: sbe (the only one so far)")
    parser.add_argument("--sessions", type=positive_int, default=4, metavar="N",
                        help="TCP sessions, orders spread round-robin (default %(default)s)")
    parser.add_argument("--rate", type=_positive_float, default=10_000.0, metavar="R",
                        help="planned orders/s over all sessions (default %(default)g)")
    parser.add_argument("--duration", type=_positive_float, default=10.0, metavar="S",
                        help="seconds of planned sends (default %(default)g)")
    parser.add_argument("--seed", type=count, default=42, help="workload seed (default %(default)s)")
    parser.add_argument("--credentials", metavar="FILE",
                        help="JSON list of {account, key_id, secret_hex} (or one object per line, as "
                        "`venue accounts create --json` prints); session i uses entry i %% len")
    parser.add_argument("--host", default="127.0.0.1", help="gateway host (default %(default)s)")
    parser.add_argument("--port", type=_port, help="gateway port (required unless --sink)")
    parser.add_argument("--symbol-id", type=positive_int, default=1, metavar="ID",
                        help="instrument id (default %(default)s)")
    parser.add_argument("--mid-ticks", type=positive_int, default=6_000_000, metavar="TICKS",
                        help="price the flow crosses around, in ticks (default %(default)s = BTC-USDT "
                        "60000.00 at tick 0.01)")
    parser.add_argument("--spread-ticks", type=count, default=3, metavar="TICKS",
                        help="limit prices fall within mid +/- this (default %(default)s)")
    parser.add_argument("--qty-lots", type=_qty_range, default=(1, 10), metavar="MIN:MAX",
                        help="order quantity range in lots (default 1:10)")
    parser.add_argument("--ioc-share", type=_share, default=0.1, metavar="P",
                        help="share of IOC orders (default %(default)s); all are IOC while a session's "
                        "resting orders are at its bound")
    parser.add_argument("--max-open", type=positive_int, default=500, metavar="N",
                        help="resting orders per account the flow stays under, shared by the account's "
                        "sessions (default %(default)s; the venue's limit is 1000)")
    parser.add_argument("--heartbeat-ms", type=positive_int, default=1000, metavar="MS",
                        help="heartbeat interval asked for at logon (default %(default)s)")
    parser.add_argument("--drain-timeout", type=non_negative_float, default=5.0, metavar="S",
                        help="wait this long after the schedule for answers; the rest count as "
                        "unanswered (default %(default)g)")
    parser.add_argument("--connect-timeout", type=_positive_float, default=5.0, metavar="S",
                        help="connect and logon timeout (default %(default)g)")
    parser.add_argument("--cl-ord-id-base", type=positive_int, metavar="N",
                        help="clOrdId of order 0 (default: from the wall clock in µs, so runs do not "
                        "reuse ids)")
    parser.add_argument("--busy-poll", action="store_true",
                        help="never sleep: poll the sockets and the clock, as a trading client does "
                        "(costs a core; this VM wakes a sleeping client up to ~150 µs late at p99)")
    parser.add_argument("--cpus", default="", metavar="LIST",
                        help="pin the client to these CPUs, e.g. 0 or 0-1 (default: not pinned)")
    parser.add_argument("--sink", action="store_true",
                        help="run against a built-in sink process that answers every order at once: "
                        "measures the client's own cost (no --port or --credentials)")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="machine-readable result: to stdout instead of the text, or to FILE")


def run(args: argparse.Namespace) -> int:
    prog = "venue loadgen"
    sink: Sink | None = None
    try:
        if args.sink:
            credentials = [Credential(account=1, key_id=1, secret=bytes(32))]
        else:
            credentials = load_credentials(args.credentials)
        if args.sink:
            sink = Sink()
        port = sink.port if sink else args.port
        sink_cpu = None
        try:
            result = run_loadgen(
                port=port, credentials=credentials, host="127.0.0.1" if sink else args.host,
                sessions=args.sessions, rate=args.rate, duration=args.duration, seed=args.seed,
                symbol_id=args.symbol_id, mid_ticks=args.mid_ticks, qty_lots=args.qty_lots,
                spread_ticks=args.spread_ticks, ioc_share=args.ioc_share, max_open=args.max_open,
                heartbeat_ms=args.heartbeat_ms, drain_timeout=args.drain_timeout,
                connect_timeout=args.connect_timeout, cl_ord_id_base=args.cl_ord_id_base,
                busy_poll=args.busy_poll, cpus=args.cpus)
        finally:
            if sink:
                sink_cpu = sink.stop()
        if sink:
            result.config["sink"] = True
            result.sink_cpu_s = sink_cpu
    except LoadgenError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ImportError as exc:
        if "loadclient" in str(exc) or "codecs" in str(exc):
            print(f"{prog}: error: the extensions are not built (run: python setup.py build_ext --inplace)",
                  file=sys.stderr)
            return EXIT_ERROR
        raise
    if args.json == "-":
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(format_report(result))
        if args.json:
            try:
                Path(args.json).write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
            except OSError as exc:
                print(f"{prog}: error: {args.json}: {exc.strerror}", file=sys.stderr)
                return EXIT_ERROR
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog="venue loadgen", description=(__doc__ or "").strip().splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not args.sink and (args.port is None or args.credentials is None):
        parser.error("--port and --credentials are required (or --sink)")
    if args.sink and (args.port is not None or args.credentials is not None):
        parser.error("--sink runs its own endpoint: no --port or --credentials")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
