# cython: language_level=3
# What travels on the rings between the gateways and the engine: a command or an event plus the
# origin of the request that caused it (records.py mirrors these as REQUEST_DTYPE / OUTCOME_DTYPE).
from libc.stdint cimport uint16_t, uint32_t, uint64_t

from core_cython.records cimport Command, Event


ctypedef struct Origin:
    uint64_t request_id   # the client's id of the request (its clOrdId), echoed on outcomes
    uint32_t session      # the gateway's session number
    uint16_t gateway      # 0 = the operator's admin path; gateways are 1, 2, ...
    uint16_t flags        # outcomes: OUTCOME_LAST_OF_COMMAND on a command's last event


ctypedef struct Request:      # 112 bytes: gateway -> engine (command ring)
    Command cmd
    Origin origin


ctypedef struct Outcome:      # 120 bytes: engine -> gateways (broadcast ring)
    Event ev
    Origin origin


cdef enum:
    ADMIN_GATEWAY = 0
    OUTCOME_LAST_OF_COMMAND = 1
