/*
 * Copy monitors: netmap's `/t`, `/r` and `/z` (netmap_monitor.c's role).
 *
 * A monitor is a port entry of its own (flag VPF_MONITOR, its own region,
 * liveness by the OFD lock like any port) that is not in the active list:
 * the switch never forwards to it and it cannot send. Its RX rings receive
 * copies of what port `mon_of` sends (TX) and/or what it receives (RX).
 *
 * As in netmap, the copies are made by the monitored port's own syncs: TX
 * frames in its txsync, right after the flush consumed them (before the
 * slots go back to the application), RX frames in its rxsync, when they are
 * first exposed to the application. A frame is copied into monitor ring
 * (ring % monitor rings) through the same leases other producers use, and
 * never waited for: when the monitor's ring is full, or its lock is held
 * for longer than a legitimate holder ever holds it, the frames are counted
 * as drops (VD_RING_FULL) on the monitor's entry and the sync goes on.
 *
 * Zero-copy (`/z`) is accepted and served as a copy monitor. netmap's zero-
 * copy monitor swaps buffers between the monitored ring and the monitor's
 * ring, which needs one memory region for both; in vale every port has its
 * own region file and a buffer index means nothing outside it. Swapping would
 * also make the monitored port wait for the monitor (netmap's zero-copy
 * monitor only sees TX slots once released and hands RX buffers on after the
 * consumer released them) and let a monitor process hold or rewrite the
 * port's buffers: both break "a monitor never slows or changes the port".
 *
 * The cost for a port without monitors is one load per sync: its entry's
 * mon_seq, on a cache line written only when a monitor comes or goes, is
 * compared with the value the private monitor list was built from.
 *
 * This file is the data path (the lists and the copies, called by flush.c);
 * opening a monitor is port-table work, in port.c.
 */
#include "internal.h"
#include "lease.h"

/* Rebuild p's private list of its TX (or RX) monitors from the port table. */
void vale_mon_refresh(vale_port *p, bool rx, uint32_t seq)
{
	struct vale_sw *sw = p->sw;
	struct vale_monlist *l = rx ? &p->mon_rx : &p->mon_tx;
	uint32_t n = 0, want = rx ? VO_MONITOR_RX : VO_MONITOR_TX;
	l->seen = seq;
	if (!(p->flags & VPF_MONITOR)) { /* a monitor is never monitored */
		for (uint32_t i = 0; i < sw->max_ports && n < VALE_MAX_MONITORS; i++) {
			struct vale_port_ent *e = &sw->ports[i];
			if (LOAD_ACQ(&e->state) != VP_ACTIVE || !(LOAD_RLX(&e->flags) & VPF_MONITOR) ||
			    i == p->idx)
				continue;
			if (LOAD_RLX(&e->mon_of) != p->idx || LOAD_RLX(&e->mon_of_gen) != p->gen ||
			    !(vale_mon_dirs(LOAD_RLX(&e->mon_flags)) & want))
				continue;
			l->m[n].idx = i;
			l->m[n].gen = LOAD_RLX(&e->gen);
			n++;
		}
	}
	l->n = n;
}

/* ---------------- copying ---------------- */

/* A legitimate holder keeps a kring lock for well under a microsecond; a
 * monitored port gives up after this many tries and counts the frames as
 * missed instead of waiting (or taking over) a lock held by a dead or
 * hostile monitor. */
#define MON_LOCK_TRIES 20000

static bool mon_trylock(struct vale_kring *k)
{
	for (uint32_t i = 0; i < MON_LOCK_TRIES; i++) {
		uint32_t z = 0;
		if (LOAD_RLX(&k->lock.owner) == 0 &&
		    __atomic_compare_exchange_n(&k->lock.owner, &z, vale_g_pid, false,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			ADD_RLX(&k->lock.seq, 1);
			return true;
		}
		__builtin_ia32_pause();
	}
	return false;
}

/* The source ring being copied: slots [from, to) of one of p's rings; tab:
 * its source table (a sender's vale_set_tx_source), whose entries then stand
 * for the slots: bytes, lengths and flags from it, nothing from the slots. */
struct mon_src {
	const struct vale_ring *ring;
	const uint8_t *bufs;
	uint32_t n, nbufs, from, to;
	const struct vale_src_slot *tab;
};

/* Slot s of the source, read once: its bytes (NULL: a bad slot), length, flags. */
static inline const uint8_t *mon_slot(const struct mon_src *src, uint32_t s, uint32_t *len,
				      uint16_t *flags)
{
	if (src->tab) {
		const struct vale_src_slot *e = &src->tab[s];
		*len = e->len;
		*flags = e->flags;
		return e->p && e->len <= VALE_BUF_SIZE ? e->p : NULL;
	}
	const struct vale_slot *sl = &src->ring->slot[s];
	uint32_t idx = LOAD_RLX(&sl->buf_idx);
	*len = LOAD_RLX(&sl->len);
	*flags = LOAD_RLX(&sl->flags);
	if (idx - 2u >= src->nbufs - 2u || *len > VALE_BUF_SIZE)
		return NULL;
	return src->bufs + (uint64_t)idx * VALE_BUF_SIZE;
}

/* The packet at slot j: its slots (*nf), bytes (*len), the slot after it;
 * false when it is empty or has a bad slot (a monitor skips it, as the port's
 * reader skips empty slots). Each field is read once. */
static bool mon_packet(const struct mon_src *s, uint32_t j, uint32_t *nf, uint32_t *len,
		       uint32_t *next)
{
	bool ok = true;
	uint32_t f = 0, l = 0;
	while (j != s->to) {
		uint32_t sl_len;
		uint16_t flags;
		f++;
		if (!mon_slot(s, j, &sl_len, &flags))
			ok = false;
		else
			l += sl_len;
		j = vale_ring_next(j, s->n);
		if (!(flags & VS_MOREFRAG) || f == VALE_MAX_FRAGS)
			break;
	}
	*nf = f;
	*len = l;
	*next = j;
	return ok && l > 0;
}

/* Copy the packets of src into monitor mon: lease room in its ring (without
 * waiting), copy, publish, wake, count. npk/nsl: the packets and slots. */
static void mon_deliver(vale_port *p, const struct vale_mon *mon, const struct mon_src *src,
			uint32_t ri, uint32_t npk, uint32_t nsl)
{
	struct vale_sw *sw = p->sw;
	if (mon->idx >= sw->max_ports || LOAD_RLX(&sw->ports[mon->idx].gen) != mon->gen)
		return; /* gone: our list is rebuilt at the next sync */
	uint32_t end;
	struct vale_map *dm = vale_map_get(sw, mon->idx, &end);
	if (!dm)
		return;
	struct vale_counters *dc = &sw->ports[mon->idx].c;
	uint32_t n = dm->rx_slots;
	struct vale_kring *k = vale_kring(dm, end, true, ri % dm->nrx);
	struct vale_ring *rxr = vale_ring(dm, end, true, ri % dm->nrx);
	if (!mon_trylock(k)) {
		ADD_RLX(&dc->drops[VD_RING_FULL], npk);
		return;
	}
	uint32_t hwcur = LOAD_ACQ(&k->hwcur), lease = k->hwlease;
	if (unlikely(hwcur >= n || lease >= n)) { /* damaged by the monitor: repair */
		lease_repair(k, n);
		lease = k->hwlease;
		hwcur = hwcur >= n ? lease : hwcur;
	}
	uint32_t room = vale_ring_dist(lease, hwcur, n);
	uint32_t space = (room == 0 ? n : room) - 1;
	if (unlikely(k->lease_next - k->lease_first >= VALE_NLEASES))
		space = 0; /* its own waits reclaim dead producers' leases */
	uint32_t take_pk = npk, take_sl = nsl;
	if (space < nsl) { /* whole packets that fit */
		take_pk = take_sl = 0;
		for (uint32_t j = src->from, nf, len, nx; j != src->to; j = nx) {
			if (!mon_packet(src, j, &nf, &len, &nx))
				continue;
			if (take_sl + nf > space)
				break;
			take_pk++;
			take_sl += nf;
		}
	}
	if (take_pk == 0) {
		vale_unlock(&k->lock);
		ADD_RLX(&dc->drops[VD_RING_FULL], npk);
		return;
	}
	uint32_t my = k->lease_next;
	struct vale_lease *l = &k->leases[my % VALE_NLEASES];
	l->start = lease;
	l->end = ring_add(lease, take_sl, n);
	l->pid = (int32_t)vale_g_pid;
	l->done = 0;
	k->lease_next = my + 1;
	k->hwlease = l->end;
	k->lease_ops++;
	if (my == k->lease_first)
		k->first_since = k->lease_ops;
	vale_unlock(&k->lock);

	/* copy without the lock; the source is read again and may have changed
	 * (another process maps p's region): at most take_sl slots are written
	 * and what is left of the lease is published empty */
	const uint8_t *dbase = dm->base + dm->buf_ofs;
	uint32_t x = lease, used = 0, got = 0, bad = 0;
	uint64_t bytes = 0;
	for (uint32_t j = src->from, nf, len, nx; j != src->to && got + bad < take_pk; j = nx) {
		if (!mon_packet(src, j, &nf, &len, &nx))
			continue;
		if (used + nf > take_sl)
			break;
		bool ok = true;
		for (uint32_t f = 0, s = j; f < nf; f++, s = vale_ring_next(s, src->n)) {
			struct vale_slot *ds = &rxr->slot[ring_add(x, f, n)];
			uint32_t slen;
			uint16_t sflags;
			const uint8_t *sp = mon_slot(src, s, &slen, &sflags);
			uint32_t didx = LOAD_RLX(&ds->buf_idx);
			if (ok && sp && didx - 2u < dm->nbufs - 2u) {
				memcpy((uint8_t *)dbase + (uint64_t)didx * VALE_BUF_SIZE, sp, slen);
				ds->len = (uint16_t)slen;
				ds->flags = f + 1 < nf ? VS_MOREFRAG : 0;
			} else {
				ok = false;
			}
		}
		if (ok) {
			got++;
			bytes += len;
		} else { /* a bad slot on either side: the packet is published empty */
			for (uint32_t f = 0; f < nf; f++) {
				rxr->slot[ring_add(x, f, n)].len = 0;
				rxr->slot[ring_add(x, f, n)].flags = 0;
			}
			bad++;
		}
		x = ring_add(x, nf, n);
		used += nf;
	}
	for (; used < take_sl; used++, x = vale_ring_next(x, n)) {
		rxr->slot[x].len = 0;
		rxr->slot[x].flags = 0;
	}
	/* done, then publish if the lock is free; a holder publishes it with its
	 * own lease otherwise (lease_publish walks every done lease in order) */
	STORE_REL(&l->done, 1);
	if (mon_trylock(k)) {
		lease_publish(k, n);
		vale_unlock(&k->lock);
	}
	vale_wake_end(dm, end, sw, mon->idx);
	ADD_RLX(&dc->rx_pkts, got);
	ADD_RLX(&dc->rx_bytes, bytes);
	if (bad)
		ADD_RLX(&dc->drops[VD_BAD_SLOT], bad);
	if (npk > got + bad)
		ADD_RLX(&dc->drops[VD_RING_FULL], npk - got - bad);
}

/* Slots [from, to) of `ring` (nslots slots, buffers in p's region), which
 * hold what p's ring ri just sent (TX; for a pipe end, the peer's RX slots it
 * has just filled) or received (RX), to every monitor of that direction. */
void vale_mon_copy(vale_port *p, bool rx, const struct vale_ring *ring, uint32_t nslots, uint32_t ri,
		   uint32_t from, uint32_t to)
{
	const struct vale_map *m = &p->m;
	struct mon_src src = {.ring = ring,
			      .bufs = m->base + m->buf_ofs,
			      .n = nslots,
			      .nbufs = m->nbufs,
			      .from = from,
			      .to = to,
			      .tab = !rx && p->srct ? p->srct + (uint64_t)ri * nslots : NULL};
	uint32_t npk = 0, nsl = 0;
	for (uint32_t j = from, nf, len, nx; j != to; j = nx) {
		if (mon_packet(&src, j, &nf, &len, &nx)) {
			npk++;
			nsl += nf;
		}
	}
	if (npk == 0)
		return;
	const struct vale_monlist *l = rx ? &p->mon_rx : &p->mon_tx;
	for (uint32_t i = 0; i < l->n && i < VALE_MAX_MONITORS; i++)
		mon_deliver(p, &l->m[i], &src, ri, npk, nsl);
}
