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
        uint32_t symbol;
        uint8_t  op;
        uint8_t  side;
        uint8_t  ord_type;
        uint8_t  tif;
        uint8_t  stp;
        uint8_t  flags;
        uint8_t  reject;       /* a reason the edge already found (off tick, off lot, malformed) */
        uint8_t  _pad0;
        uint32_t _pad1;
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
        uint32_t symbol
        uint8_t op
        uint8_t side
        uint8_t ord_type
        uint8_t tif
        uint8_t stp
        uint8_t flags
        uint8_t reject
        uint8_t _pad0
        uint32_t _pad1

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
