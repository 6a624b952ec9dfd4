"""Starting and watching the venue's processes (`venue run`).

    engine   (venue.engine_service.engine_main)  one; if it dies the venue stops (failover: a later part)
    gateways (sbe_gateway.server.gateway_main)   restarted when they die, on the same port

Processes are started with the 'spawn' method: each is a fresh interpreter with its own memory, as
it would be on separate hosts; they share only the rings in /dev/shm and the files on disk. Each
child reports readiness (or its startup error) over a pipe; Ctrl-C / SIGTERM stop the gateways
first (their sessions get a Logout), then the engine (it finishes its batch and flushes the journal).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from venue.bootstrap import VenueError
from venue.config import VenueConfig

START_TIMEOUT_S = 600.0  # recovery of a large journal takes a while; the engine reports when ready
GATEWAY_START_TIMEOUT_S = 30.0
STABLE_S = 60.0  # a gateway that stayed up this long starts its restart backoff afresh
STOP_TIMEOUT_S = 30.0
RESTART_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)  # a gateway crashing in a loop is restarted less often


class StopSignal:
    """A flag that SIGINT and SIGTERM set (instead of raising mid-commit); false until set."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def __bool__(self) -> bool:
        return self.reason is not None

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.set(signal.Signals(signum).name)

    @contextmanager
    def installed(self) -> Iterator[StopSignal]:
        """For the supervisor: Ctrl-C and SIGTERM both stop the venue, in order."""
        previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def install_in_child(self) -> StopSignal:
        """For a supervised process: SIGTERM stops it; Ctrl-C (sent to the whole process group) is
        ignored, because the supervisor stops its children one by one, in order."""
        signal.signal(signal.SIGTERM, self.handle)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return self


@dataclass
class Child:
    name: str
    target: Callable[..., None]
    args: tuple[Any, ...]
    process: Any = None
    conn: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0
    failures: int = 0  # restarts since it was last up for STABLE_S
    next_restart: float = 0.0
    started: float = 0.0


class Supervisor:
    def __init__(self, config: VenueConfig, log: Callable[[str], None]) -> None:
        self.config = config
        self.log = log
        self.ctx = multiprocessing.get_context("spawn")
        self.engine: Child | None = None
        self.gateways: list[Child] = []
        self.engine_final: dict[str, Any] = {}
        self.started = time.monotonic()

    # ---------------------------------------------------------------- starting

    def _start(self, child: Child, timeout_s: float) -> dict[str, Any]:
        """Start child.target(*child.args, ready_pipe) and wait for its ("ready", info) report."""
        parent_end, child_end = self.ctx.Pipe(duplex=False)
        child.process = self.ctx.Process(target=child.target, args=(*child.args, child_end), name=child.name)
        child.process.start()
        child_end.close()
        child.conn = parent_end
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if parent_end.poll(0.05):
                try:
                    kind, info = parent_end.recv()
                except (EOFError, OSError):  # it died before saying anything
                    break
                if kind == "ready":
                    child.info = info
                    child.started = time.monotonic()
                    return info
                child.process.join(STOP_TIMEOUT_S)
                # the engine's message is the user's problem as it stands (a journal in the wrong mode...)
                raise VenueError(info if child is self.engine else f"{child.name} failed to start: {info}")
            if not child.process.is_alive():
                break
        if child.process.is_alive():  # hung in startup: do not leave it behind
            child.process.kill()
        child.process.join(STOP_TIMEOUT_S)
        raise VenueError(f"{child.name} did not start (exit code {child.process.exitcode})")

    def start_engine(self) -> dict[str, Any]:
        from venue.engine_service import engine_main

        self.engine = Child("engine", engine_main, (self.config,))
        return self._start(self.engine, START_TIMEOUT_S)

    def start_gateway(self, gateway_id: int, target: Callable[..., None], *,
                      port: int | None = None) -> dict[str, Any]:
        """target(config, gateway_id, port, ready): e.g. sbe_gateway.server.gateway_main."""
        child = Child(f"sbe gateway {gateway_id}", target, (self.config, gateway_id, port))
        self.gateways.append(child)
        return self._start(child, GATEWAY_START_TIMEOUT_S)

    # ---------------------------------------------------------------- watching

    def check(self) -> str | None:
        """Restart dead gateways; returns a message if the engine is gone (the venue must stop)."""
        engine = self.engine
        if engine is not None and not engine.process.is_alive():
            self._collect_engine_messages()
            return (f"the engine process exited unexpectedly (exit code {engine.process.exitcode}); "
                    f"stopping the venue (its journal holds everything it acknowledged)")
        now = time.monotonic()
        for child in self.gateways:
            if child.process.is_alive():
                continue
            if child.next_restart == 0.0:
                if now - child.started >= STABLE_S:
                    child.failures = 0  # it had been fine for a while: restart at once
                delay = RESTART_BACKOFF_S[min(child.failures, len(RESTART_BACKOFF_S) - 1)]
                child.failures += 1
                child.next_restart = now + delay
                self.log(f"{child.name} exited (exit code {child.process.exitcode}); "
                         f"restarting in {delay:g} s")
            elif now >= child.next_restart:
                child.restarts += 1
                child.next_restart = 0.0
                try:
                    child.args = (self.config, child.args[1], child.info.get("port"))  # the same port again
                    info = self._start(child, GATEWAY_START_TIMEOUT_S)
                except VenueError as exc:
                    self.log(f"{exc}; will retry")
                    child.next_restart = now + RESTART_BACKOFF_S[-1]
                    continue
                self.log(f"{child.name} restarted (pid {info['pid']}), "
                         f"listening on {info['host']}:{info['port']}")
        return None

    def children(self) -> list[Child]:
        return ([self.engine] if self.engine else []) + list(self.gateways)

    def gateway_ids(self) -> list[int]:
        return [child.args[1] for child in self.gateways]

    def sentinels(self) -> list[Any]:
        return [c.process.sentinel for c in self.children() if c.process is not None]

    def wait(self, timeout: float) -> None:
        """Sleep until a child exits or timeout passes."""
        multiprocessing.connection.wait(self.sentinels(), timeout)

    # ---------------------------------------------------------------- stopping

    def _collect_engine_messages(self) -> None:
        engine = self.engine
        if engine is None or engine.conn is None:
            return
        try:
            while engine.conn.poll(0):
                kind, info = engine.conn.recv()
                if kind == "stopped":
                    self.engine_final = info
        except (EOFError, OSError):
            pass

    def stop(self) -> dict[str, Any]:
        """Gateways first, then the engine; returns the engine's final report (seqs, state hash)."""
        for child in self.gateways:
            if child.process is not None and child.process.is_alive():
                child.process.terminate()
        for child in self.gateways:
            if child.process is not None:
                child.process.join(STOP_TIMEOUT_S)
                if child.process.is_alive():
                    child.process.kill()
        engine = self.engine
        if engine is not None and engine.process is not None:
            if engine.process.is_alive():
                engine.process.terminate()
                engine.process.join(STOP_TIMEOUT_S)
                if engine.process.is_alive():
                    self.log("the engine did not stop in time; killing it "
                             "(the journal recovers on the next start)")
                    engine.process.kill()
                    engine.process.join()
            self._collect_engine_messages()
        return self.engine_final


@contextmanager
def temporary_venue(config: VenueConfig, log: Callable[[str], None]
                    ) -> Iterator[tuple[Supervisor, dict[str, Any], dict[str, Any]]]:
    """Engine + SBE gateway 1 for tests and benchmarks: yields (supervisor, engine ready info,
    gateway ready info); stops both and removes the run directory (its rings) afterwards."""
    from sbe_gateway.server import gateway_main
    from venue.engine_service import run_dir

    supervisor = Supervisor(config, log)
    try:
        ready = supervisor.start_engine()
        gateway = supervisor.start_gateway(1, gateway_main, port=config.sbe.port)
        yield supervisor, ready, gateway
    finally:
        supervisor.stop()
        shutil.rmtree(run_dir(config), ignore_errors=True)
