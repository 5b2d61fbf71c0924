/*
 * The data path: txsync (VALE's two-phase flush, run by the sender), rxsync
 * and pipes. Leases are in lease.h/lease.c, waiting and waking in wait.c.
 *
 * Phase 1 looks the whole batch up and builds one list per destination.
 * Phase 2, per destination: lease room in its RX ring under a short lock,
 * copy without the lock, then publish in lease order. Several senders thus
 * copy into one RX ring at the same time. Nothing is dropped uncounted.
 */
#include "internal.h"
#include "lease.h"
#include "offload.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---------------- slot validation ---------------- */

/* A buffer index a slot may carry: 0 and 1 are reserved (as in netmap). One
 * unsigned compare: indices below 2 wrap around to huge values. */
static inline bool buf_ok(uint32_t idx, uint32_t nbufs) { return idx - 2u < nbufs - 2u; }

static inline bool slot_ok(const struct vale_map *m, const struct vale_slot *s)
{
	return s->buf_idx >= 2 && s->buf_idx < m->nbufs && s->len <= VALE_BUF_SIZE;
}

/* netmap's prologue: head in [hwcur, hwtail], cur in [head, hwtail] (cyclic). */
static inline bool in_window(uint32_t x, uint32_t lo, uint32_t hi, uint32_t n)
{
	if (x >= n)
		return false;
	return vale_ring_dist(lo, x, n) <= vale_ring_dist(lo, hi, n);
}

static void count_err(struct vale_sw *sw, uint32_t idx, int reason, uint64_t n)
{
	if (reason < 0)
		ADD_RLX(&sw->ports[idx].c.sync_errors, n);
	else
		ADD_RLX(&sw->ports[idx].c.drops[reason], n);
}

/* ---------------- copying ---------------- */

static inline void pkt_copy(uint8_t *dst, const uint8_t *src, uint32_t len)
{
	/* Buffers are 2048 bytes, so rounding up to 64 never leaves them. Written
	 * with pointers, not an index: the compiler then emits the same loop (four
	 * 16-byte moves, two pointer adds) wherever this is inlined; with a 32-bit
	 * index it sometimes recomputed both addresses per 64 bytes (callgrind). */
	const uint8_t *end = src + len;
	for (; src < end; src += 64, dst += 64)
		__builtin_memcpy(dst, src, 64);
}

/* ---------------- the flush ---------------- */

/* Snapshot the active list (seqlock) into out; returns the count. */
static uint32_t active_snapshot(struct vale_sw *sw, uint32_t *out)
{
	struct vale_ctl_hdr *h = sw->ctl;
	/* A writer holds the sequence odd for a few hundred ns. A sequence that
	 * stays odd, or keeps moving, is a dead writer or a scribbling client:
	 * after a bounded number of tries take the list as it is. Every entry is
	 * checked by the caller, so the worst is a misdirected flood. */
	for (uint32_t tries = 0;; tries++) {
		uint32_t s1 = LOAD_ACQ(&h->active_seq);
		if ((s1 & 1) && tries < 100000) {
			__builtin_ia32_pause();
			continue;
		}
		uint32_t n = LOAD_RLX(&h->nactive);
		if (n > sw->max_ports)
			n = sw->max_ports;
		memcpy(out, sw->active, n * sizeof(uint32_t));
		FENCE();
		if (LOAD_ACQ(&h->active_seq) == s1 || tries >= 100000)
			return n;
	}
}

/* Next packet of the merge of a destination's unicast list (u) and the
 * broadcast list (b), both in batch order. */
#define NEXT_PKT(i, u, b, ft)                                                                      \
	do {                                                                                       \
		if ((b) == ~0u || ((u) != ~0u && (u) < (b))) {                                     \
			(i) = (u);                                                                 \
			(u) = (ft)[u].next;                                                        \
		} else {                                                                           \
			(i) = (b);                                                                 \
			(b) = (ft)[b].next;                                                        \
		}                                                                                  \
	} while (0)

#define HOT static inline __attribute__((always_inline))

/* ---------------- phase 2: one destination ---------------- */

/* The slots a lease reserved in a destination RX ring. */
struct lease_rsv {
	uint32_t my;      /* lease number */
	uint32_t start;   /* first slot */
	uint32_t take_pk; /* whole packets that fit */
};

/* How many whole packets of list ui (merged with bi) fit in `space` slots. */
HOT void fit_whole_packets(const struct vale_ft *ft, uint32_t ui, uint32_t bi, uint32_t space,
			   uint32_t *take_pk, uint32_t *take_sl)
{
	uint32_t pk = 0, sl = 0;
	for (uint32_t u = ui, b = bi, i; u != ~0u || b != ~0u;) {
		NEXT_PKT(i, u, b, ft);
		if (sl + ft[i].nfrags > space)
			break;
		pk++;
		sl += ft[i].nfrags;
	}
	*take_pk = pk;
	*take_sl = sl;
}

/* Under the ring's lock (taken here): the room from hwlease up to the slot
 * before hwcur, after repairing what a client damaged; 0 when every lease
 * is in flight. The lock stays held. */
HOT uint32_t lease_space(struct vale_kring *k, struct vale_ring *rxr, uint32_t n,
			 struct vale_counters *dc, uint32_t *lease_out)
{
	kring_lock(k, n);
	if (unlikely(k->lease_next - k->lease_first >= VALE_NLEASES)) {
		/* too many producers in flight: is the oldest one dead? */
		vale_unlock(&k->lock);
		vale_reclaim_leases(k, rxr, n, false, dc);
		kring_lock(k, n);
		if (k->lease_next - k->lease_first >= VALE_NLEASES) {
			*lease_out = 0;
			return 0;
		}
	}
	/* Read once and checked: hwlease is where our lease starts (lease_take),
	 * and a client that ignores the lock may write it at any time. */
	uint32_t hwcur = LOAD_ACQ(&k->hwcur);
	uint32_t lease = LOAD_RLX(&k->hwlease);
	if (unlikely(hwcur >= n || lease >= n)) { /* damaged by a client: take the consumer's word */
		lease_repair(k, n);
		lease = LOAD_RLX(&k->hwlease);
		if (lease >= n) /* scribbled again meanwhile */
			lease = 0;
		hwcur = hwcur >= n ? lease : hwcur;
	}
	*lease_out = lease;
	/* room: from hwlease up to the slot before hwcur (one slot always stays empty) */
	uint32_t room = vale_ring_dist(lease, hwcur, n);
	return (room == 0 ? n : room) - 1;
}

/* Nothing fits: drop the lock. If a dead producer holds the front, reclaim
 * now and then. */
HOT void lease_refuse(struct vale_kring *k, struct vale_ring *rxr, uint32_t n,
		      struct vale_counters *dc)
{
	bool stuck = k->lease_first != k->lease_next && k->lease_ops - k->first_since > 256;
	vale_unlock(&k->lock);
	if (stuck)
		vale_reclaim_leases(k, rxr, n, false, dc);
}

/* Record a lease of take_sl slots from `lease` (hwlease as lease_space read
 * and checked it) and drop the lock. */
HOT void lease_take(struct vale_kring *k, uint32_t n, uint32_t lease, uint32_t take_sl,
		    struct lease_rsv *out)
{
	uint32_t my = k->lease_next;
	struct vale_lease *l = &k->leases[my % VALE_NLEASES];
	l->start = lease;
	l->end = ring_add(lease, take_sl, n);
	l->pid = (int32_t)vale_g_pid; /* right after fork() too */
	l->done = 0;
	k->lease_next = my + 1;
	k->hwlease = l->end;
	k->lease_ops++;
	if (my == k->lease_first)
		k->first_since = k->lease_ops;
	vale_unlock(&k->lock);
	out->my = my;
	out->start = lease;
}

/* Under the ring's lock: the whole packets that fit, and a lease on their
 * slots. False when nothing fits (nothing leased; the caller counts the drops). */
HOT bool lease_reserve(struct vale_kring *k, struct vale_ring *rxr, uint32_t n,
		       const struct vale_ft *ft, uint32_t ui, uint32_t bi, uint32_t npk, uint32_t nsl,
		       struct vale_counters *dc, struct lease_rsv *out)
{
	uint32_t lease;
	uint32_t space = lease_space(k, rxr, n, dc, &lease);
	uint32_t take_pk = npk, take_sl = nsl; /* whole packets only */
	if (unlikely(space < nsl))
		fit_whole_packets(ft, ui, bi, space, &take_pk, &take_sl);
	if (take_pk == 0) {
		lease_refuse(k, rxr, n, dc);
		return false;
	}
	lease_take(k, n, lease, take_sl, out);
	out->take_pk = take_pk;
	return true;
}

/* What the copy of a lease did. */
struct copied {
	uint32_t got, bad;
	uint64_t bytes;
};

/* Where a copy reads and writes. */
struct copy_ends {
	const struct vale_ring *txr;
	struct vale_ring *rxr;
	const uint8_t *sbase; /* source buffer 0 */
	uint8_t *dbase;       /* destination buffer 0 */
	uint32_t snbufs, nbufs, tn, n;
};

/* One packet of several slots (a MOREFRAG chain) into slots from j: its
 * bytes, or -1 when a slot was bad (the chain is then published empty). Out
 * of line: the rare case stays out of the single-slot loop. */
static __attribute__((noinline)) int64_t copy_chain(const struct copy_ends *e, uint32_t s,
						    uint32_t j, uint32_t nf)
{
	bool ok = true;
	uint64_t plen = 0;
	for (uint32_t f = 0, x = j; f < nf; f++) {
		const struct vale_slot *ss = &e->txr->slot[s];
		struct vale_slot *ds = &e->rxr->slot[x];
		uint32_t bidx = LOAD_RLX(&ds->buf_idx), sidx = LOAD_RLX(&ss->buf_idx);
		uint32_t len = LOAD_RLX(&ss->len);
		if (likely(ok && buf_ok(bidx, e->nbufs) && buf_ok(sidx, e->snbufs) &&
			   len <= VALE_BUF_SIZE)) {
			pkt_copy(e->dbase + (uint64_t)bidx * VALE_BUF_SIZE,
				 e->sbase + (uint64_t)sidx * VALE_BUF_SIZE, len);
			ds->len = (uint16_t)len;
			/* the chain ends where phase 1 said it does, whatever the flags say now */
			ds->flags = f + 1 < nf ? VS_MOREFRAG : 0;
			plen += len;
		} else {
			ok = false;
		}
		s = vale_ring_next(s, e->tn);
		x = vale_ring_next(x, e->n);
	}
	if (likely(ok))
		return (int64_t)plen;
	for (uint32_t f = 0, x = j; f < nf; f++, x = vale_ring_next(x, e->n)) {
		e->rxr->slot[x].len = 0; /* publish the whole chain as empty slots */
		e->rxr->slot[x].flags = 0;
	}
	return -1;
}

/* Copy the leased packets, without the lock. Every index and length is read
 * once from shared memory and checked right before use: phase 1 checked the
 * source slots, but another process mapping the same region may change them
 * since. */
HOT void copy_leased(const struct copy_ends *ep, const struct vale_ft *ft, uint32_t ui, uint32_t bi,
		     const struct lease_rsv *r, struct copied *c)
{
	/* A private copy whose address is never taken: the byte stores of the copy
	 * could alias *ep, and the compiler would then reload every field per
	 * packet (callgrind: +4 instructions per packet, and a slower 64-byte copy). */
	const struct copy_ends e = *ep;
	const uint32_t n = e.n, nbufs = e.nbufs;
	uint32_t j = r->start, got = 0, bad = 0;
	uint64_t bytes = 0; /* locals, not *c: they stay in registers */
	for (uint32_t u = ui, b = bi, k = 0, i; k < r->take_pk; k++) {
		NEXT_PKT(i, u, b, ft);
		uint32_t s = ft[i].slot, nf = ft[i].nfrags;
		if (unlikely(nf != 1)) {
			int64_t l = copy_chain(ep, s, j, nf);
			if (l >= 0) {
				got++;
				bytes += (uint64_t)l;
			} else {
				bad++;
			}
			j = ring_add(j, nf, n); /* nf < n: the chain fit in the lease */
			continue;
		}
		const struct vale_slot *ss = &e.txr->slot[s];
		struct vale_slot *ds = &e.rxr->slot[j];
		uint32_t bidx = LOAD_RLX(&ds->buf_idx), sidx = LOAD_RLX(&ss->buf_idx);
		uint32_t len = LOAD_RLX(&ss->len);
		{ /* the next destination buffer: start owning its lines early */
			uint32_t pb = e.rxr->slot[ring_add(j, 2, n)].buf_idx;
			if (pb < nbufs)
				__builtin_prefetch(e.dbase + (uint64_t)pb * VALE_BUF_SIZE, 1);
		}
		if (likely(buf_ok(bidx, nbufs) & buf_ok(sidx, e.snbufs) & (len <= VALE_BUF_SIZE))) {
			pkt_copy(e.dbase + (uint64_t)bidx * VALE_BUF_SIZE,
				 e.sbase + (uint64_t)sidx * VALE_BUF_SIZE, len);
			ds->len = (uint16_t)len;
			ds->flags = 0;
			got++;
			bytes += len;
		} else { /* a bad buffer index or length: publish the slot empty */
			ds->len = 0;
			ds->flags = 0;
			bad++;
		}
		j = vale_ring_next(j, n);
	}
	c->got = got;
	c->bad = bad;
	c->bytes = bytes;
}

/* copy_leased() for a sender with a source table (vale_set_tx_source): the
 * bytes, lengths and chain ends come from the private table, never from the
 * shared TX slots; a copy of the exact length (the source is not a 2048-byte
 * switch buffer: reading past the end could leave its mapping). Out of line:
 * other senders never come here. */
static __attribute__((noinline)) void copy_leased_src(const struct copy_ends *e,
						      const struct vale_src_slot *st,
						      const struct vale_ft *ft, uint32_t ui,
						      uint32_t bi, const struct lease_rsv *r,
						      struct copied *c)
{
	const uint32_t n = e->n, nbufs = e->nbufs;
	uint32_t j = r->start, got = 0, bad = 0;
	uint64_t bytes = 0;
	for (uint32_t u = ui, b = bi, k = 0, i; k < r->take_pk; k++) {
		NEXT_PKT(i, u, b, ft);
		uint32_t s = ft[i].slot, nf = ft[i].nfrags;
		bool ok = true;
		uint64_t plen = 0;
		for (uint32_t f = 0, x = j; f < nf; f++) {
			struct vale_slot *ds = &e->rxr->slot[x];
			uint32_t bidx = LOAD_RLX(&ds->buf_idx);
			const uint8_t *sp = st[s].p;
			uint32_t len = st[s].len;
			if (likely(ok && buf_ok(bidx, nbufs) && sp && len <= VALE_BUF_SIZE)) {
				memcpy(e->dbase + (uint64_t)bidx * VALE_BUF_SIZE, sp, len);
				ds->len = (uint16_t)len;
				ds->flags = f + 1 < nf ? VS_MOREFRAG : 0;
				plen += len;
			} else {
				ok = false;
			}
			s = vale_ring_next(s, e->tn);
			x = vale_ring_next(x, n);
		}
		if (likely(ok)) {
			got++;
			bytes += plen;
		} else {
			for (uint32_t f = 0, x = j; f < nf; f++, x = vale_ring_next(x, n)) {
				e->rxr->slot[x].len = 0;
				e->rxr->slot[x].flags = 0;
			}
			bad++;
		}
		j = ring_add(j, nf, n);
	}
	c->got = got;
	c->bad = bad;
	c->bytes = bytes;
}

/* Mark our lease filled and publish, in lease order, what is ready. */
HOT void lease_complete(struct vale_kring *k, uint32_t n, uint32_t my)
{
	kring_lock(k, n);
	STORE_REL(&k->leases[my % VALE_NLEASES].done, 1);
	if (k->lease_first == my)
		lease_publish(k, n);
	vale_unlock(&k->lock);
}

/* A source packet's slots, each read once and checked (false: one is bad). */
static bool src_snapshot(const struct vale_map *m, const struct vale_ring *txr, uint32_t s,
			 uint32_t nf, struct vo_src *src)
{
	const uint8_t *sbase = m->base + m->buf_ofs;
	src->n = nf;
	src->total = 0;
	for (uint32_t f = 0; f < nf && f < VALE_MAX_FRAGS; f++) {
		uint32_t idx = LOAD_RLX(&txr->slot[s].buf_idx), len = LOAD_RLX(&txr->slot[s].len);
		if (!buf_ok(idx, m->nbufs) || len > VALE_BUF_SIZE)
			return false;
		src->p[f] = sbase + (uint64_t)idx * VALE_BUF_SIZE;
		src->len[f] = len;
		src->total += len;
		s = vale_ring_next(s, m->tx_slots);
	}
	return nf <= VALE_MAX_FRAGS;
}

/* src_snapshot() from a source table (vale_set_tx_source). */
static bool src_snapshot_tab(const struct vale_src_slot *st, uint32_t tn, uint32_t s, uint32_t nf,
			     struct vo_src *src)
{
	src->n = nf;
	src->total = 0;
	for (uint32_t f = 0; f < nf && f < VALE_MAX_FRAGS; f++) {
		const uint8_t *sp = st[s].p;
		uint32_t len = st[s].len;
		if (!sp || len > VALE_BUF_SIZE)
			return false;
		src->p[f] = sp;
		src->len[f] = len;
		src->total += len;
		s = vale_ring_next(s, tn);
	}
	return nf <= VALE_MAX_FRAGS;
}

/* Free slots of a destination ring, read without its lock (a hint). */
static inline uint32_t room_hint(struct vale_kring *k, uint32_t n)
{
	uint32_t hc = LOAD_ACQ(&k->hwcur), hl = LOAD_RLX(&k->hwlease);
	if (hc >= n || hl >= n)
		return n; /* damaged: let the locked path sort it out */
	uint32_t room = vale_ring_dist(hl, hc, n);
	return (room == 0 ? n : room) - 1;
}

/*
 * Back-pressure (vale_set_backpressure): a sender that has somewhere to keep
 * what it cannot forward yet (a kernel socket buffer behind a forwarder)
 * waits for the destination to make room instead of dropping. Dropping a
 * 64 KiB super-frame costs TCP 44 segments and a congestion-window cut; the
 * sender's socket buffer holds the backlog meanwhile (and counts what it
 * must drop). Bounded: at most bp_wait_us per delivery, and a destination
 * whose consumer does not move for VALE_BP_STALL_US is not waited for again
 * for VALE_BP_FORGET_NS (a stopped application must not slow the others).
 */
#define VALE_BP_STALL_US 50000u
#define VALE_BP_FORGET_NS 1000000000ull
static __attribute__((noinline)) void wait_room(vale_port *p, struct vale_kring *k,
						struct vale_map *dm, uint32_t dend, uint32_t d,
						uint32_t n, uint32_t nsl)
{
	uint32_t want = nsl < n ? nsl : n - 1;
	if (room_hint(k, n) >= want)
		return;
	uint64_t t0 = vale_now_ns();
	if (d == p->bp_stalled_idx && t0 < p->bp_stalled_until_ns)
		return;
	vale_wake_end(dm, dend, p->sw, d); /* make sure it drains */
	uint64_t end = t0 + (uint64_t)p->bp_wait_us * 1000u, moved = t0;
	uint32_t last = LOAD_RLX(&k->hwcur);
	for (uint32_t i = 0;; i++) {
		if (i < 16) {
			sched_yield();
		} else {
			struct timespec ts = {0, 20000};
			nanosleep(&ts, NULL);
		}
		if (room_hint(k, n) >= want)
			return;
		uint64_t now = vale_now_ns();
		uint32_t hc = LOAD_RLX(&k->hwcur);
		if (hc != last) {
			last = hc;
			moved = now;
		} else if (now - moved > VALE_BP_STALL_US * 1000ull) {
			p->bp_stalled_idx = d;
			p->bp_stalled_until_ns = now + VALE_BP_FORGET_NS;
			return;
		}
		if (now >= end)
			return;
	}
}

/* Back-pressure before deliver(): wait for room for nsl slots in d's ring. */
static __attribute__((noinline)) void wait_dest(vale_port *p, uint32_t src_ring, uint32_t d,
						uint32_t nsl)
{
	uint32_t dend;
	struct vale_map *dm = vale_map_get(p->sw, d, &dend);
	if (!dm)
		return;
	uint32_t r = src_ring % dm->nrx;
	wait_room(p, vale_kring(dm, dend, true, r), dm, dend, d, dm->rx_slots, nsl);
}

/* deliver() toward a port whose header length differs from the source's:
 * each packet is converted (offload.c) into as many slots as its plan says,
 * one lease per packet (a segmented packet is many frames). Out of line:
 * ports that agree never come here. */
static __attribute__((noinline)) void deliver_convert(vale_port *p, struct vale_map *src_m,
						      struct vale_ring *txr, uint32_t src_ring,
						      uint32_t d, uint32_t ui, uint32_t bi,
						      uint32_t npk, uint32_t nb_uni, uint32_t dhl)
{
	struct vale_sw *sw = p->sw;
	uint32_t dend;
	struct vale_map *dm = vale_map_get(sw, d, &dend);
	if (!dm) { /* vanished: unicast to it has nowhere to go */
		if (nb_uni)
			count_err(sw, p->idx, VD_NO_DEST, nb_uni);
		return;
	}
	uint32_t r = src_ring % dm->nrx;
	uint32_t n = dm->rx_slots;
	struct vale_kring *k = vale_kring(dm, dend, true, r);
	struct vale_ring *rxr = vale_ring(dm, dend, true, r);
	struct vale_counters *dc = &sw->ports[d].c, *sc = &sw->ports[p->idx].c;
	const uint32_t dmtu = vale_mtu_of(LOAD_RLX(&sw->ports[d].mtu));
	struct vo_src src;
	struct vo_plan pl;
	uint32_t got = 0, bad = 0, full = 0, badvnet = 0, toobig = 0;
	uint64_t bytes = 0;
	for (uint32_t u = ui, b = bi, x = 0, i; x < npk; x++) {
		NEXT_PKT(i, u, b, p->ft);
		if (!(p->src_cur ? src_snapshot_tab(p->src_cur, src_m->tx_slots, p->ft[i].slot,
						    p->ft[i].nfrags, &src)
				 : src_snapshot(src_m, txr, p->ft[i].slot, p->ft[i].nfrags, &src))) {
			bad++; /* changed since phase 1 */
			continue;
		}
		int ns = vale_off_plan(&src, p->shl, dhl, dmtu, &pl);
		if (ns < 0) {
			if (ns == -VD_TOO_BIG)
				toobig++;
			else
				badvnet++;
			continue;
		}
		struct lease_rsv rsv;
		if (unlikely(p->bp_wait_us))
			wait_room(p, k, dm, dend, d, n, (uint32_t)ns);
		uint32_t hc = LOAD_RLX(&k->hwcur), hl = LOAD_RLX(&k->hwlease);
		if ((uint32_t)ns >= n || (hc < n && hl < n && vale_ring_next(hl, n) == hc)) {
			full++;
			continue;
		}
		uint32_t lease;
		uint32_t space = lease_space(k, rxr, n, dc, &lease);
		if (space < (uint32_t)ns) {
			lease_refuse(k, rxr, n, dc);
			full++;
			continue;
		}
		lease_take(k, n, lease, (uint32_t)ns, &rsv);
		const struct vo_out o = {.slot = rxr->slot,
					 .dbase = dm->base + dm->buf_ofs,
					 .nbufs = dm->nbufs,
					 .n = n,
					 .j = rsv.start};
		uint32_t emptied = 0;
		got += vale_off_emit(&pl, &src, &o, &bytes, &emptied);
		bad += emptied;
		lease_complete(k, n, rsv.my);
	}
	if (got)
		vale_wake_end(dm, dend, sw, d);
	ADD_RLX(&dc->rx_pkts, got);
	ADD_RLX(&dc->rx_bytes, bytes);
	if (bad)
		ADD_RLX(&dc->drops[VD_BAD_SLOT], bad);
	if (full)
		ADD_RLX(&dc->drops[VD_RING_FULL], full);
	if (badvnet)
		ADD_RLX(&sc->drops[VD_BAD_VNET], badvnet);
	if (toobig)
		ADD_RLX(&sc->drops[VD_TOO_BIG], toobig);
}

/* Deliver npk packets (nsl slots) — list `ui` merged with broadcast list
 * `bi` — into port d: reserve, copy without the lock, publish, wake, count.
 * nb_uni of them were unicast to d. */
static void deliver(vale_port *p, struct vale_map *src_m, struct vale_ring *txr, uint32_t src_ring,
		    uint32_t d, uint32_t ui, uint32_t bi, uint32_t npk, uint32_t nsl, uint32_t nb_uni)
{
	struct vale_sw *sw = p->sw;
	uint32_t dend;
	struct vale_map *dm = vale_map_get(sw, d, &dend);
	if (!dm) { /* vanished: unicast to it has nowhere to go */
		if (nb_uni)
			count_err(sw, p->idx, VD_NO_DEST, nb_uni);
		return;
	}
	uint32_t r = src_ring % dm->nrx;
	uint32_t n = dm->rx_slots;
	struct vale_kring *k = vale_kring(dm, dend, true, r);
	struct vale_ring *rxr = vale_ring(dm, dend, true, r);
	struct vale_counters *dc = &sw->ports[d].c;

	/* A full ring is common under overload: see it without taking the lock,
	 * so a spinning sender does not steal the line from everyone else. */
	uint32_t hc = LOAD_RLX(&k->hwcur), hl = LOAD_RLX(&k->hwlease);
	struct lease_rsv rsv;
	if ((hc < n && hl < n && vale_ring_next(hl, n) == hc) ||
	    !lease_reserve(k, rxr, n, p->ft, ui, bi, npk, nsl, dc, &rsv)) {
		ADD_RLX(&dc->drops[VD_RING_FULL], npk);
		return;
	}
	if (unlikely(sw->test_lease_delay_us)) /* tests kill senders inside this window */
		usleep(sw->test_lease_delay_us);

	const struct copy_ends e = {
	    .txr = txr,
	    .rxr = rxr,
	    .sbase = src_m->base + src_m->buf_ofs,
	    .dbase = dm->base + dm->buf_ofs,
	    .snbufs = src_m->nbufs,
	    .nbufs = dm->nbufs,
	    .tn = src_m->tx_slots,
	    .n = n,
	};
	struct copied c = {0, 0, 0};
	if (unlikely(p->src_cur)) /* a source table: one private load per destination */
		copy_leased_src(&e, p->src_cur, p->ft, ui, bi, &rsv, &c);
	else
		copy_leased(&e, p->ft, ui, bi, &rsv, &c);
	lease_complete(k, n, rsv.my);
	vale_wake_end(dm, dend, sw, d);

	ADD_RLX(&dc->rx_pkts, c.got);
	ADD_RLX(&dc->rx_bytes, c.bytes);
	if (c.bad)
		ADD_RLX(&dc->drops[VD_BAD_SLOT], c.bad);
	if (npk > rsv.take_pk)
		ADD_RLX(&dc->drops[VD_RING_FULL], npk - rsv.take_pk);
}

/* deliver(), or deliver_convert() when d's header length is not ours (read
 * once per destination and batch: it may change at any time). */
HOT void deliver_to(vale_port *p, struct vale_ring *txr, uint32_t src_ring, uint32_t d, uint32_t ui,
		    uint32_t bi, uint32_t npk, uint32_t nsl, uint32_t nb_uni)
{
	const uint32_t dhl = vale_vnet_len(LOAD_RLX(&p->sw->ports[d].vnet_hdr_len));
	if (unlikely(p->bp_wait_us) && dhl == p->shl)
		wait_dest(p, src_ring, d, nsl);
	if (unlikely(dhl != p->shl))
		deliver_convert(p, &p->m, txr, src_ring, d, ui, bi, npk, nb_uni, dhl);
	else
		deliver(p, &p->m, txr, src_ring, d, ui, bi, npk, nsl, nb_uni);
}

/* ---------------- phase 1: look a batch up ---------------- */

/* A batch: its packets are p->ft[0..nft), queued per destination in
 * p->dst_head/tail (unicast; p->touched lists them) and in one broadcast list. */
struct batch {
	uint32_t nft, bad, lookdrop, badvnet;
	uint32_t nbcast, bslots, bhead, btail; /* the broadcast list */
	uint64_t tx_bytes;
};

/* A MOREFRAG chain from slot j: its slots (*nf), length (*len) and the slot
 * after it (*next). Returns 0 when whole and valid, -1 when it is still being
 * written (the application has not set the last slot yet), 1 when bad (the bad
 * slots are reset to index 0, length 0, as netmap does). */
HOT int chain_measure(const struct vale_map *m, struct vale_ring *txr, uint32_t j, uint32_t head,
		      uint32_t n, uint32_t *nf, uint32_t *len, uint32_t *next)
{
	bool ok = true, complete = false;
	uint32_t s = j, f = 0, l = 0;
	while (s != head) {
		struct vale_slot *fs = &txr->slot[s];
		f++;
		if (unlikely(!slot_ok(m, fs)))
			ok = false;
		else
			l += fs->len;
		s = vale_ring_next(s, n);
		if (!(fs->flags & VS_MOREFRAG)) {
			complete = true;
			break;
		}
		if (f == VALE_MAX_FRAGS) { /* too many fragments: drop the chain */
			ok = false;
			complete = true;
			break;
		}
	}
	*nf = f;
	*len = l;
	*next = s;
	if (!complete)
		return -1;
	if (likely(ok))
		return 0;
	for (uint32_t k = 0, x = j; k < f; k++, x = vale_ring_next(x, n)) {
		struct vale_slot *xs = &txr->slot[x];
		if (!slot_ok(m, xs)) {
			xs->buf_idx = 0;
			xs->len = 0;
		}
	}
	return 1;
}

/* chain_measure() over a source table: nothing shared is read or reset. */
static int chain_measure_src(const struct vale_src_slot *st, uint32_t j, uint32_t head, uint32_t n,
			     uint32_t *nf, uint32_t *len, uint32_t *next)
{
	bool ok = true, complete = false;
	uint32_t s = j, f = 0, l = 0;
	while (s != head) {
		const struct vale_src_slot *e = &st[s];
		f++;
		if (!e->p || e->len > VALE_BUF_SIZE)
			ok = false;
		else
			l += e->len;
		s = vale_ring_next(s, n);
		if (!(e->flags & VS_MOREFRAG)) {
			complete = true;
			break;
		}
		if (f == VALE_MAX_FRAGS) {
			ok = false;
			complete = true;
			break;
		}
	}
	*nf = f;
	*len = l;
	*next = s;
	return !complete ? -1 : ok ? 0 : 1;
}

/* Append packet `i` (nf slots) to the list of its destination. */
HOT void batch_queue(vale_port *p, struct batch *b, uint32_t i, uint32_t dst, uint32_t nf)
{
	uint32_t *dh = p->dst_head, *dt = p->dst_tail;
	if (dst == VALE_BROADCAST) {
		b->nbcast++;
		b->bslots += nf;
		if (b->btail == ~0u)
			b->bhead = i;
		else
			p->ft[b->btail].next = i;
		b->btail = i;
	} else if (dh[dst] == ~0u) {
		dh[dst] = dt[dst] = i;
		p->dst_npk[dst] = 1;
		p->dst_nsl[dst] = nf;
		p->touched[p->ntouched++] = dst;
	} else {
		p->ft[dt[dst]].next = i;
		dt[dst] = i;
		p->dst_npk[dst]++;
		p->dst_nsl[dst] += nf;
	}
}

/* A packet of a port with a virtio-net header (shl bytes): check the header
 * (the checks that need no parsing: offload.h) and point *buf / *flen at the
 * Ethernet frame for the lookup, which may start in the second slot when the
 * header fills the first. False: a bad header (or one split across slots). */
HOT bool vnet_lookup_view(const struct vale_map *m, const struct vale_ring *txr,
			 const struct vale_src_slot *st, uint32_t j, uint32_t nf, uint32_t shl,
			 uint32_t len, const uint8_t **buf, uint32_t *flen)
{
	uint32_t first_len = *flen;
	if (first_len < shl)
		return false;
	struct vale_vnet_hdr h;
	vale_vnet_read(*buf, shl, &h);
	if (!vale_vnet_hdr_ok(&h, len - shl))
		return false;
	if (first_len > shl || nf < 2) {
		*buf += shl;
		*flen = first_len - shl;
		return true;
	}
	if (st) { /* a source table: the second piece from it */
		const struct vale_src_slot *e2 = &st[vale_ring_next(j, m->tx_slots)];
		if (!e2->p || e2->len > VALE_BUF_SIZE)
			return false;
		*buf = e2->p;
		*flen = e2->len;
		return true;
	}
	const struct vale_slot *s2 = &txr->slot[vale_ring_next(j, m->tx_slots)];
	uint32_t idx = LOAD_RLX(&s2->buf_idx), l2 = LOAD_RLX(&s2->len);
	if (!buf_ok(idx, m->nbufs) || l2 > VALE_BUF_SIZE)
		return false;
	*buf = m->base + m->buf_ofs + (uint64_t)idx * VALE_BUF_SIZE;
	*flen = l2;
	return true;
}

/* Look up slots [hwcur, head) of txr, up to max_batch packets, into b.
 * Returns the slot after the last packet taken (hwcur: nothing complete).
 * shl: the port's header length (a constant where this is inlined). st: the
 * ring's source table (vale_set_tx_source), or a constant NULL: slots' bytes,
 * lengths and flags then come from it and nothing of the slots is read. */
HOT uint32_t batch_lookup(vale_port *p, struct vale_ring *txr, uint32_t hwcur, uint32_t head,
			  uint32_t now_s, bool learning, uint32_t max_batch, struct batch *b,
			  const uint32_t shl, const struct vale_src_slot *const st)
{
	struct vale_sw *sw = p->sw;
	const struct vale_map *m = &p->m;
	const uint32_t n = m->tx_slots, nbufs = m->nbufs;
	const uint8_t *bufs = m->base + m->buf_ofs;
	uint32_t j = hwcur;
	while (j != head && b->nft < max_batch) {
		struct vale_slot *sl = &txr->slot[j];
		uint32_t s, nf, len;
		/* the first slot read once: what is checked is what is used */
		/* (with a table, index 2 stands for "a pointer", 0 for none) */
		uint32_t fidx = st ? (st[j].p ? 2u : 0u) : LOAD_RLX(&sl->buf_idx),
			 first_len = st ? st[j].len : LOAD_RLX(&sl->len);
		uint16_t fflags = st ? st[j].flags : LOAD_RLX(&sl->flags);
		if (likely(!(fflags & VS_MOREFRAG))) { /* one slot: the common case */
			nf = 1;
			len = first_len;
			s = vale_ring_next(j, n);
			if (unlikely(!(buf_ok(fidx, nbufs) & (len <= VALE_BUF_SIZE)))) {
				b->bad++;
				if (!st) {
					sl->buf_idx = 0; /* as netmap: index 0, length 0 */
					sl->len = 0;
				}
				j = s;
				continue;
			}
		} else { /* a chain: slots up to the first without MOREFRAG */
			int r = st ? chain_measure_src(st, j, head, n, &nf, &len, &s)
				   : chain_measure(m, txr, j, head, n, &nf, &len, &s);
			if (r < 0)
				break; /* the application has not finished this packet */
			if (unlikely(r > 0)) {
				b->bad++;
				j = s;
				continue;
			}
			if (unlikely(!(buf_ok(fidx, nbufs) & (first_len <= VALE_BUF_SIZE)))) {
				b->bad++; /* a chain whose first slot changed under us */
				j = s;
				continue;
			}
		}
		const uint8_t *buf = st ? (const uint8_t *)st[j].p : bufs + (uint64_t)fidx * VALE_BUF_SIZE;
		uint8_t dring = 0;
		uint32_t dst, flen = first_len; /* what the lookup sees */
		b->tx_bytes += len;
		if (shl && !vnet_lookup_view(m, txr, st, j, nf, shl, len, &buf, &flen)) {
			b->badvnet++;
			j = s;
			continue;
		}
		if (unlikely(flen < 14))
			dst = VALE_DROP;
		else if (likely(learning))
			dst = vale_learning_lookup(sw, buf, p->idx, !(fflags & VS_NO_LEARN), now_s);
		else
			dst = sw->lookup(buf, flen, &dring, p->idx, sw->priv);
		if (unlikely(dst == VALE_DROP || dst == p->idx ||
			     (dst != VALE_BROADCAST && dst >= sw->max_ports))) {
			b->lookdrop++;
			j = s;
			continue;
		}
		struct vale_ft *f = &p->ft[b->nft];
		f->slot = j;
		f->len = len;
		f->nfrags = (uint16_t)nf;
		f->dst = dst;
		f->dst_ring = dring;
		f->next = ~0u;
		batch_queue(p, b, b->nft, dst, nf);
		b->nft++;
		j = s;
	}
	return j;
}

/* Phase 2: deliver b, one destination at a time. Broadcasts go to every other
 * switch port, merged with its unicasts; unicast lists empty the queues. */
HOT void batch_deliver(vale_port *p, struct vale_ring *txr, uint32_t ri, const struct batch *b)
{
	struct vale_sw *sw = p->sw;
	uint32_t *dh = p->dst_head, *dnp = p->dst_npk, *dns = p->dst_nsl;
	if (!b->nbcast) {
		for (uint32_t t = 0; t < p->ntouched; t++) {
			uint32_t d = p->touched[t];
			deliver_to(p, txr, ri, d, dh[d], ~0u, dnp[d], dns[d], dnp[d]);
			dh[d] = ~0u;
		}
		return;
	}
	uint32_t na = active_snapshot(sw, p->act), ndel = 0;
	for (uint32_t a = 0; a < na; a++) {
		uint32_t d = p->act[a];
		if (d == p->idx || d >= sw->max_ports)
			continue;
		uint32_t uh = dh[d], nu = uh == ~0u ? 0 : dnp[d], su = uh == ~0u ? 0 : dns[d];
		deliver_to(p, txr, ri, d, uh, b->bhead, nu + b->nbcast, su + b->bslots, nu);
		dh[d] = ~0u;
		ndel++;
	}
	/* unicast lists of ports not in the snapshot */
	for (uint32_t t = 0; t < p->ntouched; t++) {
		uint32_t d = p->touched[t];
		if (dh[d] == ~0u)
			continue;
		count_err(sw, p->idx, VD_NO_DEST, dnp[d]);
		dh[d] = ~0u;
	}
	if (ndel == 0)
		count_err(sw, p->idx, VD_NO_DEST, b->nbcast);
}

/* Forward slots [hwcur, head) of TX ring `ri`, a batch at a time: look it up
 * (phase 1), deliver it (phase 2), count it. Returns the slots consumed.
 * src: the port has a source table (vale_txsync keeps the two apart). */
static inline uint32_t flush_switch_t(vale_port *p, uint32_t ri, uint32_t hwcur, uint32_t head,
			    const bool src)
{
	struct vale_sw *sw = p->sw;
	struct vale_ring *txr = vale_ring(&p->m, p->end, false, ri);
	const uint32_t n = p->m.tx_slots;
	uint32_t consumed = 0;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	const uint32_t now_s = (uint32_t)ts.tv_sec;
	vale_lookup_refresh(sw);
	const bool learning = sw->lookup_kind == LK_LEARNING;
	/* our header length, once per flush: lookup and conversion agree on it */
	const uint32_t shl = vale_vnet_len(LOAD_RLX(&sw->ports[p->idx].vnet_hdr_len));
	p->shl = shl;
	/* a source table (vale_set_tx_source): private, read once per flush */
	const struct vale_src_slot *st = src ? p->srct + (uint64_t)ri * n : NULL;
	if (src) /* (deliver and deliver_convert read it; NULL outside this flush) */
		p->src_cur = st;
	/* the switch's batch size, read once per flush; from shared memory, so
	 * anything outside 1..VALE_MAX_BATCH (0 included) means the default */
	uint32_t max_batch = LOAD_RLX(&sw->ctl->batch);
	if (max_batch - 1u >= VALE_MAX_BATCH)
		max_batch = VALE_MAX_BATCH;
	while (hwcur != head) {
		struct batch b = {.bhead = ~0u, .btail = ~0u};
		p->ntouched = 0;
		/* the common case (no header, default batch) with constants, so the
		 * per-packet loop costs what it did before either setting (callgrind) */
		uint32_t j = src ? batch_lookup(p, txr, hwcur, head, now_s, learning, max_batch, &b,
						shl, st)
				 : likely(shl == 0 && max_batch == VALE_MAX_BATCH)
				     ? batch_lookup(p, txr, hwcur, head, now_s, learning, VALE_MAX_BATCH,
						    &b, 0, NULL)
				     : batch_lookup(p, txr, hwcur, head, now_s, learning, max_batch, &b,
						    shl, NULL);
		if (j == hwcur)
			break; /* only an unfinished packet is left */
		batch_deliver(p, txr, ri, &b);
		struct vale_counters *sc = &sw->ports[p->idx].c;
		ADD_RLX(&sc->tx_pkts, b.nft + b.lookdrop + b.badvnet);
		ADD_RLX(&sc->tx_bytes, b.tx_bytes);
		if (b.bad)
			ADD_RLX(&sc->drops[VD_BAD_SLOT], b.bad);
		if (b.lookdrop)
			ADD_RLX(&sc->drops[VD_LOOKUP], b.lookdrop);
		if (unlikely(b.badvnet))
			ADD_RLX(&sc->drops[VD_BAD_VNET], b.badvnet);
		consumed += vale_ring_dist(hwcur, j, n);
		hwcur = j;
	}
	if (src)
		p->src_cur = NULL;
	return consumed;
}

/* The other end of our pipe (it may open after us), or ~0. */
static inline uint32_t pipe_peer(vale_port *p)
{
	uint32_t peer = LOAD_RLX(&p->sw->ports[p->idx].pipe_peer);
	return peer < p->sw->max_ports ? peer : ~0u;
}

/* Pipes: move slots [hwcur, head) of our TX ring into the peer end's RX ring
 * by swapping buffers (both ends share one region). Back-pressure, no drops:
 * what does not fit stays in our TX ring. */
static uint32_t flush_pipe(vale_port *p, uint32_t ri, uint32_t hwcur, uint32_t head)
{
	struct vale_map *m = &p->m;
	uint32_t pend = 1 - p->end;
	struct vale_ring *txr = vale_ring(m, p->end, false, ri);
	uint32_t r = ri % m->nrx;
	struct vale_kring *k = vale_kring(m, pend, true, r);
	struct vale_ring *rxr = vale_ring(m, pend, true, r);
	uint32_t n = m->tx_slots, rn = m->rx_slots;
	struct vale_sw *sw = p->sw;
	kring_lock(k, rn);
	uint32_t tail = k->hwtail, rcur = LOAD_ACQ(&k->hwcur);
	if (tail >= rn || rcur >= rn) {
		lease_repair(k, rn);
		tail = LOAD_RLX(&k->hwtail);
		if (tail >= rn) /* scribbled again meanwhile */
			tail = 0;
		rcur = rcur >= rn ? tail : rcur;
	}
	const uint32_t tail0 = tail; /* checked: where this flush starts filling */
	uint32_t space = vale_ring_dist(tail, rcur, rn);
	space = space == 0 ? rn - 1 : space - 1;
	uint32_t j = hwcur, moved = 0, bad = 0;
	uint64_t bytes = 0, pkts = 0;
	while (j != head && moved < space) {
		/* whole packets only */
		uint32_t s = j, nf = 0;
		bool complete = false, ok = true;
		while (s != head) {
			struct vale_slot *sl = &txr->slot[s];
			nf++;
			if (!slot_ok(m, sl))
				ok = false;
			s = vale_ring_next(s, n);
			if (!(sl->flags & VS_MOREFRAG) || nf == VALE_MAX_FRAGS) {
				complete = true;
				break;
			}
		}
		if (!complete || (ok && moved + nf > space))
			break;
		if (!ok) {
			bad++;
			for (uint32_t f = 0, x = j; f < nf; f++, x = vale_ring_next(x, n)) {
				if (!slot_ok(m, &txr->slot[x])) {
					txr->slot[x].buf_idx = 0;
					txr->slot[x].len = 0;
				}
			}
			j = s;
			continue;
		}
		for (uint32_t f = 0; f < nf; f++) {
			struct vale_slot *ts = &txr->slot[j], *rs = &rxr->slot[tail];
			/* each index read once and checked again: the check above was of
			 * shared memory that may have changed since */
			uint32_t tb = LOAD_RLX(&ts->buf_idx), rb = LOAD_RLX(&rs->buf_idx);
			uint32_t len = LOAD_RLX(&ts->len);
			if (tb < 2 || tb >= m->nbufs || len > VALE_BUF_SIZE) {
				tb = 0; /* publish an empty slot; the sender's slot is reset below */
				len = 0;
			}
			if (rb < 2 || rb >= m->nbufs)
				rb = tb; /* receiver broke its slot: give it ours, keep a copy */
			rs->buf_idx = tb;
			rs->len = (uint16_t)len;
			rs->flags = (uint16_t)(f + 1 < nf ? VS_MOREFRAG : 0);
			ts->buf_idx = rb;
			ts->flags |= VS_BUF_CHANGED;
			bytes += len;
			j = vale_ring_next(j, n);
			tail = vale_ring_next(tail, rn);
			moved++;
		}
		pkts++;
	}
	if (unlikely(p->mon_tx.n) && moved) /* TX monitors: the peer's slots just filled, */
		vale_mon_copy(p, false, rxr, rn, ri, tail0, tail); /* before it can take them */
	STORE_REL(&k->hwtail, tail);
	k->hwlease = tail;
	vale_unlock(&k->lock);
	uint32_t peer = pipe_peer(p);
	if (moved)
		vale_wake_end(m, pend, sw, peer);
	struct vale_counters *sc = &sw->ports[p->idx].c;
	ADD_RLX(&sc->tx_pkts, pkts);
	ADD_RLX(&sc->tx_bytes, bytes);
	if (bad)
		ADD_RLX(&sc->drops[VD_BAD_SLOT], bad);
	if (peer != ~0u) {
		struct vale_counters *pc = &sw->ports[peer].c;
		ADD_RLX(&pc->rx_pkts, pkts);
		ADD_RLX(&pc->rx_bytes, bytes);
	}
	return vale_ring_dist(hwcur, j, n);
}

/* src: the port has a source table (see vale_txsync). */
static inline int txsync_one(vale_port *p, uint32_t ri, const bool src)
{
	struct vale_map *m = &p->m;
	struct vale_ring *ring = vale_ring(m, p->end, false, ri);
	struct vale_kring *k = vale_kring(m, p->end, false, ri);
	uint32_t n = m->tx_slots;
	uint32_t hwcur = k->hwcur, hwtail = k->hwtail;
	if (unlikely(hwcur >= n || hwtail >= n)) { /* our own kring was scribbled on */
		hwcur = 0;
		hwtail = n - 1;
	}
	uint32_t head = LOAD_ACQ(&ring->head), cur = ring->cur;
	/* the application owns [hwcur, hwtail]; head and cur must lie inside */
	if (unlikely(!in_window(head, hwcur, hwtail, n) || !in_window(cur, head, hwtail, n))) {
		ring->head = ring->cur = hwcur;
		ring->tail = hwtail;
		count_err(p->sw, p->idx, -1, 1);
		vale_err(EINVAL, "txsync: bad head %u / cur %u (valid %u..%u of %u); ring reset", head,
			 cur, hwcur, hwtail, n);
		return -EINVAL;
	}
	uint32_t done = 0;
	if (head != hwcur) {
		if (unlikely(p->flags & VPF_MONITOR)) { /* its TX rings are not used (as netmap) */
			ring->head = ring->cur = hwcur;
			return vale_err(EOPNOTSUPP, "a monitor port cannot send; its TX ring was reset");
		}
		if (p->flags & VPF_PIPE) { /* (its TX monitors are served inside: buffers move) */
			done = flush_pipe(p, ri, hwcur, head);
		} else {
			done = flush_switch_t(p, ri, hwcur, head, src);
			if (unlikely(p->mon_tx.n) && done) /* TX monitors: copies of what was sent */
				vale_mon_copy(p, false, ring, n, ri, hwcur, ring_add(hwcur, done, n));
		}
		hwcur = ring_add(hwcur, done, n);
	}
	hwtail = hwcur == 0 ? n - 1 : hwcur - 1;
	k->hwcur = hwcur;
	k->hwtail = hwtail;
	STORE_REL(&ring->tail, hwtail);
	return (int)done;
}

HOT int rxsync_one(vale_port *p, uint32_t ri)
{
	struct vale_map *m = &p->m;
	struct vale_ring *ring = vale_ring(m, p->end, true, ri);
	struct vale_kring *k = vale_kring(m, p->end, true, ri);
	uint32_t n = m->rx_slots;
	uint32_t hwcur = LOAD_RLX(&k->hwcur), rtail = k->rtail;
	if (unlikely(hwcur >= n || rtail >= n)) {
		hwcur = rtail = LOAD_ACQ(&k->hwtail) % n;
	}
	uint32_t head = LOAD_ACQ(&ring->head), cur = ring->cur;
	if (unlikely(!in_window(head, hwcur, rtail, n) || !in_window(cur, head, rtail, n))) {
		ring->head = ring->cur = hwcur;
		ring->tail = rtail;
		count_err(p->sw, p->idx, -1, 1);
		vale_err(EINVAL, "rxsync: bad head %u / cur %u (valid %u..%u of %u); ring reset", head,
			 cur, hwcur, rtail, n);
		return -EINVAL;
	}
	if (head != hwcur) {
		/* Released slots go back to the producers. Their buffer indices are
		 * not checked here: every producer checks a slot's index before it
		 * writes (one place, and no cache line bounced per slot). */
		STORE_REL(&k->hwcur, head);
		if (p->flags & VPF_PIPE) { /* the other end may wait for room */
			struct vale_wake *pw = vale_wakep(m, 1 - p->end);
			FENCE();
			if (LOAD_RLX(&pw->tx_waiting))
				vale_wake_end(m, 1 - p->end, p->sw, pipe_peer(p));
		}
	}
	uint32_t tail = LOAD_ACQ(&k->hwtail);
	if (tail >= n)
		tail = rtail;
	if (unlikely(p->mon_rx.n) && tail != rtail) /* RX monitors: copies of what arrived */
		vale_mon_copy(p, true, ring, n, ri, rtail, tail);
	if (k->rtail != tail) /* a store only when it changes: producers read this line */
		k->rtail = tail;
	STORE_REL(&ring->tail, tail);
	return (int)vale_ring_dist(head, tail, n);
}

/* Our own region's file was truncated and its mapping replaced (guard.c). */
static int region_gone(void)
{
	return vale_err(EIO, "the port's memory region was truncated by another process; "
			     "what it held is lost: close the port (and remove the switch if "
			     "others are damaged too)");
}

/* vale_txsync; src: the port has a source table (below). */
static inline int txsync_t(vale_port *p, int ring, const bool src)
{
	int total = 0, err = 0;
	uint32_t a = p->first_ring, b = p->last_ring;
	if (ring >= 0) {
		if ((uint32_t)ring >= p->m.ntx)
			return vale_err(EINVAL, "no TX ring %d", ring);
		a = (uint32_t)ring;
		b = a + 1;
	}
	if (b > p->m.ntx)
		b = p->m.ntx;
	if (unlikely(p->m.bus))
		return region_gone();
	if (unlikely(LOAD_RLX(&p->sw->graves)))
		vale_graves_sweep(p->sw, false);
	vale_mon_check(p, false); /* the one load a port without monitors pays */
	pthread_rwlock_rdlock(&p->sw->sync_rw);
	for (uint32_t i = a; i < b; i++) {
		int r = txsync_one(p, i, src);
		if (r < 0)
			err = r;
		else
			total += r;
	}
	pthread_rwlock_unlock(&p->sw->sync_rw);
	/* the switch's lookup module was refused (or failed) here: what was sent
	 * was dropped (VD_LOOKUP); say why */
	if (!err && total > 0 && unlikely(LOAD_ACQ(&p->sw->lookup_errno)))
		err = vale_err(LOAD_ACQ(&p->sw->lookup_errno), "%s; %d frame(s) dropped",
			       p->sw->lookup_err, total);
	return err ? err : total;
}

/* A sender with a source table (vale_set_tx_source) enters the sync here,
 * before anything else. (txsync_t and the two below are left to the
 * compiler: forcing both variants inline made the common loop keep one value
 * fewer in registers, +1 instruction per packet; as it is, a port without a
 * table pays +0.1 per packet, callgrind, docs/performance.md.) */
static __attribute__((noinline)) int txsync_src(vale_port *p, int ring)
{
	return txsync_t(p, ring, true);
}

VALE_API int vale_txsync(vale_port *p, int ring)
{
	if (unlikely(p->srct))
		return txsync_src(p, ring);
	return txsync_t(p, ring, false);
}

/* rxsync of a port with RX monitors: the copies write into the monitors'
 * regions, so hold the sync lock that keeps mappings from being unmapped
 * under us (as txsync does for its destinations). */
static __attribute__((noinline)) int rxsync_monitored(vale_port *p, uint32_t a, uint32_t b)
{
	int total = 0, err = 0;
	if (LOAD_RLX(&p->sw->graves))
		vale_graves_sweep(p->sw, false);
	pthread_rwlock_rdlock(&p->sw->sync_rw);
	for (uint32_t i = a; i < b; i++) {
		int r = rxsync_one(p, i);
		if (r < 0)
			err = r;
		else
			total += r;
	}
	pthread_rwlock_unlock(&p->sw->sync_rw);
	return err ? err : total;
}

VALE_API int vale_rxsync(vale_port *p, int ring)
{
	int total = 0, err = 0;
	uint32_t a = p->first_ring, b = p->last_ring;
	if (ring >= 0) {
		if ((uint32_t)ring >= p->m.nrx)
			return vale_err(EINVAL, "no RX ring %d", ring);
		a = (uint32_t)ring;
		b = a + 1;
	}
	if (b > p->m.nrx)
		b = p->m.nrx;
	if (unlikely(p->m.bus))
		return region_gone();
	vale_mon_check(p, true); /* the one load a port without monitors pays */
	if (unlikely(p->mon_rx.n)) /* copies go into other regions: see rxsync_monitored */
		return rxsync_monitored(p, a, b);
	for (uint32_t i = a; i < b; i++) {
		int r = rxsync_one(p, i);
		if (r < 0)
			err = r;
		else
			total += r;
	}
	return err ? err : total;
}
