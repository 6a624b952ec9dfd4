"""Human-readable output of a bench run, each target printed beside its measured value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    name: str
    unit: str
    threshold: float
    higher_is_better: bool

    def met(self, value: float) -> bool:
        return value >= self.threshold if self.higher_is_better else value < self.threshold

    def describe(self) -> str:
        return f"{'>=' if self.higher_is_better else '<'} {fmt_num(self.threshold)} {self.unit}"

    def verdict(self, value: float) -> dict[str, Any]:
        return {"target": self.describe(), "measured": value, "met": self.met(value)}


ENGINE_TARGET = Target("engine alone", "commands/s", 1_000_000, True)
JOURNAL_SYNC_TARGET = Target("journal sync group commit", "events/s", 300_000, True)
RECOVERY_TARGET = Target("recovery", "s per 1,000,000 events", 3.0, False)
RING_TARGET = Target("ring buffer, one producer", "messages/s", 5_000_000, True)
E2E_LATENCY_TARGET = Target("SBE round trip p99 at 10,000 orders/s", "us", 100, False)
E2E_THROUGHPUT_TARGET = Target("SBE orders answered, 4 sessions", "orders/s", 100_000, True)


def fmt_num(x: float) -> str:
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.2f}" if abs(x) < 100 else f"{x:,.0f}"


def fmt_ns(ns: int) -> str:
    """ns with a readable unit: the spread of percentiles covers several orders of magnitude."""
    if ns < 1_000:
        return f"{ns} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.1f} us"
    return f"{ns / 1e6:,.2f} ms"


def fmt_latency(lat: dict[str, int]) -> str:
    return "  ".join(f"{k} {fmt_ns(v)}" for k, v in lat.items())


def target_line(target: Target, value: float) -> str:
    status = "met" if target.met(value) else "NOT MET"
    return f"target {target.describe()}: measured {fmt_num(value)} {target.unit} -> {status}"


class Printer:
    """Collects the text report; `emit` is print by default, replaceable in tests."""

    def __init__(self, emit: Callable[[str], None] = print) -> None:
        self.emit = emit

    def header(self, machine: dict[str, Any], config: dict[str, Any]) -> None:
        self.emit("venue bench")
        self.emit(f"  {'machine':<22}: {machine['cpu']}, {machine['cores']} cores "
                  f"({machine['usable_cores']} usable), {machine['python']}, {machine['os']}")
        idle = machine.get("idle")
        if idle:
            poll = idle["halt_poll_ns"]
            self.emit(f"  {'idle CPUs':<22}: cpuidle {idle['driver']}, governor {idle['governor']}"
                      + ("" if poll is None else f", guest halt polling {poll:,} ns"))
        for key, value in config.items():
            self.emit(f"  {key:<22}: {value}")

    def section(self, title: str) -> None:
        self.emit("")
        self.emit(title)

    def line(self, label: str, text: str) -> None:
        self.emit(f"  {label:<12} {text}")

    def table(self, headings: list[str], rows: list[tuple[str, list[str]]], label_width: int = 32,
              width: int = 25) -> None:
        """Side by side: one column per heading, a label and one cell per column on each row."""
        self.emit(f"  {'':<{label_width}}" + "".join(f"{h:>{width}}" for h in headings))
        for label, cells in rows:
            self.emit(f"  {label:<{label_width}}" + "".join(f"{c:>{width}}" for c in cells).rstrip())
