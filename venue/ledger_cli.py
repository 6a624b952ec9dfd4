"""`venue ledger statement|check`: an account's postings, and the ledger invariants, from a journal.

Read-only, safe on a live journal. Names come from the journal's meta (written by `venue run`):
accounts by name ("demo-1"), the built-in ones as "@external", "@adjustments", "@fees", or any
account by its integer id; assets by name. Amounts print with their asset's decimals.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from core_cython.records import FIRST_CUSTOMER_ACCOUNT
from venue.bootstrap import META_ACCOUNTS, META_ASSETS
from venue.money import BUILTIN_ACCOUNTS

EXIT_OK = 0
EXIT_VIOLATIONS = 1


class LedgerError(Exception):
    """A statement or check that cannot run (one line)."""


class _Names:
    """The journal's account and asset names, both ways."""

    def __init__(self, meta: dict[str, Any]) -> None:
        accounts = meta.get(META_ACCOUNTS) or {}
        assets = meta.get(META_ASSETS) or {}
        self.account_names = {number: name for name, number in BUILTIN_ACCOUNTS.items()}
        self.account_names.update({int(k): str(v) for k, v in accounts.items()})
        self.assets = {int(k): (str(v["name"]), int(v["decimals"])) for k, v in assets.items()}

    def account_id(self, text: str) -> int:
        for number, name in self.account_names.items():
            if name == text:
                return number
        if text.isdigit():
            return int(text)
        known = ", ".join(n for i, n in sorted(self.account_names.items()) if i >= FIRST_CUSTOMER_ACCOUNT)
        raise LedgerError(f"no account {text} in the journal (named ones: {known or 'none'}; "
                          f"or give an account id)")

    def asset_id(self, text: str) -> int:
        for number, (name, _) in self.assets.items():
            if name == text:
                return number
        known = ", ".join(name for name, _ in self.assets.values())
        raise LedgerError(f"no asset {text} in the journal (assets: {known or 'none'})")

    def account(self, number: int) -> str:
        return self.account_names.get(number, str(number))

    def amount(self, asset: int, units: int) -> str:
        if asset not in self.assets:
            return str(units)
        from venue.assets import Asset

        name, decimals = self.assets[asset]
        return Asset(name, decimals).format(units)

    def asset(self, number: int) -> str:
        return self.assets.get(number, (str(number), 0))[0]


def statement(path: str, account: str, asset: str | None, *, as_json: bool = False) -> int:
    from journal import Journal, RecordKind
    from journal.ledger import statement as ledger_statement

    with Journal(path, readonly=True) as journal:
        names = _Names(journal.meta())
        account_id = names.account_id(account)
        asset_id = None if asset is None else names.asset_id(asset)
        rows = ledger_statement(journal.batches(RecordKind.EVENTS), account_id, asset_id)
    printable = [_row(names, row) for row in rows]
    if as_json:
        for row in printable:
            print(json.dumps(row))
        return EXIT_OK
    which = f" in {asset}" if asset else ""
    print(f"statement of {names.account(account_id)} (account {account_id}){which}: {len(rows)} postings, "
          f"journal {path}")
    header = ("seq", "kind", "asset", "available change", "held change", "available", "held", "cause",
              "id", "counterparty", "fee")
    print(_LINE.format(*header))
    for row in printable:
        print(_LINE.format(*(row.get(key, "") for key in _KEYS)))
    return EXIT_OK


_KEYS = ("seq", "kind", "asset", "available_change", "held_change", "available", "held", "cause", "id",
         "counterparty", "fee")
_LINE = "{:>9} {:<18} {:<6} {:>22} {:>22} {:>22} {:>22} {:>9} {:>9} {:<14} {:>}"


def _row(names: _Names, row: dict[str, Any]) -> dict[str, Any]:
    """A statement row with names and decimal amounts."""
    asset = row["asset"]
    out: dict[str, Any] = {"seq": row["seq"], "kind": row["kind"].lower(), "asset": names.asset(asset)}
    for key in ("available_change", "held_change", "available", "held"):
        out[key] = names.amount(asset, row[key])
    out["cause"] = row["cause"]
    if row["order_id"]:
        out["id"] = row["order_id"]
    if row["counterparty"]:
        out["counterparty"] = names.account(row["counterparty"])
    if row["fee"]:
        out["fee"] = names.amount(asset, row["fee"])
    return out


def check(path: str, *, progress: bool = False) -> int:
    from journal import Journal, RecordKind
    from journal.ledger import check_ledger
    from journal.replay import journal_funds_mode, recover_engine

    with Journal(path, readonly=True) as journal:
        if not journal_funds_mode(journal):
            raise LedgerError(f"journal at {path} runs the engine in core mode: it has no ledger")
        engine = recover_engine(journal, progress=progress and sys.stderr.isatty())
        problems = check_ledger(engine, journal.batches(RecordKind.EVENTS))
        accounts, events = len(engine.accounts()), journal.last_event_seq
    for problem in problems:
        print(f"VIOLATION   {problem}")
    if problems:
        print(f"DAMAGED: the ledger of {path} breaks its invariants (see above)")
        return EXIT_VIOLATIONS
    print(f"OK: the ledger of {path} holds every invariant ({accounts} accounts, {events:,} events)")
    return EXIT_OK
