"""`venue accounts ...`: create engine accounts with an API key, list them, manage their keys.

    venue accounts create NAME [--tier N] [--max-open-orders N] [--deposit ASSET=AMOUNT ...] [--grant ID ...]
    venue accounts list [--json]
    venue accounts key add ACCOUNT [--grant ID ...] [--label TEXT] [--json]
    venue accounts key list [ACCOUNT] [--json]
    venue accounts key disable|enable KEY_ID

Accounts live in the engine (CREATE_ACCOUNT + DEPOSIT commands through venue.admin, one group commit) and
are named in the journal's meta "accounts" table, as `venue run` names its demo accounts; keys live in
the key store (venue.keys), never in the journal. A new secret is printed once, on stdout, and is not
kept anywhere in clear. Account arguments are names or ids from the journal's meta.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core_cython.records import EventType, Reason
from venue.admin_ops import AccountsError, check_account_name, resolve_account
from venue.argtypes import count, positive_int
from venue.bootstrap import META_ACCOUNTS
from venue.config import VenueConfig, load_config
from venue.money import MAX_TIER

if TYPE_CHECKING:
    from venue.keys import KeyRecord, KeyStore

SECRET_NOTE = "shown once: store it now, the venue keeps it encrypted and cannot show it again"


# ---------------------------------------------------------------------------- arguments


def tier(text: str) -> int:
    value = count(text)
    if value > MAX_TIER:
        raise argparse.ArgumentTypeError(f"{text} must be at most {MAX_TIER}")
    return value


def deposit(text: str) -> tuple[str, str]:
    asset, sep, amount = text.partition("=")
    if not sep or not asset.strip() or not amount.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not ASSET=AMOUNT (e.g. USDT=1000)")
    return asset.strip(), amount.strip()


def key_id(text: str) -> int:
    value = count(text)
    if not 0 < value < 2**64:
        raise argparse.ArgumentTypeError(f"{text} is not a key id (1..2^64-1)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `venue accounts` subcommands (venue/cli.py calls this)."""
    tools = parser.add_subparsers(dest="tool", metavar="TOOL", required=True)
    create = tools.add_parser(
        "create", help="create an engine account, fund it, and give it an API key (secret shown once)",
        description="Create the account NAME in the engine (CREATE_ACCOUNT, then a DEPOSIT per --deposit, "
        "one group commit), name it in the journal, create an API key for it and print the account id, "
        "the key id and the key's secret: the secret is shown this once. The venue must not be running.")
    create.add_argument("name", metavar="NAME", help="account name (letters, digits, '.', '_', '-')")
    create.add_argument("--tier", type=tier, help="fee tier (default: accounts.tier of the config)")
    create.add_argument("--max-open-orders", type=positive_int, metavar="N",
                        help="live orders limit (default: accounts.max_open_orders of the config)")
    create.add_argument("--deposit", type=deposit, action="append", default=[], metavar="ASSET=AMOUNT",
                        help="deposit AMOUNT of ASSET into the new account (repeatable, one per asset)")
    create.add_argument("--grant", action="append", default=[], metavar="ACCOUNT",
                        help="the key may also trade for this existing account, a name or id (repeatable)")
    create.add_argument("--json", action="store_true",
                        help="print one JSON object {account, name, key_id, secret_hex}")
    listing = tools.add_parser("list", help="the journal's accounts with their key ids",
                               description="List the named accounts of the journal and the ids of their "
                               "keys.")
    listing.add_argument("--json", action="store_true", help="one JSON object per account")

    key = tools.add_parser("key", help="add, list, disable or enable API keys",
                           description="Manage the API keys of the key store (keys.path).")
    key_tools = key.add_subparsers(dest="key_tool", metavar="KEY_TOOL", required=True)
    add = key_tools.add_parser("add", help="a new key for an account (secret shown once)",
                               description="Create an API key for ACCOUNT and print its secret, this once.")
    add.add_argument("account", metavar="ACCOUNT", help="account name or id")
    add.add_argument("--grant", action="append", default=[], metavar="ACCOUNT",
                     help="the key may also trade for this account (repeatable)")
    add.add_argument("--label", default="", help="a note kept with the key")
    add.add_argument("--json", action="store_true",
                     help="print one JSON object {account, key_id, secret_hex}")
    key_list = key_tools.add_parser("list", help="the keys (of one account)",
                                    description="List the keys of the key store, or of ACCOUNT.")
    key_list.add_argument("account", nargs="?", metavar="ACCOUNT", help="account name or id")
    key_list.add_argument("--json", action="store_true", help="one JSON object per key")
    disable = key_tools.add_parser("disable", help="refuse the key's next logons",
                                   description="Disable KEY_ID: its next logon is refused (KEY_DISABLED).")
    enable = key_tools.add_parser("enable", help="accept the key's logons again",
                                  description="Enable KEY_ID again.")
    for tool in (disable, enable):
        tool.add_argument("key_id", type=key_id, metavar="KEY_ID")

    for tool in (create, listing, add, key_list, disable, enable):
        tool.add_argument("--config", metavar="PATH",
                          help="config file (default: ./config/venue.toml, else the one in the source tree)")
        tool.add_argument("--journal", metavar="PATH", help="journal directory (journal.path)")
        tool.add_argument("--keys", metavar="PATH", help="key store directory (keys.path)")


def _config(args: argparse.Namespace) -> VenueConfig:
    overrides = [f"{key}={value}" for key, value in (("journal.path", args.journal), ("keys.path", args.keys))
                 if value is not None]
    return load_config(args.config, overrides)


# ---------------------------------------------------------------------------- the journal's names


def _journal_accounts(config: VenueConfig) -> dict[int, str]:
    """{account id: name} from the journal's meta (read-only: fine while the venue runs)."""
    from journal import Journal

    with Journal(config.journal.path, readonly=True) as journal:
        return {int(k): str(v) for k, v in (journal.get_meta(META_ACCOUNTS, {}) or {}).items()}


@contextmanager
def _store(config: VenueConfig, *, create: bool = True) -> Iterator[KeyStore]:
    from venue.keys import KeyStore  # imported here: `venue --help` does not need the cryptography package

    with KeyStore.open(config.keys.path, create=create) as store:
        yield store


# ---------------------------------------------------------------------------- create


def _check_applied(events: np.ndarray, expected: int, what: str) -> None:
    rejected = events[events["type"] == EventType.REJECTED]
    if len(rejected) or int((events["type"] == EventType.APPLIED).sum()) != expected:
        reasons = sorted({Reason(r).name.lower() for r in rejected["reason"].tolist()})
        raise AccountsError(f"the engine refused {what} ({', '.join(reasons) or 'no answer'})")


def create(config: VenueConfig, name: str, *, tier: int | None = None, max_open_orders: int | None = None,
           deposits: Sequence[tuple[str, str]] = (), grants: Sequence[str] = ()
           ) -> tuple[int, KeyRecord, bytes]:
    """Create and fund the engine account `name`, then a key for it; returns (account id, key, secret).
    The engine side (venue.admin_ops.create_account) checks every parameter; the name first here."""
    check_account_name(name)  # before a journal is opened (or created) for nothing
    tier = config.accounts.tier if tier is None else tier
    max_open_orders = config.accounts.max_open_orders if max_open_orders is None else max_open_orders
    from venue.admin import run_admin

    params = {"name": name, "tier": tier, "max_open_orders": max_open_orders,
              "deposits": [list(pair) for pair in deposits], "grants": list(grants)}
    # The key store first: a wrong master key must fail before the engine account exists.
    with _store(config) as store:
        events, chosen = run_admin(config, "create_account", params)  # the engine's, stopped or running
        _check_applied(events, 1 + len(deposits), f"the account {name}")
        record, secret = store.create_key(chosen["account"], grants=chosen["grants"], label=name)
    return chosen["account"], record, secret


def _print_new_key(record: KeyRecord, secret: bytes, names: dict[int, str], as_json: bool,
                   account_name: str | None = None) -> None:
    if as_json:
        out: dict[str, Any] = {"account": record.account}
        if account_name is not None:
            out["name"] = account_name
        out.update(key_id=record.key_id, secret_hex=secret.hex())
        print(json.dumps(out))
        return
    print(f"key {record.key_id} for account {_label(record.account, names)}{_grants_text(record, names)}")
    print(f"secret {secret.hex()}  ({SECRET_NOTE})")


def _label(account: int, names: dict[int, str]) -> str:
    return f"{names[account]} ({account})" if account in names else str(account)


def _grants_text(record: KeyRecord, names: dict[int, str]) -> str:
    if not record.grants:
        return ""
    return "; may also trade for " + ", ".join(_label(a, names) for a in sorted(record.grants))


# ---------------------------------------------------------------------------- the command


def main(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.tool == "create":
        account, record, secret = create(config, args.name, tier=args.tier,
                                         max_open_orders=args.max_open_orders, deposits=args.deposit,
                                         grants=args.grant)
        if args.json:
            _print_new_key(record, secret, {}, True, args.name)
            return 0
        funded = ", ".join(f"{amount} {asset}" for asset, amount in args.deposit) or "nothing"
        print(f"account {args.name} created: id {account}, deposited {funded}")
        _print_new_key(record, secret, {**_journal_accounts(config), account: args.name}, False)
        return 0
    if args.tool == "list":
        return _list_accounts(config, args.json)
    if args.key_tool == "add":
        names = _journal_accounts(config)
        account = resolve_account(args.account, names)
        granted = [resolve_account(text, names) for text in args.grant]
        with _store(config) as store:
            record, secret = store.create_key(account, grants=granted, label=args.label)
        _print_new_key(record, secret, names, args.json)
        return 0
    if args.key_tool == "list":
        return _list_keys(config, args.account, args.json)
    with _store(config, create=False) as store:
        record = store.disable(args.key_id) if args.key_tool == "disable" else store.enable(args.key_id)
    state = "disabled: its next logon is refused" if args.key_tool == "disable" else "enabled"
    print(f"key {record.key_id} of account {record.account} {state}")
    return 0


def _all_keys(config: VenueConfig, account: int | None = None) -> list[KeyRecord]:
    from venue.keys import DATA_FILE

    if not (Path(config.keys.path) / DATA_FILE).is_file():
        return []  # no key store yet: no keys
    with _store(config, create=False) as store:
        return store.list(account)


def _list_accounts(config: VenueConfig, as_json: bool) -> int:
    names = _journal_accounts(config)
    keys: dict[int, list[KeyRecord]] = {}
    for record in _all_keys(config):
        keys.setdefault(record.account, []).append(record)
    for account, name in sorted(names.items()):
        own = keys.get(account, [])
        if as_json:
            print(json.dumps({"account": account, "name": name,
                              "keys": [{"key_id": r.key_id, "enabled": r.enabled} for r in own]}))
        else:
            listed = ", ".join(f"{r.key_id}" + ("" if r.enabled else " (disabled)") for r in own) or "-"
            print(f"{account:>8}  {name:<24} keys: {listed}")
    if not names and not as_json:
        print(f"no named accounts in the journal {config.journal.path}")
    return 0


def _list_keys(config: VenueConfig, account_text: str | None, as_json: bool) -> int:
    from journal.errors import JournalNotFoundError

    try:
        names = _journal_accounts(config)
    except JournalNotFoundError:
        if account_text is not None and not account_text.isdigit():
            raise
        names = {}  # names are a nicety here: ids alone still list the keys
    account = None
    if account_text is not None:
        account = int(account_text) if account_text.isdigit() else resolve_account(account_text, names)
    for record in _all_keys(config, account):
        if as_json:
            print(json.dumps({"key_id": record.key_id, "account": record.account,
                              "grants": sorted(record.grants), "enabled": record.enabled,
                              "created_ns": record.created_ns, "label": record.label}))
        else:
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.created_ns / 1e9))
            print(f"{record.key_id:>20}  account {_label(record.account, names):<24} "
                  f"{'enabled ' if record.enabled else 'disabled'}  created {created} UTC  "
                  f"{record.label}{_grants_text(record, names)}")
    return 0
