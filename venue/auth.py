"""Logon verification for the gateways: an API key id, a timestamp, a nonce and an HMAC-SHA256 signature.

    result = check_logon(store, key_id=k, timestamp_ns=ts, nonce=n, signed=payload, signature=sig,
                         now_ns=time.time_ns())
    if not result.ok: answer LogonReject(reason=result.reason)      # the names of LogonRejectReason
    else: the session trades for result.key.account (and result.key.grants: result.key.may_trade(a))

`signed` is the exact byte string the client signed; the gateway must build it so that it covers the key
id, the timestamp and the nonce (e.g. the logon message's fields), or a captured signature could be
replayed with another nonce. Checks, in order, first failure wins:
    UNKNOWN_KEY      no such key id
    KEY_DISABLED     the key is disabled
    BAD_SIGNATURE    hmac.compare_digest(HMAC-SHA256(secret, signed), signature) fails
    STALE_TIMESTAMP  |now_ns - timestamp_ns| > window_ns
    NONCE_REUSED     the nonce is not greater than the key's last accepted one
The nonce is recorded (KeyStore.accept_nonce) only once everything else passed: a forged or stale logon
cannot burn a nonce the real client is about to use. A KeyStoreError (a record that does not decrypt,
a closed store) propagates: the gateway answers UNAVAILABLE, it is not the client's fault.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from venue.keys import KeyRecord, KeyStore

UNKNOWN_KEY: Final = "UNKNOWN_KEY"
BAD_SIGNATURE: Final = "BAD_SIGNATURE"
STALE_TIMESTAMP: Final = "STALE_TIMESTAMP"
NONCE_REUSED: Final = "NONCE_REUSED"
KEY_DISABLED: Final = "KEY_DISABLED"
REASONS: Final = (UNKNOWN_KEY, BAD_SIGNATURE, STALE_TIMESTAMP, NONCE_REUSED, KEY_DISABLED)

DEFAULT_WINDOW_NS: Final = 5_000_000_000


@dataclass(frozen=True, slots=True)
class LogonResult:
    ok: bool
    reason: str | None = None  # None when ok, else one of REASONS
    key: KeyRecord | None = None  # the key when it exists (also on a refused logon, for the gateway's log)


def sign_logon(secret: bytes, signed: bytes) -> bytes:
    """The logon signature a client sends: HMAC-SHA256(secret, signed), 32 bytes."""
    return hmac.new(secret, signed, hashlib.sha256).digest()


def check_logon(store: KeyStore, *, key_id: int, timestamp_ns: int, nonce: int, signed: bytes,
                signature: bytes, now_ns: int, window_ns: int = DEFAULT_WINDOW_NS) -> LogonResult:
    """Verify one logon (see the module docstring for the order of the checks)."""
    key = store.get(key_id)  # a fresh read: keys added or disabled while the gateway runs count now
    if key is None:
        return LogonResult(False, UNKNOWN_KEY)
    if not key.enabled:
        return LogonResult(False, KEY_DISABLED, key)
    expected = sign_logon(store.secret(key_id), bytes(signed))
    if not hmac.compare_digest(expected, bytes(signature)):  # constant time: no byte-by-byte oracle
        return LogonResult(False, BAD_SIGNATURE, key)
    if abs(now_ns - timestamp_ns) > window_ns:
        return LogonResult(False, STALE_TIMESTAMP, key)
    if not store.accept_nonce(key_id, nonce):
        return LogonResult(False, NONCE_REUSED, key)
    return LogonResult(True, None, key)
