/*
 * hostile — a client that attacks the shared memory of its switch, for
 * tests/hostile_test.ts and tests/sanitize_test.ts.
 *
 *   hostile CASE SEED MS SW:PORT
 *
 * Opens its own port SW:PORT, prints "seed=SEED case=CASE" on stderr and
 * "ready" on stdout, then scribbles for MS milliseconds (and at most a
 * bounded number of operations), prints one JSON summary line and holds the
 * port until it is killed (at most 60 s). Everything random comes from SEED.
 *
 * CASE:
 *   own-ring     its own rings: head/cur/tail and slots (buf_idx/len/flags),
 *                interleaved with valid frames and txsync/rxsync
 *   own-region   its own region header (geometry, wake words) and its own
 *                krings, RX and TX (mutex bytes, leases, hwlease, hwtail/hwcur, rtail)
 *   other-kring  maps the other ports' region files and scribbles their ring
 *                views and krings
 *   ctl          maps ctl and scribbles header, lock, port table, active
 *                list/seq, MAC table, lookup name
 *   truncate     ftruncate region files and ctl (smaller, zero, grown back)
 *   unlink       unlink region, ctl and doorbell files
 *   monitor      opens monitors (/rt) of the other ports and attacks them: the
 *                monitors' own rings and krings (where the monitored ports'
 *                syncs copy into), their lock held forever, their entries'
 *                mon_of / mon_flags and the watched ports' mon_seq in the port
 *                table, while it reads, releases garbage, closes and reopens
 *
 * The other processes must survive all of it: at worst they may lose their
 * traffic or see the switch declared damaged.
 */
#include "common.h"
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

static uint64_t rs;
static char g_dir[1024];
static uint32_t g_own_idx;
static int32_t g_pids[16];
static uint32_t g_npids;

/* pids of the other processes on the switch (from the ctl's port table), so
 * forged mutex owners are live processes too, not only garbage */
static void learn_pids(void)
{
	char p[1100];
	snprintf(p, sizeof(p), "%s/ctl", g_dir);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) || st.st_size < 4096 + 16 * (off_t)sizeof(struct vale_port_ent)) {
		close(fd);
		return;
	}
	uint8_t *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return;
	const struct vale_ctl_hdr *h = (const void *)m;
	if (h->ports_ofs + 16 * sizeof(struct vale_port_ent) <= (uint64_t)st.st_size) {
		const struct vale_port_ent *e = (const void *)(m + h->ports_ofs);
		for (int i = 0; i < 16 && g_npids < 16; i++)
			if (e[i].state == VP_ACTIVE && e[i].owner_pid > 0)
				g_pids[g_npids++] = e[i].owner_pid;
	}
	munmap(m, (size_t)st.st_size);
}

static int32_t some_pid(void)
{
	switch (rndn(&rs, 5)) {
	case 0: return getpid();
	case 1: return 1;
	case 2: return 0x3fffffff; /* no such process */
	case 3: return (int32_t)rnd64(&rs);
	default: return g_npids ? g_pids[rndn(&rs, g_npids)] : getpid();
	}
}

/* vale's shared lock (c-src/core/lock.c): an owner word (pid | waiters bit 31) and
 * an acquisition count. Any of it may be garbage: impossible pids, live pids
 * (a holder that never lets go), the waiters bit, a count that keeps moving. */
static void scribble_lock(struct vale_lock *l)
{
	switch (rndn(&rs, 7)) {
	case 0: l->owner = rnd_edge32(&rs, 2); break;
	case 1: l->owner = (uint32_t)some_pid(); break;
	case 2: l->owner = (uint32_t)some_pid() | 0x80000000u; break;
	case 3: l->owner = (uint32_t)getpid(); break; /* "held" by us, never released */
	case 4: l->seq = (uint32_t)rnd64(&rs); break;
	case 5: l->owner = (uint32_t)rnd64(&rs); break;
	default: memset(l, (int)rndn(&rs, 256), sizeof(*l)); break;
	}
}

static void scribble_kring(struct vale_kring *k, uint32_t nslots)
{
	switch (rndn(&rs, 12)) {
	case 0: case 1: scribble_lock(&k->lock); break;
	case 2: k->hwlease = rnd_edge32(&rs, nslots); break;
	case 3: k->lease_first = rnd_edge32(&rs, k->lease_next); break;
	case 4: k->lease_next = rnd_edge32(&rs, k->lease_first); break;
	case 5: k->hwtail = rnd_edge32(&rs, nslots); break;
	case 6: k->hwcur = rnd_edge32(&rs, nslots); break;
	case 7: k->rtail = rnd_edge32(&rs, nslots); break;
	case 8: k->lease_ops = rnd_edge64(&rs, k->first_since); break;
	case 9: k->first_since = rnd_edge64(&rs, k->lease_ops); break;
	default: {
		struct vale_lease *l = &k->leases[rndn(&rs, VALE_NLEASES)];
		switch (rndn(&rs, 4)) {
		case 0: l->start = rnd_edge32(&rs, nslots); break;
		case 1: l->end = rnd_edge32(&rs, nslots); break;
		case 2: l->pid = some_pid(); break;
		default: l->done = rnd_edge32(&rs, 1); break;
		}
	}
	}
}

static void scribble_ring(struct vale_ring *r, uint32_t nslots, uint32_t nbufs)
{
	switch (rndn(&rs, 6)) {
	case 0: r->head = rnd_edge32(&rs, nslots); break;
	case 1: r->cur = rnd_edge32(&rs, nslots); break;
	case 2: r->tail = rnd_edge32(&rs, nslots); break;
	default: {
		struct vale_slot *s = &r->slot[rndn(&rs, nslots)];
		switch (rndn(&rs, 3)) {
		case 0: s->buf_idx = rnd_edge32(&rs, nbufs); break;
		case 1: s->len = (uint16_t)rnd_edge32(&rs, VALE_BUF_SIZE); break;
		default: s->flags = (uint16_t)rnd64(&rs); break;
		}
	}
	}
}

/* A region file mapped by us, with the geometry read before we damage it. */
struct reg {
	uint8_t *base;
	uint64_t size;
	struct vale_map m; /* only the geometry fields are used */
};

static bool reg_from_header(struct reg *r)
{
	const struct vale_region_hdr *h = (const void *)r->base;
	if (r->size < REGION_HDR_SIZE || h->magic != VALE_MAGIC || h->nends < 1 || h->nends > 2 ||
	    h->ntx < 1 || h->ntx > VALE_MAX_RINGS || h->nrx < 1 || h->nrx > VALE_MAX_RINGS ||
	    h->tx_slots > VALE_MAX_SLOTS || h->rx_slots > VALE_MAX_SLOTS || h->size != r->size)
		return false;
	memset(&r->m, 0, sizeof(r->m));
	r->m.base = r->base;
	r->m.nends = h->nends;
	r->m.ntx = h->ntx;
	r->m.nrx = h->nrx;
	r->m.tx_slots = h->tx_slots;
	r->m.rx_slots = h->rx_slots;
	r->m.nbufs = h->nbufs;
	r->m.kring_ofs = h->kring_ofs;
	r->m.buf_ofs = h->buf_ofs;
	for (uint32_t e = 0; e < 2; e++)
		for (uint32_t i = 0; i < 2 * VALE_MAX_RINGS; i++)
			r->m.ring_ofs[e][i] = h->ring_ofs[e * 2 * VALE_MAX_RINGS + i];
	return true;
}

static void scribble_region_hdr(struct reg *r)
{
	struct vale_region_hdr *h = (void *)r->base;
	switch (rndn(&rs, 14)) {
	case 0: h->magic = rnd_edge32(&rs, VALE_MAGIC); break;
	case 1: h->version = rnd_edge32(&rs, 1); break;
	case 2: h->size = rnd_edge64(&rs, r->size); break;
	case 3: h->ntx = rnd_edge32(&rs, VALE_MAX_RINGS); break;
	case 4: h->nrx = rnd_edge32(&rs, VALE_MAX_RINGS); break;
	case 5: h->tx_slots = rnd_edge32(&rs, VALE_MAX_SLOTS); break;
	case 6: h->rx_slots = rnd_edge32(&rs, VALE_MAX_SLOTS); break;
	case 7: h->nbufs = rnd_edge32(&rs, r->m.nbufs); break;
	case 8: h->nends = rnd_edge32(&rs, 2); break;
	case 9: h->kring_ofs = rnd_edge64(&rs, r->size); break;
	case 10: h->ring_ofs[rndn(&rs, 4 * VALE_MAX_RINGS)] = rnd_edge64(&rs, r->size); break;
	case 11: h->buf_ofs = rnd_edge64(&rs, r->size); break;
	default: { /* wake words: senders read them on every delivery */
		struct vale_wake *w = &h->wake[rndn(&rs, 2)];
		switch (rndn(&rs, 3)) {
		case 0: w->waiting = rnd_edge32(&rs, 3); break;
		case 1: w->wake_seq = (uint32_t)rnd64(&rs); break;
		default: w->tx_waiting = rnd_edge32(&rs, 1); break;
		}
	}
	}
}

static void scribble_region_krings(struct reg *r, bool rings_too)
{
	struct vale_map *m = &r->m;
	uint32_t e = rndn(&rs, m->nends);
	bool rx = rndn(&rs, 3) != 0; /* RX krings are where senders meet */
	uint32_t i = rndn(&rs, rx ? m->nrx : m->ntx), ns = rx ? m->rx_slots : m->tx_slots;
	if (rings_too && rndn(&rs, 3) == 0)
		scribble_ring(vale_ring(m, e, rx, i), ns, m->nbufs);
	else
		scribble_kring(vale_kring(m, e, rx, i), ns);
}

/* ---- the cases ---- */

static void pace(void)
{
	/* mostly back-to-back, sometimes a pause so the victims run in between */
	if (rndn(&rs, 64) == 0)
		usleep(200 + rndn(&rs, 2000));
}

struct out {
	uint64_t ops, tx_err, rx_err, tx_ok, files;
};

static void case_own_ring(vale_port *p, uint64_t deadline, struct out *o)
{
	struct vale_port_info pi;
	vale_info(p, &pi);
	struct vale_ring *tx = (void *)(uintptr_t)(pi.region_base + pi.tx_ring_ofs[0]);
	struct vale_ring *rx = (void *)(uintptr_t)(pi.region_base + pi.rx_ring_ofs[0]);
	uint8_t *bufs = (uint8_t *)(uintptr_t)(pi.region_base + pi.buf_ofs);
	uint32_t seq = 0;
	while (now_ms() < deadline && o->ops < 2000000) {
		o->ops++;
		switch (rndn(&rs, 8)) {
		case 0: { /* a few valid broadcast frames, so the garbage goes somewhere */
			uint32_t n = pi.tx_slots, h = tx->head, t = tx->tail;
			for (int k = 0; k < 4 && h < n && t < n && h != t; k++) {
				struct vale_slot *s = &tx->slot[h];
				if (s->buf_idx < 2 || s->buf_idx >= pi.nbufs)
					break;
				tf_build(bufs + (uint64_t)s->buf_idx * VALE_BUF_SIZE, 64, TF_HOSTILE_ID, ~0u, seq++);
				s->len = 64;
				s->flags = 0;
				h = h + 1 == n ? 0 : h + 1;
			}
			if (h < n)
				tx->head = tx->cur = h;
			break;
		}
		case 1: case 2: case 3: scribble_ring(tx, pi.tx_slots, pi.nbufs); break;
		case 4: scribble_ring(rx, pi.rx_slots, pi.nbufs); break;
		case 5: { /* advance head over whatever the slots hold now */
			uint32_t k = rndn(&rs, 64);
			tx->head = tx->cur = (tx->head + k) % pi.tx_slots;
			break;
		}
		default: break;
		}
		int r = vale_txsync(p, 0);
		r < 0 ? o->tx_err++ : o->tx_ok++;
		if (vale_rxsync(p, 0) < 0)
			o->rx_err++;
		if (rndn(&rs, 4) == 0) { /* consume some of what arrived, or release garbage */
			rx->head = rx->cur = rndn(&rs, 2) ? rx->tail : rnd_edge32(&rs, pi.rx_slots);
		}
		pace();
	}
}

static bool map_file(const char *path, struct reg *r)
{
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return false;
	struct stat st;
	if (fstat(fd, &st) || st.st_size <= 0) {
		close(fd);
		return false;
	}
	r->size = (uint64_t)st.st_size;
	r->base = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return r->base != MAP_FAILED;
}

static void case_own_region(vale_port *p, uint64_t deadline, struct out *o)
{
	struct vale_port_info pi;
	vale_info(p, &pi);
	struct reg r = {.base = (uint8_t *)(uintptr_t)pi.region_base, .size = pi.region_size};
	if (!reg_from_header(&r)) {
		fprintf(stderr, "hostile: own region header unreadable\n");
		return;
	}
	while (now_ms() < deadline && o->ops < 2000000) {
		o->ops++;
		if (rndn(&rs, 4) == 0)
			scribble_region_hdr(&r);
		else
			scribble_region_krings(&r, false);
		pace();
	}
}

/* p<idx>.<gen> files of the switch (not the doorbells) */
static uint32_t list_regions(char names[][256], uint32_t max, bool others_only)
{
	DIR *d = opendir(g_dir);
	uint32_t n = 0;
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d)) && n < max;) {
		unsigned idx, gen;
		char tail;
		if (sscanf(e->d_name, "p%u.%u%c", &idx, &gen, &tail) != 2)
			continue;
		if (others_only && idx == g_own_idx)
			continue;
		snprintf(names[n++], 256, "%s", e->d_name);
	}
	closedir(d);
	return n;
}

static void case_other_kring(uint64_t deadline, struct out *o)
{
	char names[16][256];
	struct reg regs[16];
	uint32_t n = 0;
	while (now_ms() < deadline) { /* the honest ports exist before we start, normally */
		uint32_t k = list_regions(names, 16, true);
		for (uint32_t i = 0; i < k; i++) {
			char path[1400];
			if (snprintf(path, sizeof(path), "%s/%s", g_dir, names[i]) >= (int)sizeof(path))
				continue;
			if (map_file(path, &regs[n]) && reg_from_header(&regs[n]))
				n++;
		}
		if (n)
			break;
		usleep(10000);
	}
	o->files = n;
	while (n && now_ms() < deadline && o->ops < 2000000) {
		o->ops++;
		scribble_region_krings(&regs[rndn(&rs, n)], true);
		pace();
	}
}

static void case_ctl(uint64_t deadline, struct out *o)
{
	char path[1400];
	snprintf(path, sizeof(path), "%s/ctl", g_dir);
	struct reg r;
	if (!map_file(path, &r) || r.size < 4096) {
		fprintf(stderr, "hostile: cannot map ctl\n");
		return;
	}
	struct vale_ctl_hdr *h = (void *)r.base;
	/* offsets as they were before we touch them */
	uint64_t po = h->ports_ofs, ao = h->active_ofs, mo = h->mac_ofs;
	uint32_t macs = h->mac_entries, maxp = h->max_ports;
	bool tables = po < r.size && ao < r.size && mo + (uint64_t)macs * 16 <= r.size &&
		      po + 16 * sizeof(struct vale_port_ent) <= r.size && ao + 64 <= r.size;
	static const char *lookups[] = {"learning", "portmap", "ethertype", "/nonexistent/x.so",
					"", "learningXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"};
	o->files = 1;
	while (now_ms() < deadline && o->ops < 2000000) {
		o->ops++;
		uint32_t what = rndn(&rs, tables ? 20 : 8);
		switch (what) {
		case 0: h->magic = rnd_edge32(&rs, VALE_MAGIC); break;
		case 1: h->version = rnd_edge32(&rs, 1); break;
		case 2: switch (rndn(&rs, 5)) {
			case 0: h->size = rnd_edge64(&rs, r.size); break;
			case 1: h->max_ports = rnd_edge32(&rs, maxp); break;
			case 2: h->mac_entries = rnd_edge32(&rs, macs); break;
			case 3: h->age_s = rnd_edge32(&rs, 300); break;
			default: h->dead = rnd_edge32(&rs, 1); break;
			}
			break;
		case 3: scribble_lock(&h->lock); break;
		case 4: { /* lookup module name */
			const char *s = lookups[rndn(&rs, 6)];
			if (rndn(&rs, 3) == 0)
				h->lookup[rndn(&rs, sizeof(h->lookup))] = (char)rnd64(&rs);
			else
				memcpy(h->lookup, s, strlen(s) < sizeof(h->lookup) ? strlen(s) + 1 : sizeof(h->lookup));
			h->lookup_gen++;
			break;
		}
		case 5: h->nactive = rnd_edge32(&rs, 3); break;
		case 6: h->active_seq = rnd_edge32(&rs, h->active_seq); break;
		case 7: switch (rndn(&rs, 4)) {
			case 0: h->ports_ofs = rnd_edge64(&rs, po); break;
			case 1: h->active_ofs = rnd_edge64(&rs, ao); break;
			case 2: h->mac_ofs = rnd_edge64(&rs, mo); break;
			default: h->name[rndn(&rs, sizeof(h->name))] = (char)rnd64(&rs); break;
			}
			break;
		case 8: case 9: case 10: case 11: case 12: case 13: { /* port table */
			struct vale_port_ent *e = (void *)(r.base + po);
			e += rndn(&rs, 8);
			switch (rndn(&rs, 12)) {
			case 0: e->state = rnd_edge32(&rs, 3); break;
			case 1: e->gen = rnd_edge32(&rs, e->gen); break;
			case 2: e->region_idx = rnd_edge32(&rs, maxp); break;
			case 3: e->region_gen = rnd_edge32(&rs, e->region_gen); break;
			case 4: e->end = rnd_edge32(&rs, 2); break;
			case 5: e->pipe_peer = rnd_edge32(&rs, maxp); break;
			case 6: e->flags = rnd_edge32(&rs, 0x1f); break;
			case 7: e->owner_pid = some_pid(); break;
			case 8: e->name[rndn(&rs, VALE_NAME_MAX)] = (char)rnd64(&rs); break;
			case 9: e->region_size = rnd_edge64(&rs, e->region_size); break;
			case 10: e->nbufs = rnd_edge32(&rs, e->nbufs); break;
			default: e->last_probe_ns = rnd64(&rs); break;
			}
			break;
		}
		case 14: case 15: ((uint32_t *)(r.base + ao))[rndn(&rs, 16)] = rnd_edge32(&rs, maxp); break;
		default: { /* MAC table: keys pointing anywhere */
			struct vale_mac_ent *m = (void *)(r.base + mo);
			m += rndn(&rs, macs);
			m->key = rndn(&rs, 2) ? rnd64(&rs) : (m->key & ~0xffffull) | rnd_edge32(&rs, maxp);
			m->seen_s = rnd_edge32(&rs, (uint32_t)time(NULL));
		}
		}
		pace();
	}
}

/* Monitors of the other ports (up to 4), attacked from the inside. */
static void case_monitor(const char *sw, uint64_t deadline, struct out *o)
{
	char path[1400];
	snprintf(path, sizeof(path), "%s/ctl", g_dir);
	struct reg c;
	if (!map_file(path, &c) || c.size < 4096) {
		fprintf(stderr, "hostile: cannot map ctl\n");
		return;
	}
	const struct vale_ctl_hdr *h = (const void *)c.base;
	uint64_t po = h->ports_ofs;
	uint32_t maxp = h->max_ports;
	if (po + (uint64_t)maxp * sizeof(struct vale_port_ent) > c.size || maxp > 4096) {
		fprintf(stderr, "hostile: ctl port table out of reach\n");
		return;
	}
	struct vale_port_ent *ents = (void *)(c.base + po);
	char names[4][VALE_NAME_MAX];
	uint32_t watched[4], nn = 0;
	for (uint32_t i = 0; i < maxp && nn < 4; i++) {
		if (ents[i].state != VP_ACTIVE || i == g_own_idx || (ents[i].flags & VPF_MONITOR))
			continue;
		memcpy(names[nn], ents[i].name, VALE_NAME_MAX);
		names[nn][VALE_NAME_MAX - 1] = 0;
		watched[nn++] = i;
	}
	vale_port *mons[4] = {0};
	struct reg regs[4];
	uint32_t which[4]; /* names[which[k]] is what mons[k] watches */
	struct vale_open_req req = {.flags = VO_MONITOR_TX | VO_MONITOR_RX, .ring_id = -1};
	uint32_t nm = 0;
	for (uint32_t i = 0; i < nn; i++) {
		struct vale_port_info pi;
		if (vale_open(NULL, sw, names[i], &req, &mons[nm]) < 0)
			continue;
		vale_info(mons[nm], &pi);
		regs[nm] = (struct reg){.base = (uint8_t *)(uintptr_t)pi.region_base,
					.size = pi.region_size};
		if (reg_from_header(&regs[nm]))
			which[nm++] = i;
		else
			vale_close(mons[nm]);
	}
	o->files = nm;
	while (nm && now_ms() < deadline && o->ops < 2000000) {
		o->ops++;
		uint32_t k = rndn(&rs, nm);
		struct vale_port_info pi;
		vale_info(mons[k], &pi);
		switch (rndn(&rs, 10)) {
		case 0: case 1: case 2: scribble_region_krings(&regs[k], true); break;
		case 3: { /* release garbage, or everything */
			struct vale_ring *rx = (void *)(uintptr_t)(pi.region_base + pi.rx_ring_ofs[0]);
			rx->head = rx->cur = rndn(&rs, 2) ? rx->tail : rnd_edge32(&rs, pi.rx_slots);
			if (vale_rxsync(mons[k], -1) < 0)
				o->rx_err++;
			break;
		}
		case 4: { /* the monitor's RX ring lock, held "by us" for good */
			struct vale_kring *kr = vale_kring(&regs[k].m, 0, true, 0);
			kr->lock.owner = (uint32_t)getpid();
			break;
		}
		case 5: { /* the port table: who watches whom */
			struct vale_port_ent *me = &ents[pi.port_idx < maxp ? pi.port_idx : 0];
			switch (rndn(&rs, 4)) {
			case 0: me->mon_of = rnd_edge32(&rs, maxp); break;
			case 1: me->mon_of_gen = rnd_edge32(&rs, me->mon_of_gen); break;
			case 2: me->mon_flags = rnd_edge32(&rs, 0x700); break;
			default: ents[watched[rndn(&rs, nn)]].mon_seq = (uint32_t)rnd64(&rs); break;
			}
			break;
		}
		case 6: { /* a monitor goes and comes back */
			vale_close(mons[k]);
			mons[k] = NULL;
			if (vale_open(NULL, sw, names[which[k]], &req, &mons[k]) < 0) {
				mons[k] = mons[--nm];
				regs[k] = regs[nm];
				which[k] = which[nm];
				break;
			}
			vale_info(mons[k], &pi);
			regs[k] = (struct reg){.base = (uint8_t *)(uintptr_t)pi.region_base,
					       .size = pi.region_size};
			if (!reg_from_header(&regs[k])) {
				vale_close(mons[k]);
				mons[k] = mons[--nm];
				regs[k] = regs[nm];
				which[k] = which[nm];
			}
			break;
		}
		default:
			if (vale_txsync(mons[k], -1) < 0) /* a monitor cannot send */
				o->tx_err++;
			else
				o->tx_ok++;
			if (vale_rxsync(mons[k], -1) < 0)
				o->rx_err++;
			break;
		}
		pace();
	}
}

static void case_files(bool truncate_, uint64_t deadline, struct out *o)
{
	char names[16][256];
	while (now_ms() < deadline && o->ops < 200) {
		o->ops++;
		uint32_t n = list_regions(names, 15, false);
		char path[1400];
		uint32_t pick = rndn(&rs, n + 2);
		if (pick >= n) /* the ctl, or a doorbell */
			snprintf(path, sizeof(path), "%s/%s", g_dir,
				 pick == n || truncate_ ? "ctl" : "p0.bell");
		else
			snprintf(path, sizeof(path), "%s/%s", g_dir, names[pick]);
		if (!truncate_ && pick == n + 1)
			snprintf(path, sizeof(path), "%s/p%u.bell", g_dir, rndn(&rs, 4));
		if (truncate_) {
			int fd = open(path, O_RDWR);
			struct stat st;
			if (fd >= 0 && !fstat(fd, &st)) {
				off_t sz = st.st_size, to;
				switch (rndn(&rs, 5)) {
				case 0: to = 0; break;
				case 1: to = 4096; break;
				case 2: to = sz / 2; break;
				case 3: to = sz > 1 ? sz - 1 : 0; break;
				default: to = (off_t)rndn(&rs, (uint32_t)(sz > 1 ? sz : 1)); break;
				}
				if (!ftruncate(fd, to))
					o->files++;
				if (rndn(&rs, 3) == 0 && !ftruncate(fd, sz)) /* back, zero-filled */
					o->files++;
			}
			if (fd >= 0)
				close(fd);
		} else if (!unlink(path)) {
			o->files++;
		}
		usleep(20000 + rndn(&rs, 40000));
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 5) {
		fprintf(stderr, "usage: hostile CASE SEED MS SW:PORT\n");
		return 64;
	}
	const char *cs = argv[1];
	uint64_t seed = strtoull(argv[2], NULL, 0), ms = strtoull(argv[3], NULL, 0);
	rs = seed;
	char sw[64], port[64];
	if (split_name(argv[4], sw, sizeof(sw), port, sizeof(port)))
		return 64;
	const char *run = getenv("VALE_RUN_DIR");
	snprintf(g_dir, sizeof(g_dir), "%s/%s", run && *run ? run : "/dev/shm/vale", sw);
	fprintf(stderr, "hostile: seed=%llu case=%s\n", (unsigned long long)seed, cs);
	alarm(60); /* whatever happens, do not outlive the test */
	vale_port *p = NULL;
	if (vale_open(NULL, sw, port, NULL, &p) < 0) {
		fprintf(stderr, "hostile: open %s: %s\n", argv[4], vale_last_error());
		return 3;
	}
	struct vale_port_info pi;
	vale_info(p, &pi);
	g_own_idx = pi.port_idx;
	learn_pids();
	printf("ready\n");
	struct out o = {0};
	uint64_t deadline = now_ms() + ms;
	if (!strcmp(cs, "own-ring"))
		case_own_ring(p, deadline, &o);
	else if (!strcmp(cs, "own-region"))
		case_own_region(p, deadline, &o);
	else if (!strcmp(cs, "other-kring"))
		case_other_kring(deadline, &o);
	else if (!strcmp(cs, "ctl"))
		case_ctl(deadline, &o);
	else if (!strcmp(cs, "truncate"))
		case_files(true, deadline, &o);
	else if (!strcmp(cs, "unlink"))
		case_files(false, deadline, &o);
	else if (!strcmp(cs, "monitor"))
		case_monitor(sw, deadline, &o);
	else {
		fprintf(stderr, "hostile: unknown case %s\n", cs);
		return 64;
	}
	printf("{\"case\":\"%s\",\"seed\":%llu,\"ops\":%llu,\"tx_err\":%llu,\"rx_err\":%llu,"
	       "\"tx_ok\":%llu,\"files\":%llu}\n",
	       cs, (unsigned long long)seed, (unsigned long long)o.ops, (unsigned long long)o.tx_err,
	       (unsigned long long)o.rx_err, (unsigned long long)o.tx_ok, (unsigned long long)o.files);
	/* hold the port (and our damage) until the test kills us */
	if (getenv("HOSTILE_EXIT"))
		return 0;
	for (int i = 0; i < 600; i++)
		usleep(100000);
	return 0;
}
