"""A small SBE order-entry client in plain Python: the demo flow, the tests and operators' scripts
use it. (The load generator has its own Cython client: bench/loadclient.pyx.)

    client = SbeClient.connect("127.0.0.1", 7001)
    ack = client.logon(key_id, secret, cancel_on_disconnect=True)
    client.new_order(cl_ord_id=1, symbol_id=1, side=codecs.Side.BUY, price=6000000, qty=10)
    for message in client.read(timeout=1.0): ...   # decoded copies: dicts with "template" = name
"""

from __future__ import annotations

import select
import socket
import time
from typing import Any

from sbe_schemas import codecs
from venue.auth import sign_logon

# a Logon is signed from its SBE header up to the 32-byte signature
LOGON_SIGNED_BYTES = codecs.HEADER_SIZE + codecs.Logon.BLOCK_LENGTH - 32


class LogonRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(f"logon refused: {reason}")
        self.reason = reason


# Enum-typed fields (the generated to_dict gives their raw integers): IntEnum members compare equal
# to the integers and carry .name.
ENUM_FIELDS = {
    "exec_type": codecs.ExecType, "ord_status": codecs.OrdStatus, "side": codecs.Side,
    "liquidity": codecs.LiquidityIndicator, "response_to": codecs.CxlRejResponseTo,
    "ord_type": codecs.OrdType, "time_in_force": codecs.TimeInForce,
}
REASON_ENUM = {"ExecutionReport": codecs.RejectReason, "CancelReject": codecs.RejectReason,
               "Reject": codecs.SessionRejectReason, "LogonReject": codecs.LogonRejectReason,
               "Logout": codecs.LogoutReason}


def _enum(enum: Any, value: Any) -> Any:
    try:
        return enum(value)
    except ValueError:
        return value


def to_dict(message: Any) -> dict[str, Any]:
    """A plain copy of a decoded flyweight (its generated to_dict) with "template"; enum fields as
    IntEnum members."""
    template = type(message).__name__
    out = {"template": template, **message.to_dict()}
    for name, enum in ENUM_FIELDS.items():
        if name in out:
            out[name] = _enum(enum, out[name])
    if "reason" in out and template in REASON_ENUM:
        out["reason"] = _enum(REASON_ENUM[template], out["reason"])
    for entry in out.get("fills", ()):
        entry["liquidity"] = _enum(codecs.LiquidityIndicator, entry["liquidity"])
    return out


def logon_signed_part(frame: bytes | bytearray | memoryview, offset: int = 0) -> bytes:
    """What a Logon's signature covers: the message from its SBE header up to the signature (the
    frame starts at offset, SOFH included)."""
    start = offset + codecs.SOFH_SIZE
    return bytes(frame[start:start + LOGON_SIGNED_BYTES])


def encode_logon(key_id: int, secret: bytes, *, heartbeat_ms: int = 1000, cancel_on_disconnect: bool = False,
                 timestamp_ns: int | None = None, nonce: int | None = None) -> bytes:
    """A framed, signed Logon (timestamp and nonce default to now: nonces must grow per key)."""
    buf = bytearray(codecs.SOFH_SIZE + codecs.HEADER_SIZE + codecs.Logon.BLOCK_LENGTH)
    m = codecs.Logon().wrap_encode(buf, codecs.SOFH_SIZE)
    now = time.time_ns()
    m.key_id, m.timestamp_ns = key_id, now if timestamp_ns is None else timestamp_ns
    m.nonce = now if nonce is None else nonce
    m.heartbeat_interval_ms = heartbeat_ms
    m.cancel_on_disconnect = codecs.BooleanType.TRUE if cancel_on_disconnect else codecs.BooleanType.FALSE
    n = m.frame()
    m.signature = sign_logon(secret, logon_signed_part(buf))
    return bytes(buf[:n])


class SbeClient:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.decoder = codecs.Decoder()
        self.buf = bytearray()
        self.next_seq = 1
        self.out = bytearray(512)
        self.session_id = 0
        self.account = 0
        self.backlog: list[dict[str, Any]] = []  # read but not yet returned (wait_for stops early)
        self.heartbeat_s = 0.0  # as granted at logon; read() keeps the session alive
        self.last_send = time.monotonic()

    @classmethod
    def connect(cls, host: str, port: int, timeout: float = 5.0) -> SbeClient:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)

    # ---------------------------------------------------------------- sending

    def send_raw(self, data: bytes | bytearray) -> None:
        self.sock.sendall(data)
        self.last_send = time.monotonic()

    def _encode(self, cls: Any) -> Any:
        return cls().wrap_encode(self.out, codecs.SOFH_SIZE)

    def _send(self, message: Any) -> int:
        n = message.frame()
        self.send_raw(self.out[:n])
        return n

    def logon_frame(self, key_id: int, secret: bytes, **options: Any) -> bytes:
        return encode_logon(key_id, secret, **options)

    def logon(self, key_id: int, secret: bytes, *, timeout: float = 5.0, **options: Any) -> dict[str, Any]:
        """Log on; returns the LogonAck as a dict, raises LogonRefused(reason name) on a LogonReject."""
        self.send_raw(self.logon_frame(key_id, secret, **options))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.read(timeout=deadline - time.monotonic())
            for i, message in enumerate(messages):
                if message["template"] == "LogonAck":
                    self.session_id, self.account = message["session_id"], message["account_id"]
                    self.heartbeat_s = message["heartbeat_interval_ms"] / 1000
                    self.backlog = messages[i + 1:] + self.backlog
                    return message
                if message["template"] == "LogonReject":
                    raise LogonRefused(message["reason"].name)
        raise TimeoutError("no answer to the Logon")

    def _seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def new_order(self, *, cl_ord_id: int, symbol_id: int, side: int, qty: int, price: int | None = None,
                  ord_type: int = codecs.OrdType.LIMIT, tif: int = codecs.TimeInForce.GTC,
                  account_id: int = 0,
                  stop_price: int | None = None, display_qty: int | None = None,
                  stp: int = codecs.StpMode.NONE, post_only: bool = False, seq: int | None = None) -> int:
        m = self._encode(codecs.NewOrder)
        m.seq_num = self._seq() if seq is None else seq
        m.cl_ord_id, m.account_id, m.price, m.qty = cl_ord_id, account_id, price, qty
        m.stop_price, m.display_qty, m.symbol_id = stop_price, display_qty, symbol_id
        m.side, m.ord_type, m.time_in_force, m.stp_mode = side, ord_type, tif, stp
        if post_only:
            m.flags = codecs.OrderFlags.POST_ONLY
        self._send(m)
        return m.seq_num

    def cancel(self, *, cl_ord_id: int, orig_cl_ord_id: int = 0, order_id: int | None = None,
               account_id: int = 0, symbol_id: int = 0) -> int:
        m = self._encode(codecs.CancelOrder)
        m.seq_num = self._seq()
        m.cl_ord_id, m.orig_cl_ord_id, m.order_id = cl_ord_id, orig_cl_ord_id, order_id
        m.account_id, m.symbol_id = account_id, symbol_id
        self._send(m)
        return m.seq_num

    def replace(self, *, cl_ord_id: int, orig_cl_ord_id: int = 0, order_id: int | None = None, qty: int,
                price: int | None = None, account_id: int = 0, symbol_id: int = 0) -> int:
        m = self._encode(codecs.ReplaceOrder)
        m.seq_num = self._seq()
        m.cl_ord_id, m.orig_cl_ord_id, m.order_id = cl_ord_id, orig_cl_ord_id, order_id
        m.account_id, m.price, m.qty, m.symbol_id = account_id, price, qty, symbol_id
        self._send(m)
        return m.seq_num

    def mass_cancel(self, *, cl_ord_id: int, account_id: int = 0, symbol_id: int = 0) -> int:
        m = self._encode(codecs.MassCancel)
        m.seq_num = self._seq()
        m.cl_ord_id, m.account_id, m.symbol_id = cl_ord_id, account_id, symbol_id
        self._send(m)
        return m.seq_num

    def heartbeat(self) -> None:
        m = self._encode(codecs.Heartbeat)
        m.next_seq_num, m.timestamp_ns = self.next_seq, time.time_ns()
        self._send(m)

    def logout(self) -> None:
        m = self._encode(codecs.Logout)
        m.next_seq_num, m.timestamp_ns = self.next_seq, time.time_ns()
        m.reason = codecs.LogoutReason.CLIENT_REQUEST
        self._send(m)

    # ---------------------------------------------------------------- receiving

    def read(self, timeout: float = 0.0) -> list[dict[str, Any]]:
        """Every complete message that arrives within timeout (at least one read attempt).
        Raises ConnectionError once the venue closed the connection and nothing is left.
        Sends a Heartbeat when nothing was sent for the session's interval."""
        if self.heartbeat_s and time.monotonic() - self.last_send >= self.heartbeat_s:
            try:
                self.heartbeat()
            except OSError:
                pass  # the read below reports the closed connection
        # Messages already queued are returned at once (with whatever else has arrived meanwhile).
        ready, _, _ = select.select([self.sock], [], [], 0.0 if self.backlog else max(0.0, timeout))
        closed = False
        if ready:
            try:
                data = self.sock.recv(1 << 20)
            except (BlockingIOError, TimeoutError):
                data = None
            if data == b"":
                closed = True
            elif data:
                self.buf += data
        messages = self.backlog + self._frames()
        self.backlog = []
        if closed and not messages:
            raise ConnectionError("the venue closed the connection")
        return messages

    def _frames(self) -> list[dict[str, Any]]:
        messages = []
        pos = 0
        while True:
            n = self.decoder.frame_length(self.buf, pos)
            if n == 0 or n > len(self.buf) - pos:
                break
            # decode a copy: a flyweight keeps its buffer exported, and self.buf must stay resizable
            messages.append(to_dict(self.decoder.decode(bytes(self.buf[pos:pos + n]))))
            pos += n
        if pos:
            del self.buf[:pos]
        return messages

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Read until a message satisfies predicate; returns it and the messages before it. Only the
        match is consumed: the others (heartbeats aside) stay queued for later reads, in order."""
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        try:
            while time.monotonic() < deadline:
                messages = self.read(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
                for i, message in enumerate(messages):
                    if predicate(message):
                        self.backlog = messages[i + 1:] + self.backlog
                        return message, seen
                    seen.append(message)
        finally:
            self.backlog = [m for m in seen if m["template"] != "Heartbeat"] + self.backlog
        raise TimeoutError(f"no matching message within {timeout} s; got {[m['template'] for m in seen]}")

    def close(self) -> None:
        self.sock.close()
