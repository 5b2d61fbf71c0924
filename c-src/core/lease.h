/*
 * Leases on a destination RX ring (struct vale_kring): producers lease slots
 * [hwlease, ...) under the kring lock, fill them without it, and publish in
 * lease order by advancing hwtail. These are the steps the flush runs under
 * the lock, once per destination ring per batch: static inline, so the
 * flush compiles as it did when they lived in its own file. Included by
 * flush.c and lease.c only.
 */
#ifndef VALE_LEASE_H
#define VALE_LEASE_H

#include "internal.h"

/* Publish filled leases in order: hwtail moves over every done lease at the
 * front. Caller holds k->lock. */
static inline void lease_publish(struct vale_kring *k, uint32_t nslots)
{
	uint32_t first = k->lease_first, next = k->lease_next;
	bool moved = false;
	if (unlikely(next - first > VALE_NLEASES)) /* scribbled on: bound the walk */
		first = next - VALE_NLEASES;
	while (first != next) {
		struct vale_lease *l = &k->leases[first % VALE_NLEASES];
		if (!LOAD_RLX(&l->done))
			break;
		uint32_t end = l->end < nslots ? l->end : 0;
		STORE_REL(&k->hwtail, end);
		first++;
		moved = true;
	}
	if (moved) {
		k->lease_first = first;
		k->first_since = k->lease_ops;
	}
}

/* Make lease state consistent after a producer died inside the lock (or the
 * lock was taken over from a garbage owner). */
static inline void lease_repair(struct vale_kring *k, uint32_t nslots)
{
	if (k->lease_next - k->lease_first > VALE_NLEASES)
		k->lease_first = k->lease_next; /* damaged: forget */
	if (k->hwtail >= nslots)
		k->hwtail = 0;
	k->hwlease = k->lease_first == k->lease_next
			 ? k->hwtail
			 : k->leases[(k->lease_next - 1) % VALE_NLEASES].end % nslots;
	lease_publish(k, nslots);
}

static inline void kring_lock(struct vale_kring *k, uint32_t nslots)
{
	bool rec;
	vale_lock(&k->lock, VALE_KRING_STALE_MS, &rec);
	if (unlikely(rec))
		lease_repair(k, nslots);
}

#endif
