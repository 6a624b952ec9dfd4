# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""The ring benchmark's inner loops, in C: a Python loop would measure Python, not the ring."""

from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

from core_cython.ring cimport Ring, now_ns

from core_cython.ring import WAIT_STRATEGIES

cdef extern from *:
    """
    #include <sched.h>
    #include <time.h>
    static inline void bench_yield(void) { sched_yield(); }
    static inline void bench_sleep_ns(long ns) {
        struct timespec ts = { ns / 1000000000L, ns % 1000000000L };
        nanosleep(&ts, NULL);
    }
    """
    void bench_yield() nogil
    void bench_sleep_ns(long ns) nogil


def pump(Ring ring, records, uint64_t count, uint64_t ts_offset=8, int64_t interval_ns=0) -> tuple:
    """Producer: publish `count` slots cycling over `records`, each stamped at `ts_offset` with the
    monotonic clock just before its publish (the consumer's latency reference). With interval_ns > 0
    slot i is due at start + i x interval_ns and is stamped with that planned time, so a stall
    cannot hide (no coordinated omission). A full ring is retried after a yield (backpressure,
    never a drop). Returns (published, full_retries, dropped)."""
    cdef const unsigned char[::1] src = memoryview(records).cast("B")
    cdef uint64_t n_src = src.shape[0] // ring.slot_size
    cdef unsigned char[::1] slot = bytearray(ring.slot_size)
    cdef uint64_t i = 0
    cdef uint64_t retries = 0
    cdef uint64_t dropped = 0
    cdef int64_t t
    cdef int64_t start = now_ns()
    cdef int64_t early
    cdef int r
    if n_src == 0 or ts_offset + 8 > ring.slot_size:
        raise ValueError("records must hold at least one slot, with room for the timestamp")
    with nogil:
        while i < count:
            memcpy(&slot[0], &src[(i % n_src) * ring.slot_size], ring.slot_size)
            if interval_ns > 0:
                t = start + <int64_t>i * interval_ns
                while True:   # sleep while early (2 cores: a spinning producer starves the consumer)
                    early = t - now_ns()
                    if early <= 0:
                        break
                    if early > 60_000:
                        bench_sleep_ns(early - 50_000)
            else:
                t = now_ns()
            memcpy(&slot[ts_offset], &t, 8)
            r = ring.publish_ptr(&slot[0])
            if r == 1:
                retries += 1
                bench_yield()
                continue
            if r == 2:
                dropped += 1
            i += 1
    return i, retries, dropped


def drain(Ring ring, uint64_t count, int64_t[::1] lat_ns, str wait="block", uint64_t batch=256,
          uint64_t ts_offset=8, int64_t timeout_ns=5_000_000_000) -> int:
    """Consumer: take `count` slots (in batches), writing each one's publish-to-take latency into
    lat_ns. Stops early if nothing arrives for timeout_ns; returns how many were taken."""
    cdef unsigned char[::1] out = bytearray(ring.slot_size * batch)
    cdef int strategy = WAIT_STRATEGIES.index(wait)
    cdef uint64_t got = 0
    cdef uint64_t n
    cdef uint64_t k
    cdef int64_t t
    cdef int64_t sent
    if <uint64_t>lat_ns.shape[0] < count:
        raise ValueError("lat_ns is shorter than count")
    with nogil:
        while got < count:
            n = ring.take_ptr(&out[0], min(batch, count - got), strategy, timeout_ns, 50_000_000, 20_000)
            if n == 0:
                break
            t = now_ns()
            for k in range(n):
                memcpy(&sent, &out[k * ring.slot_size + ts_offset], 8)
                lat_ns[got + k] = t - sent
            got += n
    return got
