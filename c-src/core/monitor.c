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
 */
#include "internal.h"
#include "lease.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#define MON_BITS (VO_MONITOR_TX | VO_MONITOR_RX | VO_MONITOR_ZCOPY)

/* The directions a monitor copies: /t TX, /r RX, /rt, /z (alone) both. */
static uint32_t mon_dirs(uint32_t of)
{
	uint32_t d = of & (VO_MONITOR_TX | VO_MONITOR_RX);
	return d ? d : VO_MONITOR_TX | VO_MONITOR_RX;
}

static uint32_t clamp_u32(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* ---------------- opening and closing ---------------- */

/* Open a new monitor of port `target` of sw into p; caller holds the ctl lock. */
int vale_mon_open_locked(struct vale_sw *sw, const char *target, const struct vale_open_req *req,
			 vale_port *p)
{
	uint32_t of = req->flags;
	if (of & (VO_CREATE_PERSISTENT | VO_EXCLUSIVE))
		return vale_err(EINVAL, "a monitor of %s:%s cannot be persistent or exclusive (/x)",
				sw->name, target);
	int t = vale_find_port(sw, target);
	if (t < 0 || LOAD_ACQ(&sw->ports[t].state) != VP_ACTIVE)
		return vale_err(ENOENT,
				"no port %s:%s to monitor (a monitor watches a port that is open "
				"or persistent)",
				sw->name, target);
	struct vale_port_ent *te = &sw->ports[t];
	if (te->flags & VPF_MONITOR)
		return vale_err(EINVAL, "%s:%s is a monitor: a monitor of a monitor is refused",
				sw->name, target);
	if (te->flags & VPF_PIPE)
		return vale_err(EOPNOTSUPP,
				"%s:%s is a pipe end: pipes swap buffers with their peer and are not "
				"monitored; monitor the switch port that feeds the pipe",
				sw->name, target);
	uint32_t nmon = 0;
	for (uint32_t i = 0; i < sw->max_ports; i++) {
		struct vale_port_ent *e = &sw->ports[i];
		if (e->state == VP_ACTIVE && (e->flags & VPF_MONITOR) && e->mon_of == (uint32_t)t &&
		    e->mon_of_gen == te->gen)
			nmon++;
	}
	if (nmon >= VALE_MAX_MONITORS)
		return vale_err(ENOSPC, "%s:%s already has %u monitors (the most a port may have)",
				sw->name, target, (unsigned)VALE_MAX_MONITORS);

	/* the entry's name: the monitored port and the suffix the user wrote */
	uint32_t dirs = mon_dirs(of);
	const char *suffix = (of & VO_MONITOR_ZCOPY)
				 ? (dirs == VO_MONITOR_TX ? "zt" : dirs == VO_MONITOR_RX ? "zr" : "z")
				 : (dirs == VO_MONITOR_TX ? "t" : dirs == VO_MONITOR_RX ? "r" : "rt");
	char name[VALE_NAME_MAX];
	int keep = (int)(VALE_NAME_MAX - 2 - strlen(suffix));
	snprintf(name, sizeof(name), "%.*s/%s", keep, target, suffix);

	/* as many RX rings as the port has rings, each as long as its longest
	 * ring (the shared entry's values are clamped: they are not trusted) */
	uint32_t tn = clamp_u32(te->ntx > te->nrx ? te->ntx : te->nrx, 1, VALE_MAX_RINGS);
	uint32_t ts = clamp_u32(te->tx_slots > te->rx_slots ? te->tx_slots : te->rx_slots,
				VALE_MIN_SLOTS, VALE_MAX_SLOTS);
	struct vale_geom g = {.nends = 1,
			      .ntx = 1,
			      .nrx = req->nrx ? req->nrx : tn,
			      .tx_slots = VALE_MIN_SLOTS,
			      .rx_slots = req->rx_slots ? req->rx_slots : ts};
	if (vale_geom_compute(&g))
		return vale_err(EINVAL, "bad ring configuration for a monitor of %s:%s: rings 1..%u, "
					"slots %u..%u",
				sw->name, target, VALE_MAX_RINGS, VALE_MIN_SLOTS, VALE_MAX_SLOTS);
	uint32_t idx;
	int r = vale_port_alloc_locked(sw, name, &idx);
	if (r)
		return r;
	struct vale_port_ent *e = &sw->ports[idx];
	char path[PATH_MAX + 32];
	vale_region_path(sw, idx, e->gen, path, sizeof(path));
	r = vale_region_create(sw, path, &g, &p->m, e->gen, &p->region_fd);
	if (r)
		return vale_err(-r, "cannot create a monitor of %s:%s: %s", sw->name, target,
				strerror(-r));
	r = vale_ofd_lock(p->region_fd, 0, false, false);
	if (r) {
		unlinkat(sw->dir_fd, path, 0);
		return vale_err(-r, "cannot lock a monitor of %s:%s: %s", sw->name, target,
				strerror(-r));
	}
	e->region_idx = idx;
	e->region_gen = e->gen;
	e->end = 0;
	e->region_size = g.size;
	e->ntx = p->m.ntx;
	e->nrx = p->m.nrx;
	e->tx_slots = p->m.tx_slots;
	e->rx_slots = p->m.rx_slots;
	e->nbufs = p->m.nbufs;
	e->flags = VPF_MONITOR;
	e->mon_of = (uint32_t)t;
	e->mon_of_gen = te->gen;
	e->mon_flags = of & MON_BITS;
	e->owner_pid = getpid();
	e->nopen = 1;
	snprintf(e->info, sizeof(e->info), "monitor of %s", target);
	vale_bell_path(sw, idx, path, sizeof(path));
	vale_sw_mkfifo(sw, path); /* failure only costs pollability */
	p->idx = idx;
	p->gen = e->gen;
	p->end = 0;
	p->flags = e->flags;
	e->last_probe_ns = vale_now_ns();
	STORE_REL(&e->state, VP_ACTIVE);
	/* then tell the monitored port: its next sync rebuilds its list */
	__atomic_add_fetch(&te->mon_seq, 1, __ATOMIC_RELEASE);
	return 0;
}

/* Monitor entry e is going away: the port it watches rebuilds its list at
 * its next sync (a monitor of a port since gone bumps an unused word). */
void vale_mon_detach_locked(struct vale_sw *sw, struct vale_port_ent *e)
{
	uint32_t t = e->mon_of;
	if (t < sw->max_ports)
		__atomic_add_fetch(&sw->ports[t].mon_seq, 1, __ATOMIC_RELEASE);
}

/* Rebuild p's private list of monitors from the port table. */
void vale_mon_refresh(vale_port *p, uint32_t seq)
{
	struct vale_sw *sw = p->sw;
	uint32_t n = 0, ntx = 0, nrx = 0;
	p->mon_seen = seq;
	if (!(p->flags & (VPF_MONITOR | VPF_PIPE))) { /* neither is monitored */
		for (uint32_t i = 0; i < sw->max_ports && n < VALE_MAX_MONITORS; i++) {
			struct vale_port_ent *e = &sw->ports[i];
			if (LOAD_ACQ(&e->state) != VP_ACTIVE || !(LOAD_RLX(&e->flags) & VPF_MONITOR) ||
			    i == p->idx)
				continue;
			if (LOAD_RLX(&e->mon_of) != p->idx || LOAD_RLX(&e->mon_of_gen) != p->gen)
				continue;
			uint32_t d = mon_dirs(LOAD_RLX(&e->mon_flags));
			p->mons[n].idx = i;
			p->mons[n].gen = LOAD_RLX(&e->gen);
			p->mons[n].flags = d;
			n++;
			ntx += (d & VO_MONITOR_TX) != 0;
			nrx += (d & VO_MONITOR_RX) != 0;
		}
	}
	p->nmon = n;
	p->nmon_tx = ntx;
	p->nmon_rx = nrx;
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

/* The source ring being copied: slots [from, to) of one of p's rings. */
struct mon_src {
	const struct vale_ring *ring;
	const uint8_t *bufs;
	uint32_t n, nbufs, from, to;
};

/* The packet at slot j: its slots (*nf), bytes (*len), the slot after it;
 * false when it is empty or has a bad slot (a monitor skips it, as the port's
 * reader skips empty slots). Each field is read once. */
static bool mon_packet(const struct mon_src *s, uint32_t j, uint32_t *nf, uint32_t *len,
		       uint32_t *next)
{
	bool ok = true;
	uint32_t f = 0, l = 0;
	while (j != s->to) {
		const struct vale_slot *sl = &s->ring->slot[j];
		uint32_t idx = LOAD_RLX(&sl->buf_idx), sl_len = LOAD_RLX(&sl->len);
		uint16_t flags = LOAD_RLX(&sl->flags);
		f++;
		if (idx - 2u >= s->nbufs - 2u || sl_len > VALE_BUF_SIZE)
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
			const struct vale_slot *ss = &src->ring->slot[s];
			struct vale_slot *ds = &rxr->slot[ring_add(x, f, n)];
			uint32_t sidx = LOAD_RLX(&ss->buf_idx), slen = LOAD_RLX(&ss->len);
			uint32_t didx = LOAD_RLX(&ds->buf_idx);
			if (ok && sidx - 2u < src->nbufs - 2u && slen <= VALE_BUF_SIZE &&
			    didx - 2u < dm->nbufs - 2u) {
				memcpy((uint8_t *)dbase + (uint64_t)didx * VALE_BUF_SIZE,
				       src->bufs + (uint64_t)sidx * VALE_BUF_SIZE, slen);
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

/* Slots [from, to) of p's ring ri (TX: just sent; RX: just received) to
 * every monitor that wants that direction. */
void vale_mon_copy(vale_port *p, bool rx, uint32_t ri, uint32_t from, uint32_t to)
{
	const struct vale_map *m = &p->m;
	struct mon_src src = {.ring = vale_ring(m, p->end, rx, ri),
			      .bufs = m->base + m->buf_ofs,
			      .n = rx ? m->rx_slots : m->tx_slots,
			      .nbufs = m->nbufs,
			      .from = from,
			      .to = to};
	uint32_t npk = 0, nsl = 0;
	for (uint32_t j = from, nf, len, nx; j != to; j = nx) {
		if (mon_packet(&src, j, &nf, &len, &nx)) {
			npk++;
			nsl += nf;
		}
	}
	if (npk == 0)
		return;
	uint32_t want = rx ? VO_MONITOR_RX : VO_MONITOR_TX;
	for (uint32_t i = 0; i < p->nmon && i < VALE_MAX_MONITORS; i++)
		if (p->mons[i].flags & want)
			mon_deliver(p, &p->mons[i], &src, ri, npk, nsl);
}
