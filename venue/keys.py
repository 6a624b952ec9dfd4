"""API keys of the gateways: key id -> account, granted accounts, enabled flag, and an HMAC secret.

    with KeyStore.open("var/keys") as store:
        record, secret = store.create_key(17, label="mm-1")   # the secret is shown to the operator once
        store.get(record.key_id)                              # a fresh read each call
        store.secret(record.key_id)                           # decrypted on demand
        store.accept_nonce(record.key_id, nonce)              # False for a replayed (non-increasing) nonce

Layout (one LMDB environment = one directory, `keys.path` of the config):
    keys    key = key id (8 bytes, big-endian)  value = JSON {account, grants, enabled, created_ns, label, iv,
                                                sealed}: the secret only as AES-GCM ciphertext ("sealed")
    nonces  key = key id                        value = last accepted logon nonce (8 bytes, big-endian)
    meta    "check" = a constant sealed under the master key: a wrong master key fails at open, not at the
            first logon
The master key (AES-256) is VENUE_MASTER_KEY (64 hex digits) if set, else <dir>/master.key (hex, mode
0600), created with a new store and never again: a store whose master.key went missing is an error, not a
fresh key that would make every secret unreadable.

The AES-GCM associated data is the key id plus the fields that decide what the key may trade (account,
grants): a ciphertext copied to another key, or a record whose account or grants were edited without the
master key, no longer decrypts, and check_logon (venue/auth.py) decrypts on every logon.

Several processes may open a store at once (LMDB locks across processes: the gateway reads while
`venue accounts` writes); one process must open a directory only once (an LMDB rule), which open() checks.
The secret never appears in a repr, an exception or a log line of this module.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core_cython.records import FIRST_CUSTOMER_ACCOUNT

MASTER_KEY_ENV = "VENUE_MASTER_KEY"
MASTER_KEY_FILE = "master.key"
SECRET_BYTES = 32
MASTER_KEY_BYTES = 32  # AES-256
IV_BYTES = 12  # the AES-GCM standard nonce; random per encryption (a few keys per master key: no reuse risk)
MAX_LABEL = 200
UINT64_MAX = 2**64 - 1
MAP_SIZE = 1 << 26  # 64 MiB of address space: ~100,000 keys; the file only grows as used

DATA_FILE = "data.mdb"
_KEYS_DB, _NONCES_DB, _META_DB = b"keys", b"nonces", b"meta"
_CHECK = b"check"
_CHECK_PLAINTEXT = b"venue key store v1"
_CHECK_AAD = b"venue.keys.check"
_AAD_PREFIX = b"venue.keys.secret.v1"

_open_paths: set[str] = set()  # directories open in this process (LMDB: never twice per process)
_open_lock = threading.Lock()


MAX_KEY_ACCOUNT = (1 << 24) - 1  # sbe_gateway: order ids are (account << 40) | clOrdId

class KeyStoreError(Exception):
    """A key store problem, as one line (never containing a secret)."""


class UnknownKeyError(KeyStoreError, KeyError):
    """No key with this id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown key"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key as the gateway sees it. The secret is not held here (KeyStore.secret decrypts it on demand)."""

    key_id: int
    account: int
    grants: frozenset[int] = frozenset()  # extra accounts the key may trade for
    enabled: bool = True
    created_ns: int = 0
    label: str = ""

    def may_trade(self, account: int) -> bool:
        return account == self.account or account in self.grants

    def __repr__(self) -> str:
        return (f"KeyRecord(key_id={self.key_id}, account={self.account}, grants={sorted(self.grants)}, "
                f"enabled={self.enabled}, created_ns={self.created_ns}, label={self.label!r})")


def _id_key(key_id: int) -> bytes:
    return key_id.to_bytes(8, "big")


def _check_uint64(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT64_MAX:
        raise KeyStoreError(f"{what} must be an integer in 0..2^64-1, not {value!r}")
    return value


def _check_account(value: object, what: str) -> int:
    """A customer account the gateways can serve: ids below 16 are the venue's own (and 0 means
    "every account" to a mass cancel); order ids hold the account in 24 bits."""
    account = _check_uint64(value, what)
    if not FIRST_CUSTOMER_ACCOUNT <= account <= MAX_KEY_ACCOUNT:
        raise KeyStoreError(f"{what} must be a customer account, "
                            f"{FIRST_CUSTOMER_ACCOUNT}..{MAX_KEY_ACCOUNT}, not {account}")
    return account


def _aad(key_id: int, account: int, grants: frozenset[int]) -> bytes:
    return b"".join([_AAD_PREFIX, _id_key(key_id), _id_key(account), *(_id_key(g) for g in sorted(grants))])


def _parse_master_key(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != MASTER_KEY_BYTES:
        raise KeyStoreError(f"{where} must be {2 * MASTER_KEY_BYTES} hex digits (a 256-bit key)")
    return key


def _create_master_key_file(path: Path) -> None:
    """Write a new random master key with mode 0600, atomically: link() of a finished temporary file, so
    a concurrent creator either wins or reads the winner's complete file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".master.key.")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(MASTER_KEY_BYTES) + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
    finally:
        os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the new name survives a power cut along with the store that depends on it
    finally:
        os.close(dir_fd)


def _load_master_key(directory: Path, *, may_create: bool) -> bytes:
    from_env = os.environ.get(MASTER_KEY_ENV)
    if from_env is not None:
        return _parse_master_key(from_env, MASTER_KEY_ENV)
    path = directory / MASTER_KEY_FILE
    if not path.exists():
        if not may_create:
            raise KeyStoreError(f"no master key for the key store at {directory}: set {MASTER_KEY_ENV} or "
                                f"restore {path}")
        _create_master_key_file(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:  # like ssh: a key file others can read is refused rather than used
        raise KeyStoreError(f"{path} is readable by others (mode {mode:04o}); chmod 600 {path}")
    return _parse_master_key(path.read_text(encoding="ascii", errors="replace"), str(path))


class KeyStore:
    """The API key store of one directory; use KeyStore.open()."""

    def __init__(self, env: lmdb.Environment, path: str, aead: AESGCM) -> None:
        self._env = env
        self.path = path
        self._aead = aead
        self._keys = env.open_db(_KEYS_DB)
        self._nonces = env.open_db(_NONCES_DB)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True) -> KeyStore:
        """Open the store at `path`, creating it (and its master.key unless VENUE_MASTER_KEY is set) if
        `create`; a KeyStoreError if it is missing (create=False) or the master key does not match."""
        directory = Path(path)
        real = os.path.realpath(directory)
        with _open_lock:
            if real in _open_paths:
                raise KeyStoreError(f"the key store at {directory} is already open in this process")
            _open_paths.add(real)
        try:
            return cls._open(directory, create)
        except BaseException:
            with _open_lock:
                _open_paths.discard(real)
            raise

    @classmethod
    def _open(cls, directory: Path, create: bool) -> KeyStore:
        if not (directory / DATA_FILE).is_file():
            if not create:
                raise KeyStoreError(f"no key store at {directory} (missing {DATA_FILE})")
            try:
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise KeyStoreError(f"cannot create a key store at {directory}: {exc.strerror}") from None
        try:
            env = lmdb.open(str(directory), map_size=MAP_SIZE, max_dbs=4, mode=0o600, sync=True,
                            metasync=True)
        except lmdb.Error as exc:
            raise KeyStoreError(f"cannot open the key store at {directory}: {exc}") from None
        try:
            env.reader_check()  # free reader slots left by killed processes
            meta = env.open_db(_META_DB)
            with env.begin(db=meta) as txn:
                check = txn.get(_CHECK)
            aead = AESGCM(_load_master_key(directory, may_create=check is None))
            if check is None:
                with env.begin(write=True, db=meta) as txn:
                    check = txn.get(_CHECK)  # a concurrent opener may have sealed it meanwhile
                    if check is None:
                        iv = secrets.token_bytes(IV_BYTES)
                        check = iv + aead.encrypt(iv, _CHECK_PLAINTEXT, _CHECK_AAD)
                        txn.put(_CHECK, check)
            try:
                ok = aead.decrypt(check[:IV_BYTES], check[IV_BYTES:], _CHECK_AAD) == _CHECK_PLAINTEXT
            except InvalidTag:
                ok = False
            if not ok:
                raise KeyStoreError(f"the master key ({MASTER_KEY_ENV} or {directory / MASTER_KEY_FILE}) is "
                                    f"not the one the key store at {directory} was created with")
            return cls(env, str(directory), aead)
        except BaseException:
            env.close()
            raise

    def close(self) -> None:
        """Close the environment. Idempotent."""
        if self._env is not None:
            self._env.close()
            self._env = None  # type: ignore[assignment]
            with _open_lock:
                _open_paths.discard(os.path.realpath(self.path))

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KeyStore({self.path!r})"

    @property
    def env(self) -> lmdb.Environment:
        if self._env is None:
            raise KeyStoreError(f"the key store at {self.path} is closed")
        return self._env

    # ---------------------------------------------------------------- records

    def create_key(self, account: int, *, grants: Iterable[int] = (), label: str = ""
                   ) -> tuple[KeyRecord, bytes]:
        """A new enabled key for `account` (and the `grants` accounts); returns it with its raw secret,
        which the caller shows once: the store keeps it encrypted only."""
        account = _check_account(account, "account")
        granted = frozenset(_check_account(g, "a granted account") for g in grants) - {account}
        if not isinstance(label, str) or len(label) > MAX_LABEL:
            raise KeyStoreError(f"a key label is a string of at most {MAX_LABEL} characters")
        secret = secrets.token_bytes(SECRET_BYTES)
        with self.env.begin(write=True, db=self._keys) as txn:
            while True:  # 64 random bits: a collision is ~never, but an existing id must not be overwritten
                key_id = secrets.randbits(64)
                if key_id and txn.get(_id_key(key_id)) is None:
                    break
            record = KeyRecord(key_id, account, granted, True, time.time_ns(), label)
            iv = secrets.token_bytes(IV_BYTES)
            sealed = self._aead.encrypt(iv, secret, _aad(key_id, account, granted))
            txn.put(_id_key(key_id), _encode(record, iv, sealed))
        return record, secret

    def get(self, key_id: int) -> KeyRecord | None:
        """The key as stored now (its own read transaction: changes by other processes are seen)."""
        raw = self._raw(key_id)
        return None if raw is None else _decode(key_id, raw)

    def secret(self, key_id: int) -> bytes:
        """The decrypted secret; UnknownKeyError, or KeyStoreError if the record does not decrypt."""
        raw = self._raw(key_id)
        if raw is None:
            raise UnknownKeyError(f"no key {key_id}")
        record, fields = _decode(key_id, raw), json.loads(raw)
        try:
            return self._aead.decrypt(bytes.fromhex(fields["iv"]), bytes.fromhex(fields["sealed"]),
                                      _aad(key_id, record.account, record.grants))
        except (InvalidTag, KeyError, ValueError):
            raise KeyStoreError(f"the secret of key {key_id} does not decrypt: its record was changed or "
                                f"copied without the master key") from None

    def disable(self, key_id: int) -> KeyRecord:
        """Refuse the key's next logons (sessions already logged on are the gateway's business)."""
        return self._set_enabled(key_id, False)

    def enable(self, key_id: int) -> KeyRecord:
        return self._set_enabled(key_id, True)

    def list(self, account: int | None = None) -> list[KeyRecord]:
        """Every key, or the keys of one account (its own keys, not keys granted to it), by account then
        creation time."""
        with self.env.begin(db=self._keys) as txn:
            records = [_decode(int.from_bytes(k, "big"), v) for k, v in txn.cursor()]
        if account is not None:
            records = [r for r in records if r.account == account]
        return sorted(records, key=lambda r: (r.account, r.created_ns, r.key_id))

    def accept_nonce(self, key_id: int, nonce: int) -> bool:
        """Record `nonce` as the key's last logon nonce if it is greater than the last accepted one (one
        write transaction, fsync'ed: a replayed logon stays refused after a restart); False otherwise, and
        for an unknown key or a nonce outside 1..2^64-1."""
        if isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 < nonce <= UINT64_MAX:
            return False
        key = _id_key(key_id)
        with self.env.begin(write=True) as txn:
            if txn.get(key, db=self._keys) is None:
                return False
            last = txn.get(key, db=self._nonces)
            if last is not None and nonce <= int.from_bytes(last, "big"):
                return False
            txn.put(key, nonce.to_bytes(8, "big"), db=self._nonces)
        return True

    def last_nonce(self, key_id: int) -> int:
        """The last accepted nonce of a key (0 = none yet)."""
        with self.env.begin(db=self._nonces) as txn:
            last = txn.get(_id_key(key_id))
        return 0 if last is None else int.from_bytes(last, "big")

    def _raw(self, key_id: int) -> bytes | None:
        if isinstance(key_id, bool) or not isinstance(key_id, int) or not 0 < key_id <= UINT64_MAX:
            return None
        with self.env.begin(db=self._keys) as txn:
            return txn.get(_id_key(key_id))

    def _set_enabled(self, key_id: int, enabled: bool) -> KeyRecord:
        with self.env.begin(write=True, db=self._keys) as txn:
            raw = txn.get(_id_key(key_id)) if isinstance(key_id, int) and 0 < key_id <= UINT64_MAX else None
            if raw is None:
                raise UnknownKeyError(f"no key {key_id}")
            fields = json.loads(raw)
            fields["enabled"] = enabled
            txn.put(_id_key(key_id), json.dumps(fields, sort_keys=True).encode())
        return _decode(key_id, json.dumps(fields).encode())


def _encode(record: KeyRecord, iv: bytes, sealed: bytes) -> bytes:
    fields: dict[str, Any] = {"account": record.account, "grants": sorted(record.grants),
                              "enabled": record.enabled, "created_ns": record.created_ns,
                              "label": record.label, "iv": iv.hex(), "sealed": sealed.hex()}
    return json.dumps(fields, sort_keys=True).encode()


def _decode(key_id: int, raw: bytes) -> KeyRecord:
    try:
        fields = json.loads(raw)
        return KeyRecord(key_id, int(fields["account"]), frozenset(int(g) for g in fields["grants"]),
                         bool(fields["enabled"]), int(fields["created_ns"]), str(fields["label"]))
    except (ValueError, KeyError, TypeError):
        raise KeyStoreError(f"the record of key {key_id} cannot be read") from None
