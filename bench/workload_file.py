"""--workload FILE: a `venue match` JSONL file decoded into commands before any clock starts.

Parsing and conversion are venue.match's and venue.edge's own (parse_line, instrument_from_request,
Edge.encode); this only drives them without an engine. An instrument line is registered as soon as
it is read, as if the engine accepted it (the edge validates definitions as the engine does), so the
orders after it convert with its tick and lot sizes. Lines that yield no command are counted and
skipped, as `venue match` does.
"""

from __future__ import annotations

import numpy as np

from bench.workload import Workload
from core_cython.records import COMMAND_DTYPE, new_commands


class WorkloadFileError(Exception):
    """A workload file that cannot be used at all (one line)."""


def load_workload_file(path: str) -> Workload:
    from venue.edge import Edge, RequestError
    from venue.match import MatchError, instrument_from_request, parse_line, read_lines

    edge = Edge()
    cmds = new_commands(1024)
    n = bad = instruments = 0
    try:
        for text in read_lines(path):
            if not text.strip():
                continue
            if n == cmds.size:
                cmds = np.concatenate([cmds, new_commands(cmds.size)])
            try:
                request = parse_line(text)
                if request.get("op") == "instrument":
                    instrument = instrument_from_request(request)
                    edge.define_instrument(cmds[n], instrument)
                    if instrument.symbol not in edge.instruments:
                        edge.instrument_added(instrument)
                        instruments += 1
                else:
                    edge.encode(cmds[n], request)  # a NEW with a bad field still becomes a command
            except RequestError:
                cmds[n] = 0  # the slot may be half filled
                bad += 1
                continue
            n += 1
    except MatchError as exc:
        raise WorkloadFileError(str(exc)) from None
    if n == 0:
        raise WorkloadFileError(f"{path} holds no usable request")
    return Workload(
        setup=np.zeros(0, dtype=COMMAND_DTYPE),
        commands=np.ascontiguousarray(cmds[:n]),
        source=path,
        instruments=instruments,
        counts={"commands": n, "bad_lines": bad},
    )
