# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""Packing the engine's batches to and from ring records (the engine service's per-batch glue).

A gateway publishes Requests (a Command + its Origin) into the command ring; the engine service
splits a batch of them into the contiguous command array the engine takes and an origin array,
and after the journal commit joins each event with the origin of the command that caused it
(by cmd_seq) into Outcomes for the broadcast ring. Done in C because it runs on every batch.

The rings carry order entry only: an op outside NEW..MASS_CANCEL is replaced by op 0 before the
engine sees it (the engine rejects it: UNKNOWN_OP), so a compromised or buggy gateway cannot
define instruments, deposit, transfer or change fees. The origin is written by the gateway itself,
so it grants nothing. Money and admin commands reach the engine only through the journal's owner
(`venue accounts` with the venue stopped).

Postings are left out of the outcomes: gateways do not report them, and they are two thirds of a
trading command's events (they stay in the journal).
"""

from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy

from core_cython.envelope cimport OUTCOME_LAST_OF_COMMAND, Origin, Outcome, Request
from core_cython.records cimport EV_POSTING, OP_MASS_CANCEL, OP_NEW, Command, Event

DEF OP_REFUSED = 0  # not an op: the engine answers REJECTED(UNKNOWN_OP)

REQUEST_SIZE = sizeof(Request)
OUTCOME_SIZE = sizeof(Outcome)
ORIGIN_SIZE = sizeof(Origin)


def split_requests(const unsigned char[::1] raw, Py_ssize_t n, unsigned char[::1] cmds,
                   unsigned char[::1] origins) -> int:
    """Copy n Requests from raw into cmds (COMMAND_DTYPE bytes) and origins (Origin bytes).

    Returns how many requests carried an op other than order entry (they reach the engine as op 0)."""
    if raw.shape[0] < n * <Py_ssize_t>sizeof(Request):
        raise ValueError("raw holds fewer than n requests")
    if cmds.shape[0] < n * <Py_ssize_t>sizeof(Command) or origins.shape[0] < n * <Py_ssize_t>sizeof(Origin):
        raise ValueError("output arrays hold fewer than n records")
    cdef const Request* req = <const Request*>&raw[0]
    cdef Command* cmd = <Command*>&cmds[0]
    cdef Origin* org = <Origin*>&origins[0]
    cdef Py_ssize_t i
    cdef int refused = 0
    with nogil:
        for i in range(n):
            memcpy(&cmd[i], &req[i].cmd, sizeof(Command))
            memcpy(&org[i], &req[i].origin, sizeof(Origin))
            if cmd[i].op < OP_NEW or cmd[i].op > OP_MASS_CANCEL:
                cmd[i].op = OP_REFUSED
                refused += 1
    return refused


def join_outcomes(const unsigned char[::1] events, Py_ssize_t n_events, const unsigned char[::1] origins,
                  Py_ssize_t n_cmds, uint64_t first_cmd_seq, unsigned char[::1] out) -> int:
    """Write one Outcome per event but postings into out: the event + the origin of its command.

    The last outcome of each command carries OUTCOME_LAST_OF_COMMAND (a gateway can then finish a
    command's reports without waiting). Returns the number of outcomes written."""
    if events.shape[0] < n_events * <Py_ssize_t>sizeof(Event):
        raise ValueError("events holds fewer than n_events records")
    if origins.shape[0] < n_cmds * <Py_ssize_t>sizeof(Origin):
        raise ValueError("origins holds fewer than n_cmds records")
    if out.shape[0] < n_events * <Py_ssize_t>sizeof(Outcome):
        raise ValueError("out holds fewer than n_events outcomes")
    if n_events == 0:
        return 0
    cdef const Event* ev = <const Event*>&events[0]
    cdef const Origin* org = <const Origin*>&origins[0]
    cdef Outcome* oc = <Outcome*>&out[0]
    cdef Py_ssize_t i
    cdef Py_ssize_t m = 0
    cdef uint64_t k
    cdef bint bad = False
    with nogil:
        for i in range(n_events):
            k = ev[i].cmd_seq - first_cmd_seq
            if k >= <uint64_t>n_cmds:
                bad = True
                break
            if m > 0 and oc[m - 1].ev.cmd_seq != ev[i].cmd_seq:
                oc[m - 1].origin.flags = OUTCOME_LAST_OF_COMMAND
            if ev[i].type == EV_POSTING:
                continue
            memcpy(&oc[m].ev, &ev[i], sizeof(Event))
            memcpy(&oc[m].origin, &org[k], sizeof(Origin))
            oc[m].origin.flags = 0
            m += 1
        if m > 0:
            oc[m - 1].origin.flags = OUTCOME_LAST_OF_COMMAND
    if bad:
        raise ValueError("an event names a command outside the batch")
    return m
