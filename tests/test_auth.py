"""Logon verification (venue/auth.py): every reject reason, and the order the checks run in."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from venue.auth import (
    BAD_SIGNATURE,
    KEY_DISABLED,
    NONCE_REUSED,
    REASONS,
    STALE_TIMESTAMP,
    UNKNOWN_KEY,
    LogonResult,
    check_logon,
    sign_logon,
)
from venue.keys import MASTER_KEY_ENV, KeyRecord, KeyStore

SCHEMA = Path(__file__).resolve().parent.parent / "sbe_schemas" / "venue_order_entry.xml"
NOW = 1_800_000_000_000_000_000
WINDOW = 5_000_000_000


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyStore]:
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    with KeyStore.open(tmp_path / "keys") as opened:
        yield opened


@pytest.fixture()
def key(store: KeyStore) -> tuple[KeyRecord, bytes]:
    return store.create_key(16, grants=[17])


def payload(key_id: int, ts: int, nonce: int) -> bytes:
    """What a client signs in these tests: the fields the check relies on."""
    return b"logon|%d|%d|%d" % (key_id, ts, nonce)


def logon(store: KeyStore, key_id: int, secret: bytes, *, ts: int = NOW, nonce: int = NOW, now: int = NOW,
          signature: bytes | None = None) -> LogonResult:
    signed = payload(key_id, ts, nonce)
    return check_logon(store, key_id=key_id, timestamp_ns=ts, nonce=nonce, signed=signed,
                       signature=sign_logon(secret, signed) if signature is None else signature, now_ns=now)


def test_reasons_are_the_schema_enum_names() -> None:
    enum = next(e for e in ET.parse(SCHEMA).getroot().iter("enum") if e.get("name") == "LogonRejectReason")
    names = {v.get("name") for v in enum.iter("validValue")}
    assert set(REASONS) <= names and len(REASONS) == 5


def test_a_good_logon(store: KeyStore, key: tuple[KeyRecord, bytes]) -> None:
    record, secret = key
    result = logon(store, record.key_id, secret)
    assert result == LogonResult(True, None, record)
    assert result.key is not None and result.key.may_trade(17) and not result.key.may_trade(18)
    assert store.last_nonce(record.key_id) == NOW
    assert len(sign_logon(secret, b"x")) == 32


def test_unknown_key(store: KeyStore, key: tuple[KeyRecord, bytes]) -> None:
    record, secret = key
    assert logon(store, record.key_id ^ 1, secret) == LogonResult(False, UNKNOWN_KEY, None)
    assert logon(store, 0, secret).reason == UNKNOWN_KEY


def test_disabled_key(store: KeyStore, key: tuple[KeyRecord, bytes]) -> None:
    record, secret = key
    store.disable(record.key_id)
    result = logon(store, record.key_id, secret)
    assert (result.ok, result.reason) == (False, KEY_DISABLED)
    assert result.key is not None and not result.key.enabled
    store.enable(record.key_id)
    assert logon(store, record.key_id, secret).ok  # at the next logon, no restart


def test_bad_signature(store: KeyStore, key: tuple[KeyRecord, bytes]) -> None:
    record, secret = key
    good = sign_logon(secret, payload(record.key_id, NOW, NOW))
    for signature in (bytes(32), good[:-1], good + b"\0", b"", bytes([good[0] ^ 1]) + good[1:]):
        assert logon(store, record.key_id, secret, signature=signature).reason == BAD_SIGNATURE
    other_secret = store.create_key(16)[1]
    assert logon(store, record.key_id, other_secret).reason == BAD_SIGNATURE  # another key's secret
    assert store.last_nonce(record.key_id) == 0


def test_stale_timestamp(store: KeyStore, key: tuple[KeyRecord, bytes]) -> None:
    record, secret = key
    assert logon(store, record.key_id, secret, ts=NOW - WINDOW - 1, nonce=1).reason == STALE_TIMESTAMP
    assert logon(store, record.key_id, secret, ts=NOW + WINDOW + 1, nonce=2).reason == STALE_TIMESTAMP
    assert store.last_nonce(record.key_id) == 0  # a stale logon burns no nonce either
    assert logon(store, record.key_id, secret, ts=NOW - WINDOW, nonce=3).ok  # the window's edges are in
    assert logon(store, record.key_id, secret, ts=NOW + WINDOW, nonce=4).ok
    signed = payload(record.key_id, NOW - 10, 5)
    narrow = check_logon(store, key_id=record.key_id, timestamp_ns=NOW - 10, nonce=5, signed=signed,
                         signature=sign_logon(secret, signed), now_ns=NOW, window_ns=9)
    assert narrow.reason == STALE_TIMESTAMP


def test_nonce_reused(store: KeyStore, key: tuple[KeyRecord, bytes]) -> None:
    record, secret = key
    assert logon(store, record.key_id, secret, nonce=100).ok
    assert logon(store, record.key_id, secret, nonce=100).reason == NONCE_REUSED  # the same logon replayed
    assert logon(store, record.key_id, secret, nonce=99).reason == NONCE_REUSED
    assert logon(store, record.key_id, secret, nonce=101).ok


def test_check_order(store: KeyStore, key: tuple[KeyRecord, bytes]) -> None:
    """unknown key, disabled, bad signature, stale timestamp, nonce reused: the first failure wins."""
    record, secret = key
    assert logon(store, record.key_id, secret, nonce=50).ok
    stale, bad = NOW - 2 * WINDOW, bytes(32)
    # every later failure present too: stale, replayed nonce, bad signature
    assert logon(store, record.key_id + 1, secret, ts=stale, nonce=50, signature=bad).reason == UNKNOWN_KEY
    store.disable(record.key_id)
    assert logon(store, record.key_id, secret, ts=stale, nonce=50, signature=bad).reason == KEY_DISABLED
    store.enable(record.key_id)
    assert logon(store, record.key_id, secret, ts=stale, nonce=50, signature=bad).reason == BAD_SIGNATURE
    assert logon(store, record.key_id, secret, ts=stale, nonce=50).reason == STALE_TIMESTAMP
    assert logon(store, record.key_id, secret, nonce=50).reason == NONCE_REUSED


def test_a_bad_signature_does_not_burn_the_nonce(store: KeyStore, key: tuple[KeyRecord, bytes]) -> None:
    """Someone who sees a nonce coming (a timestamp) cannot lock the real client out with a forged logon."""
    record, secret = key
    forged = logon(store, record.key_id, secret, nonce=NOW + 7, signature=bytes(32))
    assert forged.reason == BAD_SIGNATURE
    assert logon(store, record.key_id, secret, nonce=NOW + 7).ok  # the same nonce, signed for real
