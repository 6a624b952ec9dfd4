"""`venue journal inspect|replay|verify PATH`: readable output over journal.tools (read-only)."""

from __future__ import annotations

import sys
from typing import Any

EXIT_OK = 0
EXIT_DAMAGED = 1


def main(tool: str, path: str, *, progress: bool = True) -> int:
    from journal import tools  # imports the compiled engine: only when a tool runs

    # A progress bar only for a person watching: never garbles a log or a pipe.
    progress = progress and sys.stderr.isatty()
    if tool == "inspect":
        print_inspection(tools.inspect(path))
        return EXIT_OK
    if tool == "replay":
        print(f"state hash {tools.replay(path, progress=progress)}")
        return EXIT_OK
    if tool == "verify":
        report = tools.verify(path, progress=progress)
        print_verification(report.to_dict())
        return EXIT_OK if report.ok else EXIT_DAMAGED
    raise ValueError(f"unknown journal tool {tool!r}")  # argparse only lets known tools through


def _seq_line(summary: dict[str, Any]) -> str:
    if summary.get("first_seq") is None:
        return "none"
    line = (f"seq {summary['first_seq']:,}..{summary['last_seq']:,}  ({summary['count']:,} in "
            f"{summary['batches']:,} batches)")
    if summary.get("gaps"):
        line += f"  {summary['gaps']} GAP(S)"
    return line


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def print_inspection(info: dict[str, Any]) -> None:
    print(f"journal     {info['path']}")
    print(f"format      v{info.get('format_version')}, durability {info.get('durability')}")
    size = f"{_size(info.get('file_size'))} on disk"
    if info.get("map_size"):
        size += f" (map {_size(info['map_size'])})"
    print(f"size        {size}")
    print(f"commands    {_seq_line(info['commands'])}")
    print(f"events      {_seq_line(info['events'])}")
    snapshots = info.get("snapshots") or []
    print(f"snapshots   {len(snapshots)}")
    for snap in snapshots:
        if "error" in snap:
            print(f"  DAMAGED   {snap['error']}")
        else:
            print(f"  cmd seq {snap['cmd_seq']:,}  event seq {snap['last_event_seq']:,}  "
                  f"{_size(snap['size'])}  hash {snap['state_hash'][:16]}...")
    meta = dict(info.get("meta") or {})
    instruments = meta.pop("instruments", None)
    if isinstance(instruments, dict) and instruments:
        print("instruments")
        for symbol_id, spec in sorted(instruments.items(), key=lambda item: int(item[0])):
            if isinstance(spec, dict):
                print(f"  {symbol_id:>3}  {spec.get('name', '?'):<12} tick {spec.get('tick_size', '?')}  "
                      f"lot {spec.get('lot_size', '?')}")
    for name, value in sorted(meta.items()):
        print(f"meta        {name} = {value}")


def print_verification(report: dict[str, Any]) -> None:
    print(f"journal     {report['path']}")
    print(f"commands    {report['commands']:,} in {report['command_batches']:,} batches")
    print(f"events      {report['events']:,} in {report['event_batches']:,} batches")
    print(f"snapshots   {report['snapshots_checked']} checked against the replay")
    if report.get("state_hash"):
        print(f"state hash  {report['state_hash']}")
    for problem in report.get("problems", []):
        print(f"PROBLEM     {problem}")
    if report.get("problems_not_listed"):
        print(f"PROBLEM     ... and {report['problems_not_listed']} more")
    print("OK: every check passed" if report["ok"] else "DAMAGED: see the problems above")
