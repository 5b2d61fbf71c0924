/*
 * Leases of dead producers: a sender killed between lease and publish must
 * never wedge a ring. Called by the waiters (wait.c), the reaper (port.c)
 * and the flush when a ring stays stuck. The lease steps themselves are in
 * lease.h.
 */
#include "lease.h"

/* Turn leases of dead producers into zero-length slots and publish them, so
 * a sender killed between lease and publish never wedges the ring. With
 * force == false only leases whose owner is gone are reclaimed. */
void vale_reclaim_leases(struct vale_kring *k, struct vale_ring *ring, uint32_t nslots, bool force,
			 struct vale_counters *c)
{
	if (LOAD_RLX(&k->lease_first) == LOAD_RLX(&k->lease_next))
		return;
	kring_lock(k, nslots);
	uint32_t first = k->lease_first, next = k->lease_next;
	if (next - first > VALE_NLEASES)
		first = next - VALE_NLEASES;
	for (uint32_t i = first; i != next; i++) {
		struct vale_lease *l = &k->leases[i % VALE_NLEASES];
		if (l->done)
			continue;
		if (!force && vale_pid_alive(l->pid))
			continue;
		/* its slots may hold half a copy: publish them empty */
		uint32_t end = l->end < nslots ? l->end : l->start;
		for (uint32_t j = l->start < nslots ? l->start : end; j != end; j = vale_ring_next(j, nslots)) {
			ring->slot[j].len = 0;
			ring->slot[j].flags = 0;
		}
		l->pid = -1;
		STORE_REL(&l->done, 1);
		if (c)
			ADD_RLX(&c->leases_reclaimed, 1);
	}
	lease_publish(k, nslots);
	k->first_since = k->lease_ops;
	vale_unlock(&k->lock);
}
