"""`venue bench` end to end on tiny workloads: every section prints, in core and in funds mode side by
side, and the numbers are sane.

Nothing here asserts a speed: unit tests run on shared, noisy machines.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

pytest.importorskip("core_cython.engine")

from bench.runner import main  # noqa: E402
from bench.workload_file import WorkloadFileError, load_workload_file  # noqa: E402

TINY = ["--commands", "3000", "--preload", "500", "--symbols", "2", "--accounts", "50", "--batch", "256",
        "--ring-messages", "20000", "--step-orders", "400", "--e2e-seconds", "0.3"]


def _run(args: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[str, dict]:
    out_json = tmp_path / "bench.json"
    assert main([*args, "--dir", str(tmp_path / "journals"), "--json", str(out_json)]) == 0
    return capsys.readouterr().out, json.loads(out_json.read_text())


def _check_latency(lat: dict[str, int]) -> None:
    assert 0 < lat["p50"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]


def test_tiny_run_prints_every_section(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text, res = _run(TINY, capsys, tmp_path)
    for heading in ("machine", "[1] engine in-process", "[2] engine + journal", "[3] recovery", "targets",
                    "seed 42", "3,000", "256 commands per group commit", "async", "sync",
                    "core only", "risk + settlement", "funds setup", "postings per command",
                    "rejected (of commands)", "insufficient_funds", "latency p99.9",
                    "[4] shared-memory ring", "[5] engine step", "[6] end to end", "round trip p99.9"):
        assert heading in text
    # every engine/journal/recovery target in both modes, the ring's and the two end-to-end ones
    assert text.count("-> met") + text.count("-> NOT MET") == 3 * 2 + 1 + 2
    assert [(r["label"], r["durability"]) for r in res["e2e"]] == [
        ("latency", "async"), ("pinned", "async"), ("pinned+polls", "async"), ("engine core", "async"),
        ("all polling", "async"), ("latency", "sync"),
        ("throughput", "async")]
    pinned = res["e2e"][1]  # the venue on CPU 1, the client busy-polling on CPU 0
    assert "engine.cpus=1" in pinned["overrides"] and pinned["client"] == {"busy_poll": True, "cpus": "0"}
    assert res["targets"]["e2e_p99_us"]["run"] in ("latency", "pinned", "pinned+polls", "engine core",
                                                   "all polling")
    floor = res["targets"]["e2e_p99_us"]["machine_floor"]  # the worse CPU's floor, beside the verdict
    assert floor["p99_us"] == max(c["event_delay_us"]["p99"] for c in res["machine_stalls"])
    assert f"waits p99 {floor['p99_us']:,.0f} us on CPU {floor['cpu']}" in text
    for run in res["e2e"]:  # real sessions through a real gateway and engine: every order answered
        assert run["loadgen"]["sent"] == run["loadgen"]["planned"] > 0
        assert run["loadgen"]["answered"] == run["loadgen"]["sent"] and run["loadgen"]["unanswered"] == 0
        assert run["engine"]["commands"] >= run["loadgen"]["sent"] and run["gateway_restarts"] == 0
        split = run["loadgen"]["to_engine_us"]  # the round trip split at the engine's stamp
        assert split["count"] == run["loadgen"]["answered"]
        assert 0 < split["p50"] <= run["loadgen"]["latency_us"]["max"]
    assert [r["messages"] for r in res["ring"]] == [20000, 20000, 20000]
    assert [(r["thrash_mb"], r["steps"]) for r in res["step"]] == [(0.0, 400), (1.0, 400)]
    for run in res["step"]:  # every order went through the real step: accepted, about half traded
        assert run["events"] >= 400 and run["steps_per_s"] > 0
        _check_latency(run["latency_ns"])
    assert all(r["dropped"] == 0 and r["skipped"] == 0 for r in res["ring"])
    assert res["modes"] == ["core", "funds"]

    core, funds = res["engine"]["core"], res["engine"]["funds"]
    for eng in (core, funds):
        assert eng["commands"] == 3000
        assert eng["same_state"] and eng["live_orders_start"] == 500  # the same book to start from
        assert eng["setup_rejects"] == {}
        _check_latency(eng["latency_ns"])
        assert eng["event_types"]["trade"] > 0 and eng["event_types"]["cancelled"] > 0
        assert 0.5 < eng["cancels_replaces_live"] <= 1
        assert eng["bytes_per_resting_order"] > 0
        assert sum(eng["rejects"].values()) == eng["event_types"]["rejected"]
    assert core["events"] > 3000 * 0.9 and core["postings_per_command"] == 0
    assert funds["mode"] == "funds" and funds["postings_per_command"] > 1
    assert funds["events"] == sum(funds["event_types"].values())
    assert "insufficient_funds" in funds["rejects"] and "insufficient_funds" not in core["rejects"]
    assert funds["rejects"]["insufficient_funds"] < 0.05 * 3000  # most orders are funded

    for mode in ("core", "funds"):
        for durability in ("async", "sync"):
            j = res["journal"][mode][durability]
            assert j["events"] == res["engine"][mode]["events"]  # same flow, same engine: same events
            assert j["batches"] == -(-3000 // 256)
            _check_latency(j["latency_ns"])
            assert j["commands_per_s"] > 0 and j["journal_bytes"] > 0

    setup = {"core": 500 + 2, "funds": res["workload"]["funds_setup"]["setup"]}
    for mode in ("core", "funds"):
        rec = res["recovery"][mode]
        assert rec["same_state"] and rec["mode"] == mode
        assert rec["commands"] == 3000 + setup[mode]  # the journal also holds the untimed setup
        assert rec["events"] > res["engine"][mode]["events"]
        assert rec["seconds_per_million_events"] > 0

    assert set(res["targets"]) == {"engine_commands_per_s", "journal_sync_events_per_s",
                                   "recovery_s_per_million_events", "engine_funds_commands_per_s",
                                   "journal_funds_sync_events_per_s", "recovery_funds_s_per_million_events",
                                   "ring_messages_per_s", "e2e_p99_us", "e2e_orders_per_s"}
    assert res["machine"]["cores"] >= 1 and res["workload"]["seed"] == 42
    idle = res["machine"]["idle"]  # how idle CPUs wait moves every hand-off's cost: stated in the header
    assert f"{'idle CPUs':<22}: cpuidle {idle['driver']}, governor {idle['governor']}" in text
    assert list((tmp_path / "journals").iterdir()) == []  # journals are removed unless --keep


@pytest.mark.parametrize("funds", ["off", "on"])
def test_one_engine_mode(funds: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text, res = _run([*TINY, "--only", "engine", "--funds", funds], capsys, tmp_path)
    mode, other = ("core", "funds") if funds == "off" else ("funds", "core")
    assert set(res["engine"]) == {mode} and res["modes"] == [mode]
    assert ("risk + settlement" in text) == (funds == "on")
    assert ("funds setup" in text) == (funds == "on")
    assert set(res["targets"]) == {f"engine_{'funds_' if funds == 'on' else ''}commands_per_s"}
    assert "journal" not in res and "recovery" not in res and other not in res["engine"]


def test_keep_leaves_the_journals(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text, _ = _run([*TINY, "--only", "journal", "--keep"], capsys, tmp_path)
    (run_dir,) = (tmp_path / "journals").iterdir()
    assert f"journals kept in {run_dir}" in text
    names = {f"journal-{mode}-{durability}" for mode in ("core", "funds") for durability in ("async", "sync")}
    assert {p.name for p in run_dir.iterdir()} == names


def test_only_recovery_builds_its_own_journal(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text, res = _run([*TINY, "--only", "recovery"], capsys, tmp_path)
    assert "[1]" not in text and "[2]" not in text and "[3] recovery" in text
    assert set(res) >= {"recovery"} and "engine" not in res and "journal" not in res
    assert res["recovery"]["core"]["same_state"] and res["recovery"]["funds"]["same_state"]


def test_json_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*TINY, "--only", "engine", "--json"]) == 0
    text = capsys.readouterr().out
    res = json.loads(text[text.index("\n{") + 1:])
    assert res["engine"]["core"]["commands"] == res["engine"]["funds"]["commands"] == 3000


WORKLOAD = """\
{"op":"instrument","symbol":"BTC-USDT","base":"BTC","quote":"USDT","tick_size":"0.01","lot_size":"0.001"}
{"op":"new","id":"a1","account":"alice","symbol":"BTC-USDT","side":"sell","type":"limit","price":"100.00","qty":"2"}
{"op":"new","id":"a2","account":"alice","symbol":"BTC-USDT","side":"sell","type":"limit","price":"100.50","qty":"1"}
{"op":"new","id":"b1","account":"bob","symbol":"BTC-USDT","side":"buy","type":"limit","price":"100.00","qty":"0.5"}
not json at all
{"op":"replace","id":"a2","price":"100.25","qty":"1"}
{"op":"new","id":"b2","account":"bob","symbol":"BTC-USDT","side":"buy","type":"market","qty":"1"}
{"op":"new","id":"b3","account":"bob","symbol":"BTC-USDT","side":"buy","type":"limit","price":"99.001","qty":"1"}
{"op":"cancel","id":"a1"}
{"op":"mass_cancel"}
"""


def test_workload_file_decodes_like_venue_match(tmp_path: Path) -> None:
    from core_cython.engine import Engine
    from venue.match import run_match

    path = tmp_path / "flow.jsonl"
    path.write_text(WORKLOAD)
    wl = load_workload_file(str(path))
    assert wl.commands.size == 9 and wl.counts["bad_lines"] == 1 and wl.instruments == 1
    assert wl.setup.size == 0

    engine = Engine()
    events = engine.process(wl.commands.copy())
    matched = run_match(WORKLOAD.splitlines(keepends=True), io.StringIO(), engine=Engine(),
                        errors=io.StringIO())
    assert events == matched.stats.events  # same commands as `venue match` would run
    assert engine.state_hash() == matched.engine.state_hash()


def test_workload_file_runs_every_section(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "flow.jsonl"
    path.write_text(WORKLOAD)
    text, res = _run(["--workload", str(path), "--batch", "4"], capsys, tmp_path)
    assert f"file {path}" in text and "1 bad lines skipped" in text
    assert "a workload file has no funds setup" in text and res["modes"] == ["core"]  # core mode only
    assert res["engine"]["core"]["commands"] == 9 and res["engine"]["core"]["same_state"]
    assert res["journal"]["core"]["sync"]["batches"] == 3
    assert res["recovery"]["core"]["same_state"] and res["recovery"]["core"]["commands"] == 9
    assert main(["--workload", str(path), "--funds", "on"]) == 1
    assert "funds mode needs the synthetic flow" in capsys.readouterr().err


def test_workload_file_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(WorkloadFileError):
        load_workload_file(str(tmp_path / "missing.jsonl"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(WorkloadFileError):
        load_workload_file(str(empty))
    assert main(["--workload", str(empty)]) == 1
    assert "venue bench: error" in capsys.readouterr().err
