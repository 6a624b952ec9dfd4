# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""Accounts and balances of funds mode, and the money commands that only touch them.

Every balance change goes through `post`, which applies it and emits one POSTING event, so the
journal carries each change with the event that caused it. The engine calls in for order holds and
trade settlement; the rules are core_cython/README.md "Funds mode". No Python objects on the
command path; Python is touched only by the inspection helpers and snapshots.
"""

from cython.operator cimport dereference as deref
from cython.operator cimport preincrement as inc
from libc.stdint cimport INT64_MAX, int64_t, uint8_t, uint32_t, uint64_t
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libcpp.algorithm cimport sort

from core_cython.events cimport EventLog, log_applied, log_emit
from core_cython.records cimport *
from core_cython.snapio cimport Reader, put32, put64

cdef extern from *:
    """
    #define VENUE_MAX_SUPPLY (1ll << 62)
    """
    const int64_t MAX_SUPPLY "VENUE_MAX_SUPPLY"   # per asset, in customer and fee accounts

ctypedef pair[uint64_t, uint32_t] IdIndex

cdef const int64_t MAX_OPEN_LIMIT = 0xFFFFFFFF


cdef class Ledger:

    def __cinit__(self):
        self.slot_of.resize(MAX_ASSET + 1, -1)
        self.external_idx = self._add_account(ACCOUNT_EXTERNAL, 0, ACCT_SYSTEM, 0, 0)
        self.adjustments_idx = self._add_account(ACCOUNT_ADJUSTMENTS, 0, ACCT_SYSTEM, 0, 0)
        self.fees_idx = self._add_account(ACCOUNT_FEES, 0, ACCT_FEE, 0, 0)

    # ------------------------------------------------------------------ lookups

    cdef uint32_t find(self, uint64_t account) noexcept nogil:
        cdef unordered_map[uint64_t, uint32_t].iterator it = self.index.find(account)
        if it == self.index.end():
            return ACCT_NONE
        return deref(it).second

    cdef bint asset_exists(self, uint32_t asset) noexcept nogil:
        return 0 < asset <= MAX_ASSET and self.slot_of[asset] >= 0

    cdef Balance* balance(self, uint32_t acct, uint32_t asset) noexcept nogil:
        """The balance of an existing account in an existing asset."""
        return &self.balances[acct][self.slot_of[asset]]

    cdef int64_t supply(self, uint32_t asset) noexcept nogil:
        """What customer and fee accounts hold: the negative of the two contra accounts."""
        return -(self.balance(self.external_idx, asset).avail + self.balance(self.adjustments_idx, asset).avail)

    cdef void _add_asset(self, uint32_t asset, int decimals) noexcept nogil:
        """A new balance slot in every account (slots stay dense: one per asset that exists)."""
        cdef size_t acct
        self.slot_of[asset] = <int>self.asset_ids.size()
        self.asset_ids.push_back(asset)
        self.decimals.push_back(decimals)
        for acct in range(self.balances.size()):
            self.balances[acct].resize(self.asset_ids.size())

    cdef list sorted_assets(self):
        """(asset id, slot) in asset id order: canonical order for snapshots and inspection."""
        return sorted((self.asset_ids[k], k) for k in range(self.asset_ids.size()))

    cdef uint32_t _add_account(self, uint64_t id, uint64_t owner, uint8_t type, uint8_t tier,
                               uint32_t max_open) noexcept nogil:
        cdef Account a
        cdef uint32_t idx = <uint32_t>self.accounts.size()
        a.id = id
        a.owner = owner
        a.max_open = max_open
        a.open_orders = 0
        a.type = type
        a.tier = tier
        a.status = ACCT_ACTIVE
        self.accounts.push_back(a)
        self.balances.resize(idx + 1)
        self.balances[idx].resize(self.asset_ids.size())
        self.index[id] = idx
        return idx

    # ------------------------------------------------------------------ postings

    cdef void post(self, EventLog* log, uint32_t acct, uint32_t asset, int64_t d_avail, int64_t d_held,
                   uint64_t order_id, uint64_t cause, uint64_t other, int64_t fee, uint8_t kind) noexcept nogil:
        cdef Balance* b
        cdef Event* e
        if d_avail == 0 and d_held == 0:
            return
        b = self.balance(acct, asset)
        b.avail += d_avail
        b.held += d_held
        e = log_emit(log, EV_POSTING, kind)
        e.account = self.accounts[acct].id
        e.symbol = asset
        e.price = d_avail
        e.qty = d_held
        e.leaves = b.avail
        e.filled = b.held
        e.order_id = order_id
        e.maker_order = cause
        e.maker_account = other
        e.maker_leaves = fee

    # ------------------------------------------------------------------ money and account commands

    cdef uint8_t _check_account(self, uint64_t account, bint fee_ok, uint32_t* acct) noexcept nogil:
        """Rule A (customers) or A' (customers and the fee account)."""
        acct[0] = self.find(account)
        if acct[0] == ACCT_NONE:
            return R_UNKNOWN_ACCOUNT
        if self.accounts[acct[0]].type == ACCT_CUSTOMER or (fee_ok and self.accounts[acct[0]].type == ACCT_FEE):
            return R_NONE
        return R_INVALID_ACCOUNT

    cdef uint8_t apply(self, EventLog* log, const Command* c) noexcept nogil:
        """Apply one ledger-only command: APPLIED and its postings, or a reject reason (no events)."""
        cdef uint8_t op = c.op
        cdef uint32_t acct = ACCT_NONE
        cdef uint32_t other
        cdef uint8_t r
        cdef uint64_t cause
        cdef Event* e
        cdef Withdrawal w
        cdef int64_t adj
        cdef cmap[uint64_t, Withdrawal].iterator wit
        if op == OP_ADD_ASSET:
            if c.asset == 0 or c.asset > MAX_ASSET or self.slot_of[c.asset] >= 0 or c.qty < 0 or c.qty > 18:
                return R_INVALID_ASSET
            self._add_asset(c.asset, <int>c.qty)
            log_applied(log, c)
            return R_NONE
        if op == OP_CREATE_ACCOUNT:
            if c.account < FIRST_CUSTOMER_ACCOUNT:
                return R_INVALID_ACCOUNT
            if self.find(c.account) != ACCT_NONE:
                return R_ACCOUNT_EXISTS
            if c.qty < 1 or c.qty > MAX_OPEN_LIMIT:
                return R_INVALID_LIMITS
            self._add_account(c.account, c.order_id, ACCT_CUSTOMER, c.flags, <uint32_t>c.qty)
            log_applied(log, c)
            return R_NONE
        if op == OP_WITHDRAW_SETTLE or op == OP_WITHDRAW_RELEASE:
            wit = self.withdrawals.find(c.order_id)
            if wit == self.withdrawals.end() or (
                    c.account != 0 and self.accounts[deref(wit).second.acct].id != c.account):
                return R_UNKNOWN_WITHDRAWAL
            w = deref(wit).second
            self.withdrawals.erase(wit)
            e = log_applied(log, c)
            e.account = self.accounts[w.acct].id
            e.symbol = w.asset
            e.qty = w.amount
            cause = e.seq
            if op == OP_WITHDRAW_SETTLE:
                self.post(log, w.acct, w.asset, 0, -w.amount, c.order_id, cause, ACCOUNT_EXTERNAL, 0,
                          P_WITHDRAWAL)
                self.post(log, self.external_idx, w.asset, w.amount, 0, c.order_id, cause,
                          self.accounts[w.acct].id, 0, P_WITHDRAWAL)
            else:
                self.post(log, w.acct, w.asset, w.amount, -w.amount, c.order_id, cause, 0, 0,
                          P_WITHDRAWAL_RELEASE)
            return R_NONE
        # Everything else names an account first.
        r = self._check_account(c.account, op == OP_TRANSFER or op == OP_ADJUST, &acct)
        if r != R_NONE:
            return r
        if op == OP_SET_FEE_TIER:
            self.accounts[acct].tier = c.flags
            log_applied(log, c)
            return R_NONE
        if op == OP_SET_ACCOUNT_STATUS:
            if c.flags != ACCT_ACTIVE and c.flags != ACCT_HALTED:
                return R_INVALID_STATUS
            self.accounts[acct].status = c.flags
            log_applied(log, c)
            return R_NONE  # the engine cancels a halted account's orders
        if (op == OP_WITHDRAW_HOLD or op == OP_TRANSFER) and self.accounts[acct].status == ACCT_HALTED:
            return R_ACCOUNT_HALTED
        if op == OP_TRANSFER:
            other = self.find(<uint64_t>c.aux1)
            if other == ACCT_NONE:
                return R_UNKNOWN_ACCOUNT
            if other == acct or self.accounts[other].type == ACCT_SYSTEM:
                return R_INVALID_ACCOUNT
        if not self.asset_exists(c.asset):
            return R_UNKNOWN_ASSET
        if op == OP_ADJUST:
            if c.qty == 0:
                return R_INVALID_AMOUNT
        elif c.qty <= 0:
            return R_INVALID_AMOUNT
        if op == OP_DEPOSIT:
            if c.aux1 == 0 and c.aux2 == 0:
                return R_MALFORMED
            if self.deposit_refs.count(RefHash(c.aux1, c.aux2)):
                return R_DUPLICATE_REF
            if c.qty > MAX_SUPPLY - self.supply(c.asset):
                return R_SUPPLY_LIMIT
            self.deposit_refs.insert(RefHash(c.aux1, c.aux2))
            cause = log_applied(log, c).seq
            self.post(log, acct, c.asset, c.qty, 0, 0, cause, ACCOUNT_EXTERNAL, 0, P_DEPOSIT)
            self.post(log, self.external_idx, c.asset, -c.qty, 0, 0, cause, c.account, 0,
                      P_DEPOSIT)
            return R_NONE
        if op == OP_WITHDRAW_HOLD:
            if c.order_id == 0:
                return R_MALFORMED
            if self.withdrawals.count(c.order_id):
                return R_DUPLICATE_WITHDRAWAL
            if self.balance(acct, c.asset).avail < c.qty:
                return R_INSUFFICIENT_FUNDS
            w.acct = acct
            w.asset = c.asset
            w.amount = c.qty
            self.withdrawals[c.order_id] = w
            cause = log_applied(log, c).seq
            self.post(log, acct, c.asset, -c.qty, c.qty, c.order_id, cause, 0, 0, P_WITHDRAWAL_HOLD)
            return R_NONE
        if op == OP_TRANSFER:
            if self.balance(acct, c.asset).avail < c.qty:
                return R_INSUFFICIENT_FUNDS
            e = log_applied(log, c)
            e.maker_account = <uint64_t>c.aux1
            cause = e.seq
            self.post(log, acct, c.asset, -c.qty, 0, 0, cause, <uint64_t>c.aux1, 0, P_TRANSFER)
            self.post(log, other, c.asset, c.qty, 0, 0, cause, c.account, 0, P_TRANSFER)
            return R_NONE
        if op == OP_ADJUST:
            if c.flags == 0:
                return R_MISSING_REASON
            if c.qty < -self.balance(acct, c.asset).avail:
                return R_INSUFFICIENT_FUNDS
            if c.qty > 0 and c.qty > MAX_SUPPLY - self.supply(c.asset):
                return R_SUPPLY_LIMIT
            # The contra account stays within +-2^62 too, so EXTERNAL (= -supply - it) fits an int64.
            adj = self.balance(self.adjustments_idx, c.asset).avail
            if (c.qty > 0 and adj - c.qty < -MAX_SUPPLY) or (c.qty < 0 and adj > MAX_SUPPLY + c.qty):
                return R_SUPPLY_LIMIT
            cause = log_applied(log, c).seq
            self.post(log, acct, c.asset, c.qty, 0, c.order_id, cause, ACCOUNT_ADJUSTMENTS, 0, P_ADJUSTMENT)
            self.post(log, self.adjustments_idx, c.asset, -c.qty, 0, c.order_id, cause,
                      c.account, 0, P_ADJUSTMENT)
            return R_NONE
        return R_UNKNOWN_OP

    # ------------------------------------------------------------------ snapshots

    cdef bytes serialize(self):
        """Canonical bytes: assets by id, accounts by id with their non-zero balances (by asset id),
        pending withdrawals by id, deposit refs in order. Open-order counts are rebuilt from orders."""
        cdef vector[IdIndex] order
        cdef list assets = self.sorted_assets()
        cdef size_t size = 4 + 4 + 8 + 8 + len(assets) * 8
        cdef uint32_t i
        cdef size_t k
        cdef uint32_t slot
        cdef Balance* b
        for i in range(self.accounts.size()):
            order.push_back(IdIndex(self.accounts[i].id, i))
            size += 8 + 8 + 4 + 4 + 4
            for slot in range(self.asset_ids.size()):
                b = &self.balances[i][slot]
                if b.avail != 0 or b.held != 0:
                    size += 20
        sort(order.begin(), order.end())
        size += self.withdrawals.size() * 28 + self.deposit_refs.size() * 16
        cdef bytes out = PyBytes_FromStringAndSize(NULL, size)
        cdef char* base = PyBytes_AS_STRING(out)
        cdef char* p = base
        cdef char* count_at
        cdef uint32_t n_bal
        p = put32(p, len(assets))
        for asset, slot in assets:
            p = put32(p, asset)
            p = put32(p, <uint32_t>self.decimals[slot])
        p = put32(p, <uint32_t>order.size())
        for k in range(order.size()):
            i = order[k].second
            p = put64(p, self.accounts[i].id)
            p = put64(p, self.accounts[i].owner)
            p = put32(p, self.accounts[i].max_open)
            p = put32(p, self.accounts[i].type | (self.accounts[i].tier << 8) | (self.accounts[i].status << 16))
            count_at = p
            p += 4
            n_bal = 0
            for asset, slot in assets:
                b = &self.balances[i][slot]
                if b.avail != 0 or b.held != 0:
                    p = put32(p, asset)
                    p = put64(p, b.avail)
                    p = put64(p, b.held)
                    n_bal += 1
            put32(count_at, n_bal)
        p = put64(p, self.withdrawals.size())
        cdef cmap[uint64_t, Withdrawal].iterator wit = self.withdrawals.begin()
        while wit != self.withdrawals.end():
            p = put64(p, deref(wit).first)
            p = put64(p, self.accounts[deref(wit).second.acct].id)
            p = put32(p, deref(wit).second.asset)
            p = put64(p, deref(wit).second.amount)
            inc(wit)
        p = put64(p, self.deposit_refs.size())
        cdef cset[RefHash].iterator rit = self.deposit_refs.begin()
        while rit != self.deposit_refs.end():
            p = put64(p, deref(rit).first)
            p = put64(p, deref(rit).second)
            inc(rit)
        assert <size_t>(p - base) == size
        return out

    cdef void restore(self, Reader r) except *:
        """Replace this (fresh) ledger's state with a serialized one, validating what stands alone:
        ranges, built-in accounts, every asset summing to zero, the supply cap (see README)."""
        cdef uint32_t n
        cdef uint32_t k
        cdef uint32_t j
        cdef uint32_t asset
        cdef uint32_t prev_asset = 0
        cdef uint32_t dec
        cdef uint32_t acct
        cdef uint32_t word
        cdef uint32_t n_bal
        cdef uint64_t id
        cdef uint64_t prev_id = 0
        cdef uint64_t m
        cdef uint64_t wid
        cdef uint64_t prev_wid = 0
        cdef int64_t avail
        cdef int64_t held
        cdef int64_t hi
        cdef int64_t lo
        cdef Withdrawal w
        cdef Account* a
        self.accounts.clear()
        self.index.clear()
        self.balances.clear()
        n = r.u32()
        for k in range(n):
            asset = r.u32()
            dec = r.u32()
            if asset <= prev_asset or asset > MAX_ASSET or dec > 18:
                raise ValueError("snapshot: bad or unordered asset")
            prev_asset = asset
            self._add_asset(asset, dec)
        total = {}    # asset -> sum over all accounts (Python ints: a hostile snapshot cannot wrap them)
        supply = {}
        n = r.u32()
        for k in range(n):
            id = r.u64()
            if k > 0 and id <= prev_id:
                raise ValueError("snapshot: accounts out of order")
            prev_id = id
            acct = self._add_account(id, r.u64(), 0, 0, 0)
            a = &self.accounts[acct]
            a.max_open = r.u32()
            word = r.u32()
            a.type = word & 0xFF
            a.tier = (word >> 8) & 0xFF
            a.status = (word >> 16) & 0xFF
            if word >> 24 or a.status > ACCT_HALTED or a.type < ACCT_CUSTOMER or a.type > ACCT_SYSTEM:
                raise ValueError("snapshot: bad account")
            if (id == ACCOUNT_EXTERNAL or id == ACCOUNT_ADJUSTMENTS) != (a.type == ACCT_SYSTEM) or \
                    (id == ACCOUNT_FEES) != (a.type == ACCT_FEE) or (id < FIRST_CUSTOMER_ACCOUNT) == (a.type == ACCT_CUSTOMER):
                raise ValueError("snapshot: account type does not match its id")
            n_bal = r.u32()
            prev_asset = 0
            for j in range(n_bal):
                asset = r.u32()
                avail = r.i64()
                held = r.i64()
                if asset <= prev_asset or not self.asset_exists(asset) or (avail == 0 and held == 0):
                    raise ValueError("snapshot: bad balance")
                prev_asset = asset
                if a.type == ACCT_SYSTEM:
                    if held != 0 or (id == ACCOUNT_ADJUSTMENTS and not -MAX_SUPPLY <= avail <= MAX_SUPPLY):
                        raise ValueError("snapshot: system account balance out of range")
                else:
                    if avail < 0 or held < 0:
                        raise ValueError("snapshot: negative balance")
                    supply[asset] = supply.get(asset, 0) + avail + held
                self.balance(acct, asset).avail = avail
                self.balance(acct, asset).held = held
                total[asset] = total.get(asset, 0) + avail + held
        for id in (ACCOUNT_EXTERNAL, ACCOUNT_ADJUSTMENTS, ACCOUNT_FEES):
            if self.find(id) == ACCT_NONE:
                raise ValueError("snapshot: a built-in account is missing")
        self.external_idx = self.find(ACCOUNT_EXTERNAL)
        self.adjustments_idx = self.find(ACCOUNT_ADJUSTMENTS)
        self.fees_idx = self.find(ACCOUNT_FEES)
        if any(v != 0 for v in total.values()):
            raise ValueError("snapshot: balances of an asset do not sum to zero")
        if any(v > MAX_SUPPLY for v in supply.values()):
            raise ValueError("snapshot: an asset's supply exceeds the cap")
        m = r.u64()
        for k in range(m):
            wid = r.u64()
            acct = self.find(r.u64())
            w.asset = r.u32()
            w.amount = r.i64()
            if wid == 0 or (k > 0 and wid <= prev_wid) or acct == ACCT_NONE \
                    or self.accounts[acct].type != ACCT_CUSTOMER or not self.asset_exists(w.asset) or w.amount <= 0:
                raise ValueError("snapshot: bad pending withdrawal")
            prev_wid = wid
            w.acct = acct
            self.withdrawals[wid] = w
        m = r.u64()
        for k in range(m):
            hi = r.i64()
            lo = r.i64()
            if not self.deposit_refs.empty() and RefHash(hi, lo) <= deref(self.deposit_refs.rbegin()):
                raise ValueError("snapshot: repeated or unordered deposit ref")
            self.deposit_refs.insert(RefHash(hi, lo))

    # ------------------------------------------------------------------ inspection (Python)

    def balance_of(self, uint64_t account, uint32_t asset) -> tuple:
        cdef uint32_t acct = self.find(account)
        if acct == ACCT_NONE:
            raise KeyError(account)
        if not self.asset_exists(asset):
            return (0, 0)
        return (self.balance(acct, asset).avail, self.balance(acct, asset).held)

    def all_balances(self) -> dict:
        """{(account, asset): (available, held)} of every non-zero balance, in (account, asset) order."""
        cdef uint32_t acct
        cdef Balance* b
        assets = self.sorted_assets()
        out = {}
        for account_id, acct in sorted((self.accounts[i].id, i) for i in range(self.accounts.size())):
            for asset, slot in assets:
                b = &self.balances[acct][slot]
                if b.avail != 0 or b.held != 0:
                    out[(account_id, asset)] = (b.avail, b.held)
        return out

    def all_accounts(self) -> dict:
        """{account: fields}, in account id order."""
        cdef Account* a
        out = {}
        for account_id, acct in sorted((self.accounts[i].id, i) for i in range(self.accounts.size())):
            a = &self.accounts[acct]
            out[a.id] = {"owner": a.owner, "type": a.type, "tier": a.tier, "status": a.status,
                         "max_open": a.max_open, "open_orders": a.open_orders}
        return out

    def all_assets(self) -> dict:
        return {asset: self.decimals[slot] for asset, slot in self.sorted_assets()}

    def pending_withdrawals(self) -> dict:
        out = {}
        cdef cmap[uint64_t, Withdrawal].iterator wit = self.withdrawals.begin()
        while wit != self.withdrawals.end():
            out[deref(wit).first] = (self.accounts[deref(wit).second.acct].id, deref(wit).second.asset,
                                     deref(wit).second.amount)
            inc(wit)
        return out
