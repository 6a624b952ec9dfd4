# cython: language_level=3
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp.map cimport map as cmap
from libcpp.set cimport set as cset
from libcpp.unordered_map cimport unordered_map
from libcpp.utility cimport pair
from libcpp.vector cimport vector

from core_cython.events cimport EventLog
from core_cython.records cimport Command
from core_cython.snapio cimport Reader

cdef enum:
    MAX_ASSET = 4095
    ACCT_NONE = 0xFFFFFFFF  # "no such account" from Ledger.find

cdef struct Balance:
    int64_t avail
    int64_t held

cdef struct Account:
    uint64_t id
    uint64_t owner
    uint32_t max_open
    uint32_t open_orders   # live orders, resting or pending stop (maintained by the engine)
    uint8_t type
    uint8_t tier
    uint8_t status

cdef struct Withdrawal:
    uint32_t acct
    uint32_t asset
    int64_t amount

ctypedef pair[int64_t, int64_t] RefHash


cdef class Ledger:
    cdef vector[Account] accounts                  # by account index (creation order)
    cdef unordered_map[uint64_t, uint32_t] index   # account id -> index
    cdef vector[vector[Balance]] balances          # [account index][asset slot]
    cdef vector[int] slot_of                       # [asset id] -> slot (creation order); -1 = no asset
    cdef vector[uint32_t] asset_ids                # [slot] -> asset id
    cdef vector[int] decimals                      # [slot]
    cdef cmap[uint64_t, Withdrawal] withdrawals    # pending, by withdrawal id
    cdef cset[RefHash] deposit_refs                # every deposit ref ever credited
    cdef uint32_t external_idx                     # indices of the built-in accounts
    cdef uint32_t adjustments_idx
    cdef readonly uint32_t fees_idx

    cdef uint32_t find(self, uint64_t account) noexcept nogil
    cdef bint asset_exists(self, uint32_t asset) noexcept nogil
    cdef Balance* balance(self, uint32_t acct, uint32_t asset) noexcept nogil
    cdef void post(self, EventLog* log, uint32_t acct, uint32_t asset, int64_t d_avail, int64_t d_held,
                   uint64_t order_id, uint64_t cause, uint64_t other, int64_t fee, uint8_t kind) noexcept nogil
    cdef uint8_t apply(self, EventLog* log, const Command* c) noexcept nogil
    cdef uint8_t _check_account(self, uint64_t account, bint fee_ok, uint32_t* acct) noexcept nogil
    cdef uint32_t _add_account(self, uint64_t id, uint64_t owner, uint8_t type, uint8_t tier,
                               uint32_t max_open) noexcept nogil
    cdef void _add_asset(self, uint32_t asset, int decimals) noexcept nogil
    cdef int64_t supply(self, uint32_t asset) noexcept nogil
    cdef list sorted_assets(self)
    cdef bytes serialize(self)
    cdef void restore(self, Reader r) except *
