"""Admin operations: each builds one command batch from the venue's state and runs it as one group commit.

    events, info = run_operation(venue, "create_account", {"name": "carol", "deposits": [["USDT", "10"]]})

An operation is named and its parameters are plain data (JSON-able), so the same code runs in two
places: in the `venue accounts` process when the venue is stopped (venue.admin opens the journal), and
in the engine process, on the engine's thread between two batches, when it runs (venue.admin_channel
carries the name and parameters there). Either way the builder sees the journal open and no other
writer, so the ids and names it allocates cannot be raced. A request that cannot be done raises
AccountsError (one line, shown to the operator); the engine goes on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from core_cython.records import FIRST_CUSTOMER_ACCOUNT, Op, new_commands, ref_hash, set_money
from venue.bootstrap import META_ACCOUNTS, _save, _stored
from venue.instruments import EdgeReject
from venue.money import MAX_TIER

if TYPE_CHECKING:
    from venue.run import Venue

Builder = Callable[["Venue", dict[str, Any]], tuple[np.ndarray, dict[str, Any]]]


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # an account name
MAX_OPEN_ORDERS = 2**63 - 1  # the command's qty field (int64)


class AccountsError(Exception):
    """A `venue accounts` request that cannot be done (one line)."""


def _integer(params: dict[str, Any], key: str, low: int, high: int) -> int:
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise AccountsError(f"{key} must be an integer in {low}..{high}, not {value!r}")
    return value


def _strings(params: dict[str, Any], key: str, width: int, most: int) -> list[list[str]]:
    """params[key]: a list of at most `most` items, each a string (width 1) or a list of `width` strings."""
    items = params.get(key, [])
    if not isinstance(items, list) or len(items) > most:
        raise AccountsError(f"{key} must be a list of at most {most} items")
    rows = [[item] if width == 1 else item for item in items]
    if not all(isinstance(row, list) and len(row) == width and all(isinstance(x, str) for x in row)
               for row in rows):
        raise AccountsError(f"{key}: each item must be {'a string' if width == 1 else f'{width} strings'}")
    return rows


def check_account_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name) or name.isdigit():
        raise AccountsError(f"account name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting "
                            f"with a letter or digit, not only digits")
    return name


def account_params(venue: Venue, params: dict[str, Any]) -> tuple[str, int, int, list[list[str]], list[str]]:
    """The checked parameters of create_account: (name, tier, max_open_orders, deposits, grants). They
    may come from any process of the venue's user (the admin socket): nothing is trusted."""
    name = check_account_name(params.get("name"))
    tier = _integer(params, "tier", 0, MAX_TIER)
    max_open_orders = _integer(params, "max_open_orders", 1, MAX_OPEN_ORDERS)
    deposits = _strings(params, "deposits", 2, len(venue.edge.assets))
    assets = [asset for asset, _ in deposits]
    twice = sorted({a for a in assets if assets.count(a) > 1})
    if twice:
        raise AccountsError(f"--deposit {twice[0]} is given twice")
    grants = [row[0] for row in _strings(params, "grants", 1, 1000)]
    return name, tier, max_open_orders, deposits, grants


def resolve_account(text: str, names: dict[int, str]) -> int:
    """An account name or id of the journal's meta -> its id."""
    for number, name in names.items():
        if name == text:
            return number
    if text.isdigit() and int(text) in names:
        return int(text)
    known = ", ".join(f"{n} ({i})" for i, n in sorted(names.items())) or "none"
    raise AccountsError(f"no account {text} in the journal (named accounts: {known})")


def create_account(venue: Venue, params: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """CREATE_ACCOUNT + a DEPOSIT per (asset, amount) for the new account `name`.

    params: name, tier, max_open_orders, deposits [[asset, amount text]], grants [account names or ids].
    Returns the batch and {"account": id, "grants": [ids]}."""
    name, tier, max_open_orders, deposits, grants = account_params(venue, params)
    journal, edge = venue.engine.journal, venue.edge
    stored = _stored(journal, META_ACCOUNTS)
    in_engine = set(venue.engine.engine.accounts())
    existing = next((i for i, n in stored.items() if n == name), None)
    if existing is not None and existing in in_engine:
        raise AccountsError(f"account {name} exists already (id {existing})")
    # A name in the meta whose account the engine lacks: a creation interrupted between the two
    # writes (as in bootstrap.open_accounts); it is done again under the same id.
    account = existing
    if account is None:  # never an id in use, as open_accounts picks them
        account = max([*stored, *in_engine, FIRST_CUSTOMER_ACCOUNT - 1]) + 1
    customers = {i: n for i, n in stored.items() if i in in_engine and i >= FIRST_CUSTOMER_ACCOUNT}
    granted = [resolve_account(text, customers) for text in grants]
    rows = []
    now = time.time_ns()
    for asset_name, amount in deposits:
        asset = edge.assets.get(asset_name)
        if asset is None:
            known = ", ".join(a.name for _, a in edge.assets)
            raise AccountsError(f"--deposit {asset_name}: no such asset (assets: {known})")
        try:
            units = asset.to_units(amount, f"--deposit {asset_name}", positive=True)
        except EdgeReject as exc:
            raise AccountsError(str(exc)) from None
        # Unique across every deposit ever made: the engine refuses a ref it has credited before.
        ref = ref_hash(f"accounts-cli:{name}:{asset_name}:{now}")
        rows.append((edge.assets.id_of(asset_name), units, ref))
    cmds = new_commands(1 + len(rows))
    set_money(cmds[0], Op.CREATE_ACCOUNT, account=account, qty=max_open_orders, flags=tier)
    for cmd, (asset_id, units, (aux1, aux2)) in zip(cmds[1:], rows, strict=True):
        set_money(cmd, Op.DEPOSIT, account=account, asset=asset_id, qty=units, aux1=aux1, aux2=aux2)
    if existing is None:  # recorded before the engine sees the account, as open_accounts does
        _save(journal, META_ACCOUNTS, {**stored, account: name})
    return cmds, {"account": account, "grants": granted}


OPERATIONS: dict[str, Builder] = {"create_account": create_account}


def run_operation(venue: Venue, operation: str, params: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """Build the operation's batch and submit it as one group commit; returns (a copy of its events,
    the builder's info). Rejected commands are events, for the caller to check. A request that cannot
    be built raises AccountsError; a failure of the submit itself (the journal) is the caller's."""
    builder = OPERATIONS.get(operation)
    if builder is None:
        raise AccountsError(f"unknown admin operation {operation!r} (known: {', '.join(sorted(OPERATIONS))})")
    try:
        batch, info = builder(venue, params)
    except AccountsError:
        raise
    except Exception as exc:  # a request the checks missed: refused, never the engine's end
        raise AccountsError(f"bad parameters for {operation}: {type(exc).__name__}: {exc}") from None
    batch = np.ascontiguousarray(batch).copy()  # the sequencer stamps seq and ts in place
    return venue.engine.submit(batch, time.time_ns()).copy(), info  # a view until the next submit
