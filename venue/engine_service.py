"""The engine process: command ring in, sequence + journal + match, broadcast ring out.

    gateways --Request--> commands.ring (MPSC) --> [take a batch -> JournaledEngine.submit (commit)
        -> join events with their origins] --Outcome--> outcomes.ring (SPMC) --> gateways

One thread does everything, so the engine stays single-threaded and deterministic; batching comes
from the ring itself (whatever arrived while the previous batch was being committed is the next
batch, up to max_batch), which is the group commit. Outcomes are published only after the batch's
transaction committed under the journal's durability mode: no client hears of an event that a crash
could take back. The broadcast ring never waits for a gateway: a slow one is lapped and must
disconnect its sessions (sbe_gateway.server), the engine goes on.

The rings live in a run directory in /dev/shm named after the journal, so two venues on one machine
(or two tests) never share rings, and a restarted engine or gateway finds the same files; `venue
run` removes that directory after a clean stop (remove_run_dir).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

from core_cython.broadcast import Broadcast
from core_cython.envelope import OUTCOME_SIZE, REQUEST_SIZE, BatchIO
from core_cython.records import new_commands
from core_cython.ring import WAIT_STRATEGIES, Ring
from venue.config import VenueConfig
from venue.counter_page import PUBLISH_NS, CounterPage
from venue.cpu import use_cpus, use_rt_priority
from venue.metrics import ENGINE_COUNTERS, ENGINE_PAGE
from venue.supervisor import StopSignal

COMMANDS_RING = "commands.ring"
OUTCOMES_RING = "outcomes.ring"
IDLE_WAIT_NS = 50_000_000  # an idle engine wakes this often to see a stop


def run_dir(config: VenueConfig) -> Path:
    """Where this venue's rings live: configured, else /dev/shm/venue-<hash of the journal path>."""
    if config.engine.run_dir:
        return Path(config.engine.run_dir)
    journal = os.path.realpath(config.journal.path)
    tag = hashlib.blake2b(journal.encode(), digest_size=6).hexdigest()
    base = "/dev/shm" if os.path.isdir("/dev/shm") else os.environ.get("TMPDIR", "/tmp")
    return Path(base) / f"venue-{tag}"


def remove_run_dir(config: VenueConfig) -> None:
    """After a clean stop (the engine drained the command ring, no gateway is left): the default run
    directory is ours alone and takes memory in /dev/shm, so it goes; a configured one stays."""
    if not config.engine.run_dir:
        shutil.rmtree(run_dir(config), ignore_errors=True)


class EngineService:
    """Owns the rings and drives the journaled engine from them (one thread)."""

    def __init__(self, engine: Any, config: VenueConfig) -> None:
        settings = config.engine
        self.engine = engine  # journal.JournaledEngine, recovered and bootstrapped
        self.config = config
        self.max_batch = settings.max_batch
        self.wait = settings.wait_strategy
        self.spin_ns = int(settings.spin_us * 1000)
        self.dir = run_dir(config)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)  # the rings carry every account's orders: the venue's user only
        # The command ring survives an engine restart (gateways stay attached and their pending
        # requests are taken); the outcome ring is re-created (new epoch): readers re-attach.
        commands = self.dir / COMMANDS_RING
        self.commands = self._open_command_ring(commands, settings.command_ring_slots)
        self.outcomes = Broadcast.create(str(self.dir / OUTCOMES_RING), settings.outcome_ring_slots,
                                         OUTCOME_SIZE)
        self._cmds = new_commands(self.max_batch)
        self._io = BatchIO(self.commands, self.outcomes, self._cmds, self.max_batch)
        self._strategy = WAIT_STRATEGIES.index(self.wait)
        # Prometheus (venue/metrics.py): BatchIO counts, copied to the shared page now and then
        self.page = CounterPage(self.dir / ENGINE_PAGE, ENGINE_COUNTERS)
        self._next_page_ns = 0

    @staticmethod
    def _open_command_ring(path: Path, slots: int) -> Ring:
        if path.exists():
            try:
                ring = Ring.attach(str(path))
                if ring.capacity == slots and ring.slot_size == REQUEST_SIZE:
                    return ring
                ring.close()
            except ValueError:
                pass  # another layout or version: start a new one
        return Ring.create(str(path), slots, REQUEST_SIZE)

    def step(self, timeout_ns: int = IDLE_WAIT_NS) -> int:
        """Take one batch (waiting up to timeout_ns), apply, commit, publish; returns commands done."""
        io = self._io
        n = io.take(timeout_ns, self._strategy, self.spin_ns)
        if n == 0:
            self.publish_counters()  # idle: the page catches up (an async journal fsyncs off this thread)
            return 0
        engine = self.engine
        events = engine.submit(self._cmds[:n], time.time_ns())  # committed when it returns
        # The batch's commands are the engine's last n (the journal checked that they are gap-free).
        io.publish(events, engine.last_cmd_seq - n + 1)
        if io.published_ns >= self._next_page_ns:
            self._next_page_ns = io.published_ns + PUBLISH_NS
            self.publish_counters()
        return n

    @property
    def stats(self) -> BatchIO:
        """Counts of what was done: .batches, .commands_done, .events_done, .outcomes_done, .refused."""
        return self._io

    def publish_counters(self) -> None:
        """Copy the counts to the shared counter page (order: venue.metrics.ENGINE_COUNTERS)."""
        self.page.set((*self._io.counters(), self.engine.last_cmd_seq, self.engine.last_event_seq))

    def drain(self) -> int:
        """Apply whatever is still in the command ring (at a clean stop, after the gateways stopped:
        their last requests include their sessions' cancel-on-disconnect). Returns commands done."""
        done = 0
        while (n := self.step(timeout_ns=0)) > 0:
            done += n
        return done

    def discard_leftovers(self) -> int:
        """At a fresh start: requests left in the ring by a previous run that crashed belong to
        sessions that no longer exist; executing them now, maybe hours later, would surprise
        everyone. Returns how many were dropped (the caller logs it)."""
        dropped = 0
        raw = bytearray(self.max_batch * REQUEST_SIZE)
        while (n := self.commands.take(raw, timeout_ns=0, wait="spin")) > 0:
            dropped += n
        return dropped

    def serve(self, stop: Any, admin: Any = None) -> None:
        """Run until `stop` is truthy (checked between batches); between two batches, run the admin
        operations queued on `admin` (a venue.admin_channel.AdminChannel), if any."""
        step = self.step
        while not stop:
            step()
            if admin is not None and admin.pending:
                admin.run_pending()

    def close(self) -> None:
        self.publish_counters()
        self.page.close()
        self.outcomes.close()
        self.commands.close()


def engine_main(config: VenueConfig, ready: Any) -> None:
    """Entry point of the engine process (multiprocessing target).

    Opens and bootstraps the journal (recovery included), creates the rings, then sends
    ("ready", details) on `ready` (a multiprocessing Connection) and serves until SIGTERM/SIGINT;
    the journal is flushed and closed on the way out. A startup failure is sent as ("error", text).
    """
    from venue.admin import hold_engine_lock
    from venue.admin_channel import AdminChannel
    from venue.run import open_venue, prepare_demo_accounts  # the compiled engine only loads here

    stop = StopSignal().install_in_child()
    try:
        use_cpus(config.engine.cpus)  # first: the journal's flusher thread inherits it
        lock = hold_engine_lock(config.journal.path)  # admin commands see that the venue is running
        with lock, open_venue(config) as venue:
            created, demo_accounts = prepare_demo_accounts(venue, config)
            service = EngineService(venue.engine, config)
            admin = AdminChannel.open(service.dir, venue)  # its thread starts before any real-time priority
            try:
                use_rt_priority(config.engine.rt_priority)
                leftovers = service.discard_leftovers()
            except BaseException:
                admin.close()  # no admin.sock left behind by an engine that never served
                raise
            try:
                ready.send(("ready", {
                    "pid": os.getpid(), "run_dir": str(service.dir), "recovered_at": venue.recovered_at,
                    "instruments": [i.symbol for _, i in venue.edge.instruments],
                    "newly_defined": venue.newly_defined, "demo_accounts_created": created,
                    "demo_accounts": demo_accounts,
                    "symbol_ids": {i.symbol: symbol for symbol, i in venue.edge.instruments},
                    # client order ids of the demo: above any earlier run's (each used one command)
                    "next_order": venue.engine.last_cmd_seq + 1,
                    "discarded_requests": leftovers,
                }))
                service.serve(stop, admin)
                service.drain()
            finally:
                admin.close()
                service.close()
                venue.engine.flush()
                ready.send(("stopped", {
                    "reason": stop.reason, "cmd_seq": venue.engine.last_cmd_seq,
                    "event_seq": venue.engine.last_event_seq, "state_hash": venue.engine.state_hash(),
                    "commands": service.stats.commands_done, "batches": service.stats.batches,
                }))
    except Exception as exc:  # reported to the supervisor, which prints it and stops the venue
        from journal.errors import JournalError
        from venue.bootstrap import VenueError
        from venue.config import ConfigError

        # The user's problems read as they would in-process; anything else names its type.
        known = isinstance(exc, (JournalError, VenueError, ConfigError, OSError))
        try:
            ready.send(("error", str(exc) if known else f"{type(exc).__name__}: {exc}"))
        except OSError:
            pass
        raise SystemExit(1) from None
