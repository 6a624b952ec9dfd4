"""Admin operations while the venue runs (venue/admin_channel.py): `venue accounts create` reaches the
running engine over its admin socket; the new account trades at once; refused and malformed requests
get a clear answer and the engine goes on; the accounts are in the journal after the stop."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("core_cython.engine", reason="the engine extension is not built")

from journal import JournaledEngine  # noqa: E402
from sbe_schemas import codecs  # noqa: E402
from tests.venue_harness import CONFIG, RunningVenue, running_venue, venue_cli, wait_until_stopped  # noqa: E402
from venue.admin_channel import ADMIN_SOCKET, AdminChannel  # noqa: E402
from venue.engine_service import run_dir  # noqa: E402

BTC, MID = 1, 6_000_000


def accounts(v: RunningVenue, *args: str) -> subprocess.CompletedProcess[str]:
    return venue_cli("accounts", *args, "--config", str(CONFIG), "--journal", str(v.config.journal.path),
                     "--keys", str(v.config.keys.path))


def raw_request(v: RunningVenue, payload: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(run_dir(v.config) / ADMIN_SOCKET))
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    (length,) = struct.unpack(">I", data[:4])
    assert len(data) == 4 + length
    return json.loads(data[4:])


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningVenue]:
    with running_venue(tmp_path_factory.mktemp("online")) as running:
        yield running


def test_an_account_created_while_the_venue_runs_trades_at_once(venue: RunningVenue) -> None:
    made = accounts(venue, "create", "carol", "--deposit", "USDT=1000", "--json")
    assert made.returncode == 0, made.stderr
    carol = json.loads(made.stdout)
    assert carol["name"] == "carol" and carol["account"] not in venue.accounts.values()
    assert oct(os.stat(run_dir(venue.config) / ADMIN_SOCKET).st_mode & 0o777) == "0o600"

    client = venue.connect()
    ack = client.logon(carol["key_id"], bytes.fromhex(carol["secret_hex"]))
    assert ack["account_id"] == carol["account"]
    client.new_order(cl_ord_id=1, symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID - 100_000)
    new, _ = client.wait_for(lambda m: m["template"] == "ExecutionReport" and m.get("cl_ord_id") == 1)
    assert new["exec_type"] == codecs.ExecType.NEW and new["account_id"] == carol["account"]
    # 1 BTC at 60,000 is more than the 1,000 USDT deposit buys: the engine holds what was deposited.
    client.new_order(cl_ord_id=2, symbol_id=BTC, side=codecs.Side.BUY, qty=10_000, price=MID)
    rejected, _ = client.wait_for(lambda m: m["template"] == "ExecutionReport" and m.get("cl_ord_id") == 2)
    assert rejected["exec_type"] == codecs.ExecType.REJECTED

    listed = [json.loads(line)["name"] for line in accounts(venue, "list", "--json").stdout.splitlines()]
    assert "carol" in listed


def test_refused_and_malformed_requests_leave_the_engine_running(venue: RunningVenue) -> None:
    twice = accounts(venue, "create", "dave")
    assert twice.returncode == 0, twice.stderr
    again = accounts(venue, "create", "dave", "--deposit", "USDT=1")
    assert again.returncode == 1 and "account dave exists already" in again.stderr, again.stderr
    unknown = accounts(venue, "create", "erin", "--deposit", "DOGE=1")
    assert "--deposit DOGE: no such asset" in unknown.stderr

    body = json.dumps({"operation": "drop_tables", "params": {}}).encode()
    answers = [
        raw_request(venue, b"\x00\x00\x00\x09{not json"),
        raw_request(venue, struct.pack(">I", 1 << 30)),  # claims a gigabyte
        raw_request(venue, struct.pack(">I", 2) + b"[]"),
        raw_request(venue, struct.pack(">I", len(body)) + body),
        raw_request(venue, struct.pack(">I", 40) + b'{"operation": "create_account", "params": {}}'[:40]),
    ]
    errors = [a["error"] for a in answers]
    assert all(a["ok"] is False for a in answers)
    assert errors[0].startswith("bad admin request: message is not JSON")
    assert "over the 1048576 byte limit" in errors[1]
    assert errors[2] == "bad admin request: message is not a JSON object"
    assert errors[3].startswith("unknown admin operation 'drop_tables'")
    assert errors[4].startswith("bad admin request: message is not JSON")
    good = {"name": "frank", "tier": 0, "max_open_orders": 10, "deposits": [["USDT", "1"]], "grants": []}
    hostile = {  # in range for JSON, out of range for the command's fields or the venue
        "tier": (300, "tier must be an integer in 0..255, not 300"),
        "max_open_orders": (2**64, "max_open_orders must be an integer in 1..9223372036854775807"),
        "deposits": ([["USDT", "1"]] * 4, "deposits must be a list of at most 3 items"),
        "grants": ([7], "grants: each item must be a string"),
        "name": (["frank"], "account name ['frank']: use 1-64 letters"),
    }
    for key, (value, message) in hostile.items():
        body = json.dumps({"operation": "create_account", "params": {**good, key: value}}).encode()
        answer = raw_request(venue, struct.pack(">I", len(body)) + body)
        assert answer["ok"] is False and answer["error"].startswith(message), answer
    for text in (b'{"tier": Infinity}', b"[" * 200_000):  # Python's JSON reader takes the first
        answer = raw_request(venue, struct.pack(">I", len(text)) + text)
        assert answer["ok"] is False, answer
    del good["tier"]
    body = json.dumps({"operation": "create_account", "params": good}).encode()
    answer = raw_request(venue, struct.pack(">I", len(body)) + body)
    assert answer["error"] == "tier must be an integer in 0..255, not None"

    after = accounts(venue, "create", "grace", "--deposit", "BTC=1", "--json")  # still serving
    assert after.returncode == 0, after.stderr
    names = [json.loads(line)["name"] for line in accounts(venue, "list", "--json").stdout.splitlines()]
    assert "frank" not in names and "erin" not in names and {"dave", "grace"} <= set(names)


def test_online_accounts_are_in_the_journal_after_the_stop(tmp_path: Path) -> None:
    with running_venue(tmp_path) as running:
        made = accounts(running, "create", "heidi", "--deposit", "BTC=2", "--json")
        assert made.returncode == 0, made.stderr
        heidi = json.loads(made.stdout)["account"]
        journal = running.config.journal.path
    assert not (run_dir(running.config) / ADMIN_SOCKET).exists()
    with JournaledEngine.open(journal, funds=True) as je:
        assert je.journal.meta()["accounts"][str(heidi)] == "heidi"
        assets = {spec["name"]: int(i) for i, spec in je.journal.meta()["assets"].items()}
        assert je.engine.balance(heidi, assets["BTC"]) == (200_000_000, 0)


def test_another_user_cannot_reach_the_admin_socket(venue: RunningVenue) -> None:
    if os.geteuid() != 0:
        pytest.skip("acting as another user needs root")
    path = str(run_dir(venue.config) / ADMIN_SOCKET)
    pid = os.fork()
    if pid == 0:  # the child becomes 'nobody' and tries to connect
        code = 2
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(path)
            code = 1
        except PermissionError:
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # refused by the 0700 run dir and the 0600 socket




def test_a_request_whose_client_gave_up_is_not_run(venue: RunningVenue) -> None:
    params = {"name": "ivan", "tier": 0, "max_open_orders": 10, "deposits": [["USDT", "5"]], "grants": []}
    body = json.dumps({"operation": "create_account", "params": params}).encode()
    engine = venue.supervisor.engine.process.pid
    os.kill(engine, signal.SIGSTOP)  # the request waits in the socket while its client gives up
    wait_until_stopped(engine)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(run_dir(venue.config) / ADMIN_SOCKET))
            sock.sendall(struct.pack(">I", len(body)) + body)
    finally:
        os.kill(engine, signal.SIGCONT)
    time.sleep(0.3)  # the engine's idle wait is 50 ms
    names = [json.loads(line)["name"] for line in accounts(venue, "list", "--json").stdout.splitlines()]
    assert "ivan" not in names
    made = accounts(venue, "create", "ivan", "--deposit", "USDT=5")  # the name was never taken
    assert made.returncode == 0, made.stderr


class _NoVenue:
    """The in-process channels below never run an operation: they test the listener alone."""


def test_the_listener_checks_the_peer_uid() -> None:
    if os.geteuid() != 0:
        pytest.skip("acting as another user needs root")
    where = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's tmp_path is under a 0700 directory
    channel = AdminChannel.open(where, _NoVenue())
    try:
        where.chmod(0o777)  # open to everyone, so that only the uid check stands in the way
        channel.path.chmod(0o777)
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.setgid(65534)
                os.setuid(65534)
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.settimeout(10)
                    sock.connect(str(channel.path))
                    os.write(writer, sock.recv(4096))
            finally:
                os._exit(0)
        os.close(writer)
        os.waitpid(pid, 0)
        data = os.read(reader, 4096)
        os.close(reader)
        refused = {"ok": False, "error": "admin requests come from the venue's own user only"}
        assert json.loads(data[4:]) == refused
        assert not channel.pending
    finally:
        channel.close()
        shutil.rmtree(where)


def test_a_slow_client_is_cut_off_and_the_next_one_is_served(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("venue.admin_channel.READ_TIMEOUT_S", 0.5)
    channel = AdminChannel.open(tmp_path, _NoVenue())
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as slow:
            slow.connect(str(channel.path))
            start = time.monotonic()
            for byte in struct.pack(">I", 100)[:3]:  # a byte every 0.2 s: each read is quick, not the whole
                slow.sendall(bytes([byte]))
                time.sleep(0.2)
            slow.settimeout(5)
            data = slow.recv(4096)
            assert json.loads(data[4:])["error"] == "bad admin request: timed out"
            assert time.monotonic() - start < 2
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:  # the listener goes on
            sock.settimeout(5)
            sock.connect(str(channel.path))
            sock.sendall(struct.pack(">I", 2) + b"[]")
            answer = json.loads(sock.recv(4096)[4:])
            assert answer["error"] == "bad admin request: message is not a JSON object"
    finally:
        channel.close()
    assert not channel.path.exists()
