"""The SBE gateway process: TCP sessions in, the command ring and the outcome ring to the engine.

One thread, one epoll loop over the listening socket, the client sockets and the outcome ring's
wake socket (the engine sends a byte there only when this gateway said it is about to sleep), so an
idle gateway costs nothing and a busy one never sleeps. Per-message work is in sbe_gateway/core.pyx.

Session rules (the protocol is in sbe_schemas/venue_order_entry.xml):
- The first message must be a Logon signed with the key's secret (venue/auth.py); one session per
  key at a time (ALREADY_LOGGED_IN). Heartbeat interval 100..60000 ms. A session that sends nothing
  for 2 intervals + 1 s is logged out (HEARTBEAT_TIMEOUT); the gateway sends a Heartbeat after an
  interval without output. A connection that has not logged on within logon_timeout_s is closed.
- Bad input never takes the gateway down: an undecodable but delimited frame gets a Reject and the
  session goes on; a bad framing header (the stream cannot be resynchronised) gets a Reject and a
  Logout(PROTOCOL_ERROR); either way other sessions notice nothing.
- Cancel-on-disconnect (the Logon's flag): when the session ends for any reason, one MassCancel
  tagged with the session's id goes to the engine; it cancels the orders this session entered and no
  other session's. The open sessions' ids are kept in the run directory, so that a gateway restarted
  after a crash cancels for its dead predecessor.
- Metrics: the counts are copied to this gateway's counter page on the 100 ms timer (venue/metrics.py).
- A client that does not read its reports (more than max_pending_out bytes queued) is disconnected:
  the gateway never blocks on one socket. If the gateway itself falls so far behind the engine that
  the outcome ring laps it, reports were lost: every session is logged out (they reconnect; their
  orders are cancelled if they asked for it) and the gateway carries on from the newest outcome.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import socket
import time
from dataclasses import dataclass
from typing import Any

from core_cython.broadcast import BroadcastReader
from core_cython.records import FIRST_CUSTOMER_ACCOUNT
from core_cython.ring import Ring
from sbe_gateway.client import logon_signed_part
from sbe_gateway.core import (
    INPUT_CLOSE,
    INPUT_LOGON,
    INPUT_LOGOUT,
    POLL_ACCEPT,
    POLL_CLOSE,
    POLL_EOF,
    POLL_INPUT,
    POLL_LAPPED,
    POLL_READ_ERROR,
    SESSION_AWAIT_LOGON,
    SESSION_CLOSING,
    SESSION_ESTABLISHED,
    GatewayCore,
    Session,
)
from sbe_schemas import codecs
from venue.auth import check_logon
from venue.config import VenueConfig
from venue.counter_page import CounterPage
from venue.cpu import use_cpus, use_rt_priority
from venue.engine_service import COMMANDS_RING, OUTCOMES_RING, run_dir
from venue.keys import KeyStore
from venue.metrics import GATEWAY_COUNTERS, gateway_page
from venue.supervisor import StopSignal

MAX_ACCOUNT = (1 << 24) - 1  # sbe_gateway/core.pyx: order ids are (account << 40) | clOrdId
KEY_CHECK_NS = 1_000_000_000  # how often open sessions' keys are re-read (a disabled key ends its session)
HEARTBEAT_MS = (100, 60_000)
IN_BUFFER = 65536
TIMER_S = 0.1  # how often timers (heartbeats, idle and logon timeouts) are checked


def _session_counts(s: Session) -> tuple[int, int, int, int, int]:
    return s.received, s.rejected, s.throttled, s.busy, s.bad_frames


class EngineGone(Exception):
    """The engine this gateway was attached to is gone; the process exits (the supervisor decides)."""


@dataclass
class Connection:
    sock: socket.socket
    session: Session
    peer: str


class GatewayServer:
    def __init__(self, config: VenueConfig, gateway_id: int, *, port: int | None = None,
                 log: Any = None) -> None:
        settings = config.sbe
        self.settings = settings
        self.gateway_id = gateway_id
        self.log = log or (lambda message: None)
        rings = run_dir(config)
        self.ring = Ring.attach(str(rings / COMMANDS_RING))
        self.reader = BroadcastReader.attach(str(rings / OUTCOMES_RING), start="latest")
        self.core = GatewayCore(self.ring, self.reader, gateway_id, settings.max_frame)
        self.keys = KeyStore.open(config.keys.path)
        self.decoder = codecs.Decoder(settings.max_frame)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((settings.host, settings.port if port is None else port))
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.epoll = select.epoll()
        self.epoll.register(self.listener.fileno(), select.EPOLLIN)
        self.epoll.register(self.reader.fileno(), select.EPOLLIN)
        self.core.set_io(self.epoll.fileno(), self.listener.fileno(), settings.max_pending_out,
                         int(settings.spin_us * 1000))
        self.connections: dict[int, Connection] = {}
        self.by_key: dict[int, Connection] = {}
        self.pending_cancels: list[int] = []  # session ids whose cancel-on-disconnect awaits ring space
        self.next_number = 1
        self.closed_sessions = 0
        # Prometheus (venue/metrics.py): copied to the shared page on the timer, never per message
        self.page = CounterPage(rings / gateway_page(gateway_id), GATEWAY_COUNTERS)
        self.logons = 0
        self.logon_rejects = 0
        self.cod_cancels = 0
        self.closed_counts = [0, 0, 0, 0, 0]  # _session_counts() of the sessions that are gone
        self.last_key_check = time.time_ns()
        self.is_shut_down = False
        # Ids of the open cancel-on-disconnect sessions, on disk: if this process is killed (no
        # shutdown), the next one cancels their orders at start.
        self.cod_file = rings / f"sbe-gateway-{gateway_id}.cod.json"
        self._cancel_for_dead_predecessor()

    # ---------------------------------------------------------------- cancel-on-disconnect across a crash

    def _cancel_for_dead_predecessor(self) -> None:
        try:
            session_ids = sorted({int(i) for i in json.loads(self.cod_file.read_text())["session_ids"]})
            if not all(0 < i < 1 << 64 for i in session_ids):
                raise ValueError("a session id outside 1..2^64-1")
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, KeyError) as exc:
            self.log(f"unreadable {self.cod_file.name} ({exc}); no cancel-on-disconnect to redo")
            session_ids = []
        deadline = time.monotonic() + 5.0
        left = session_ids
        while left and time.monotonic() < deadline:
            left = [i for i in left if not self._cancel_session(i)]
            if left:
                time.sleep(0.01)
        if session_ids:
            self.log(f"the previous gateway process died with {len(session_ids)} cancel-on-disconnect "
                     f"session(s) open: their orders are cancelled"
                     + (f"; NOT sent for {len(left)} (command ring full)" if left else ""))
        self._write_cod_sessions()

    def _cancel_session(self, session_id: int) -> bool:
        """The session's tagged MassCancel into the command ring; False if the ring is full."""
        if not self.core.cancel_session(session_id):
            return False
        self.cod_cancels += 1
        return True

    def _write_cod_sessions(self) -> None:
        """The open cancel-on-disconnect sessions, and the closed ones whose cancel still waits."""
        open_ones = {conn.session.session_id for conn in self.connections.values()
                     if conn.session.state == SESSION_ESTABLISHED and conn.session.cancel_on_disconnect}
        session_ids = sorted(open_ones | set(self.pending_cancels))
        tmp = self.cod_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"session_ids": session_ids}))
        os.replace(tmp, self.cod_file)  # a crash mid-write leaves the old list, never half of one

    # ---------------------------------------------------------------- loop

    def serve(self, stop: Any) -> None:
        busy_poll = self.settings.busy_poll
        next_timer = time.monotonic() + TIMER_S
        while not stop:
            wait_ms = -1 if busy_poll else max(0, int((next_timer - time.monotonic()) * 1000 + 0.999))
            todo = self.core.poll(wait_ms)  # the steady state (frames, outcomes, reports) is in C
            if todo:
                self._handle(todo)
            if self.pending_cancels:
                self.pending_cancels = [i for i in self.pending_cancels if not self._cancel_session(i)]
                if not self.pending_cancels:
                    self._write_cod_sessions()
            if time.monotonic() >= next_timer:
                self._timers(time.time_ns())
                next_timer = time.monotonic() + TIMER_S
        self.shutdown()

    def _handle(self, todo: list[tuple[int, Session | None, Any]]) -> None:
        """What the C loop leaves to Python: new connections, logons, logouts, closes, a lap."""
        now = time.time_ns()
        for what, session, detail in todo:
            if what == POLL_ACCEPT:
                self._accept(now)
                continue
            if what == POLL_LAPPED:
                self._lapped(now)
                continue
            conn = self.connections.get(session.fd)
            if conn is None or conn.session is not session:
                continue  # closed by an earlier item
            if what == POLL_INPUT:
                if self._act(conn, detail, now):
                    self._flush(conn)  # e.g. the LogonAck; what the socket still holds comes next round
            elif what == POLL_EOF:
                self._closed_by_peer(conn, now)
            elif what == POLL_READ_ERROR:
                self._close(conn, f"read error: {os.strerror(detail)}", now)
            elif what == POLL_CLOSE:
                self._flush(conn)
                self._close(conn, session.close_reason or "closing", now)

    def _accept(self, now: int) -> None:
        while True:
            try:
                sock, addr = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # e.g. out of file descriptors: keep serving the others
                self.log(f"accept failed: {exc}")
                return
            if len(self.connections) >= self.settings.max_sessions:
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = Session(sock.fileno(), self.next_number, IN_BUFFER, now)
            self.next_number = (self.next_number % 0xFFFFFFFF) + 1
            session.set_throttle(self.settings.throttle_per_s, self.settings.throttle_burst)
            conn = Connection(sock, session, f"{addr[0]}:{addr[1]}")
            self.connections[sock.fileno()] = conn
            self.epoll.register(sock.fileno(), select.EPOLLIN)
            self.core.add_session(session)

    def _act(self, conn: Connection, action: int, now: int) -> bool:
        """Carry out on_input()'s result, handling further frames after a logon; False if the
        connection was closed."""
        s = conn.session
        while True:
            if action == INPUT_LOGON:
                self._logon(conn, now)
                if s.state != SESSION_ESTABLISHED:
                    self._flush(conn)
                    self._close(conn, s.close_reason, now)
                    return False
                action = self.core.on_input(s, now)
                continue
            if action == INPUT_LOGOUT:
                self.core.send_logout(s, codecs.LogoutReason.CLIENT_REQUEST, now)
                self._flush(conn)
                self._close(conn, "logout", now)
                return False
            if action == INPUT_CLOSE:
                self._flush(conn)
                self._close(conn, s.close_reason, now)
                return False
            return True

    def _closed_by_peer(self, conn: Connection, now: int) -> None:
        s = conn.session
        partial = s.in_len - s.in_pos
        self._close(conn, "connection closed by peer" + (f" mid-frame ({partial} bytes)" if partial else ""),
                    now)

    # ---------------------------------------------------------------- logon

    def _logon(self, conn: Connection, now: int) -> None:
        s = conn.session
        logon = self.decoder.decode(s.inbuf, s.in_pos, s.frame_len)
        signed = logon_signed_part(s.inbuf, s.in_pos)
        key_id, interval = logon.key_id, logon.heartbeat_interval_ms
        s.in_pos += s.frame_len
        reason = None
        if key_id in self.by_key:
            reason = "ALREADY_LOGGED_IN"
        elif not HEARTBEAT_MS[0] <= interval <= HEARTBEAT_MS[1]:
            reason = "BAD_HEARTBEAT_INTERVAL"
        if reason is None:
            try:
                result = check_logon(self.keys, key_id=key_id, timestamp_ns=logon.timestamp_ns,
                                     nonce=logon.nonce,
                                     signed=signed, signature=bytes(logon.signature), now_ns=now)
            except Exception as exc:  # the key store failed: the client may retry later
                self.log(f"logon of key {key_id} from {conn.peer}: key store error {type(exc).__name__}")
                reason = "UNAVAILABLE"
            else:
                reason = None if result.ok else result.reason
        if reason is not None:
            self._send_logon_reject(s, reason, now)
            s.close_reason = f"logon refused: {reason} (key {key_id})"
            s.state = SESSION_CLOSING
            self.logon_rejects += 1
            return
        key = result.key
        accounts = {key.account, *key.grants}
        if not all(FIRST_CUSTOMER_ACCOUNT <= a <= MAX_ACCOUNT for a in accounts):
            # order ids are (account << 40) | clOrdId: an account past 2^24 would alias another's
            self.log(f"logon of key {key_id}: an account outside {FIRST_CUSTOMER_ACCOUNT}..{MAX_ACCOUNT}")
            self._send_logon_reject(s, "UNAVAILABLE", now)
            s.close_reason = "logon refused: account outside the gateway's range"
            s.state = SESSION_CLOSING
            self.logon_rejects += 1
            return
        s.key_id = key_id
        s.account = key.account
        s.permitted = frozenset({key.account, *key.grants})
        s.heartbeat_ms = interval
        s.cancel_on_disconnect = bool(logon.cancel_on_disconnect == codecs.BooleanType.TRUE)
        s.session_id = secrets.randbits(63) or 1
        s.state = SESSION_ESTABLISHED
        self.by_key[key_id] = conn
        self.core.attach(s)
        if s.cancel_on_disconnect:
            self._write_cod_sessions()
        ack = bytearray(64)
        m = codecs.LogonAck().wrap_encode(ack, codecs.SOFH_SIZE)
        m.session_id, m.timestamp_ns, m.next_seq_num = s.session_id, now, s.next_out_seq
        m.account_id, m.heartbeat_interval_ms = key.account, interval
        s.out += ack[:m.frame()]
        self.core.messages_sent += 1
        self.logons += 1
        if self.settings.log_sessions:
            self.log(f"session {s.number} logged on: key {key_id}, account {key.account}, from {conn.peer}")

    def _send_logon_reject(self, s: Session, reason: str, now: int) -> None:
        buf = bytearray(64)
        m = codecs.LogonReject().wrap_encode(buf, codecs.SOFH_SIZE)
        m.timestamp_ns = now
        m.reason = codecs.LogonRejectReason[reason]
        s.out += buf[:m.frame()]
        self.core.messages_sent += 1

    # ---------------------------------------------------------------- output and timers

    def _flush(self, conn: Connection) -> None:
        self.core.flush(conn.session, time.time_ns())

    def publish_counters(self) -> None:
        """Copy the counts to the shared counter page (order: venue.metrics.GATEWAY_COUNTERS)."""
        counts = list(self.closed_counts)
        sessions = 0
        for conn in self.connections.values():
            s = conn.session
            sessions += s.state == SESSION_ESTABLISHED
            for i, value in enumerate(_session_counts(s)):
                counts[i] += value
        received, rejected, throttled, busy, bad_frames = counts
        core = self.core
        self.page.set((len(self.connections), sessions, self.logons, self.logon_rejects, self.closed_sessions,
                       received, core.messages_sent, rejected, throttled, busy, bad_frames, core.published,
                       core.outcomes_seen, core.laps, self.cod_cancels, len(self.pending_cancels)))

    def _timers(self, now: int) -> None:
        self.publish_counters()
        if self.reader.stale():  # the engine stopped or was replaced: this gateway's rings are gone
            raise EngineGone("the engine's outcome ring is stale (engine stopped or restarted)")
        if now - self.last_key_check >= KEY_CHECK_NS:
            self.last_key_check = now
            self._end_disabled_keys(now)
        for conn in list(self.connections.values()):
            s = conn.session
            if s.state == SESSION_AWAIT_LOGON:
                if now - s.opened_ns > self.settings.logon_timeout_s * 1e9:
                    self._close(conn, "no Logon in time", now)
                continue
            if s.state != SESSION_ESTABLISHED:
                continue
            interval_ns = s.heartbeat_ms * 1_000_000
            if now - s.last_rx_ns > 2 * interval_ns + 1_000_000_000:
                self.core.send_logout(s, codecs.LogoutReason.HEARTBEAT_TIMEOUT, now)
                self._flush(conn)
                self._close(conn, "heartbeat timeout", now)
                continue
            if now - s.last_tx_ns >= interval_ns and not s.out:
                self.core.send_heartbeat(s, now)
                self._flush(conn)

    def _end_disabled_keys(self, now: int) -> None:
        """A key disabled (or removed) while its session is open: the session ends."""
        for key_id, conn in list(self.by_key.items()):
            try:
                record = self.keys.get(key_id)
            except Exception:  # the store is unreadable: keep sessions, logons will say UNAVAILABLE
                return
            if record is None or not record.enabled:
                self.core.send_logout(conn.session, codecs.LogoutReason.SHUTDOWN, now)
                self._flush(conn)
                self._close(conn, "key disabled", now)

    def _close(self, conn: Connection, reason: str, now: int) -> None:
        s = conn.session
        fd = s.fd
        if self.connections.pop(fd, None) is None:
            return
        was_established = s.state == SESSION_ESTABLISHED or (s.state == SESSION_CLOSING and s.key_id)
        if self.by_key.get(s.key_id) is conn:
            del self.by_key[s.key_id]
        self.core.detach(s)
        if was_established and s.cancel_on_disconnect:
            if not self._cancel_session(s.session_id):
                self.pending_cancels.append(s.session_id)  # the ring was full: retried every loop
            s.state = SESSION_CLOSING
            self._write_cod_sessions()
        try:
            self.epoll.unregister(fd)
        except OSError:
            pass
        self.core.remove_session(s)  # before the fd can be reused by a new connection
        conn.sock.close()
        s.state = SESSION_CLOSING
        self.closed_sessions += 1
        for i, value in enumerate(_session_counts(s)):
            self.closed_counts[i] += value
        if s.key_id and self.settings.log_sessions:
            self.log(f"session {s.number} (key {s.key_id}) closed: {reason}")

    def _lapped(self, now: int) -> None:
        self.log("outcome ring lapped this gateway (reports lost): logging every session out")
        for conn in list(self.connections.values()):
            if conn.session.state == SESSION_ESTABLISHED:
                self.core.send_logout(conn.session, codecs.LogoutReason.SHUTDOWN, now)
                self._flush(conn)
            self._close(conn, "gateway fell behind the engine", now)
        self.reader.rejoin()

    def shutdown(self) -> None:
        if self.is_shut_down:
            return
        self.is_shut_down = True
        now = time.time_ns()
        for conn in list(self.connections.values()):
            if conn.session.state == SESSION_ESTABLISHED:
                self.core.send_logout(conn.session, codecs.LogoutReason.SHUTDOWN, now)
                self._flush(conn)
            self._close(conn, "gateway shutting down", now)
        deadline = time.monotonic() + 2.0  # the engine is still running: give it time to make room
        while self.pending_cancels and time.monotonic() < deadline:
            self.pending_cancels = [i for i in self.pending_cancels if not self._cancel_session(i)]
            if self.pending_cancels:
                time.sleep(0.01)
        self._write_cod_sessions()
        if self.pending_cancels:
            self.log(f"shutdown: cancel-on-disconnect of {len(self.pending_cancels)} sessions could not be "
                     f"sent (command ring full); the next start of gateway {self.gateway_id} sends it")
        self.publish_counters()
        self.page.close()
        self.listener.close()
        self.epoll.close()
        self.keys.close()


def gateway_main(config: VenueConfig, gateway_id: int, port: int | None, ready: Any) -> None:
    """Entry point of a gateway process (multiprocessing target): sends ("ready", {"port": ...})."""
    stop = StopSignal().install_in_child()

    def log(message: str) -> None:
        print(f"sbe gateway {gateway_id}: {message}", flush=True)

    try:
        use_cpus(config.sbe.cpus, log)
        server = GatewayServer(config, gateway_id, port=port, log=log)
    except Exception as exc:
        ready.send(("error", f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from None
    use_rt_priority(config.sbe.rt_priority, log)
    ready.send(("ready", {"pid": os.getpid(), "port": server.port, "host": config.sbe.host}))
    try:
        server.serve(stop)  # shuts down (Logouts, cancel-on-disconnect) when stop is set
    except EngineGone as exc:
        log(f"{exc}; exiting")
        server.shutdown()
        raise SystemExit(3) from None
    except BaseException:
        # A bug must not skip the sessions' cancel-on-disconnect: shut down in order, then fail.
        try:
            server.shutdown()
        finally:
            raise

