/*
 * vale: helpers for applications that move packets through a port's rings
 * (the role of netmap's netmap_user.h). Used by the tools' loops (apps/), the
 * forwarder (fwd/) and, for the atomics and index arithmetic, the switch
 * itself (core/internal.h). Header only: everything is static inline, so a
 * loop that uses them compiles to what it would with private copies.
 *
 *   struct vale_port_info info;
 *   vale_info(p, &info);                       // sizes checked by the library
 *   struct vale_ring *tx = vale_tx_ring(&info, info.first_ring);
 *   uint32_t n = info.tx_slots, h = LOAD_RLX(&tx->head);
 *   for (uint32_t k = vale_ring_space(tx, n); k > 0; k--, h = vale_ring_next(h, n)) {
 *           uint8_t *buf = vale_slot_buf(&info, tx->slot[h].buf_idx);
 *           ...
 *   }
 *   STORE_REL(&tx->cur, h); STORE_REL(&tx->head, h);
 *   vale_txsync(p, -1);
 *
 * Ring sizes and buffer counts always come from struct vale_port_info (the
 * library's private, validated copy), never from the ring header's
 * num_slots: the header is shared memory another process may scribble on.
 * For the same reason every index read from a ring is checked before it
 * indexes a slot or a buffer.
 */
#ifndef VALE_APP_H
#define VALE_APP_H

#include "vale.h"
#include <stdint.h>
#include <time.h>

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

/* Shared-memory accesses. head/cur are published with release stores and
 * tail read with an acquire load (netmap's barriers around NIOC*SYNC);
 * counters use relaxed accesses. */
#define LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOAD_RLX(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define STORE_RLX(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define ADD_RLX(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define FENCE() __atomic_thread_fence(__ATOMIC_SEQ_CST)

/* The slot after i in a ring of n slots (netmap's nm_ring_next). */
static inline uint32_t vale_ring_next(uint32_t i, uint32_t n) { return i + 1 == n ? 0 : i + 1; }

/* Slots from `from` up to `to` (exclusive) in a ring of n slots. */
static inline uint32_t vale_ring_dist(uint32_t from, uint32_t to, uint32_t n)
{
	return to >= from ? to - from : to + n - from;
}

/* Slots between head and tail (netmap's nm_ring_space): free slots of a TX
 * ring, received slots of an RX ring. `n` is the ring size vale_info()
 * reported; a head or tail out of range (a scribbled ring) gives 0. */
static inline uint32_t vale_ring_space(const struct vale_ring *r, uint32_t n)
{
	uint32_t h = LOAD_RLX(&r->head), t = LOAD_ACQ(&r->tail);
	if (h >= n || t >= n)
		return 0;
	return vale_ring_dist(h, t, n);
}

/* TX / RX ring `ri` (an index < info->ntx / nrx) of the port in this process. */
static inline struct vale_ring *vale_tx_ring(const struct vale_port_info *i, uint32_t ri)
{
	return (struct vale_ring *)(uintptr_t)(i->region_base + i->tx_ring_ofs[ri]);
}
static inline struct vale_ring *vale_rx_ring(const struct vale_port_info *i, uint32_t ri)
{
	return (struct vale_ring *)(uintptr_t)(i->region_base + i->rx_ring_ofs[ri]);
}

/* Buffer `idx` of the port's region, unchecked: the caller has checked
 * vale_buf_ok(). */
static inline uint8_t *vale_buf_at(const struct vale_port_info *i, uint32_t idx)
{
	return (uint8_t *)(uintptr_t)i->region_base + i->buf_ofs + (uint64_t)idx * VALE_BUF_SIZE;
}
/* A buffer index an application may use: 0 and 1 are reserved (netmap's
 * spare buffers), the rest of the region's nbufs are real. */
static inline int vale_buf_ok(const struct vale_port_info *i, uint32_t idx)
{
	return idx >= 2 && idx < i->nbufs;
}
/* Buffer `idx`, or NULL when a slot names one outside the region (netmap's
 * NETMAP_BUF, checked). */
static inline uint8_t *vale_slot_buf(const struct vale_port_info *i, uint32_t idx)
{
	if (unlikely(!vale_buf_ok(i, idx)))
		return NULL;
	return vale_buf_at(i, idx);
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t vale_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
