"""Bringing a journaled engine up to the configuration at venue start, once per journal.

The integers a journal's commands use for names live in its meta, so reordering the config never
renumbers anything, and a resumed journal only gets what is new:
    assets       {asset id: {"name", "decimals"}}   ADD_ASSET for ids the engine lacks
    instruments  {symbol id: {"name", ...definition}} ADD_INSTRUMENT (with its assets in funds mode)
    markets      {symbol: {"fees", "reference_price", "max_notional"}} as last sent: SET_FEES /
                 SET_LIMITS when the config differs (re-sending is harmless, so this is written after)
    accounts     {account id: name}                 CREATE_ACCOUNT + funding deposits, once per account
A defined asset or instrument cannot change (old integer amounts would change meaning): a config
that differs from the journal is a VenueError.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from core_cython.records import (
    FIRST_CUSTOMER_ACCOUNT,
    EventType,
    Op,
    Reason,
    new_commands,
    ref_hash,
    set_money,
)
from venue.assets import Asset, funds_link
from venue.config import AccountSettings, MarketSettings
from venue.edge import Edge
from venue.instruments import Instrument, InstrumentError

META_INSTRUMENTS = "instruments"
META_ASSETS = "assets"
META_MARKETS = "markets"
META_ACCOUNTS = "accounts"


class VenueError(Exception):
    """The journal and the configuration disagree (one line)."""


def _stored(journal: Any, name: str) -> dict[int, Any]:
    raw = journal.get_meta(name, {}) or {}
    try:
        return {int(key): value for key, value in raw.items()}
    except (AttributeError, TypeError, ValueError):
        raise VenueError(f"journal meta {name!r} is not a table keyed by id") from None


def _save(journal: Any, name: str, table: Mapping[int, Any]) -> None:
    journal.set_meta(name, {str(k): v for k, v in sorted(table.items())})


def submit_checked(engine: Any, cmds: np.ndarray, what: str, ok: EventType = EventType.APPLIED) -> np.ndarray:
    """Submit setup commands; every one must succeed (an `ok` event), else a VenueError naming the reason."""
    events = engine.submit(cmds, time.time_ns())
    rejected = events[events["type"] == EventType.REJECTED]
    if len(rejected) or int((events["type"] == ok).sum()) != len(cmds):
        reasons = sorted({Reason(r).name.lower() for r in rejected["reason"].tolist()})
        raise VenueError(f"the engine refused {what} ({', '.join(reasons) or 'no answer'})")
    return events


def define_assets(engine: Any, edge: Edge, assets: tuple[Asset, ...]) -> list[str]:
    """Register the journal's assets in the edge, add the configured new ones; returns the names added."""
    stored = _stored(engine.journal, META_ASSETS)
    for asset_id, spec in sorted(stored.items()):
        try:
            edge.assets.add(Asset.define(spec.get("name"), spec.get("decimals")), asset_id)
        except (InstrumentError, AttributeError) as exc:
            raise VenueError(f"journal asset {asset_id} cannot be read back: {exc}") from None
    in_engine = set(engine.engine.assets())
    changed = False
    for asset in assets:
        existing = edge.assets.get(asset.name)
        if existing is None:
            asset_id = max([*stored, *in_engine, 0]) + 1
            edge.assets.add(asset, asset_id)
            stored[asset_id] = {"name": asset.name, "decimals": asset.decimals}
            changed = True
        elif existing.decimals != asset.decimals:
            raise VenueError(f"asset {asset.name}: config has decimals {asset.decimals}, the journal "
                             f"{existing.decimals}; a defined asset cannot change")
    if changed:  # recorded before the engine sees them: a crash in between is re-done below
        _save(engine.journal, META_ASSETS, stored)
    missing = [(asset_id, a) for asset_id, a in edge.assets if asset_id not in in_engine]
    if missing:
        cmds = new_commands(len(missing))
        for cmd, (asset_id, asset) in zip(cmds, missing, strict=True):
            set_money(cmd, Op.ADD_ASSET, asset=asset_id, qty=asset.decimals)
        submit_checked(engine, cmds, "the assets " + ", ".join(a.name for _, a in missing))
    return [a.name for _, a in missing]


def _definition(instrument: Instrument) -> dict[str, Any]:
    spec = instrument.describe()
    return {"name": spec.pop("symbol"), **spec}


def define_instruments(engine: Any, edge: Edge, instruments: tuple[Instrument, ...]) -> list[str]:
    """Register the journal's instruments in the edge, add the configured ones that are new; returns
    the symbols newly defined in the engine. Funds mode: the edge must know their assets already."""
    stored = _stored(engine.journal, META_INSTRUMENTS)
    for symbol_id, spec in sorted(stored.items()):
        fields = {k: v for k, v in spec.items() if k != "name"}
        try:
            edge.instruments.add(Instrument.define(spec.get("name"), **fields), symbol_id)
        except (InstrumentError, TypeError) as exc:
            raise VenueError(f"journal instrument {symbol_id} cannot be read back: {exc}") from None
    engine_symbols = set(engine.engine.symbols())
    changed = False
    for instrument in instruments:
        existing = edge.instruments.get(instrument.symbol)
        if existing is None:
            symbol_id = max([*stored, *engine_symbols, 0]) + 1
            edge.instruments.add(instrument, symbol_id)
            stored[symbol_id] = _definition(instrument)
            changed = True
        elif _definition(existing) != _definition(instrument):
            journaled, configured = _definition(existing), _definition(instrument)
            key = next(k for k in configured if configured[k] != journaled.get(k))
            raise VenueError(f"instrument {instrument.symbol}: config has {key} {configured[key]}, the "
                             f"journal {journaled.get(key)}; a defined instrument cannot change")
    if changed:  # recorded before the engine sees the definitions: a crash in between is re-done below
        _save(engine.journal, META_INSTRUMENTS, stored)
    missing = [(symbol_id, i) for symbol_id, i in edge.instruments if symbol_id not in engine_symbols]
    if not missing:
        return []
    cmds = new_commands(len(missing))
    for cmd, (symbol_id, instrument) in zip(cmds, missing, strict=True):
        try:
            link = funds_link(instrument, edge.assets) if edge.funds else None
        except InstrumentError as exc:
            raise VenueError(f"instrument {instrument.symbol}: {exc}") from None
        instrument.fill_add_command(cmd, symbol_id, link)
    symbols = [i.symbol for _, i in missing]
    submit_checked(engine, cmds, "the definition of " + ", ".join(symbols), EventType.INSTRUMENT_ADDED)
    return symbols


def apply_markets(engine: Any, edge: Edge, markets: Mapping[str, MarketSettings]) -> list[str]:
    """Send the fee schedules and limits that differ from what the journal's meta says was sent; returns
    the symbols updated. A tier dropped from the config gets tier 0's rates (what it then falls back to)."""
    sent = engine.journal.get_meta(META_MARKETS, {}) or {}
    updates: list[tuple[str, dict[str, Any]]] = []
    cmds = []
    for symbol, market in markets.items():
        wanted = market.describe()
        if sent.get(symbol) == wanted:
            continue
        symbol_id = edge.instruments.id_of(symbol)
        assert symbol_id is not None, symbol
        rates = {tier: (maker, taker) for tier, maker, taker in market.fees}
        old_tiers = {int(t) for t in (sent.get(symbol) or {}).get("fees", {})}
        for tier in sorted(old_tiers | set(rates)):
            maker, taker = rates.get(tier, rates.get(0, (0, 0)))
            cmds.append({"op": Op.SET_FEES, "symbol": symbol_id, "flags": tier, "price": maker, "qty": taker})
        cmds.append({"op": Op.SET_LIMITS, "symbol": symbol_id, "price": market.reference_price_ticks,
                     "aux1": market.max_notional_units})
        updates.append((symbol, wanted))
    if not cmds:
        return []
    batch = new_commands(len(cmds))
    for cmd, fields in zip(batch, cmds, strict=True):
        set_money(cmd, **fields)
    submit_checked(engine, batch, "the fees and limits of " + ", ".join(s for s, _ in updates))
    engine.journal.set_meta(META_MARKETS, {**sent, **dict(updates)})  # after: a crash re-sends them
    return [s for s, _ in updates]


def open_accounts(engine: Any, edge: Edge, names: list[str], defaults: AccountSettings,
                  funding: Mapping[str, str]) -> list[str]:
    """Give the edge the journal's account names, create the named accounts the engine lacks and fund
    each new one (a deposit per asset of `funding`, ref "funding:<name>:<asset>"); returns those created."""
    stored = _stored(engine.journal, META_ACCOUNTS)
    for account_id, name in sorted(stored.items()):
        edge.accounts.assign(str(name), account_id)
    in_engine = set(engine.engine.accounts())
    edge.known_accounts.update(in_engine)
    added = [name for name in names if name not in edge.accounts]
    next_id = max([*stored, *in_engine, FIRST_CUSTOMER_ACCOUNT - 1]) + 1  # never an id in use
    for account_id, name in enumerate(added, start=next_id):
        edge.accounts.assign(name, account_id)
        stored[account_id] = name
    if added:  # recorded before the engine sees them: a crash in between is re-done below
        _save(engine.journal, META_ACCOUNTS, stored)
    missing = [(edge.accounts.id(name), name) for name in names if edge.accounts.id(name) not in in_engine]
    if not missing:
        return []
    deposits = []
    for asset_name, amount in funding.items():
        asset = edge.assets.get(asset_name)
        assert asset is not None, asset_name  # the config checks funding against its assets
        deposits.append((edge.assets.id_of(asset_name), asset_name, asset.to_units(amount)))
    cmds = new_commands(len(missing) * (1 + len(deposits)))
    slot = 0
    for account_id, name in missing:
        set_money(cmds[slot], Op.CREATE_ACCOUNT, account=account_id, qty=defaults.max_open_orders,
                  flags=defaults.tier)
        slot += 1
        for asset_id, asset_name, units in deposits:
            aux1, aux2 = ref_hash(f"funding:{name}:{asset_name}")
            set_money(cmds[slot], Op.DEPOSIT, account=account_id, asset=asset_id, qty=units, aux1=aux1,
                      aux2=aux2)
            slot += 1
    edge.known_accounts.update(account_id for account_id, _ in missing)
    submit_checked(engine, cmds, "the accounts " + ", ".join(name for _, name in missing))
    return [name for _, name in missing]
