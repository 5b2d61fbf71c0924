/*
 * Ports: opening and closing them (vale_open, vale_close, vale_info), the
 * port table, liveness of owners, and reclaiming what dead processes leave
 * behind (vale_reap_locked).
 *
 * Liveness never trusts pids alone: every process that has a port open holds
 * an open-file-description lock on byte `end` of the port's region file
 * (shared, or exclusive for /x). The kernel drops it when the process dies,
 * so "is anyone using this port" is one F_OFD_GETLK away and immune to pid
 * reuse.
 */
#include "internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------- liveness ---------------- */

int vale_ofd_lock(int fd, uint32_t end, bool exclusive, bool test_only)
{
	struct flock fl = {.l_type = exclusive ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET,
			   .l_start = end, .l_len = 1};
	if (test_only) {
		fl.l_type = F_WRLCK;
		if (fcntl(fd, F_OFD_GETLK, &fl))
			return -errno;
		return fl.l_type != F_UNLCK; /* 1: somebody holds it */
	}
	if (fcntl(fd, F_OFD_SETLK, &fl))
		return -errno;
	return 0;
}

/* 1 if a live process has port idx open, 0 if not, <0 on error. */
int vale_port_in_use(struct vale_sw *sw, uint32_t idx)
{
	struct vale_port_ent *e = &sw->ports[idx];
	char path[PATH_MAX + 32];
	vale_region_path(sw, e->region_idx, e->region_gen, path, sizeof(path));
	int fd = openat(sw->dir_fd, path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	int r = vale_ofd_lock(fd, e->end, true, true);
	close(fd);
	e->last_probe_ns = vale_now_ns();
	return r;
}

/* ---------------- port table ---------------- */

int vale_find_port(struct vale_sw *sw, const char *name)
{
	for (uint32_t i = 0; i < sw->max_ports; i++) {
		struct vale_port_ent *e = &sw->ports[i];
		if (e->state != VP_FREE && strncmp(e->name, name, VALE_NAME_MAX) == 0)
			return (int)i;
	}
	return -1;
}

static void reclaim_dead_leases_all(struct vale_sw *sw);
static void monitor_detach_locked(struct vale_sw *sw, struct vale_port_ent *e);

/* Free entry idx: forget its MACs, drop it from the active list, remove its
 * files (a pipe's region only when the other end is gone too). */
void vale_port_remove_locked(struct vale_sw *sw, uint32_t idx)
{
	struct vale_port_ent *e = &sw->ports[idx];
	STORE_REL(&e->state, VP_DYING);
	if (e->flags & VPF_MONITOR) /* the monitored port stops copying to it */
		monitor_detach_locked(sw, e);
	uint32_t n = 0, *tmp = malloc(sw->max_ports * sizeof(uint32_t));
	if (tmp) {
		uint32_t na = LOAD_RLX(&sw->ctl->nactive);
		for (uint32_t i = 0; i < na && i < sw->max_ports; i++)
			if (sw->active[i] != idx)
				tmp[n++] = sw->active[i];
		vale_active_publish(sw, tmp, n);
		free(tmp);
	}
	vale_mac_forget_port(sw, idx);
	vale_lookup_refresh(sw);
	if (sw->dtor)
		sw->dtor(idx, sw->priv);
	char p[PATH_MAX + 32];
	vale_bell_path(sw, idx, p, sizeof(p));
	unlinkat(sw->dir_fd, p, 0);
	bool shared = false;
	if (e->flags & VPF_PIPE) {
		uint32_t peer = e->pipe_peer;
		if (peer < sw->max_ports && sw->ports[peer].state == VP_ACTIVE &&
		    sw->ports[peer].region_idx == e->region_idx &&
		    sw->ports[peer].region_gen == e->region_gen) {
			shared = true;
			sw->ports[peer].pipe_peer = ~0u;
		}
	}
	if (!shared) {
		vale_region_path(sw, e->region_idx, e->region_gen, p, sizeof(p));
		unlinkat(sw->dir_fd, p, 0);
	}
	e->owner_pid = 0;
	e->fwd_pid = 0;
	e->flags = 0;
	e->name[0] = 0;
	STORE_REL(&e->state, VP_FREE);
}

/* Reclaim ports whose processes are gone. Probes each port at most every
 * 200 ms unless forced, so opening many ports stays cheap. */
void vale_reap_locked(struct vale_sw *sw, bool force)
{
	uint64_t now = vale_now_ns();
	bool removed = false;
	for (uint32_t i = 0; i < sw->max_ports; i++) {
		struct vale_port_ent *e = &sw->ports[i];
		if (e->state == VP_DYING) { /* a remover died half-way */
			vale_port_remove_locked(sw, i);
			continue;
		}
		if (e->state != VP_ACTIVE)
			continue;
		if (!force && now - e->last_probe_ns < 200000000ull)
			continue;
		int r = vale_port_in_use(sw, i);
		if (r != 0)
			continue;
		if (e->flags & VPF_PERSISTENT) {
			e->owner_pid = 0;
			e->nopen = 0;
			continue;
		}
		vale_port_remove_locked(sw, i);
		removed = true;
	}
	if (removed || force)
		reclaim_dead_leases_all(sw);
}

static void reclaim_dead_leases_all(struct vale_sw *sw)
{
	for (uint32_t i = 0; i < sw->max_ports; i++) {
		struct vale_port_ent *e = &sw->ports[i];
		if (e->state != VP_ACTIVE || e->end != 0)
			continue; /* each region once, from its end 0 */
		uint32_t end;
		struct vale_map *m = vale_map_get(sw, i, &end);
		if (!m)
			continue;
		for (uint32_t en = 0; en < m->nends; en++)
			for (uint32_t r = 0; r < m->nrx; r++)
				vale_reclaim_leases(vale_kring(m, en, true, r), vale_ring(m, en, true, r),
						    m->rx_slots, false, &e->c);
	}
}

/* ---------------- virtio-net header and MTU ---------------- */

/* Check a header length (-1: keep) and MTU (-1: keep, 0: default); 0 or -EINVAL. */
int vale_vnet_check(int32_t hdr_len, int32_t mtu)
{
	if (hdr_len != -1 && hdr_len != 0 && hdr_len != 10 && hdr_len != 12)
		return vale_err(EINVAL, "virtio-net header length %d: 0, 10 or 12", hdr_len);
	if (mtu != -1 && mtu != 0 && (mtu < VALE_MIN_MTU || mtu > VALE_MAX_MTU))
		return vale_err(EINVAL, "MTU %d out of range %d..%d", mtu, VALE_MIN_MTU,
				VALE_MAX_MTU);
	return 0;
}

/* Store checked values into a port entry (senders read them at their next txsync). */
void vale_vnet_apply(struct vale_port_ent *e, int32_t hdr_len, int32_t mtu)
{
	if (hdr_len >= 0)
		STORE_REL(&e->vnet_hdr_len, (uint32_t)hdr_len);
	if (mtu >= 0)
		STORE_REL(&e->mtu, mtu ? (uint32_t)mtu : VALE_DEF_MTU);
}

VALE_API int vale_set_vnet(vale_port *p, int32_t hdr_len, int32_t mtu)
{
	int r = vale_vnet_check(hdr_len, mtu);
	if (r)
		return r;
	r = vale_ctl_lock(p->sw);
	if (r)
		return r;
	struct vale_port_ent *e = &p->sw->ports[p->idx];
	if (e->state == VP_ACTIVE && e->gen == p->gen)
		vale_vnet_apply(e, hdr_len, mtu);
	else
		r = vale_err(ENXIO, "port %s was removed", p->sw->name);
	vale_ctl_unlock(p->sw);
	return r;
}

VALE_API int vale_set_backpressure(vale_port *p, uint32_t max_wait_us)
{
	p->bp_wait_us = max_wait_us > 1000000u ? 1000000u : max_wait_us;
	p->bp_stalled_idx = ~0u;
	return 0;
}

VALE_API int vale_set_tx_source(vale_port *p, struct vale_src_slot *tab)
{
	if (tab && (p->flags & (VPF_PIPE | VPF_MONITOR)))
		return vale_err(EOPNOTSUPP, "a source table needs a switch port (a pipe end moves "
					    "buffers, a monitor cannot send)");
	p->srct = tab;
	return 0;
}

/* ---------------- open / close ---------------- */

static int port_alloc_locked(struct vale_sw *sw, const char *name, uint32_t *idx_out)
{
	for (uint32_t i = 0; i < sw->max_ports; i++) {
		if (sw->ports[i].state == VP_FREE) {
			struct vale_port_ent *e = &sw->ports[i];
			uint32_t gen = e->gen + 1;
			if (gen == 0)
				gen = 1;
			memset(e, 0, sizeof(*e));
			e->gen = gen;
			snprintf(e->name, sizeof(e->name), "%s", name);
			e->pipe_peer = ~0u;
			e->created_ns = vale_now_ns();
			*idx_out = i;
			return 0;
		}
	}
	return vale_err(ENOSPC, "switch %s is full (%u ports; raise VALE_MAX_PORTS when creating it)",
			sw->name, sw->max_ports);
}

static uint32_t clamp_def(uint32_t v, uint32_t def) { return v ? v : def; }

static void port_free_scratch(vale_port *p)
{
	free(p->dst_head);
	free(p->dst_tail);
	free(p->touched);
	free(p->act);
	free(p->dst_npk);
	free(p->dst_nsl);
}

static uint32_t clamp_u32(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* ---------------- monitors (their copies: monitor.c) ---------------- */

/* Open a new monitor of port `target` of sw into p; caller holds the ctl lock. */
static int monitor_open_locked(struct vale_sw *sw, const char *target,
			       const struct vale_open_req *req, vale_port *p)
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
	uint32_t dirs = vale_mon_dirs(of);
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
	uint32_t idx = 0;
	int r = port_alloc_locked(sw, name, &idx);
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
	e->mon_flags = of & (VO_MONITOR_TX | VO_MONITOR_RX | VO_MONITOR_ZCOPY);
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
static void monitor_detach_locked(struct vale_sw *sw, struct vale_port_ent *e)
{
	uint32_t t = e->mon_of;
	if (t < sw->max_ports)
		__atomic_add_fetch(&sw->ports[t].mon_seq, 1, __ATOMIC_RELEASE);
}

/* Create or join port `name` of switch sw; caller holds the ctl lock. */
static int port_open_locked(struct vale_sw *sw, const char *name, const struct vale_open_req *req,
			    vale_port *p)
{
	uint32_t of = req->flags;
	if (of & (VO_MONITOR_TX | VO_MONITOR_RX | VO_MONITOR_ZCOPY))
		return monitor_open_locked(sw, name, req, p); /* a new monitor entry */
	bool exclusive = of & VO_EXCLUSIVE;
	int idx = vale_find_port(sw, name);
	char path[PATH_MAX + 32];
	int r;
	if (idx >= 0) {
		struct vale_port_ent *e = &sw->ports[idx];
		if (e->state != VP_ACTIVE)
			return vale_err(EBUSY, "port %s:%s is being removed", sw->name, name);
		if (of & VO_CREATE_PERSISTENT)
			return vale_err(EEXIST, "%s:%s exists", sw->name, name);
		vale_region_path(sw, e->region_idx, e->region_gen, path, sizeof(path));
		r = vale_region_map(sw, path, e->region_gen, &p->m, &p->region_fd);
		if (r == -EACCES || r == -ELOOP)
			return r; /* refused: the message says why */
		if (r)
			return vale_err(-r, "cannot map port %s:%s: %s", sw->name, name, strerror(-r));
		if (e->end >= p->m.nends) {
			return vale_err(EPROTO, "port %s:%s: damaged entry", sw->name, name);
		}
		r = vale_ofd_lock(p->region_fd, e->end, exclusive, false);
		if (r)
			return vale_err(EBUSY, "%s:%s: %s", sw->name, name,
					exclusive ? "port is in use, cannot open it exclusively (/x)"
						  : "port is open exclusively by another process");
		p->idx = (uint32_t)idx;
		p->gen = e->gen;
		p->end = e->end;
		p->flags = e->flags;
		e->owner_pid = getpid();
		e->nopen++;
		vale_vnet_apply(e, (of & VO_VNET_HDR) ? (int32_t)req->vnet_hdr_len : -1,
				req->mtu ? (int32_t)req->mtu : -1);
		return 0;
	}
	if (of & VO_NO_CREATE)
		return vale_err(ENOENT, "no port %s:%s", sw->name, name);

	/* pipes: the second end joins the first end's region */
	bool pipe = of & (VO_PIPE_MASTER | VO_PIPE_SLAVE);
	int peer = -1;
	if (pipe) {
		char pname[VALE_NAME_MAX];
		snprintf(pname, sizeof(pname), "%s", name);
		char *c = strpbrk(pname, "{}");
		if (!c)
			return vale_err(EINVAL, "pipe name %s needs { or }", name);
		*c = *c == '{' ? '}' : '{';
		peer = vale_find_port(sw, pname);
		if (peer >= 0 && sw->ports[peer].state != VP_ACTIVE)
			peer = -1;
	}
	uint32_t idx2 = 0;
	r = port_alloc_locked(sw, name, &idx2);
	if (r)
		return r;
	struct vale_port_ent *e = &sw->ports[idx2];
	if (peer >= 0) {
		struct vale_port_ent *pe = &sw->ports[peer];
		vale_region_path(sw, pe->region_idx, pe->region_gen, path, sizeof(path));
		r = vale_region_map(sw, path, pe->region_gen, &p->m, &p->region_fd);
		if (r == -EACCES || r == -ELOOP)
			return r;
		if (r)
			return vale_err(-r, "cannot map pipe %s:%s: %s", sw->name, name, strerror(-r));
		e->region_idx = pe->region_idx;
		e->region_gen = pe->region_gen;
		e->end = (of & VO_PIPE_MASTER) ? 0 : 1;
		if (e->end == pe->end || p->m.nends != 2)
			return vale_err(EPROTO, "pipe %s:%s: peer region damaged", sw->name, name);
		e->pipe_peer = (uint32_t)peer;
		pe->pipe_peer = idx2;
		e->region_size = pe->region_size;
	} else {
		struct vale_geom g = {.nends = pipe ? 2 : 1,
				 .ntx = clamp_def(req->ntx, 1),
				 .nrx = clamp_def(req->nrx, 1),
				 .tx_slots = clamp_def(req->tx_slots, VALE_DEF_SLOTS),
				 .rx_slots = clamp_def(req->rx_slots, VALE_DEF_SLOTS)};
		if (pipe) { /* both ends see the same shape */
			g.ntx = g.nrx = g.ntx > g.nrx ? g.ntx : g.nrx;
			g.tx_slots = g.rx_slots = g.tx_slots > g.rx_slots ? g.tx_slots : g.rx_slots;
		}
		if (vale_geom_compute(&g))
			return vale_err(EINVAL,
					"bad ring configuration for %s:%s: rings 1..%u, slots %u..%u",
					sw->name, name, VALE_MAX_RINGS, VALE_MIN_SLOTS, VALE_MAX_SLOTS);
		vale_region_path(sw, idx2, e->gen, path, sizeof(path));
		r = vale_region_create(sw, path, &g, &p->m, e->gen, &p->region_fd);
		if (r)
			return vale_err(-r, "cannot create port %s:%s (%s/%s): %s", sw->name, name,
					sw->dir, path, strerror(-r));
		e->region_idx = idx2;
		e->region_gen = e->gen;
		e->end = pipe ? ((of & VO_PIPE_MASTER) ? 0 : 1) : 0;
		e->region_size = g.size;
	}
	e->ntx = p->m.ntx;
	e->nrx = p->m.nrx;
	e->tx_slots = p->m.tx_slots;
	e->rx_slots = p->m.rx_slots;
	e->nbufs = p->m.nbufs;
	e->flags = (pipe ? VPF_PIPE : 0) | ((of & VO_CREATE_PERSISTENT) ? VPF_PERSISTENT : 0) |
		   (exclusive ? VPF_EXCLUSIVE : 0);
	vale_vnet_apply(e, (of & VO_VNET_HDR) ? (int32_t)req->vnet_hdr_len : 0, (int32_t)req->mtu);
	if (!(of & VO_CREATE_PERSISTENT)) {
		r = vale_ofd_lock(p->region_fd, e->end, exclusive, false);
		if (r)
			return vale_err(-r, "cannot lock port %s:%s: %s", sw->name, name, strerror(-r));
		e->owner_pid = getpid();
		e->nopen = 1;
	}
	/* the doorbell FIFO; failure only costs pollability */
	vale_bell_path(sw, idx2, path, sizeof(path));
	vale_sw_mkfifo(sw, path);
	p->idx = idx2;
	p->gen = e->gen;
	p->end = e->end;
	p->flags = e->flags;
	e->last_probe_ns = vale_now_ns();
	STORE_REL(&e->state, VP_ACTIVE);
	if (!pipe) {
		uint32_t na = LOAD_RLX(&sw->ctl->nactive);
		if (na >= sw->max_ports) /* shared memory: a count we cannot trust */
			na = sw->max_ports - 1;
		uint32_t *tmp = malloc((na + 1) * sizeof(uint32_t));
		if (tmp) {
			memcpy(tmp, sw->active, na * sizeof(uint32_t));
			tmp[na] = idx2;
			vale_active_publish(sw, tmp, na + 1);
			free(tmp);
		}
	}
	return 0;
}

static void port_unmap(vale_port *p)
{
	for (int e = 0; e < 2; e++) {
		if (p->m.base && p->m.bell_fd[e] >= 0)
			close(p->m.bell_fd[e]);
		p->m.bell_fd[e] = -1;
	}
	if (p->m.base) {
		vale_guard_del(p->m.base);
		munmap(p->m.base, p->m.size);
	}
	p->m.base = NULL;
	if (p->region_fd >= 0)
		close(p->region_fd);
	p->region_fd = -1;
	if (p->bell_rd >= 0)
		close(p->bell_rd);
	p->bell_rd = -1;
}

VALE_API int vale_open(const char *run_dir, const char *swname, const char *name,
		       const struct vale_open_req *req_in, vale_port **out)
{
	struct vale_open_req req;
	memset(&req, 0, sizeof(req));
	req.ring_id = -1;
	if (req_in)
		req = *req_in;
	int r0;
	r0 = vale_vnet_check((req.flags & VO_VNET_HDR) ? (int32_t)req.vnet_hdr_len : -1,
			     req.mtu > 0x7fffffffu ? 0x7fffffff : (int32_t)req.mtu);
	if (r0)
		return r0;
	if (req.flags & (VO_MONITOR_TX | VO_MONITOR_RX | VO_MONITOR_ZCOPY))
		req.flags |= VO_NO_CREATE; /* a monitor watches a port that exists */
	if (!name || !vale_valid_ident(name, VALE_NAME_MAX - 1, false, true))
		return vale_err(EINVAL, "invalid port name '%s' (1..%d printable ASCII characters, "
				"not ' ', '/', ':', '^', '*', '@', nor a leading '.')",
				name ? name : "", VALE_NAME_MAX - 1);
	vale_port *p = calloc(1, sizeof(*p));
	if (!p)
		return vale_err(ENOMEM, "out of memory");
	p->region_fd = -1;
	p->bell_rd = -1;
	int r;
	for (int attempt = 0;; attempt++) {
		struct vale_sw *sw;
		r = vale_switch_get_ex(run_dir, swname, !(req.flags & VO_NO_CREATE),
				       (req.flags & VO_GROUP) ? (int64_t)req.group : -1, &sw);
		if (r)
			goto fail;
		r = vale_ctl_lock(sw);
		if (r) {
			vale_switch_put(sw);
			goto fail;
		}
		if (LOAD_ACQ(&sw->ctl->dead) && attempt < 50) {
			vale_ctl_unlock(sw);
			vale_switch_put(sw);
			continue;
		}
		vale_reap_locked(sw, false);
		r = port_open_locked(sw, name, &req, p);
		if (r) {
			port_unmap(p);
			if (vale_switch_empty(sw))
				vale_switch_destroy_locked(sw);
			vale_ctl_unlock(sw);
			vale_switch_put(sw);
			goto fail;
		}
		vale_ctl_unlock(sw);
		p->sw = sw;
		break;
	}
	p->oflags = req.flags;
	if (req.flags & VO_CREATE_PERSISTENT) { /* vale-ctl -n: create only */
		port_unmap(p);
		vale_switch_put(p->sw);
		free(p);
		if (out)
			*out = NULL;
		return 0;
	}
	if (req.ring_id >= 0) {
		uint32_t nr = p->m.ntx > p->m.nrx ? p->m.ntx : p->m.nrx;
		if ((uint32_t)req.ring_id >= nr) {
			r = vale_err(EINVAL, "ring %d out of range (port has %u ring pairs)", req.ring_id, nr);
			vale_close(p);
			return r;
		}
		p->first_ring = (uint32_t)req.ring_id;
		p->last_ring = (uint32_t)req.ring_id + 1;
	} else {
		p->first_ring = 0;
		p->last_ring = p->m.ntx > p->m.nrx ? p->m.ntx : p->m.nrx;
	}
	p->mon_seq = &p->sw->ports[p->idx].mon_seq;
	uint32_t np = p->sw->max_ports + 1;
	p->dst_head = malloc(np * sizeof(uint32_t));
	p->dst_tail = malloc(np * sizeof(uint32_t));
	p->touched = malloc(np * sizeof(uint32_t));
	p->act = malloc(np * sizeof(uint32_t));
	p->dst_npk = malloc(np * sizeof(uint32_t));
	p->dst_nsl = malloc(np * sizeof(uint32_t));
	if (!p->dst_head || !p->dst_tail || !p->touched || !p->act || !p->dst_npk || !p->dst_nsl) {
		vale_close(p);
		return vale_err(ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < np; i++)
		p->dst_head[i] = ~0u;
	char bp[PATH_MAX + 32];
	vale_bell_path(p->sw, p->idx, bp, sizeof(bp));
	p->bell_rd = vale_sw_open(p->sw, bp, O_RDWR | O_NONBLOCK, S_IFIFO, false);
	if (p->bell_rd < 0)
		p->bell_rd = -1;
	*out = p;
	return 0;
fail:
	port_unmap(p);
	free(p);
	return r;
}

VALE_API void vale_close(vale_port *p)
{
	if (!p)
		return;
	struct vale_sw *sw = p->sw;
	port_unmap(p);
	if (vale_ctl_lock(sw) == 0) {
		struct vale_port_ent *e = &sw->ports[p->idx];
		if (e->state == VP_ACTIVE && e->gen == p->gen) {
			if (e->nopen)
				e->nopen--;
			if (vale_port_in_use(sw, p->idx) == 0) {
				if (e->flags & VPF_PERSISTENT)
					e->owner_pid = 0;
				else
					vale_port_remove_locked(sw, p->idx);
			}
		}
		if (vale_switch_empty(sw))
			vale_switch_destroy_locked(sw);
		vale_ctl_unlock(sw);
	}
	vale_graves_sweep(sw, true);
	port_free_scratch(p);
	vale_switch_put(sw);
	free(p);
}

VALE_API int vale_info(vale_port *p, struct vale_port_info *o)
{
	memset(o, 0, sizeof(*o));
	o->region_base = (uint64_t)(uintptr_t)p->m.base;
	o->region_size = p->m.size;
	o->ntx = p->m.ntx;
	o->nrx = p->m.nrx;
	o->tx_slots = p->m.tx_slots;
	o->rx_slots = p->m.rx_slots;
	o->nbufs = p->m.nbufs;
	o->buf_size = VALE_BUF_SIZE;
	o->port_idx = p->idx;
	o->port_gen = p->gen;
	o->first_ring = p->first_ring;
	o->last_ring = p->last_ring;
	o->bell_fd = p->bell_rd;
	o->flags = p->flags;
	for (uint32_t i = 0; i < p->m.ntx; i++)
		o->tx_ring_ofs[i] = p->m.ring_ofs[p->end][i];
	for (uint32_t i = 0; i < p->m.nrx; i++)
		o->rx_ring_ofs[i] = p->m.ring_ofs[p->end][VALE_MAX_RINGS + i];
	o->buf_ofs = p->m.buf_ofs;
	const struct vale_port_ent *e = &p->sw->ports[p->idx];
	uint32_t hl = LOAD_ACQ(&e->vnet_hdr_len), mtu = LOAD_ACQ(&e->mtu);
	o->vnet_hdr_len = hl == 10 || hl == 12 ? hl : 0; /* shared memory: as the switch takes it */
	o->mtu = mtu >= VALE_MIN_MTU && mtu <= VALE_MAX_MTU ? mtu : VALE_DEF_MTU;
	return 0;
}
