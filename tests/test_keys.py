"""The API key store (venue/keys.py) on real LMDB directories: records, encryption at rest, nonces."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import lmdb
import pytest

from venue.keys import (
    MASTER_KEY_ENV,
    MASTER_KEY_FILE,
    KeyRecord,
    KeyStore,
    KeyStoreError,
    UnknownKeyError,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_master_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)  # the file is the default; tests set the env on purpose


def files_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


def test_round_trip(tmp_path: Path) -> None:
    with KeyStore.open(tmp_path / "keys") as store:
        record, secret = store.create_key(17, grants=[18, 17, 19], label="mm-1")
        other, other_secret = store.create_key(20)
        assert len(secret) == 32 and secret != other_secret
        assert 0 < record.key_id < 2**64 and record.key_id != other.key_id
        assert (record.account, record.grants, record.enabled, record.label) == (17, {18, 19}, True, "mm-1")
        assert other.grants == frozenset()  # default: one account per key
        assert store.get(record.key_id) == record
        assert store.secret(record.key_id) == secret and store.secret(other.key_id) == other_secret
        assert store.get(12345) is None and store.get(0) is None
        assert store.list() == [record, other] and store.list(20) == [other] and store.list(99) == []
        assert record.may_trade(17) and record.may_trade(18) and not record.may_trade(20)
        assert other.may_trade(20) and not other.may_trade(17)
        with pytest.raises(UnknownKeyError, match="no key 12345"):
            store.secret(12345)
    with KeyStore.open(tmp_path / "keys") as store:  # persisted
        assert store.get(record.key_id) == record and store.secret(record.key_id) == secret


def test_bad_arguments(tmp_path: Path) -> None:
    with KeyStore.open(tmp_path) as store:
        for bad in (-1, 2**64, "17", True):
            with pytest.raises(KeyStoreError, match="account must be an integer"):
                store.create_key(bad)  # type: ignore[arg-type]
        with pytest.raises(KeyStoreError, match="granted account"):
            store.create_key(17, grants=[-5])
        # 0 means "every account" to a mass cancel, 1..15 are the venue's own; order ids hold 24 bits
        for bad in (0, 3, 15, 1 << 24):
            with pytest.raises(KeyStoreError, match="must be a customer account"):
                store.create_key(bad)
            with pytest.raises(KeyStoreError, match="must be a customer account"):
                store.create_key(17, grants=[bad])
        with pytest.raises(KeyStoreError, match="label"):
            store.create_key(17, label="x" * 201)
        assert store.list() == []


def test_secrets_are_encrypted_at_rest(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    with KeyStore.open(directory) as store:
        made = [store.create_key(16 + n, label=f"k{n}") for n in range(20)]
    master = directory / MASTER_KEY_FILE
    assert stat.S_IMODE(master.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    stored = files_bytes(directory)
    assert {"data.mdb", MASTER_KEY_FILE} <= set(stored)
    for _, secret in made:
        for blob in stored.values():
            assert secret not in blob and secret.hex().encode() not in blob
            assert secret[:8] not in blob  # not even a piece of it


def test_master_key_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, "11" * 32)
    with KeyStore.open(tmp_path / "keys") as store:
        record, secret = store.create_key(16)
    assert not (tmp_path / "keys" / MASTER_KEY_FILE).exists()  # the env key is used, no file written
    with KeyStore.open(tmp_path / "keys") as store:
        assert store.secret(record.key_id) == secret
    monkeypatch.setenv(MASTER_KEY_ENV, "22" * 32)
    with pytest.raises(KeyStoreError, match="master key .* is not the one the key store at .* was created"):
        KeyStore.open(tmp_path / "keys")
    monkeypatch.delenv(MASTER_KEY_ENV)
    with pytest.raises(KeyStoreError, match=f"no master key for the key store .*: set {MASTER_KEY_ENV} or"):
        KeyStore.open(tmp_path / "keys")  # and no new master.key is made up for an existing store
    assert not (tmp_path / "keys" / MASTER_KEY_FILE).exists()
    monkeypatch.setenv(MASTER_KEY_ENV, "not hex")
    with pytest.raises(KeyStoreError, match=f"{MASTER_KEY_ENV} must be 64 hex digits"):
        KeyStore.open(tmp_path / "keys")


def test_wrong_master_key_file(tmp_path: Path) -> None:
    with KeyStore.open(tmp_path) as store:
        store.create_key(16)
    (tmp_path / MASTER_KEY_FILE).write_text("ab" * 32 + "\n")
    with pytest.raises(KeyStoreError, match="is not the one the key store"):
        KeyStore.open(tmp_path)
    os.chmod(tmp_path / MASTER_KEY_FILE, 0o644)
    with pytest.raises(KeyStoreError, match="readable by others .*chmod 600"):
        KeyStore.open(tmp_path)


def test_missing_store_and_double_open(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="no key store at"):
        KeyStore.open(tmp_path / "none", create=False)
    assert not (tmp_path / "none").exists()
    with KeyStore.open(tmp_path / "keys") as store:
        with pytest.raises(KeyStoreError, match="already open in this process"):
            KeyStore.open(tmp_path / "keys")
        assert repr(store) == f"KeyStore({str(tmp_path / 'keys')!r})"
    store.close()  # idempotent
    with pytest.raises(KeyStoreError, match="is closed"):
        store.get(1)


def _raw_records(directory: Path) -> tuple[lmdb.Environment, lmdb._Database]:
    env = lmdb.open(str(directory), max_dbs=4)
    return env, env.open_db(b"keys")


def test_ciphertext_is_bound_to_its_key(tmp_path: Path) -> None:
    """AES-GCM associated data = key id (+ account, grants): a sealed secret moved to another key, or a
    record edited without the master key, does not decrypt."""
    with KeyStore.open(tmp_path) as store:
        victim, _ = store.create_key(16)
        attacker, _ = store.create_key(99)
    env, db = _raw_records(tmp_path)
    with env.begin(write=True, db=db) as txn:
        stolen = json.loads(txn.get(victim.key_id.to_bytes(8, "big")))
        mine = json.loads(txn.get(attacker.key_id.to_bytes(8, "big")))
        mine.update(iv=stolen["iv"], sealed=stolen["sealed"], account=16)
        txn.put(attacker.key_id.to_bytes(8, "big"), json.dumps(mine).encode())
    env.close()
    with KeyStore.open(tmp_path) as store:
        with pytest.raises(KeyStoreError, match=f"the secret of key {attacker.key_id} does not decrypt"):
            store.secret(attacker.key_id)
        store.secret(victim.key_id)  # the original is untouched

    env, db = _raw_records(tmp_path)
    with env.begin(write=True, db=db) as txn:  # re-point the victim's own record at another account
        fields = json.loads(txn.get(victim.key_id.to_bytes(8, "big")))
        fields["grants"] = [99]
        txn.put(victim.key_id.to_bytes(8, "big"), json.dumps(fields).encode())
    env.close()
    with KeyStore.open(tmp_path) as store, pytest.raises(KeyStoreError, match="does not decrypt"):
        store.secret(victim.key_id)


def test_disable_and_enable(tmp_path: Path) -> None:
    with KeyStore.open(tmp_path) as store:
        record, secret = store.create_key(16)
        disabled = store.disable(record.key_id)
        assert not disabled.enabled and not store.get(record.key_id).enabled  # type: ignore[union-attr]
        assert store.secret(record.key_id) == secret  # disabling does not touch the secret
        assert store.enable(record.key_id).enabled and store.get(record.key_id).enabled  # type: ignore[union-attr]
        with pytest.raises(UnknownKeyError, match="no key 7"):
            store.disable(7)
        with pytest.raises(UnknownKeyError):
            store.enable(7)


def test_get_reads_changes_made_by_another_process(tmp_path: Path) -> None:
    """The gateway's store sees a key disabled (or added) by `venue accounts` at its next get()."""
    with KeyStore.open(tmp_path) as store:
        record, _ = store.create_key(16)
        assert store.get(record.key_id).enabled  # type: ignore[union-attr]
        code = ("import sys; from venue.keys import KeyStore\n"
                "with KeyStore.open(sys.argv[1]) as s:\n"
                "    s.disable(int(sys.argv[2])); print(s.create_key(17)[0].key_id)")
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(record.key_id)], check=True,
                             capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert not store.get(record.key_id).enabled  # type: ignore[union-attr]
        assert store.get(int(out.stdout)).account == 17  # type: ignore[union-attr]


def test_nonces_strictly_increase_and_persist(tmp_path: Path) -> None:
    with KeyStore.open(tmp_path) as store:
        record, _ = store.create_key(16)
        other, _ = store.create_key(17)
        assert store.last_nonce(record.key_id) == 0
        assert store.accept_nonce(record.key_id, 1_000)
        assert not store.accept_nonce(record.key_id, 1_000)  # replayed
        assert not store.accept_nonce(record.key_id, 999)  # older
        assert store.accept_nonce(record.key_id, 1_001)
        assert store.accept_nonce(other.key_id, 5)  # per key
        for bad in (0, -1, 2**64, "2000", True):
            assert not store.accept_nonce(other.key_id, bad)  # type: ignore[arg-type]
        assert not store.accept_nonce(424242, 10**18)  # unknown key: nothing recorded
        assert store.last_nonce(424242) == 0
    with KeyStore.open(tmp_path) as store:  # a restarted gateway still refuses the replay
        assert store.last_nonce(record.key_id) == 1_001
        assert not store.accept_nonce(record.key_id, 1_001)
        assert store.accept_nonce(record.key_id, 2**64 - 1)
        assert not store.accept_nonce(record.key_id, 2**64 - 1)


def test_no_secret_in_reprs_or_errors(tmp_path: Path) -> None:
    with KeyStore.open(tmp_path) as store:
        record, secret = store.create_key(16, grants=[17], label="desk")
        texts = [repr(record), str(record), repr(store), repr(store.list()), repr(store.get(record.key_id))]
        env, db = store.env, store._keys
        with env.begin(write=True, db=db) as txn:  # damage the sealed secret: the error must not leak it
            fields = json.loads(txn.get(record.key_id.to_bytes(8, "big")))
            fields["sealed"] = "00" + fields["sealed"][2:]
            txn.put(record.key_id.to_bytes(8, "big"), json.dumps(fields).encode())
        with pytest.raises(KeyStoreError) as caught:
            store.secret(record.key_id)
        texts += [str(caught.value), repr(caught.value)]
    assert repr(record) == (f"KeyRecord(key_id={record.key_id}, account=16, grants=[17], enabled=True, "
                            f"created_ns={record.created_ns}, label='desk')")
    for text in texts:
        assert secret.hex() not in text and repr(secret) not in text and str(list(secret)) not in text
    assert not hasattr(record, "secret") and "secret" not in KeyRecord.__slots__
