"""`venue accounts ...` through real subprocesses, against a tmp journal and key store."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("core_cython.engine", reason="the engine extension is not built")

from journal import JournaledEngine  # noqa: E402
from tests.venue_harness import CONFIG, venue_cli  # noqa: E402
from venue.admin import hold_engine_lock, venue_running  # noqa: E402
from venue.auth import KEY_DISABLED, check_logon, sign_logon  # noqa: E402
from venue.bootstrap import VenueError  # noqa: E402
from venue.config import load_config  # noqa: E402
from venue.keys import KeyStore  # noqa: E402


def accounts(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return venue_cli("accounts", *args, "--config", str(CONFIG), "--journal", "j", "--keys", "k", cwd=cwd)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def created(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """alice: funded with 1000 USDT and 0.5 BTC; bob: no deposit, his key may also trade for alice."""
    cwd = tmp_path_factory.mktemp("accounts")
    alice = accounts("create", "alice", "--deposit", "USDT=1000", "--deposit", "BTC=0.5", "--tier", "1",
                     "--json", cwd=cwd)
    assert alice.returncode == 0, alice.stderr
    bob = accounts("create", "bob", "--grant", "alice", cwd=cwd)
    assert bob.returncode == 0, bob.stderr
    return {"cwd": cwd, "alice": json.loads(alice.stdout), "bob": bob.stdout}


@pytest.fixture()
def store(created: dict[str, Any]) -> Iterator[KeyStore]:
    with KeyStore.open(created["cwd"] / "k", create=False) as opened:
        yield opened


def good_logon(store: KeyStore, key_id: int, secret: bytes) -> Any:
    now = time.time_ns()
    signed = b"%d|%d" % (key_id, now)
    return check_logon(store, key_id=key_id, timestamp_ns=now, nonce=now, signed=signed,
                       signature=sign_logon(secret, signed), now_ns=now)


def test_create_prints_a_working_secret(created: dict[str, Any], store: KeyStore) -> None:
    out = created["alice"]
    assert set(out) == {"account", "name", "key_id", "secret_hex"}
    assert (out["account"], out["name"]) == (16, "alice")
    result = good_logon(store, out["key_id"], bytes.fromhex(out["secret_hex"]))
    assert result.ok and result.key.account == 16 and result.key.grants == frozenset()

    lines = created["bob"].splitlines()  # the text form: account, key, secret (once)
    assert lines[0] == "account bob created: id 17, deposited nothing"
    assert lines[1].startswith("key ")
    assert lines[1].endswith(" for account bob (17); may also trade for alice (16)")
    assert lines[2].startswith("secret ") and "shown once" in lines[2]
    bob_key, bob_secret = int(lines[1].split()[1]), bytes.fromhex(lines[2].split()[1])
    result = good_logon(store, bob_key, bob_secret)
    assert result.ok and result.key.may_trade(16) and result.key.may_trade(17)
    assert not result.key.may_trade(18)


def test_the_engine_has_the_accounts_and_deposits(created: dict[str, Any]) -> None:
    journal_path = created["cwd"] / "j"
    with JournaledEngine.open(journal_path, funds=True) as je:
        meta = je.journal.meta()
        assert meta["accounts"] == {"16": "alice", "17": "bob"}
        asset = {spec["name"]: int(i) for i, spec in meta["assets"].items()}
        engine = je.engine
        assert engine.balance(16, asset["USDT"]) == (1000 * 10**6, 0)
        assert engine.balance(16, asset["BTC"]) == (50_000_000, 0)
        assert engine.balance(16, asset["ETH"]) == (0, 0)
        assert engine.accounts()[16]["tier"] == 1 and engine.accounts()[17]["tier"] == 0
        assert engine.accounts()[16]["max_open"] == 1000  # accounts.max_open_orders of the config
        balances = engine.balances().items()
        assert not any(balance != (0, 0) for (account, _), balance in balances if account == 17)
    check = venue_cli("ledger", "check", "--journal", "j", "--config", str(CONFIG), cwd=created["cwd"])
    assert check.returncode == 0, check.stdout + check.stderr


def test_duplicate_name_and_bad_requests(created: dict[str, Any]) -> None:
    cwd = created["cwd"]
    assert one_line_error(accounts("create", "alice", cwd=cwd)) == (
        "venue accounts create: error: account alice exists already (id 16)")
    bad = {
        ("create", "carol", "--deposit", "DOGE=1"): "--deposit DOGE: no such asset (assets: BTC, ETH, USDT)",
        ("create", "carol", "--deposit", "USDT=0"): "--deposit USDT must be positive, not 0",
        ("create", "carol", "--deposit", "USDT=0.0000001"):
            "--deposit USDT 0.0000001 has more than 6 decimals",
        ("create", "carol", "--deposit", "USDT=1", "--deposit", "USDT=2"): "--deposit USDT is given twice",
        ("create", "carol", "--grant", "nobody"): "no account nobody in the journal",
        ("create", "123"): "account name '123': use 1-64 letters",
        ("key", "add", "nobody"): "no account nobody in the journal",
        ("key", "disable", "12345"): "no key 12345",
    }
    for args, message in bad.items():
        line = one_line_error(accounts(*args, cwd=cwd))
        assert message in line, line
    listed = accounts("list", "--json", cwd=cwd)  # nothing of the above was created
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == ["alice", "bob"]


def test_list_add_disable_enable(created: dict[str, Any], store: KeyStore) -> None:
    cwd = created["cwd"]
    added = accounts("key", "add", "alice", "--label", "backup", "--json", cwd=cwd)
    assert added.returncode == 0, added.stderr
    new = json.loads(added.stdout)
    assert new["account"] == 16 and good_logon(store, new["key_id"], bytes.fromhex(new["secret_hex"])).ok

    listed = [json.loads(line) for line in accounts("list", "--json", cwd=cwd).stdout.splitlines()]
    alice = next(a for a in listed if a["name"] == "alice")
    assert {k["key_id"] for k in alice["keys"]} == {created["alice"]["key_id"], new["key_id"]}
    key_list = accounts("key", "list", "alice", "--json", cwd=cwd)
    keys = [json.loads(line) for line in key_list.stdout.splitlines()]
    assert {k["key_id"] for k in keys} == {created["alice"]["key_id"], new["key_id"]}
    assert {k["label"] for k in keys} == {"alice", "backup"}

    disabled = accounts("key", "disable", str(new["key_id"]), cwd=cwd)
    assert disabled.returncode == 0
    assert disabled.stdout.startswith(f"key {new['key_id']} of account 16 disabled")
    result = good_logon(store, new["key_id"], bytes.fromhex(new["secret_hex"]))  # the same open store
    assert (result.ok, result.reason) == (False, KEY_DISABLED)
    assert " (disabled)" in accounts("list", cwd=cwd).stdout
    assert accounts("key", "enable", str(new["key_id"]), cwd=cwd).returncode == 0
    assert good_logon(store, new["key_id"], bytes.fromhex(new["secret_hex"])).ok


def test_secrets_never_reach_the_journal(created: dict[str, Any]) -> None:
    secret = bytes.fromhex(created["alice"]["secret_hex"])
    files = [p for p in (created["cwd"] / "j").iterdir() if p.is_file()]
    files += [p for p in (created["cwd"] / "k").iterdir() if p.is_file()]  # encrypted at rest there
    assert len(files) >= 5
    for path in files:
        blob = path.read_bytes()
        assert secret not in blob and secret.hex().encode() not in blob, path


def test_a_held_lock_without_an_engine_is_a_clear_error(tmp_path: Path) -> None:
    config = load_config(CONFIG, [f"journal.path={tmp_path / 'j'}"])
    assert not venue_running(config)
    lock = hold_engine_lock(tmp_path / "j")  # as the engine process will
    try:
        assert venue_running(config)
        with pytest.raises(VenueError, match="the venue is already running"):
            hold_engine_lock(tmp_path / "j")
        # The lock says "running" but no engine listens on the admin socket (a stuck or foreign holder).
        line = one_line_error(accounts("create", "carol", "--deposit", "USDT=1", cwd=tmp_path))
        assert line.startswith("venue accounts create: error: the venue is running (its journal ")
        assert "but its engine does not answer on " in line and line.count("admin.sock") == 1
    finally:
        lock.close()
    assert not venue_running(config)
    assert not (tmp_path / "j" / "data.mdb").exists()  # the refused create wrote no journal
    with KeyStore.open(tmp_path / "k", create=False) as store:  # opened first (master key check), no key
        assert store.list() == []
