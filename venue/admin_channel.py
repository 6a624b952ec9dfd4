"""The running engine's admin socket: admin operations (venue.admin_ops) from `venue accounts ...`.

    channel = AdminChannel.open(run_dir, venue)    # engine process: a listener thread starts
    ... between two batches, on the engine thread: if channel.pending: channel.run_pending()
    events, info = request(config, "create_account", params)   # any process of the venue's user

A Unix stream socket, <run dir>/admin.sock: the run dir is 0700 and the socket 0600, and the listener
also checks the peer's uid (SO_PEERCRED), so only the venue's own user reaches the engine this way.
One request per connection: a 4-byte big-endian length and a JSON object {"operation", "params"};
the answer is framed the same way, {"ok": true, "info", "events" (base64 of the EVENT_DTYPE records)}
or {"ok": false, "error"}. The listener thread only reads and queues: the operation itself runs on
the engine's thread, between two batches (so it is sequenced and journaled like any command, and
the engine stays single-threaded). An idle engine sees it within its idle wait (50 ms). Bad input
gets an error answer and the engine goes on. No secret crosses this socket: a new account's API key
is made by the `venue accounts` process after the engine answered.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import select
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from core_cython.records import EVENT_DTYPE
from venue.bootstrap import VenueError
from venue.config import VenueConfig

ADMIN_SOCKET = "admin.sock"
MAX_MESSAGE = 1 << 20  # an admin request is a few hundred bytes; an answer's events a few KiB
READ_TIMEOUT_S = 5.0  # a client gets this long to send its whole request (one at a time is served)
ANSWER_TIMEOUT_S = 30.0  # how long the client waits for the engine
_LENGTH = struct.Struct(">I")
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class AdminProtocolError(Exception):
    """A malformed admin message (answered with an error; the engine goes on)."""


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    sock.sendall(_LENGTH.pack(len(body)) + body)


def _receive(sock: socket.socket, deadline: float | None = None) -> dict[str, Any]:
    """One framed JSON object; `deadline` (time.monotonic()) bounds the whole message, not each read."""
    header = _read_exactly(sock, _LENGTH.size, deadline)
    (length,) = _LENGTH.unpack(header)
    if length > MAX_MESSAGE:
        raise AdminProtocolError(f"message of {length} bytes is over the {MAX_MESSAGE} byte limit")
    try:
        message = json.loads(_read_exactly(sock, length, deadline))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError, JSONDecodeError, too deeply nested
        raise AdminProtocolError(f"message is not JSON: {type(exc).__name__}") from None
    if not isinstance(message, dict):
        raise AdminProtocolError("message is not a JSON object")
    return message


def _read_exactly(sock: socket.socket, size: int, deadline: float | None = None) -> bytes:
    chunks, left = [], size
    while left:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out")
            sock.settimeout(remaining)
        chunk = sock.recv(left)
        if not chunk:
            raise AdminProtocolError(f"connection closed after {size - left} of {size} bytes")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------------------- engine side


class _Request:
    __slots__ = ("operation", "params", "conn", "answer", "done")

    def __init__(self, operation: str, params: dict[str, Any], conn: socket.socket) -> None:
        self.operation, self.params, self.conn = operation, params, conn
        self.answer: dict[str, Any] = {"ok": False, "error": "the venue is stopping"}
        self.done = threading.Event()

    def abandoned(self) -> bool:
        """Whether the client has closed its end (it gave up waiting): its operation is not run, so
        the operator is not told "failed" about an account that is then created anyway."""
        poller = select.poll()
        poller.register(self.conn, select.POLLHUP | select.POLLERR)
        return bool(poller.poll(0))


class AdminChannel:
    """The engine process's end: a listener thread that queues requests, run_pending() on the engine's
    thread to execute them."""

    def __init__(self, path: Path, venue: Any, listener: socket.socket) -> None:
        self.path = path
        self.venue = venue  # venue.run.Venue
        self.pending = False  # set by the listener, read by the engine loop (one attribute load a batch)
        self._queue: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._listener = listener
        self._closed = False
        self._thread = threading.Thread(target=self._listen, name="admin-channel", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, run_dir: Path, venue: Any) -> AdminChannel:
        path = Path(run_dir) / ADMIN_SOCKET
        path.unlink(missing_ok=True)  # left by an engine that was killed
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # Linux gives the socket file the unbound socket's mode (less the umask): 0600 from the
            # start, no window in which another user could connect (the run dir is 0700 as well).
            os.fchmod(listener.fileno(), 0o600)
            listener.bind(str(path))
            listener.listen(8)
        except BaseException:
            listener.close()
            raise
        return cls(path, venue, listener)

    def _listen(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            with conn:
                try:
                    self._serve(conn)
                except OSError:
                    pass  # the client went away (its operation, if queued, is dropped: abandoned())
                except Exception as exc:  # never the listener's end: the next request is served
                    print(f"admin channel: request dropped: {type(exc).__name__}: {exc}", file=sys.stderr)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(READ_TIMEOUT_S)
        _, uid, _ = _PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        if uid != os.getuid():
            _send(conn, {"ok": False, "error": "admin requests come from the venue's own user only"})
            return
        try:
            message = _receive(conn, time.monotonic() + READ_TIMEOUT_S)
            operation, params = message.get("operation"), message.get("params", {})
            if not isinstance(operation, str) or not isinstance(params, dict):
                raise AdminProtocolError('message needs "operation" (a string) and "params" (an object)')
        except (AdminProtocolError, TimeoutError) as exc:
            _send(conn, {"ok": False, "error": f"bad admin request: {exc}"})
            return
        request = _Request(operation, params, conn)
        self._queue.put(request)
        self.pending = True
        if self._closed:  # closed while queueing: nobody will run it
            request.done.set()
        request.done.wait()
        conn.settimeout(READ_TIMEOUT_S)
        _send(conn, request.answer)

    def run_pending(self) -> None:
        """Run every queued operation (engine thread only, between two batches)."""
        from venue.admin_ops import AccountsError, run_operation

        self.pending = False
        while True:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                return
            if request.abandoned():
                request.answer = {"ok": False, "error": "the client went away before its turn"}
                request.done.set()
                continue
            try:
                events, info = run_operation(self.venue, request.operation, request.params)
                request.answer = {"ok": True, "info": info,
                                  "events": base64.b64encode(events.tobytes()).decode("ascii")}
            except AccountsError as exc:
                request.answer = {"ok": False, "error": str(exc)}
            except BaseException as exc:  # the journal failed: the engine stops, as it would for a batch
                request.answer = {"ok": False, "error": f"the engine failed: {type(exc).__name__}: {exc}"}
                raise
            finally:
                request.done.set()

    def close(self) -> None:
        """Stop listening; requests still queued are answered 'the venue is stopping'."""
        self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self.path.unlink(missing_ok=True)
        while True:
            try:
                self._queue.get_nowait().done.set()
            except queue.Empty:
                break
        self._thread.join(timeout=ANSWER_TIMEOUT_S)


# ---------------------------------------------------------------------------- client side


def request(config: VenueConfig, operation: str, params: dict[str, Any],
            timeout: float = ANSWER_TIMEOUT_S) -> tuple[np.ndarray, dict[str, Any]]:
    """Run an admin operation in the running engine; returns (its events, its info). An operation the
    engine refused raises AccountsError with the engine's reason; no engine answering, a VenueError."""
    from venue.admin_ops import AccountsError
    from venue.engine_service import run_dir

    path = run_dir(config) / ADMIN_SOCKET
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except OSError as exc:
            raise VenueError(f"the venue is running (its journal {config.journal.path} is in use) but its "
                             f"engine does not answer on {path}: {exc.strerror or exc}") from None
        try:
            _send(sock, {"operation": operation, "params": params})
            answer = _receive(sock)
        except (OSError, AdminProtocolError) as exc:
            raise VenueError(f"the engine did not answer the admin request on {path} ({exc}); if it "
                             f"was still queued it is dropped, if it was running it may have been "
                             f"applied without a key: check `venue accounts list` (then `venue accounts "
                             f"key add`)") from None
    finally:
        sock.close()
    if not answer.get("ok"):
        raise AccountsError(str(answer.get("error", "the engine refused the request")))
    events = np.frombuffer(base64.b64decode(answer["events"]), dtype=EVENT_DTYPE).copy()
    return events, answer.get("info", {})
