"""End to end through the SBE gateway: `venue loadgen` against a venue started like `venue run`
(engine process + gateway process, rings in /dev/shm, a fresh journal in a temporary directory),
on loopback. Round trip = NewOrder planned send time -> first answer received by the client.

Everything shares the machine's 2 cores: the load generator, the gateway and the engine.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.loadgen import Credential, LoadgenResult, run_loadgen
from venue.config import VenueConfig, load_config
from venue.keys import KeyStore

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "config" / "venue.toml"


@dataclass
class E2EResult:
    label: str
    durability: str
    sessions: int
    rate: float
    duration: float
    seed: int
    loadgen: dict[str, Any]
    engine: dict[str, Any]  # the engine's final report: commands, batches, seqs
    gateway_restarts: int
    overrides: list[str]
    client: dict[str, Any]  # the load generator's own options (busy_poll, cpus)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def latency_us(self) -> dict[str, float]:
        return self.loadgen["latency_us"]

    @property
    def answered_per_s(self) -> float:
        return self.loadgen["answer_rate"]


def e2e_config(directory: Path, durability: str, sessions: int, extra: list[str] = ()) -> VenueConfig:
    return load_config(SHIPPED_CONFIG, [
        f"journal.path={directory / 'journal'}", f"journal.durability={durability}",
        f"keys.path={directory / 'keys'}", f"demo.accounts={sessions}", "sbe.port=0",
        "sbe.throttle_per_s=0",  # the benchmark offers more than a client is normally allowed
        "sbe.log_sessions=false",
        "accounts.max_open_orders=100000", "journal.snapshot_interval=0", *extra])


def run_e2e(label: str, *, durability: str = "async", sessions: int = 4, rate: float = 10_000.0,
            duration: float = 10.0, seed: int = 42, extra: list[str] = (), busy_poll: bool = False,
            client_cpus: str = "") -> E2EResult:
    from venue.supervisor import temporary_venue

    directory = Path(tempfile.mkdtemp(prefix="venue-e2e-"))
    config = e2e_config(directory, durability, sessions, list(extra))
    log: list[str] = []
    try:
        with temporary_venue(config, log.append) as (supervisor, ready, gateway):
            credentials = []
            with KeyStore.open(config.keys.path) as store:
                for account in ready["demo_accounts"].values():
                    record, secret = store.create_key(account, label="bench")
                    credentials.append(Credential(account=account, key_id=record.key_id, secret=secret))
            instrument = config.instruments[0]
            mid = instrument.to_ticks(config.demo.mid[instrument.symbol])
            result: LoadgenResult = run_loadgen(
                port=gateway["port"], credentials=credentials, sessions=sessions, rate=rate,
                duration=duration, seed=seed, mid_ticks=mid, symbol_id=ready["symbol_ids"][instrument.symbol],
                busy_poll=busy_poll, cpus=client_cpus)
            restarts = supervisor.gateways[0].restarts
        final = supervisor.engine_final  # the engine's report, collected by stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return E2EResult(label, durability, sessions, rate, duration, seed, result.as_dict(), final, restarts,
                     list(extra), {"busy_poll": busy_poll, "cpus": client_cpus})

