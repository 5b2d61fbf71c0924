/*
 * The kernel fast path (include/kfast.h): the control side. One per
 * attachment forwarder; a thread that
 *   - copies the switch's learning table into the program's MAC map, for the
 *     MACs on our port (sources the program may redirect) and on other ports
 *     that qualify as destinations (their forwarder published kf_* in its
 *     port entry, same network namespace, alive, our program on the
 *     interface, a virtio-net header (whole super-frames), no monitor), and
 *     only while our switch runs the learning bridge and our port has no
 *     monitor: every 20 ms;
 *   - adds what the program counted to the switch's port counters (tx of our
 *     port, rx of the destination, header bytes included as the switch counts
 *     them): every 2 ms while frames take the short cut (counters lag the
 *     kernel by about that much), else at the next synchronisation;
 *   - keeps the switch's entries of our MACs from ageing while their frames
 *     take the fast path (the switch sees none of them): every second.
 *
 * Everything read from the switch's shared memory is checked before use:
 * port indices against max_ports, a destination's interface by asking the
 * kernel whether vale's program is attached to it (so a scribbled kf_ifindex
 * can only name another vale fast-path interface), its forwarder by pid.
 */
#include "internal.h"
#include "kfast.h"
#include "kfast_impl.h"
#include "vbpf.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define KF_FOLD_MS 2    /* counters into the switch, while frames take the fast path */
#define KF_SYNC_MS 20   /* the learning table into the map */
#define KF_AGE_MS 1000  /* our MACs kept alive in the learning table */
#define KF_RECHECK_NS 1000000000ull /* a destination's kernel-side check is redone after 1 s */
/* kf_on of a port entry: redirect to its interface allowed (other bits: reserved) */
#define KF_ON 0x1

struct kf_mirror { /* what the MAC map holds for one slot of the switch's table */
	uint64_t mac; /* 0: nothing */
	uint32_t port, ifindex;
	uint64_t hits; /* our MACs: the program's count last seen */
};

struct kf_dest { /* a port as a destination, checked */
	uint32_t gen, ifindex;
	int32_t pid;
	bool ok;
	uint64_t checked_ns;
	uint32_t epoch;  /* sync that computed `now` */
	bool now;        /* qualifies in that sync */
	bool used;       /* counted toward at least once: folded */
	uint32_t used_gen;
	uint32_t hdr;    /* its header length when counted */
};

struct vale_kfast {
	vale_port *p;
	struct vale_sw *sw;
	struct vale_io *io;
	uint32_t own, own_gen, ifindex, netns, max_ports, nmac;
	int mac_fd, cnt_fd, prog_fd, link_fd;
	struct kf_cnt *cnt; /* mmap()ed counter map */
	size_t cnt_len;
	struct kf_cnt *last;
	struct kf_mirror *mir;
	struct kf_dest *dest;
	uint32_t *used_list, nused;
	uint8_t *monitored;
	uint32_t epoch;
	pthread_t th;
	bool running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct vale_kfast_stats st; /* written by the thread under mu */
};

static uint32_t netns_ino(void)
{
	struct stat s;
	return stat("/proc/self/ns/net", &s) == 0 ? (uint32_t)s.st_ino : 0;
}

/* ---------------- destinations ---------------- */

static void scan_monitors(struct vale_kfast *k)
{
	memset(k->monitored, 0, k->max_ports);
	for (uint32_t q = 0; q < k->max_ports; q++) {
		struct vale_port_ent *e = &k->sw->ports[q];
		if (LOAD_RLX(&e->state) != VP_ACTIVE || !(LOAD_RLX(&e->flags) & VPF_MONITOR))
			continue;
		uint32_t of = LOAD_RLX(&e->mon_of);
		if (of < k->max_ports)
			k->monitored[of] = 1;
	}
}

static bool dest_ok(struct vale_kfast *k, uint32_t q, uint64_t now_ns)
{
	struct kf_dest *d = &k->dest[q];
	if (d->epoch == k->epoch)
		return d->now;
	d->epoch = k->epoch;
	d->now = false;
	struct vale_port_ent *e = &k->sw->ports[q];
	if (q == k->own || k->monitored[q] || LOAD_ACQ(&e->state) != VP_ACTIVE)
		return false;
	uint32_t flags = LOAD_RLX(&e->flags);
	uint32_t on = LOAD_ACQ(&e->kf_on);
	if (!(flags & VPF_FORWARDER) || (flags & VPF_MONITOR) || !(on & KF_ON) ||
	    LOAD_RLX(&e->kf_netns) != k->netns || LOAD_RLX(&e->vnet_hdr_len) == 0)
		return false;
	uint32_t ifx = LOAD_RLX(&e->kf_ifindex), gen = LOAD_RLX(&e->gen);
	int32_t pid = LOAD_RLX(&e->kf_pid);
	if (ifx == 0 || ifx == k->ifindex || pid <= 0)
		return false;
	if (d->gen != gen || d->ifindex != ifx || d->pid != pid ||
	    now_ns - d->checked_ns > KF_RECHECK_NS) {
		d->gen = gen;
		d->ifindex = ifx;
		d->pid = pid;
		d->checked_ns = now_ns;
		d->ok = vale_pid_alive(pid) &&
			vbpf_attached(ifx, VBPF_TCX_INGRESS, KF_PROG_NAME) == 1;
	}
	d->now = d->ok;
	return d->now;
}

/* ---------------- the MAC map ---------------- */

static void mir_put(struct vale_kfast *k, struct kf_mirror *m, uint64_t mac, uint32_t port,
		    uint32_t ifx)
{
	if (m->mac == mac && m->port == port && m->ifindex == ifx)
		return;
	if (m->mac && m->mac != mac)
		vbpf_map_delete(k->mac_fd, &m->mac);
	m->mac = 0;
	if (!mac)
		return;
	struct kf_mac_val v = {.ifindex = ifx, .port = (uint16_t)port};
	if (vbpf_map_update(k->mac_fd, &mac, &v, BPF_ANY) < 0) {
		k->st.map_errors++;
		vbpf_map_delete(k->mac_fd, &mac);
		return;
	}
	m->mac = mac;
	m->port = port;
	m->ifindex = ifx;
	m->hits = 0;
	if (port != k->own && !k->dest[port].used) {
		k->dest[port].used = true;
		k->used_list[k->nused++] = port;
	}
	if (port != k->own) {
		k->dest[port].used_gen = k->dest[port].gen;
		k->dest[port].hdr = LOAD_RLX(&k->sw->ports[port].vnet_hdr_len);
	}
}

static bool own_ok(struct vale_kfast *k, uint32_t *why)
{
	struct vale_ctl_hdr *h = k->sw->ctl;
	char lk[sizeof h->lookup];
	memcpy(lk, (const char *)h->lookup, sizeof lk);
	lk[sizeof lk - 1] = 0;
	if (strcmp(lk, "learning") != 0 && lk[0]) {
		*why = VKF_OFF_LOOKUP;
		return false;
	}
	if (k->monitored[k->own]) {
		*why = VKF_OFF_MONITOR;
		return false;
	}
	*why = VKF_ON;
	return true;
}

static void sync_map(struct vale_kfast *k)
{
	struct vale_sw *sw = k->sw;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint32_t now_s = (uint32_t)ts.tv_sec;
	uint64_t now_ns = vale_now_ns();
	k->epoch++;
	scan_monitors(k);
	uint32_t why;
	bool on = own_ok(k, &why);
	uint64_t macs = 0, dests = 0;
	for (uint32_t i = 0; i < k->nmac; i++) {
		struct vale_mac_ent *e = &sw->mac[i];
		uint64_t key = LOAD_RLX(&e->key);
		uint64_t mac = key >> 16;
		uint32_t port = (uint32_t)(key & 0xffff), ifx = 0;
		bool want = on && key != 0 && !(mac & 1) && port < k->max_ports &&
			    now_s - LOAD_RLX(&e->seen_s) <= sw->age_s;
		if (want && port != k->own) {
			want = dest_ok(k, port, now_ns);
			ifx = k->dest[port].ifindex;
		}
		mir_put(k, &k->mir[i], want ? mac : 0, port, ifx);
		if (k->mir[i].mac) {
			macs++;
			if (port != k->own)
				dests++;
		}
	}
	pthread_mutex_lock(&k->mu);
	k->st.macs = macs;
	k->st.dests = dests;
	k->st.syncs++;
	k->st.active = on;
	k->st.why_off = why;
	pthread_mutex_unlock(&k->mu);
}

/* ---------------- counters and ageing ---------------- */

/* Adds what the program counted since the last call; true if it counted any. */
static bool fold(struct vale_kfast *k)
{
	struct vale_sw *sw = k->sw;
	uint64_t pk = 0, by = 0, by_own = 0;
	uint32_t own_hdr = LOAD_RLX(&sw->ports[k->own].vnet_hdr_len);
	own_hdr = own_hdr == 10 || own_hdr == 12 ? own_hdr : 0;
	for (uint32_t i = 0; i < k->nused; i++) {
		uint32_t q = k->used_list[i];
		uint64_t p = LOAD_RLX(&k->cnt[q].pkts), b = LOAD_RLX(&k->cnt[q].bytes);
		uint64_t dp = p - k->last[q].pkts, db = b - k->last[q].bytes;
		if (!dp)
			continue;
		k->last[q].pkts = p;
		k->last[q].bytes = b;
		struct vale_port_ent *e = &sw->ports[q];
		uint32_t hdr = k->dest[q].hdr == 10 || k->dest[q].hdr == 12 ? k->dest[q].hdr : 0;
		if (LOAD_RLX(&e->gen) == k->dest[q].used_gen) { /* not a new port at that index */
			ADD_RLX(&e->c.rx_pkts, dp);
			ADD_RLX(&e->c.rx_bytes, db + dp * hdr);
		}
		pk += dp;
		by += db;
		by_own += db + dp * own_hdr;
	}
	if (!pk)
		return false;
	struct vale_counters *c = &sw->ports[k->own].c;
	ADD_RLX(&c->tx_pkts, pk);
	ADD_RLX(&c->tx_bytes, by_own);
	pthread_mutex_lock(&k->mu);
	k->st.fast_pkts += pk;
	k->st.fast_bytes += by;
	pthread_mutex_unlock(&k->mu);
	return true;
}

static void keep_alive(struct vale_kfast *k)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint32_t now_s = (uint32_t)ts.tv_sec;
	uint64_t n = 0;
	for (uint32_t i = 0; i < k->nmac; i++) {
		struct kf_mirror *m = &k->mir[i];
		if (!m->mac || m->port != k->own)
			continue;
		struct kf_mac_val v;
		if (vbpf_map_lookup(k->mac_fd, &m->mac, &v) < 0 || v.hits == m->hits)
			continue;
		m->hits = v.hits;
		struct vale_mac_ent *e = &k->sw->mac[i];
		if (LOAD_RLX(&e->key) == (m->mac << 16 | k->own) && LOAD_RLX(&e->seen_s) != now_s) {
			STORE_RLX(&e->seen_s, now_s);
			n++;
		}
	}
	if (n) {
		pthread_mutex_lock(&k->mu);
		k->st.refreshed += n;
		pthread_mutex_unlock(&k->mu);
	}
}

static void *kf_thread(void *arg)
{
	struct vale_kfast *k = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the runtime's business */
	uint64_t next_sync = 0, next_age = vale_now_ns() + KF_AGE_MS * 1000000ull;
	for (;;) {
		uint64_t now = vale_now_ns();
		if (now >= next_sync) {
			sync_map(k);
			next_sync = now + KF_SYNC_MS * 1000000ull;
		}
		/* while frames take the short cut, their counts reach the switch every
		 * KF_FOLD_MS; an idle fast path wakes only for the next synchronisation */
		bool busy = fold(k);
		if (now >= next_age) {
			keep_alive(k);
			next_age = now + KF_AGE_MS * 1000000ull;
		}
		uint64_t until_ns = busy ? now + KF_FOLD_MS * 1000000ull : next_sync;
		pthread_mutex_lock(&k->mu);
		if (!k->stop) {
			struct timespec until = {.tv_sec = (time_t)(until_ns / 1000000000ull),
						 .tv_nsec = (long)(until_ns % 1000000000ull)};
			pthread_cond_timedwait(&k->cv, &k->mu, &until);
		}
		bool stop = k->stop;
		pthread_mutex_unlock(&k->mu);
		if (stop)
			break;
	}
	return NULL;
}

/* ---------------- API ---------------- */

static void kf_free(struct vale_kfast *k)
{
	if (k->link_fd >= 0)
		close(k->link_fd);
	if (k->prog_fd >= 0)
		close(k->prog_fd);
	if (k->cnt)
		munmap(k->cnt, k->cnt_len);
	if (k->cnt_fd >= 0)
		close(k->cnt_fd);
	if (k->mac_fd >= 0)
		close(k->mac_fd);
	free(k->last);
	free(k->mir);
	free(k->dest);
	free(k->used_list);
	free(k->monitored);
	pthread_mutex_destroy(&k->mu);
	pthread_cond_destroy(&k->cv);
	free(k);
}

static int bpf_fail(struct vale_kfast *k, int r, const char *step, const char *ifname)
{
	kf_free(k);
	return vale_err(-r, "kernel fast path on %s: %s: %s%s", ifname, step, strerror(-r),
			r == -EPERM ? " (needs CAP_BPF and CAP_NET_ADMIN)" : "");
}

VALE_API int vale_kfast_start(vale_port *p, struct vale_io *io, uint32_t flags,
			      struct vale_kfast **out)
{
	(void)flags;
	*out = NULL;
	struct vale_io_info ii;
	int r = vale_io_info(io, &ii);
	if (r < 0)
		return vale_err(-r, "kernel fast path: %s", vale_io_last_error());
	if (ii.kind != VIO_PACKET || !ii.vnet_hdr_len)
		return vale_err(EOPNOTSUPP,
				"kernel fast path on %s: only for AF_PACKET attachments with a "
				"virtio-net header (this one is %s)", ii.ifname, ii.mode);
	struct vale_sw *sw = p->sw;
	struct vale_kfast *k = calloc(1, sizeof *k);
	if (!k)
		return vale_err(ENOMEM, "kernel fast path: out of memory");
	k->mac_fd = k->cnt_fd = k->prog_fd = k->link_fd = -1;
	pthread_mutex_init(&k->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
	k->p = p;
	k->sw = sw;
	k->io = io;
	k->own = p->idx;
	k->own_gen = p->gen;
	k->ifindex = ii.ifindex;
	k->netns = netns_ino();
	k->max_ports = sw->max_ports;
	k->nmac = sw->mac_mask + 1;
	k->last = calloc(k->max_ports, sizeof *k->last);
	k->mir = calloc(k->nmac, sizeof *k->mir);
	k->dest = calloc(k->max_ports, sizeof *k->dest);
	k->used_list = calloc(k->max_ports, sizeof *k->used_list);
	k->monitored = calloc(k->max_ports, 1);
	if (!k->last || !k->mir || !k->dest || !k->used_list || !k->monitored) {
		kf_free(k);
		return vale_err(ENOMEM, "kernel fast path: out of memory");
	}
	r = vbpf_map_create(BPF_MAP_TYPE_HASH, 8, sizeof(struct kf_mac_val), k->nmac, 0,
			    "vale_kf_macs");
	if (r < 0)
		return bpf_fail(k, r, "MAC map", ii.ifname);
	k->mac_fd = r;
	r = vbpf_map_create(BPF_MAP_TYPE_ARRAY, 4, sizeof(struct kf_cnt), k->max_ports,
			    BPF_F_MMAPABLE, "vale_kf_cnt");
	if (r < 0)
		return bpf_fail(k, r, "counter map", ii.ifname);
	k->cnt_fd = r;
	long pg = sysconf(_SC_PAGESIZE);
	k->cnt_len = ((size_t)k->max_ports * sizeof(struct kf_cnt) + (size_t)pg - 1) &
		     ~((size_t)pg - 1);
	void *m = mmap(NULL, k->cnt_len, PROT_READ | PROT_WRITE, MAP_SHARED, k->cnt_fd, 0);
	if (m == MAP_FAILED) {
		r = -errno;
		return bpf_fail(k, r, "mapping the counters", ii.ifname);
	}
	k->cnt = m;
	char log[8192];
	r = kf_prog_load(k->mac_fd, k->cnt_fd, k->own, k->ifindex, log, sizeof log);
	if (r < 0) {
		fprintf(stderr, "vale kfast: the verifier said:\n%s\n", log);
		return bpf_fail(k, r, "loading the tc program", ii.ifname);
	}
	k->prog_fd = r;
	/* the socket first: from now on it takes only frames of the slow path's second
	 * pass; until the program is attached just after, frames are lost, not doubled */
	r = vale_io_mark_filter(io, KF_MARK);
	if (r < 0) {
		kf_free(k);
		return vale_err(-r, "kernel fast path on %s: %s", ii.ifname, vale_io_last_error());
	}
	r = vbpf_link_create(k->prog_fd, k->ifindex, VBPF_TCX_INGRESS, 0);
	if (r < 0) {
		vale_io_mark_filter(io, 0);
		return bpf_fail(k, r, "attaching at tc ingress (tcx, Linux >= 6.6)", ii.ifname);
	}
	k->link_fd = r;
	sync_map(k);
	/* publish: other forwarders of the switch may now redirect to us */
	struct vale_port_ent *e = &sw->ports[k->own];
	STORE_RLX(&e->kf_ifindex, k->ifindex);
	STORE_RLX(&e->kf_netns, k->netns);
	STORE_RLX(&e->kf_pid, (int32_t)getpid());
	/* Other ports may hand frames to a veth, whose peer is a kernel stack that takes
	 * them at once. Not to a VM's TAP: a guest drains its queue at its own pace, the
	 * kernel would drop what does not fit (as a bridge does), and the forwarder's
	 * back-pressure waits instead (a TCG guest's TCP lost its TSO frames to such
	 * drops). A TAP still sends its frames the short way. */
	char drv[32];
	bool takes = vale_io_driver(io, drv, sizeof drv) == 0 && !strcmp(drv, "veth");
	STORE_REL(&e->kf_on, takes ? KF_ON : 0u);
	if (pthread_create(&k->th, NULL, kf_thread, k) != 0) {
		STORE_REL(&e->kf_on, 0u);
		vale_io_mark_filter(io, 0);
		kf_free(k);
		return vale_err(EAGAIN, "kernel fast path: cannot start its thread");
	}
	k->running = true;
	*out = k;
	return 0;
}

VALE_API void vale_kfast_stop(struct vale_kfast *k)
{
	if (!k)
		return;
	struct vale_port_ent *e = &k->sw->ports[k->own];
	if (LOAD_RLX(&e->gen) == k->own_gen)
		STORE_REL(&e->kf_on, 0u);
	if (k->running) {
		pthread_mutex_lock(&k->mu);
		k->stop = true;
		pthread_cond_signal(&k->cv);
		pthread_mutex_unlock(&k->mu);
		pthread_join(k->th, NULL);
	}
	/* detach, then let the socket take every frame again; the last counts after */
	close(k->link_fd);
	k->link_fd = -1;
	vale_io_mark_filter(k->io, 0);
	fold(k);
	kf_free(k);
}

VALE_API int vale_kfast_stats(struct vale_kfast *k, struct vale_kfast_stats *out)
{
	pthread_mutex_lock(&k->mu);
	*out = k->st;
	pthread_mutex_unlock(&k->mu);
	return 0;
}

VALE_API int vale_kfast_attached(uint32_t ifindex)
{
	int r = vbpf_attached(ifindex, VBPF_TCX_INGRESS, KF_PROG_NAME);
	return r < 0 ? vale_err(-r, "cannot ask the kernel about ifindex %u: %s", ifindex,
				strerror(-r))
		     : r;
}
