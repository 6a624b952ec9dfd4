# cython: language_level=3
"""The engine's growing output buffer, shared by the matcher and the ledger (one sequence of events)."""

from libc.stdint cimport uint8_t, uint64_t
from libc.stdlib cimport abort, realloc
from libc.string cimport memset

from core_cython.records cimport EV_APPLIED, R_NONE, Command, Event, is_money_op


cdef struct EventLog:
    Event* ev
    size_t len
    size_t cap
    uint64_t last_seq       # the last event sequence number handed out
    const Command* cur      # the command being applied: stamps cmd_seq, ts and op


cdef inline Event* log_emit(EventLog* log, uint8_t type, uint8_t reason) noexcept nogil:
    """Append a zeroed event with the next sequence number; the caller fills its fields."""
    cdef Event* grown
    cdef Event* e
    if log.len == log.cap:
        grown = <Event*>realloc(log.ev, log.cap * 2 * sizeof(Event))
        if grown == NULL:
            abort()  # out of memory: the engine cannot continue deterministically
        log.ev = grown
        log.cap *= 2
    e = &log.ev[log.len]
    log.len += 1
    memset(e, 0, sizeof(Event))
    log.last_seq += 1
    e.seq = log.last_seq
    e.cmd_seq = log.cur.seq
    e.ts = log.cur.ts
    e.op = log.cur.op
    e.type = type
    e.reason = reason
    return e


cdef inline Event* log_applied(EventLog* log, const Command* c) noexcept nogil:
    """APPLIED for a funds/admin command, echoing its fields (README "Funds mode", Commands)."""
    cdef Event* e = log_emit(log, EV_APPLIED, R_NONE)
    e.order_id = c.order_id
    e.account = c.account
    e.symbol = c.asset if is_money_op(c.op) else c.symbol
    e.price = c.price
    e.qty = c.qty
    e.side = c.flags
    return e
