# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""Multi-producer, single-consumer ring of fixed-size slots in shared memory (gateways -> engine).

Our own code: the Aeron Python bindings do not build here, and the ring is a few hundred lines.
Layout of the shared file (little-endian, every hot word on its own cache line):

    0    header: magic, version, slot size, capacity
    64   claim     u64  next sequence a producer may claim (producers CAS it)
    128  consumed  u64  every sequence below it has been read (the consumer stores it)
    192  wake      u32  futex word producers bump to wake a sleeping consumer; then `sleeping` u32
    256  slots: capacity x stride, stride = 8-byte stamp + 8-byte writer pid + payload, rounded up
         to 64 bytes

A producer claims sequence s with a CAS on `claim` (refused while s - consumed >= capacity: the
ring is full, backpressure). It then reserves slot s % capacity: it writes its pid into the slot
and CASes the stamp from the value it read to WRITING(s); it copies its payload and publishes by a
release-CAS of the stamp from WRITING(s) to 2s+1. The consumer reads slot s once its stamp
(acquire) is 2s+1.

A producer that dies would stall the consumer forever, so once slot s has stayed unpublished past a
deadline the consumer CASes its stamp to 2s+2 (skipped) and goes on, but only if no live process
is writing it: a slot still at its old stamp (claimed, not reserved) is skipped, and so is one at
WRITING(s) whose writer's pid is dead; one being written by a live process is waited for. That
order matters: were a live writer skipped mid-copy, its late memcpy could land on the slot's next
use. A skipped producer that was only slow fails its reserve or publish CAS and learns its message
was not delivered (it answers its client with a reject: nothing is dropped silently). Stamps only
grow, lap after lap, so no CAS can succeed on a value from an earlier lap.
"""

from libc.stdint cimport INT64_MAX, int64_t, uint32_t, uint64_t
from libc.string cimport memcpy

import mmap
import os

cdef extern from *:
    """
    #include <sched.h>
    #include <linux/futex.h>
    #include <sys/syscall.h>
    #include <unistd.h>
    #include <time.h>
    static inline uint64_t ring_load(uint64_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline uint64_t ring_load_relaxed(uint64_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static inline void ring_store(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static inline int ring_cas(uint64_t* p, uint64_t expected, uint64_t desired) {
        return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    }
    static inline uint32_t ring_load32(uint32_t* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
    static inline void ring_store32(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
    static inline void ring_add32(uint32_t* p) { __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST); }
    static inline void ring_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
    static inline void ring_futex_wait(uint32_t* p, uint32_t seen, long timeout_ns) {
        struct timespec ts = { timeout_ns / 1000000000L, timeout_ns % 1000000000L };
        syscall(SYS_futex, p, FUTEX_WAIT, seen, &ts, NULL, 0);   /* shared mapping: not PRIVATE */
    }
    static inline void ring_futex_wake(uint32_t* p) { syscall(SYS_futex, p, FUTEX_WAKE, 1, NULL, NULL, 0); }
    static inline void ring_yield(void) { sched_yield(); }
    #include <signal.h>
    #include <errno.h>
    /* A pid that no longer names a process (a zombie still does: its parent has not reaped it). */
    static inline int writer_alive(int pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }
    static inline void ring_pause(void) {
    #if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
    #endif
    }
    """
    uint64_t ring_load(uint64_t* p) nogil
    uint64_t ring_load_relaxed(uint64_t* p) nogil
    void ring_store(uint64_t* p, uint64_t v) nogil
    bint ring_cas(uint64_t* p, uint64_t expected, uint64_t desired) nogil
    uint32_t ring_load32(uint32_t* p) nogil
    void ring_store32(uint32_t* p, uint32_t v) nogil
    void ring_add32(uint32_t* p) nogil
    void ring_fence() nogil
    void ring_futex_wait(uint32_t* p, uint32_t seen, long timeout_ns) nogil
    void ring_futex_wake(uint32_t* p) nogil
    void ring_yield() nogil
    bint writer_alive(int pid) nogil
    void ring_pause() nogil

MAGIC = 0x474E495255454E56   # "VENURING"
VERSION = 2   # 2: slots carry their writer's pid (a live writer is never skipped)

cdef enum:
    HEADER = 256
    SLOT_HEAD = 16   # stamp + writer pid, before the payload
    OFF_CLAIM = 64
    OFF_CONSUMED = 128
    OFF_WAKE = 192
    OFF_SLEEPING = 196

cdef enum:   # publish() results
    P_OK = 0
    P_FULL = 1       # backpressure: the consumer is a whole ring behind
    P_DROPPED = 2    # the consumer gave up on this slot (the producer stalled past the deadline)

OK, FULL, DROPPED = P_OK, P_FULL, P_DROPPED

WAIT_STRATEGIES = ("spin", "yield", "block")

cdef enum:
    BLOCK_SPIN_NS = 20000   # "block" polls this long before sleeping on the futex (by default)
    STALL_RECHECK_NS = 1000000  # how often a consumer blocked behind an unpublished claim looks again


def ring_bytes(uint64_t capacity, uint32_t slot_size) -> int:
    """Size of the shared file for a ring of this shape."""
    return HEADER + capacity * _stride(slot_size)


cdef inline uint64_t _stride(uint32_t slot_size) noexcept nogil:
    return (SLOT_HEAD + slot_size + 63) // 64 * 64


cdef inline uint64_t _writing(uint64_t seq) noexcept nogil:
    """The stamp of slot seq while a producer copies into it (top bit: never a 2s+1 / 2s+2 value)."""
    return (2 * seq + 1) | (<uint64_t>1 << 63)


cdef class Ring:
    """One process's handle on a ring file (create it once, attach from every process)."""

    @staticmethod
    def create(path: str, uint64_t capacity=65536, uint32_t slot_size=96) -> Ring:
        """A new, empty ring file (replacing any old one). capacity must be a power of two."""
        if capacity < 2 or capacity & (capacity - 1) or slot_size == 0:
            raise ValueError("capacity must be a power of two >= 2 and slot_size > 0")
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.truncate(ring_bytes(capacity, slot_size))
            header = (MAGIC.to_bytes(8, "little") + VERSION.to_bytes(4, "little")
                      + slot_size.to_bytes(4, "little") + capacity.to_bytes(8, "little"))
            f.write(header)
        os.replace(tmp, path)  # attachers never see a half-initialised file
        return Ring.attach(path)

    @staticmethod
    def attach(path: str) -> Ring:
        cdef Ring r = Ring.__new__(Ring)
        r._open(path)
        return r

    cdef void _open(self, str path) except *:
        cdef unsigned char[::1] view
        self._file = open(path, "r+b")
        self._mm = mmap.mmap(self._file.fileno(), 0)
        view = self._mm
        self.base = &view[0]
        if int.from_bytes(self._mm[0:8], "little") != MAGIC or int.from_bytes(self._mm[8:12], "little") != VERSION:
            raise ValueError(f"{path} is not a ring file of this version")
        self.slot_size = int.from_bytes(self._mm[12:16], "little")
        self.capacity = int.from_bytes(self._mm[16:24], "little")
        self.stride = _stride(self.slot_size)
        if len(self._mm) != ring_bytes(self.capacity, self.slot_size):
            raise ValueError(f"{path} has the wrong size for its header")
        self.mask = self.capacity - 1
        self.claim = <uint64_t*>(self.base + OFF_CLAIM)
        self.consumed = <uint64_t*>(self.base + OFF_CONSUMED)
        self.wake = <uint32_t*>(self.base + OFF_WAKE)
        self.sleeping = <uint32_t*>(self.base + OFF_SLEEPING)
        self.cursor = ring_load(self.consumed)   # a restarted consumer resumes where it stopped
        self.pid = os.getpid()
        self.stalled_since = 0
        self.skipped = 0

    def close(self) -> None:
        self.base = NULL
        self._mm.close()
        self._file.close()

    cdef uint64_t* _stamp(self, uint64_t seq) noexcept nogil:
        return <uint64_t*>(self.base + HEADER + (seq & self.mask) * self.stride)

    # ------------------------------------------------------------------ producers

    cdef int _claim(self, uint64_t n, uint64_t* first) noexcept nogil:
        """Claim n consecutive sequences, or FULL if the ring lacks room for all of them."""
        cdef uint64_t c
        while True:
            c = ring_load_relaxed(self.claim)
            if c + n - ring_load(self.consumed) > self.capacity:
                return P_FULL
            if ring_cas(self.claim, c, c + n):
                first[0] = c
                return P_OK
            ring_pause()

    cdef int _reserve(self, uint64_t seq) noexcept nogil:
        """Mark a claimed slot as being written by this process; DROPPED if it was skipped."""
        cdef uint64_t* stamp = self._stamp(seq)
        cdef uint64_t old = ring_load(stamp)
        if old == 2 * seq + 2:
            return P_DROPPED
        ring_store(stamp + 1, <uint64_t>self.pid)   # before the CAS: whoever sees WRITING sees the pid
        if not ring_cas(stamp, old, _writing(seq)):
            return P_DROPPED
        return P_OK

    cdef int _fill(self, uint64_t seq, const unsigned char* payload) noexcept nogil:
        """Reserve a claimed slot, copy the payload and publish it; DROPPED if the consumer skipped it."""
        cdef uint64_t* stamp = self._stamp(seq)
        if self._reserve(seq) != P_OK:
            return P_DROPPED
        memcpy(<unsigned char*>stamp + SLOT_HEAD, payload, self.slot_size)
        if not ring_cas(stamp, _writing(seq), 2 * seq + 1):
            return P_DROPPED
        return P_OK

    cdef void _wake_consumer(self) noexcept nogil:
        ring_fence()   # the stamp store must be visible before we read `sleeping` (no lost wake-up)
        if ring_load32(self.sleeping):
            ring_add32(self.wake)
            ring_futex_wake(self.wake)

    cdef int publish_ptr(self, const unsigned char* payload) noexcept nogil:
        cdef uint64_t seq
        cdef int r = self._claim(1, &seq)
        if r != P_OK:
            return r
        r = self._fill(seq, payload)
        self._wake_consumer()
        return r

    def publish(self, payload) -> int:
        """Publish one slot_size-byte payload: OK, FULL (retry or reject: busy) or DROPPED."""
        cdef const unsigned char[::1] data = memoryview(payload).cast("B")
        if <uint32_t>data.shape[0] != self.slot_size:
            raise ValueError(f"payload must be {self.slot_size} bytes")
        return self.publish_ptr(&data[0])

    def publish_many(self, records) -> int:
        """Publish a C-contiguous array of records (itemsize = slot_size) with one claim for all of
        them; returns how many were published (0 if the ring lacks room for the whole batch)."""
        cdef const unsigned char[::1] data = memoryview(records).cast("B")
        cdef uint64_t n = data.shape[0] // self.slot_size
        cdef uint64_t first
        cdef uint64_t i
        cdef uint64_t done = 0
        if n * self.slot_size != <uint64_t>data.shape[0]:
            raise ValueError(f"records must be a whole number of {self.slot_size}-byte slots")
        if n == 0 or n > self.capacity:
            return 0
        with nogil:
            if self._claim(n, &first) == P_OK:
                for i in range(n):
                    if self._fill(first + i, &data[i * self.slot_size]) == P_OK:
                        done += 1
                self._wake_consumer()
        return done

    def claim_without_publishing(self) -> int:
        """Test hook: what a producer that dies mid-claim leaves behind."""
        cdef uint64_t seq
        if self._claim(1, &seq) != P_OK:
            return -1
        return seq

    def reserve_without_writing(self) -> int:
        """Test hook: what a producer paused (or killed) in the middle of its copy leaves behind."""
        cdef uint64_t seq
        if self._claim(1, &seq) != P_OK:
            return -1
        self._reserve(seq)
        return seq

    def fill_claimed(self, uint64_t seq, payload) -> int:
        """Test hook: finish a claim made by claim_without_publishing (a slow producer)."""
        cdef const unsigned char[::1] data = memoryview(payload).cast("B")
        return self._fill(seq, &data[0])

    # ------------------------------------------------------------------ the consumer

    cdef uint64_t _take(self, unsigned char* out, uint64_t max_n, int64_t stall_ns) noexcept nogil:
        """Copy up to max_n published slots into out; skip a slot stuck past the deadline."""
        cdef uint64_t n = 0
        cdef uint64_t s = self.cursor
        cdef uint64_t st
        cdef uint64_t* stamp
        cdef int64_t t
        while n < max_n:
            stamp = self._stamp(s)
            st = ring_load(stamp)
            if st == 2 * s + 1:
                memcpy(out + n * self.slot_size, <unsigned char*>stamp + SLOT_HEAD, self.slot_size)
                n += 1
                s += 1
                self.stalled_since = 0
            elif st == 2 * s + 2:
                s += 1
            elif ring_load(self.claim) > s and stall_ns >= 0:
                # Claimed but not published: a producer is writing, or died mid-claim.
                t = now_ns()
                if self.stalled_since == 0:
                    self.stalled_since = t
                    break
                if t - self.stalled_since < stall_ns:
                    break
                if st == _writing(s) and writer_alive(<int>ring_load(stamp + 1)):
                    break   # a live process is copying: skipping it could let its copy hit the next lap
                if ring_cas(stamp, st, 2 * s + 2):
                    self.skipped += 1
                    self.stalled_since = 0
                    s += 1
            else:
                break
        if s != self.cursor:
            self.cursor = s
            ring_store(self.consumed, s)   # frees the slots for producers
        return n

    cdef uint64_t take_ptr(self, unsigned char* out, uint64_t max_n, int strategy, int64_t timeout_ns,
                           int64_t stall_ns, int64_t spin_ns) noexcept nogil:
        """Wait (by strategy) until something arrives or timeout_ns passes; return how many.
        block: pause-spin for at most spin_ns, then sleep on the futex (0 when the producers share
        this CPU: spinning would only keep them from running). No sched_yield phase:
        on 2 cores it was 10-16% of the engine's CPU and kept it runnable (preempting the gateway),
        and under SCHED_FIFO it is a busy loop that RT throttling stops for 50 ms."""
        cdef uint64_t n = self._take(out, max_n, stall_ns)
        cdef int64_t start
        cdef int64_t deadline
        cdef uint32_t seen
        cdef int64_t left
        if n or timeout_ns <= 0:
            return n
        start = now_ns()
        deadline = start + timeout_ns if timeout_ns < INT64_MAX - start else INT64_MAX  # "forever" must not wrap
        while True:
            if strategy == 0 or (strategy == 2 and now_ns() - start < spin_ns):
                ring_pause()                         # spin: lowest latency, burns the core
            elif strategy == 1:                      # yield: gives the core to the producer
                ring_yield()
            else:                                    # block on the futex
                seen = ring_load32(self.wake)
                ring_store32(self.sleeping, 1)
                ring_fence()
                if ring_load(self._stamp(self.cursor)) != 2 * self.cursor + 1:
                    # A slot claimed but not published (its writer may be stuck or dead) is
                    # re-checked every ms; an empty ring sleeps until woken or the timeout (an
                    # idle engine used to wake 1,000 times a second for nothing). So a claim
                    # made during that sleep, whose writer then dies, is first seen when the
                    # sleep ends: its stall deadline counts from then (the engine's timeout is
                    # 50 ms).
                    left = max(deadline - now_ns(), <int64_t>1)
                    if ring_load(self.claim) != self.cursor:
                        left = min(left, <int64_t>STALL_RECHECK_NS)
                    ring_futex_wait(self.wake, seen, left)
                ring_store32(self.sleeping, 0)
            n = self._take(out, max_n, stall_ns)
            if n or now_ns() >= deadline:
                return n

    def take(self, out, int64_t timeout_ns=0, str wait="block", int64_t stall_ns=50_000_000,
             int64_t spin_ns=BLOCK_SPIN_NS) -> int:
        """Consumer: copy published slots into `out` (a writable array of slot_size records), waiting
        up to timeout_ns with the given strategy; return how many. Only one process may consume."""
        cdef unsigned char[::1] buf = memoryview(out).cast("B")
        cdef uint64_t max_n = buf.shape[0] // self.slot_size
        cdef int strategy = WAIT_STRATEGIES.index(wait)
        cdef uint64_t n
        if max_n == 0:
            return 0
        with nogil:
            n = self.take_ptr(&buf[0], max_n, strategy, timeout_ns, stall_ns, spin_ns)
        return n

    @property
    def claimed(self) -> int:
        return ring_load(self.claim)

    @property
    def consumed_seq(self) -> int:
        return ring_load(self.consumed)
