"""A real venue for tests: engine and SBE gateway processes (venue.supervisor), funded accounts with
API keys, in a temporary directory. Nothing is faked: the processes, rings, LMDB files and TCP
sessions are those `venue run` uses.

    with running_venue(tmp_path, ["sbe.throttle_per_s=50"]) as v:
        client = v.client("demo-1")          # connected and logged on
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbe_gateway.client import SbeClient
from sbe_schemas import codecs
from venue.config import VenueConfig, load_config
from venue.keys import MASTER_KEY_ENV, KeyStore
from venue.supervisor import Supervisor, temporary_venue

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "venue.toml"
ENTRY = Path(sys.executable).parent / "venue"  # .venv/bin/venue, the installed console script


# Client order ids for tests: unique across the test modules of a run, and above any id an earlier
# run left in a journal a test reopens (the base follows the clock).
_cl_ord_ids = iter(range(int(time.time()) % 100_000 * 1000 + 1, 1 << 40))


def next_id() -> int:
    return next(_cl_ord_ids)


def frame(template: int, block: bytes, *, schema: int = 4201, version: int = codecs.SCHEMA_VERSION,
          encoding: int = 0xEB50,
          length: int | None = None, groups: bytes = b"") -> bytes:
    """A raw SBE frame (SOFH + message header + block + groups), right or wrong as asked."""
    body = struct.pack("<HHHH", len(block), template, schema, version) + block + groups
    return struct.pack(">IH", length if length is not None else 6 + len(body), encoding) + body


# `venue run` in tests takes any free ports: the suite must pass beside a running venue (or suite).
FREE_PORTS = ("--port", "0", "--set", "metrics.port=0")


def venue_cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`venue ARGS...` in a subprocess, as an operator runs it (no master key in the environment:
    the key store's master.key file is used); `venue run` gets FREE_PORTS."""
    env = {k: v for k, v in os.environ.items() if k != MASTER_KEY_ENV}
    env["PYTHONPATH"] = str(ROOT)
    command = [str(ENTRY)] if ENTRY.exists() else [sys.executable, "-m", "venue"]
    if args[:1] == ("run",):
        args = (*args, *FREE_PORTS)
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def wait_until_stopped(pid: int, timeout: float = 5.0) -> None:
    """After SIGSTOP: a signal lands when the process next runs, not at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                return
        time.sleep(0.001)
    raise TimeoutError(f"process {pid} did not stop")


@dataclass
class RunningVenue:
    config: VenueConfig
    supervisor: Supervisor
    port: int
    accounts: dict[str, int]  # demo account name -> id
    symbols: dict[str, int]
    keys: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # name -> (key id, secret)
    log: list[str] = field(default_factory=list)
    clients: list[SbeClient] = field(default_factory=list)

    def new_key(self, name: str, **options: Any) -> tuple[int, bytes]:
        with KeyStore.open(self.config.keys.path) as store:
            record, secret = store.create_key(self.accounts[name], **options)
        return record.key_id, secret

    def connect(self) -> SbeClient:
        client = SbeClient.connect("127.0.0.1", self.port)
        self.clients.append(client)
        return client

    def close_clients(self) -> None:
        """Log every open client out (waiting for the venue's Logout, so its key is free again)."""
        for client in self.clients:
            try:
                client.logout()
                client.wait_for(lambda m: m["template"] == "Logout", timeout=2.0)
            except (OSError, TimeoutError):
                pass
            client.close()
        self.clients.clear()

    def client(self, name: str, **logon: Any) -> SbeClient:
        client = self.connect()
        client.logon(*self.keys[name], **logon)
        return client


def venue_config(tmp_path: Path, overrides: list[str] = ()) -> VenueConfig:
    return load_config(CONFIG, [f"journal.path={tmp_path / 'journal'}", "journal.durability=async",
                                f"keys.path={tmp_path / 'keys'}", "demo.accounts=3", "sbe.port=0",
                                "engine.command_ring_slots=1024", "engine.outcome_ring_slots=4096",
                                *overrides])


@contextmanager
def running_venue(tmp_path: Path, overrides: list[str] = ()) -> Iterator[RunningVenue]:
    config = venue_config(tmp_path, list(overrides))
    log: list[str] = []
    with temporary_venue(config, log.append) as (supervisor, ready, gateway):
        venue = RunningVenue(config, supervisor, gateway["port"], ready["demo_accounts"], ready["symbol_ids"],
                             log=log)
        for name in venue.accounts:
            venue.keys[name] = venue.new_key(name)
        yield venue
        venue.close_clients()
