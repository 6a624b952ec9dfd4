# The venue's one command model and one event model: flat, fixed-size, little-endian records with
# integer prices (ticks) and quantities (lots). core_cython/records.py mirrors these layouts as numpy
# dtypes; tests/test_records.py checks that the two agree field by field.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

cdef extern from *:
    """
    #pragma pack(push, 1)
    typedef struct {
        uint64_t seq;          /* assigned by the engine, 1, 2, 3, ... */
        int64_t  ts;           /* nanoseconds since the epoch, stamped by the sequencer */
        uint64_t order_id;
        uint64_t account;
        int64_t  price;        /* ticks */
        int64_t  qty;          /* lots */
        int64_t  stop_price;   /* ticks; 0 = not a stop order */
        int64_t  display_qty;  /* lots; 0 = not an iceberg */
        int64_t  aux1;         /* money and admin commands (see records.py) */
        int64_t  aux2;
        uint32_t symbol;
        uint32_t asset;        /* money commands: the asset id */
        uint8_t  op;
        uint8_t  side;
        uint8_t  ord_type;
        uint8_t  tif;
        uint8_t  stp;
        uint8_t  flags;
        uint8_t  reject;       /* a reason the edge already found (off tick, off lot, malformed) */
        uint8_t  _pad0;
    } Command;

    typedef struct {
        uint64_t seq;           /* global event sequence */
        uint64_t cmd_seq;       /* the command that caused it */
        int64_t  ts;
        uint64_t order_id;      /* trades: the taker */
        uint64_t account;       /* trades: the taker's account */
        int64_t  price;
        int64_t  qty;
        int64_t  leaves;        /* order_id's open quantity after this event */
        int64_t  filled;        /* order_id's cumulative filled quantity after this event */
        uint64_t maker_order;   /* trades only */
        uint64_t maker_account; /* trades only */
        int64_t  maker_leaves;  /* trades only */
        int64_t  maker_filled;  /* trades only: the maker's cumulative filled quantity after it */
        uint32_t symbol;
        uint8_t  type;
        uint8_t  reason;
        uint8_t  side;          /* trades: the aggressor's side */
        uint8_t  op;            /* op of the causing command */
    } Event;
    #pragma pack(pop)
    """
    ctypedef struct Command:
        uint64_t seq
        int64_t ts
        uint64_t order_id
        uint64_t account
        int64_t price
        int64_t qty
        int64_t stop_price
        int64_t display_qty
        int64_t aux1
        int64_t aux2
        uint32_t symbol
        uint32_t asset
        uint8_t op
        uint8_t side
        uint8_t ord_type
        uint8_t tif
        uint8_t stp
        uint8_t flags
        uint8_t reject
        uint8_t _pad0

    ctypedef struct Event:
        uint64_t seq
        uint64_t cmd_seq
        int64_t ts
        uint64_t order_id
        uint64_t account
        int64_t price
        int64_t qty
        int64_t leaves
        int64_t filled
        uint64_t maker_order
        uint64_t maker_account
        int64_t maker_leaves
        int64_t maker_filled
        uint32_t symbol
        uint8_t type
        uint8_t reason
        uint8_t side
        uint8_t op

# Values are part of the journal format: never renumber, only append.
cdef enum:
    OP_NEW = 1
    OP_CANCEL = 2
    OP_REPLACE = 3
    OP_MASS_CANCEL = 4
    OP_ADD_INSTRUMENT = 5
    # funds mode (accounts, ledger, pre-trade risk): core_cython/README.md "Funds mode"
    OP_ADD_ASSET = 6
    OP_CREATE_ACCOUNT = 7
    OP_DEPOSIT = 8
    OP_WITHDRAW_HOLD = 9
    OP_WITHDRAW_SETTLE = 10
    OP_WITHDRAW_RELEASE = 11
    OP_TRANSFER = 12
    OP_ADJUST = 13
    OP_SET_FEES = 14
    OP_SET_FEE_TIER = 15
    OP_SET_ACCOUNT_STATUS = 16
    OP_SET_TRADING_STATUS = 17
    OP_SET_LIMITS = 18

    SIDE_BUY = 1
    SIDE_SELL = 2

    TYPE_LIMIT = 1
    TYPE_MARKET = 2

    TIF_GTC = 1
    TIF_IOC = 2
    TIF_FOK = 3

    STP_NONE = 0
    STP_CANCEL_TAKER = 1
    STP_CANCEL_MAKER = 2
    STP_CANCEL_BOTH = 3

    FLAG_POST_ONLY = 1

    EV_ACCEPTED = 1
    EV_REJECTED = 2
    EV_TRADE = 3
    EV_CANCELLED = 4
    EV_REPLACED = 5
    EV_TRIGGERED = 6
    EV_EXPIRED = 7
    EV_INSTRUMENT_ADDED = 8
    EV_MASS_CANCEL_DONE = 9
    EV_APPLIED = 10          # a funds/admin command took effect (its postings follow)
    EV_POSTING = 11          # one balance change of one account in one asset

    # posting kinds (EV_POSTING.reason)
    P_HOLD = 1
    P_RELEASE = 2
    P_TRADE = 3
    P_FEE = 4
    P_DEPOSIT = 5
    P_WITHDRAWAL_HOLD = 6
    P_WITHDRAWAL = 7
    P_WITHDRAWAL_RELEASE = 8
    P_TRANSFER = 9
    P_ADJUSTMENT = 10

    # account types and statuses, trading statuses
    ACCT_CUSTOMER = 1
    ACCT_FEE = 2
    ACCT_SYSTEM = 3
    ACCT_ACTIVE = 0
    ACCT_HALTED = 1
    TRADING_OPEN = 0
    TRADING_CANCEL_ONLY = 1
    TRADING_HALTED = 2

    # built-in accounts of funds mode; customer accounts are >= FIRST_CUSTOMER_ACCOUNT
    ACCOUNT_EXTERNAL = 1
    ACCOUNT_ADJUSTMENTS = 2
    ACCOUNT_FEES = 3
    FIRST_CUSTOMER_ACCOUNT = 16

    R_NONE = 0
    R_UNKNOWN_SYMBOL = 1
    R_DUPLICATE_ORDER_ID = 2
    R_UNKNOWN_ORDER = 3
    R_INVALID_QTY = 4
    R_QTY_BELOW_MIN = 5
    R_QTY_ABOVE_MAX = 6
    R_INVALID_PRICE = 7
    R_PRICE_ABOVE_MAX = 8
    R_NOTIONAL_BELOW_MIN = 9
    R_POST_ONLY_WOULD_TAKE = 10
    R_OFF_TICK = 11
    R_OFF_LOT = 12
    R_INVALID_SIDE = 13
    R_INVALID_ORDER_TYPE = 14
    R_INVALID_TIF = 15
    R_INVALID_STP = 16
    R_INVALID_DISPLAY_QTY = 17
    R_INVALID_STOP_PRICE = 18
    R_NO_LIQUIDITY = 19
    R_REPLACE_QTY_TOO_LOW = 20
    R_NOT_REPLACEABLE = 21
    R_UNKNOWN_OP = 22
    R_INVALID_INSTRUMENT = 23
    R_MALFORMED = 24
    R_INVALID_FLAGS = 25
    R_USER_CANCEL = 30
    R_MASS_CANCEL = 31
    R_SELF_TRADE = 32
    R_IOC_REMAINDER = 33
    R_FOK_UNFILLABLE = 34
    R_MARKET_REMAINDER = 35
    R_ACCOUNT_HALTED = 36
    # funds mode rejects
    R_FUNDS_OFF = 40
    R_UNKNOWN_ACCOUNT = 41
    R_ACCOUNT_EXISTS = 42
    R_ACCOUNT_CANNOT_TRADE = 43
    R_UNKNOWN_ASSET = 44
    R_INVALID_ASSET = 45
    R_INVALID_AMOUNT = 46
    R_INSUFFICIENT_FUNDS = 47
    R_DUPLICATE_REF = 48
    R_UNKNOWN_WITHDRAWAL = 49
    R_DUPLICATE_WITHDRAWAL = 50
    R_MISSING_REASON = 51
    R_INVALID_FEES = 52
    R_INSTRUMENT_HALTED = 53
    R_CANCEL_ONLY = 54
    R_PRICE_OUTSIDE_BAND = 55
    R_NOTIONAL_ABOVE_MAX = 56
    R_TOO_MANY_OPEN_ORDERS = 57
    R_SUPPLY_LIMIT = 58
    R_INVALID_STATUS = 59
    R_INVALID_LIMITS = 60
    R_INVALID_ACCOUNT = 61


cdef inline bint is_money_op(uint8_t op) noexcept nogil:
    """Ops whose `asset` field names the asset; their events echo it in `symbol`."""
    return (op == OP_ADD_ASSET or op == OP_DEPOSIT or op == OP_WITHDRAW_HOLD or op == OP_TRANSFER
            or op == OP_ADJUST or op == OP_WITHDRAW_SETTLE or op == OP_WITHDRAW_RELEASE)
