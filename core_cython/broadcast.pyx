# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""Single-producer, multi-consumer broadcast ring in shared memory (engine -> gateways).

The counterpart of ring.pyx: the one engine process publishes fixed-size outcome records, every
gateway process reads all of them with its own cursor (LMAX disruptor / Aeron broadcast style).
The producer never waits for anyone: a consumer that falls a whole ring behind is lapped, learns
it, and decides what to do (the gateway drops its sessions). Layout of the shared file
(little-endian, every hot word on its own cache line):

    0     header: magic, version u32, slot size u32, capacity u64, epoch u64, ring id u64,
          producer pid u64 (0 = closed), superseded u32 (set when create() replaced this file)
    64    published  u64  next sequence to be written (the producer release-stores it per batch)
    128   sleeping   u32  bit i set = consumer i is about to block on its wake socket
    192   consumer table: 16 entries x 64 bytes: pid u64 (0 = free), cursor u64, laps u64
    1216  slots: capacity x stride, stride = 8-byte stamp + payload, rounded up to 64 bytes

Slots (a seqlock per slot). Record s lives in slot s % capacity. Its stamp is 2s+1 while the
producer writes it and 2s+2 once it is whole (0: never written). The producer stores 2s+1
(relaxed), a release fence, the payload, then release-stores 2s+2; after a batch it
release-stores `published`. A consumer at cursor s acquire-loads `published` (pub); s == pub:
nothing new; pub - s > capacity: lapped. Otherwise, for each s < pub: acquire-load the stamp; it
cannot be below 2s+2 (the stamp's release-store came before `published`'s, which we saw), so
anything but 2s+2 means the slot was reused for s + k*capacity: lapped. Copy the payload, an
acquire fence, re-load the stamp: if the producer started overwriting the slot while we copied,
the marker store (ordered before its payload stores by the release fence) is visible to the
re-load (ordered after our payload loads by the acquire fence) and the record is thrown away.
So a record handed out is always the whole record s, never torn. The payload copy is a plain
memcpy racing the writer, as in every C seqlock (the Linux kernel's): its result is only used
when the stamp proves no write overlapped it.

Laps. take() returns the whole records it could validate, else LAPPED (-1) when the next record
it owes was overwritten; the cursor stays on that record, so every later take() says LAPPED too,
until rejoin() moves the cursor to the current `published` (returning how many records were
skipped). A consumer never gets a record out of order or twice: records come in sequence
order, and the first missing one is reported as a lap.

Wake-ups. The gateway's consumer is an epoll loop over sockets, so it waits on a file
descriptor: each reader owns an AF_UNIX datagram socket bound in the Linux abstract namespace
to "venue-bcast-<ring id as 16 hex digits>-<entry index as 2 digits>" (it vanishes with the
process: no file to clean; the ring id is a random word written by create(), so every path to
the file agrees on the name and a re-created ring never collides with the old one's readers).
The 16 entries' sleeping flags are the 16 low bits of one word, `sleeping`, so that the
producer's "anyone asleep?" check is a single load. Going to sleep: the reader sets its bit
(seq_cst RMW), a seq_cst fence, then re-loads `published` (and the stale marks below): anything
new and it clears its bit and does not block (prepare_wait() -> False). Publishing: the producer release-stores `published`, a
seq_cst fence, then loads `sleeping`; if not 0 it exchanges it with 0 and sends one byte to each
sleeper (non-blocking; a dead reader's ECONNREFUSED is ignored). The two fences make this a
Dekker pair: either the reader sees the new `published` or the producer sees the bit, so no
wake-up is lost. When nobody sleeps, the cost is one fence and one load per batch: no syscall.
One byte per prepare_wait() at most, so a reader that never drains cannot flood its socket.

Consumers table. A reader claims a free entry (CAS pid 0 -> its pid), or the entry of a dead
reader (its pid no longer exists, or is a zombie), when it attaches; close() frees it. A pid
reused by an unrelated process keeps its entry taken until that process ends. Pids are only
meaningful inside one pid namespace: run the engine and gateways in the same one.

Restarts (epoch). create() writes a fresh file and renames it over the path, with an epoch
strictly greater than the replaced file's (and at least the wall clock in ns, so it also moves
on after a reboot cleared /dev/shm). Readers of the old file keep their old mapping, so create()
also marks the old file superseded and wakes its sleepers; close() of the producer stores
producer pid 0 and wakes them too. A gateway reattaches when stale() is True: the file was
superseded, the path names another file, or the producer pid is 0 or dead. A producer killed by
SIGKILL cannot wake anyone: a gateway's epoll loop should also check stale() on a timeout
(once a second is plenty).
"""

from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcpy

import mmap
import operator
import os
import select
import socket
import time

cdef extern from *:
    """
    #include <stddef.h>
    #include <stdio.h>
    #include <string.h>
    #include <sys/socket.h>
    #include <sys/un.h>
    static inline uint64_t bc_load(uint64_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline uint64_t bc_load_relaxed(uint64_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static inline void bc_store(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static inline void bc_store_relaxed(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
    static inline int bc_cas(uint64_t* p, uint64_t expected, uint64_t desired) {
        return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    }
    static inline uint32_t bc_load32(uint32_t* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
    static inline void bc_store32(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
    static inline void bc_or32(uint32_t* p, uint32_t v) { __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }
    static inline void bc_and32(uint32_t* p, uint32_t v) { __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); }
    static inline uint32_t bc_xchg32(uint32_t* p, uint32_t v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
    /* The fences double as compiler barriers for the plain memcpy of the payload. */
    static inline void bc_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); __asm__ __volatile__("" ::: "memory"); }
    static inline void bc_fence_release(void) { __asm__ __volatile__("" ::: "memory"); __atomic_thread_fence(__ATOMIC_RELEASE); }
    static inline void bc_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
    /* Empty a wake socket in one syscall (recv until EAGAIN took two per wake-up): 16 datagrams
       at once, more than a socket queues by default (net.unix.max_dgram_qlen = 10). */
    static inline int bc_drain_socket(int fd) {
        char bytes[16];
        struct iovec iov[16];
        struct mmsghdr msgs[16];
        int i, got, total = 0;
        memset(msgs, 0, sizeof msgs);
        for (i = 0; i < 16; i++) {
            iov[i].iov_base = &bytes[i];
            iov[i].iov_len = 1;
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        do {
            got = recvmmsg(fd, msgs, 16, MSG_DONTWAIT, NULL);
            if (got > 0) total += got;
        } while (got == 16);
        return total;
    }
    /* One byte to reader `idx`'s abstract socket; must match BroadcastReader's bind name. The name
       is spelled by hand: snprintf was a visible share of the engine's time per wake-up. */
    static inline void bc_send_wake(int fd, uint64_t ring_id, int idx) {
        static const char hex[] = "0123456789abcdef";
        static const char prefix[] = "venue-bcast-";
        struct sockaddr_un a;
        char one = 1;
        char* p;
        int i;
        memset(&a, 0, sizeof a);
        a.sun_family = AF_UNIX;
        p = a.sun_path + 1;  /* abstract namespace: a leading NUL */
        memcpy(p, prefix, sizeof prefix - 1);
        p += sizeof prefix - 1;
        for (i = 15; i >= 0; i--) *p++ = hex[(ring_id >> (4 * i)) & 15];
        *p++ = '-';
        *p++ = (char)('0' + (idx / 10) % 10);
        *p++ = (char)('0' + idx % 10);
        /* ECONNREFUSED (reader gone), EAGAIN (its socket is full: it has a byte already): fine */
        (void)sendto(fd, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr*)&a,
                     (socklen_t)(p - (char*)&a));
    }
    """
    uint64_t bc_load(uint64_t* p) nogil
    uint64_t bc_load_relaxed(uint64_t* p) nogil
    void bc_store(uint64_t* p, uint64_t v) nogil
    void bc_store_relaxed(uint64_t* p, uint64_t v) nogil
    bint bc_cas(uint64_t* p, uint64_t expected, uint64_t desired) nogil
    uint32_t bc_load32(uint32_t* p) nogil
    void bc_store32(uint32_t* p, uint32_t v) nogil
    void bc_or32(uint32_t* p, uint32_t v) nogil
    void bc_and32(uint32_t* p, uint32_t v) nogil
    uint32_t bc_xchg32(uint32_t* p, uint32_t v) nogil
    void bc_fence_acquire() nogil
    void bc_fence_release() nogil
    void bc_fence() nogil
    void bc_send_wake(int fd, uint64_t ring_id, int idx) nogil
    int bc_drain_socket(int fd) nogil

MAGIC = int.from_bytes(b"VENUBCST", "little")
VERSION = 1
MAX_READERS = 16
LAPPED = -1     # take(): the next record this reader owes was overwritten; rejoin() to go on

cdef enum:
    OFF_VERSION = 8
    OFF_SLOT_SIZE = 12
    OFF_CAPACITY = 16
    OFF_EPOCH = 24
    OFF_RING_ID = 32
    OFF_PRODUCER = 40
    OFF_SUPERSEDED = 48
    OFF_PUBLISHED = 64
    OFF_SLEEPING = 128
    OFF_TABLE = 192
    ENTRY = 64          # bytes per consumer-table entry: pid, cursor, laps (u64 each)
    N_READERS = 16
    HEADER = 192 + 16 * 64

cdef enum:              # u64 word index inside a table entry
    E_PID = 0
    E_CURSOR = 1
    E_LAPS = 2


cdef inline uint64_t _stride(uint32_t slot_size) noexcept nogil:
    return (8 + <uint64_t>slot_size + 63) // 64 * 64


def broadcast_bytes(uint64_t capacity, uint32_t slot_size) -> int:
    """Size of the shared file for a broadcast ring of this shape."""
    return HEADER + capacity * _stride(slot_size)


def wake_name(uint64_t ring_id, int index) -> bytes:
    """The abstract AF_UNIX name of reader `index`'s wake socket (leading NUL included)."""
    return b"\0venue-bcast-%016x-%02d" % (ring_id, index)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (a SIGKILLed child nobody reaped yet)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True          # exists, another user's
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] != b"Z"


cdef unsigned char* _address(object mm) except NULL:
    # The view is released on return (so the mmap can be closed later); the pointer stays valid
    # while the mmap is open, which the owner guarantees (close() clears `base` first).
    cdef unsigned char[::1] view = mm
    return &view[0]


cdef inline int _need_open(_Mapped m) except -1:
    if m.base == NULL:
        raise ValueError(f"broadcast ring {m.path} is closed")
    return 0


cdef class _Mapped:

    cdef void _open(self, str path) except *:
        cdef uint64_t size
        f = open(path, "r+b")
        try:   # check the header before mapping anything
            st = os.fstat(f.fileno())
            size = st.st_size
            if size < HEADER:
                raise ValueError(f"{path} is not a broadcast ring file (only {size} bytes)")
            head = f.read(64)
            if int.from_bytes(head[0:8], "little") != MAGIC:
                raise ValueError(f"{path} is not a broadcast ring file")
            version = int.from_bytes(head[OFF_VERSION:OFF_VERSION + 4], "little")
            if version != VERSION:
                raise ValueError(f"{path} is a broadcast ring of version {version}, this code reads {VERSION}")
            slot_size = int.from_bytes(head[OFF_SLOT_SIZE:OFF_SLOT_SIZE + 4], "little")
            capacity = int.from_bytes(head[OFF_CAPACITY:OFF_CAPACITY + 8], "little")
            if (slot_size == 0 or capacity < 2 or capacity & (capacity - 1)
                    or size != HEADER + capacity * _stride(slot_size)):
                raise ValueError(f"{path} has the wrong size for its header ({size} bytes)")
            mm = mmap.mmap(f.fileno(), 0)
        except BaseException:
            f.close()
            raise
        self._file = f
        self._mm = mm
        self.path = path
        self._ident = (st.st_dev, st.st_ino)
        self.base = _address(mm)
        self.slot_size = slot_size
        self.capacity = capacity
        self.epoch = int.from_bytes(head[OFF_EPOCH:OFF_EPOCH + 8], "little")
        self.ring_id = int.from_bytes(head[OFF_RING_ID:OFF_RING_ID + 8], "little")
        self.stride = _stride(self.slot_size)
        self.mask = self.capacity - 1
        self.published_p = <uint64_t*>(self.base + OFF_PUBLISHED)
        self.producer_pid_p = <uint64_t*>(self.base + OFF_PRODUCER)
        self.superseded_p = <uint32_t*>(self.base + OFF_SUPERSEDED)
        self.sleep_mask = <uint32_t*>(self.base + OFF_SLEEPING)

    def close(self) -> None:
        """Unmap the file (idempotent)."""
        self.base = NULL
        if self._mm is not None:
            self._mm.close()
            self._file.close()
            self._mm = None

    cdef unsigned char* _slot(self, uint64_t seq) noexcept nogil:
        return self.base + HEADER + (seq & self.mask) * self.stride

    cdef uint64_t* _entry(self, int i) noexcept nogil:
        return <uint64_t*>(self.base + OFF_TABLE + i * ENTRY)

    cdef uint32_t _wake(self, int fd) noexcept nogil:
        """Take every sleeping bit and send each sleeper one byte; return how many were sent."""
        cdef uint32_t sleepers = bc_xchg32(self.sleep_mask, 0)
        cdef uint32_t sent = 0
        cdef int i
        for i in range(N_READERS):
            if sleepers & ((<uint32_t>1) << i):
                bc_send_wake(fd, self.ring_id, i)
                sent += 1
        return sent

    @property
    def published(self) -> int:
        """Next sequence the producer will write (= how many records were ever published)."""
        _need_open(self)
        return bc_load(self.published_p)

    @property
    def producer_pid(self) -> int:
        """The producer's pid, 0 once it closed the ring."""
        _need_open(self)
        return bc_load(self.producer_pid_p)

    @property
    def superseded(self) -> bool:
        """True once create() replaced this file with a new ring."""
        _need_open(self)
        return bc_load32(self.superseded_p) != 0

    def consumers(self) -> list[dict]:
        """Monitoring: every taken consumer-table entry (index, pid, alive, cursor, lag, laps, sleeping)."""
        cdef uint64_t* e
        cdef uint64_t pub
        _need_open(self)
        pub = bc_load(self.published_p)
        sleeping = bc_load32(self.sleep_mask)
        out = []
        for i in range(N_READERS):
            e = self._entry(i)
            pid = bc_load(&e[E_PID])
            if pid:
                cursor = bc_load_relaxed(&e[E_CURSOR])
                out.append({"index": i, "pid": pid, "alive": pid_alive(pid), "cursor": cursor,
                            "lag": pub - cursor if pub >= cursor else 0,
                            "laps": bc_load_relaxed(&e[E_LAPS]), "sleeping": bool(sleeping >> i & 1)})
        return out


def _retire(path: str) -> int:
    """Mark an existing ring file at path superseded and wake its sleepers; return its epoch
    (0 if there is no readable ring file there)."""
    cdef _Mapped old = _Mapped.__new__(_Mapped)
    try:
        old._open(path)
    except (OSError, ValueError):
        return 0
    try:
        bc_store32(old.superseded_p, 1)
        bc_fence()   # the mark before reading `sleeping`: a reader going to sleep sees one or the other
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            old._wake(s.fileno())
        return old.epoch
    finally:
        old.close()


cdef class BroadcastMonitor(_Mapped):
    """A view of a ring for monitoring (the supervisor's /metrics): `published` and consumers(),
    without taking a consumer entry or the producer side."""

    @staticmethod
    def open(path: str) -> BroadcastMonitor:
        cdef BroadcastMonitor m = BroadcastMonitor.__new__(BroadcastMonitor)
        m._open(path)
        return m


cdef class Broadcast(_Mapped):
    """The producer's handle: create() the ring (or attach_producer() to an existing one), then
    publish(); never blocks. One producer per ring."""

    @staticmethod
    def create(path: str, uint64_t capacity=65536, uint32_t slot_size=128) -> Broadcast:
        """A new, empty ring at path (renamed over any old one, which is marked superseded).
        capacity: a power of two >= 2; slot_size: payload bytes per record, > 0."""
        if capacity < 2 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two >= 2, not {capacity}")
        if slot_size == 0:
            raise ValueError("slot_size must be > 0")
        if capacity > (1 << 40) // _stride(slot_size):
            raise ValueError(f"a ring of {capacity} x {slot_size}-byte slots is too large")
        epoch = max(time.time_ns(), _retire(path) + 1)
        ring_id = int.from_bytes(os.urandom(8), "little")
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.truncate(broadcast_bytes(capacity, slot_size))
            f.write(MAGIC.to_bytes(8, "little") + VERSION.to_bytes(4, "little")
                    + slot_size.to_bytes(4, "little") + capacity.to_bytes(8, "little")
                    + epoch.to_bytes(8, "little") + ring_id.to_bytes(8, "little")
                    + os.getpid().to_bytes(8, "little"))
        os.replace(tmp, path)   # readers never see a half-initialised file
        cdef Broadcast b = Broadcast.__new__(Broadcast)
        b._open(path)
        b._start()
        return b

    @staticmethod
    def attach_producer(path: str) -> Broadcast:
        """Take over the producer side of an existing ring whose producer closed or died; records
        continue from its `published` and the epoch stays (readers need not reattach)."""
        cdef Broadcast b = Broadcast.__new__(Broadcast)
        cdef uint64_t old
        b._open(path)
        me = os.getpid()
        old = bc_load(b.producer_pid_p)
        if old != me and pid_alive(old):
            b.close()
            raise ValueError(f"{path} already has a live producer (pid {old})")
        if not bc_cas(b.producer_pid_p, old, me):
            b.close()
            raise ValueError(f"{path}: another producer attached at the same time")
        b._start()
        return b

    def _start(self) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
        self.sock_fd = self._sock.fileno()
        self.next_seq = bc_load(self.published_p)
        self.wakeups_sent = 0

    def close(self) -> None:
        """Producer pid -> 0 (readers' stale() becomes True), wake the sleepers, unmap."""
        cdef uint64_t me
        if self.base != NULL:
            me = os.getpid()
            if bc_cas(self.producer_pid_p, me, 0):
                bc_fence()
                self.wakeups_sent += self._wake(self.sock_fd)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self.sock_fd = -1
        _Mapped.close(self)

    cdef uint64_t publish_ptr(self, const unsigned char* data, uint64_t n) noexcept nogil:
        """Publish n records of slot_size bytes from data; return the first one's sequence. Never
        waits. (More than `capacity` records in one call is allowed: readers lose all but the
        last `capacity` of them, as a lap.)"""
        cdef uint64_t first = self.next_seq
        cdef uint64_t s
        cdef uint64_t end
        cdef unsigned char* slot
        if n == 0:
            return first
        while n > 0:
            end = self.next_seq + (n if n < self.capacity else self.capacity)
            n -= end - self.next_seq
            s = self.next_seq
            while s < end:
                slot = self._slot(s)
                bc_store_relaxed(<uint64_t*>slot, 2 * s + 1)     # a reader still copying s - capacity
                bc_fence_release()                               # sees this before any new byte
                memcpy(slot + 8, data, self.slot_size)
                bc_store(<uint64_t*>slot, 2 * s + 2)
                data += self.slot_size
                s += 1
            self.next_seq = end
            bc_store(self.published_p, end)
        bc_fence()   # `published` before reading `sleeping` (Dekker with prepare_wait)
        if bc_load32(self.sleep_mask) != 0:
            self.wakeups_sent += self._wake(self.sock_fd)
        return first

    def publish(self, payload) -> int:
        """Publish one slot_size-byte record; returns its sequence."""
        cdef const unsigned char[::1] data = memoryview(payload).cast("B")
        _need_open(self)
        if <uint64_t>data.shape[0] != self.slot_size:
            raise ValueError(f"payload must be {self.slot_size} bytes, not {data.shape[0]}")
        return self.publish_ptr(&data[0], 1)

    def publish_many(self, records) -> int:
        """Publish n * slot_size bytes as n records in one batch (one `published` store, one
        wake-up check); returns the first record's sequence (published if n == 0)."""
        cdef const unsigned char[::1] data = memoryview(records).cast("B")
        cdef uint64_t n = data.shape[0] // self.slot_size if self.slot_size else 0
        cdef uint64_t first
        _need_open(self)
        if n * self.slot_size != <uint64_t>data.shape[0]:
            raise ValueError(f"records must be a whole number of {self.slot_size}-byte records, "
                             f"not {data.shape[0]} bytes")
        if n == 0:
            return self.next_seq
        with nogil:
            first = self.publish_ptr(&data[0], n)
        return first


cdef class BroadcastReader(_Mapped):
    """A consumer's handle: its own cursor, consumer-table entry and wake socket (fileno())."""

    @staticmethod
    def attach(path: str, start: str | int = "latest") -> BroadcastReader:
        """Attach a reader. start: "latest" (only records published from now on), "earliest" (the
        oldest record still in the ring) or a sequence <= published (older than the ring holds:
        take() reports LAPPED). Raises RuntimeError when all 16 consumer entries are in use."""
        cdef BroadcastReader r = BroadcastReader.__new__(BroadcastReader)
        cdef uint64_t pub
        r.index = -1
        r.sock_fd = -1
        r._open(path)
        pub = bc_load(r.published_p)
        if start == "latest":
            cursor = pub
        elif start == "earliest":
            cursor = pub - r.capacity if pub > r.capacity else 0
        else:
            try:
                cursor = operator.index(start) if not isinstance(start, (str, bool)) else None
            except TypeError:
                cursor = None
            if cursor is None:
                r.close()
                raise ValueError(f"start must be 'latest', 'earliest' or a sequence number, not {start!r}")
            if not 0 <= cursor <= pub:
                r.close()
                raise ValueError(f"start seq {cursor} is outside 0..published ({pub})")
        r._cursor = cursor
        try:
            r._claim_entry()
        except BaseException:
            r.close()
            raise
        return r

    def _claim_entry(self) -> None:
        cdef uint64_t* e
        cdef uint64_t pid
        cdef uint64_t me = os.getpid()
        cdef int i
        for i in range(N_READERS):
            e = self._entry(i)
            pid = bc_load(&e[E_PID])
            if pid != 0 and pid_alive(pid):
                continue
            if not bc_cas(&e[E_PID], pid, me):
                continue                           # another reader took it first
            bc_and32(self.sleep_mask, ~((<uint32_t>1) << i))   # a dead owner's bit is stale
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
            try:
                sock.bind(wake_name(self.ring_id, i))
            except OSError:
                # the name is held: a process that inherited the dead reader's socket; skip it
                sock.close()
                bc_store(&e[E_PID], pid)
                continue
            self._sock = sock
            self.sock_fd = sock.fileno()
            self._poll = select.poll()
            self._poll.register(sock.fileno(), select.POLLIN)
            self.index = i
            self.bit = (<uint32_t>1) << i
            self.my_entry = e
            bc_store_relaxed(&e[E_LAPS], 0)
            bc_store_relaxed(&e[E_CURSOR], self._cursor)
            return
        raise RuntimeError(f"{self.path}: all {N_READERS} consumer entries are in use by live readers")

    def close(self) -> None:
        """Free the consumer entry, close the wake socket, unmap (idempotent)."""
        if self.base != NULL and self.index >= 0:
            bc_and32(self.sleep_mask, ~self.bit)
            bc_store(&self.my_entry[E_PID], 0)
            self.index = -1
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self.sock_fd = -1
        _Mapped.close(self)

    def __dealloc__(self):
        # A reader dropped without close(): free its entry (the mapping is still alive here).
        if self.base != NULL and self.index >= 0:
            bc_and32(self.sleep_mask, ~self.bit)
            bc_store(&self.my_entry[E_PID], 0)

    cdef int64_t take_ptr(self, unsigned char* out, uint64_t max_n) noexcept nogil:
        """Copy up to max_n whole records into out; return how many (0: nothing new), or LAPPED."""
        cdef uint64_t s = self._cursor
        cdef uint64_t pub = bc_load(self.published_p)
        cdef uint64_t n = pub - s
        cdef uint64_t i = 0
        cdef uint64_t want
        cdef unsigned char* slot
        if n == 0 or max_n == 0:
            return 0
        if n <= self.capacity:
            if n > max_n:
                n = max_n
            while i < n:
                slot = self._slot(s + i)
                want = 2 * (s + i) + 2
                if bc_load(<uint64_t*>slot) != want:
                    break                                   # reused for a later record
                memcpy(out + i * self.slot_size, slot + 8, self.slot_size)
                bc_fence_acquire()                          # the copy before the re-check
                if bc_load_relaxed(<uint64_t*>slot) != want:
                    break                                   # overwritten while we copied
                i += 1
        if i == 0:
            if not self._lapped:
                self._lapped = True
                self.laps += 1
                bc_store_relaxed(&self.my_entry[E_LAPS], self.laps)
            return -1
        self._cursor = s + i
        bc_store_relaxed(&self.my_entry[E_CURSOR], self._cursor)
        return <int64_t>i

    def take(self, out, int64_t max_n=-1) -> int:
        """Copy up to max_n (default: as many as fit) whole records into the writable buffer out;
        return how many, 0 if nothing new, LAPPED (-1) if the next record was overwritten
        (call rejoin())."""
        cdef unsigned char[::1] buf = memoryview(out).cast("B")
        cdef uint64_t room = buf.shape[0] // self.slot_size if self.slot_size else 0
        cdef int64_t n
        _need_open(self)
        if room == 0:
            raise ValueError(f"out must hold at least one {self.slot_size}-byte record")
        if max_n < 0 or <uint64_t>max_n > room:
            max_n = room
        with nogil:
            n = self.take_ptr(&buf[0], max_n)
        return n

    def rejoin(self) -> int:
        """After a lap: move the cursor to the current `published`; returns how many records were
        skipped (lost to this reader)."""
        cdef uint64_t pub
        _need_open(self)
        pub = bc_load(self.published_p)
        skipped = pub - self._cursor
        self._cursor = pub
        self._lapped = False
        bc_store_relaxed(&self.my_entry[E_CURSOR], pub)
        return skipped

    @property
    def cursor(self) -> int:
        """Sequence of the next record this reader will take."""
        return self._cursor

    @property
    def lag(self) -> int:
        """published - cursor: records not yet taken (over capacity: lapped)."""
        _need_open(self)
        return bc_load(self.published_p) - self._cursor

    def fileno(self) -> int:
        """The wake socket: readable after a publish that followed prepare_wait()."""
        _need_open(self)
        return self._sock.fileno()

    def prepare_wait(self) -> bool:
        """Announce that this reader is about to block on fileno(). True: nothing new, block now
        (a later publish will make the fd readable); False: records (or a lap) are there, or the
        ring is stale: take() / check stale() instead of blocking."""
        _need_open(self)
        return self.c_prepare_wait()

    cdef bint c_prepare_wait(self) noexcept nogil:
        cdef uint64_t pid
        if self.base == NULL:
            return False  # closed: the caller finds out through stale() / take()
        bc_or32(self.sleep_mask, self.bit)
        bc_fence()   # the bit before reading `published` (Dekker with the producer)
        pid = bc_load(self.producer_pid_p)
        if bc_load(self.published_p) != self._cursor or bc_load32(self.superseded_p) or pid == 0:
            bc_and32(self.sleep_mask, ~self.bit)
            return False
        return True

    def awake(self) -> None:
        """The reader woke for another reason (its other fds): clear the sleeping bit, so that the
        producer makes no wake syscall until the next prepare_wait(). (No wake-up can be lost: the
        reader takes what is published before it calls prepare_wait() again, which re-checks.)"""
        _need_open(self)
        self.c_awake()

    cdef void c_awake(self) noexcept nogil:
        if self.base != NULL:
            bc_and32(self.sleep_mask, ~self.bit)

    def drain_wakeups(self) -> int:
        """Call after the fd woke (or the wait ended): empties the wake socket, clears the sleeping
        bit; returns how many wake bytes were read."""
        _need_open(self)
        return self.c_drain_wakeups()

    cdef int c_drain_wakeups(self) noexcept nogil:
        if self.base == NULL:
            return 0
        bc_and32(self.sleep_mask, ~self.bit)
        if self.sock_fd < 0:
            return 0
        return bc_drain_socket(self.sock_fd)  # each wake datagram is one byte

    cdef bint c_has_new(self) noexcept nogil:
        """Records (or a lap) wait to be taken: a cheap check for a bounded spin."""
        return self.base != NULL and bc_load(self.published_p) != self._cursor

    def wait(self, timeout_s: float | None = None) -> bool:
        """prepare_wait() + poll the fd (None: no timeout) + drain_wakeups(). True if take() has
        something (records or a lap) now."""
        _need_open(self)
        if self.prepare_wait():
            self._poll.poll(-1 if timeout_s is None else max(0, int(timeout_s * 1000 + 0.999)))
            self.drain_wakeups()
        return bc_load(self.published_p) != self._cursor

    def stale(self) -> bool:
        """True when this reader should close and attach again (engine restarted or gone): the
        file was superseded by create(), the path now names another file, or the producer pid is
        0 (closed) or dead."""
        _need_open(self)
        if bc_load32(self.superseded_p) or not pid_alive(bc_load(self.producer_pid_p)):
            return True
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self._ident
