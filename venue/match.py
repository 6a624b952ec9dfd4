"""`venue match`: the engine alone (no journal) over a JSONL file of requests.

Input, one JSON object per line (see venue.edge for the fields of each op):
    {"op":"instrument","symbol":"BTC-USDT","base":"BTC","quote":"USDT","tick_size":"0.01","lot_size":"0.0001"}
    {"op":"new","id":"o1","account":"a1","symbol":"BTC-USDT","side":"buy","type":"limit","price":"100.00",
     "qty":"1.5","tif":"gtc"}
    {"op":"cancel","id":"o1"}   {"op":"replace","id":"o1","price":"101.00","qty":"2"}
    {"op":"mass_cancel","account":"a1","symbol":"BTC-USDT"}
Output: one JSON event per line, in event seq order. A line that cannot be used is reported on
stderr as `FILE:LINE: problem` and the run goes on; a NEW with an id still gets its REJECTED(MALFORMED)
event. Requests go to Engine.process in batches; an instrument line ends the batch so that the
orders after it are converted with the instrument the engine actually accepted. An instrument line
is checked in full (fields, ts, and in funds mode its assets) before it ends the batch, so a bad one
is reported and skipped without touching the requests queued before it.

`--funds` runs the engine in funds mode: the config's [[assets]] are defined first (their APPLIED
events open the output), then the input may also hold the money and admin ops of venue.money
(deposit, withdraw_*, transfer, adjust, set_fees, ...). An account is created with the config's
[accounts] defaults the first time a deposit or an order names it. Balance changes come out as
`posting` events with decimal amounts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from core_cython.records import EVENT_DTYPE, EventType, new_commands
from venue.edge import FIELDS_BY_OP, Edge, RequestError, request_ts
from venue.instruments import Instrument, InstrumentError

if TYPE_CHECKING:
    from venue.config import VenueConfig

DEFAULT_BATCH = 4096
EVENT_TYPE = EVENT_DTYPE.names.index("type")  # positions in an events.tolist() tuple
EVENT_CMD_SEQ = EVENT_DTYPE.names.index("cmd_seq")
_ECHO_REQUEST = (int(EventType.REJECTED), int(EventType.APPLIED))  # events decoded with their request


class MatchError(Exception):
    """A problem that stops the run (one line)."""


@dataclass
class MatchStats:
    lines: int = 0
    commands: int = 0
    events: int = 0
    bad_lines: int = 0


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


# Reused: json.loads / json.dumps with options build a new decoder / encoder on every call.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_no_constants)
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def parse_line(text: str) -> dict[str, Any]:
    """One JSON object; numbers with a fraction become Decimal (never float), NaN/Infinity fail."""
    try:
        value = _DECODER.decode(text)
    except ValueError as exc:
        raise RequestError(f"bad JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RequestError("a request must be a JSON object")
    return value


def instrument_from_request(request: dict[str, Any]) -> Instrument:
    """The definition of an instrument line; RequestError for bad fields or a bad `ts`."""
    required, optional = FIELDS_BY_OP["instrument"]
    missing = sorted(required - set(request))
    if missing:
        raise RequestError(f"instrument: missing field {missing[0]!r}")
    unknown = sorted(set(request) - required - optional - {"op"})
    if unknown:
        raise RequestError(f"instrument: unknown field {unknown[0]!r}")
    request_ts(request)
    fields = {k: v for k, v in request.items() if k not in ("op", "ts")}
    try:
        return Instrument.define(**fields)
    except InstrumentError as exc:
        raise RequestError(f"instrument: {exc}") from None


class Matcher:
    """Feeds requests to an engine in batches and turns its events into dicts, in seq order."""

    def __init__(self, engine: Any, edge: Edge | None = None, *, batch_size: int = DEFAULT_BATCH) -> None:
        self.engine = engine
        self.edge = edge or Edge()
        self.batch_size = batch_size
        self.stats = MatchStats()
        # One spare slot: a request may bring two commands (an account's creation, then the request).
        self._cmds = new_commands(batch_size + 1)
        self._requests: list[Mapping[str, Any]] = []  # the request of each queued command

    def feed(self, request: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        """Queue one request; returns (events of any batch this completed, a problem to report).

        Raises RequestError for a request that yields no command.
        """
        if request.get("op") == "instrument":
            # Built and checked in full first: a bad line must not cost the queued requests their events.
            instrument, command = self._instrument_command(request)
            events = self.flush()
            return events + self._define(instrument, command, request), None
        records, problem = self.edge.encode_records(request)
        for record, origin in records:
            self._cmds[len(self._requests)] = record
            self._requests.append(origin)
        events = self.flush() if len(self._requests) >= self.batch_size else []
        return events, problem

    def flush(self) -> list[dict[str, Any]]:
        """Process the queued requests; their events as dicts."""
        count = len(self._requests)
        if count == 0:
            return []
        batch = self._cmds[:count]
        events = self._process(batch, self._requests)
        self._cmds = new_commands(self.batch_size + 1)
        self._requests = []
        return events

    def _process(self, batch: np.ndarray, requests: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        self.engine.process(batch)
        raw = self.engine.events()
        self.stats.commands += len(batch)
        self.stats.events += len(raw)
        self.edge.observe(raw)
        first_seq = int(batch[0]["seq"])
        out = []
        for event in raw.tolist():
            kind, cmd_seq = event[EVENT_TYPE], event[EVENT_CMD_SEQ]
            request = requests[cmd_seq - first_seq] if kind in _ECHO_REQUEST else None
            out.append(self.edge.decode(event, request))
        return out

    def _instrument_command(self, request: dict[str, Any]) -> tuple[Instrument, np.ndarray]:
        """An instrument line as its ADD_INSTRUMENT command (a batch of one); RequestError if unusable.

        Queued requests cannot change the outcome: their assets are registered as they are encoded,
        and only an instrument line (which flushes first) adds an instrument.
        """
        instrument = instrument_from_request(request)
        batch = new_commands(1)
        try:
            self.edge.define_instrument(batch[0], instrument)
        except InstrumentError as exc:  # funds mode: its assets are unknown or coarser than its grid
            raise RequestError(f"instrument: {instrument.symbol}: {exc}") from None
        batch[0]["ts"] = request_ts(request)
        return instrument, batch

    def _define(self, instrument: Instrument, batch: np.ndarray,
                request: dict[str, Any]) -> list[dict[str, Any]]:
        events = self._process(batch, [request])
        if any(e["type"] == "instrument_added" for e in events):
            self.edge.instrument_added(instrument)
            # decoded before the registry knew the symbol id
            events = [dict(e, symbol=instrument.symbol) for e in events]
        return events

    def books(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        return {instrument.symbol: self.edge.book(self.engine, symbol_id)
                for symbol_id, instrument in self.edge.instruments}


def read_lines(path: str) -> Iterator[str]:
    if path == "-":
        yield from sys.stdin
        return
    try:
        handle = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise MatchError(f"input file {path} not found") from None
    except OSError as exc:
        raise MatchError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        yield from handle


def run_match(
    lines: Iterable[str],
    out: TextIO,
    *,
    engine: Any,
    batch_size: int = DEFAULT_BATCH,
    errors: TextIO = sys.stderr,
    source: str = "<input>",
    edge: Edge | None = None,
    setup: Iterable[dict[str, Any]] = (),
) -> Matcher:
    """Match the lines; `setup` requests (e.g. the config's assets) go first, as if they opened the input."""
    matcher = Matcher(engine, edge, batch_size=batch_size)

    def write(events: list[dict[str, Any]]) -> None:
        if events:
            out.write("".join(_ENCODER.encode(e) + "\n" for e in events))

    for request in setup:
        try:
            events, _problem = matcher.feed(request)
        except RequestError as exc:
            raise MatchError(f"setup request {request}: {exc}") from None
        write(events)

    for line_no, text in enumerate(lines, start=1):
        matcher.stats.lines = line_no
        text = text.strip()
        if not text:
            continue
        try:
            events, problem = matcher.feed(parse_line(text))
        except RequestError as exc:
            matcher.stats.bad_lines += 1
            print(f"{source}:{line_no}: {exc}", file=errors)
            continue
        if problem:
            matcher.stats.bad_lines += 1
            print(f"{source}:{line_no}: {problem}", file=errors)
        write(events)
    write(matcher.flush())
    return matcher


def funds_setup(config: VenueConfig) -> tuple[Edge, list[dict[str, Any]]]:
    """A funds-mode edge with the config's account defaults, and the config's assets as requests."""
    edge = Edge(funds=True, account_defaults=(config.accounts.max_open_orders, config.accounts.tier))
    return edge, [{"op": "asset", "name": a.name, "decimals": a.decimals} for a in config.assets]


def main(input_path: str, output_path: str | None, book_path: str | None, batch_size: int, *,
         funds: bool = False, config_path: str | None = None) -> int:
    """The `venue match` command; returns the exit status."""
    from core_cython.engine import Engine  # the compiled core: imported only when a run needs it

    if batch_size < 1:
        raise MatchError("--batch must be at least 1")
    if input_path != "-" and not Path(input_path).is_file():
        problem = "is not a file" if Path(input_path).exists() else "not found"
        raise MatchError(f"input file {input_path} {problem}")
    edge: Edge | None = None
    setup: list[dict[str, Any]] = []
    if funds:
        from venue.config import load_config

        edge, setup = funds_setup(load_config(config_path))
    options: dict[str, Any] = {"batch_size": batch_size, "source": input_path, "edge": edge, "setup": setup}
    lines = read_lines(input_path)
    if output_path is None:
        matcher = run_match(lines, sys.stdout, engine=Engine(funds=funds), **options)
    else:
        try:
            out = open(output_path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise MatchError(f"cannot write {output_path}: {exc.strerror}") from None
        with out:
            matcher = run_match(lines, out, engine=Engine(funds=funds), **options)
    if book_path is not None:
        try:
            Path(book_path).write_text(json.dumps(matcher.books(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise MatchError(f"cannot write {book_path}: {exc.strerror}") from None
    if matcher.stats.bad_lines:
        print(f"venue match: {matcher.stats.bad_lines} bad line(s) of {matcher.stats.lines}", file=sys.stderr)
    return 0
