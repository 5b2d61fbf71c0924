/*
 * Switches and ports in shared memory: creating and mapping the control
 * segment and port regions, opening and closing ports, liveness of owners,
 * and reclaiming what dead processes leave behind.
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

static __thread char g_errmsg[512];

VALE_API const char *vale_last_error(void) { return g_errmsg; }
VALE_API uint32_t vale_abi_version(void) { return VALE_LAYOUT_VERSION; }

int vale_err(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g_errmsg, sizeof(g_errmsg), fmt, ap);
	va_end(ap);
	return -err;
}

uint64_t vale_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool vale_pid_alive(int32_t pid)
{
	if (pid <= 0)
		return false;
	return !(kill(pid, 0) == -1 && errno == ESRCH);
}

/* ---------------- the control lock ---------------- */

static void active_rebuild(struct vale_sw *sw);

/* Take the switch's control lock (c-src/core/lock.c: never aborts, never waits
 * forever), then make sure the control segment is still the one we
 * validated when we mapped it: a client may have scribbled on its header. */
int vale_ctl_lock(struct vale_sw *sw)
{
	if (vale_ctl_damaged(sw))
		return vale_ctl_damage_err(sw);
	bool rec;
	vale_lock(&sw->ctl->lock, VALE_CTL_STALE_MS, &rec);
	if (vale_ctl_damaged(sw)) {
		vale_unlock(&sw->ctl->lock);
		return vale_ctl_damage_err(sw);
	}
	if (rec) /* a process died (or a client scribbled) while the port table changed */
		active_rebuild(sw);
	return 0;
}

void vale_ctl_unlock(struct vale_sw *sw) { vale_unlock(&sw->ctl->lock); }

/* ---------------- names and paths ---------------- */

static bool valid_ident(const char *s, size_t max, bool allow_empty, bool allow_pipe)
{
	size_t n = strnlen(s, max + 1);
	if (n > max || (n == 0 && !allow_empty))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || (allow_pipe && (c == '{' || c == '}')) || c == '.' || c == '-'))
			return false;
	}
	return !(n > 0 && s[0] == '.');
}

/* File names inside the switch directory (opened relative to sw->dir_fd). */
static void region_path(struct vale_sw *sw, uint32_t idx, uint32_t gen, char *out, size_t n)
{
	snprintf(out, n, "p%u.%u", idx, gen);
}
static void bell_path(struct vale_sw *sw, uint32_t idx, char *out, size_t n)
{
	snprintf(out, n, "p%u.bell", idx);
}

/* ---------------- control segment ---------------- */

static uint32_t env_u32(const char *name, uint32_t def, uint32_t lo, uint32_t hi)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	char *end;
	unsigned long x = strtoul(v, &end, 0);
	if (*end || x < lo || x > hi)
		return def;
	return (uint32_t)x;
}

static void ctl_layout(uint32_t max_ports, uint32_t mac_entries, uint64_t *ports_ofs,
		       uint64_t *active_ofs, uint64_t *mac_ofs, uint64_t *priv_ofs, uint64_t *size)
{
	*ports_ofs = 4096;
	*active_ofs = ALIGN_UP(*ports_ofs + (uint64_t)max_ports * sizeof(struct vale_port_ent), 64);
	*mac_ofs = ALIGN_UP(*active_ofs + (uint64_t)max_ports * 4, 64);
	*priv_ofs = ALIGN_UP(*mac_ofs + (uint64_t)mac_entries * sizeof(struct vale_mac_ent), 4096);
	*size = ALIGN_UP(*priv_ofs + VALE_PRIV_SIZE, 4096);
}

static int ctl_init(int fd, const char *name)
{
	uint32_t max_ports = env_u32("VALE_MAX_PORTS", VALE_DEF_MAX_PORTS, 2, VALE_LIMIT_PORTS);
	uint32_t macs = env_u32("VALE_MAC_ENTRIES", VALE_DEF_MAC_ENTRIES, 16, 1u << 22);
	if (macs & (macs - 1))
		macs = VALE_DEF_MAC_ENTRIES;
	uint64_t po, ao, mo, pr, size;
	ctl_layout(max_ports, macs, &po, &ao, &mo, &pr, &size);
	if (ftruncate(fd, 0) || ftruncate(fd, (off_t)size))
		return -errno;
	struct vale_ctl_hdr *h = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED)
		return -errno;
	vale_guard_add(h, size, NULL); /* another process may truncate it right now */
	h->version = VALE_LAYOUT_VERSION;
	h->size = size;
	h->max_ports = max_ports;
	h->mac_entries = macs;
	h->age_s = env_u32("VALE_MAC_AGE", VALE_DEF_AGE_S, 1, 1u << 30);
	h->ports_ofs = po;
	h->active_ofs = ao;
	h->mac_ofs = mo;
	h->priv_ofs = pr;
	h->created_ns = vale_now_ns();
	snprintf(h->name, sizeof(h->name), "%s", name);
	snprintf(h->lookup, sizeof(h->lookup), "learning");
	vale_lock_init(&h->lock);
	STORE_REL(&h->magic, VALE_MAGIC); /* last: the segment is now usable */
	vale_guard_del(h);
	munmap(h, size);
	return 0;
}

/* A control segment without the magic is either one whose creator died
 * before finishing it (then it is initialised again) or a damaged one. It is
 * half-made only if it is empty, or has no magic at all and no port was ever
 * created next to it (the first port's region is made after the magic). */
static bool ctl_never_finished(int dir_fd, const struct stat *st, uint32_t magic)
{
	if (st->st_size == 0)
		return true;
	if (magic != 0)
		return false;
	int fd = dup(dir_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	bool ports = false;
	struct dirent *de;
	while (!ports && (de = readdir(d)))
		ports = de->d_name[0] == 'p';
	closedir(d);
	return !ports;
}

static int ctl_map(struct vale_sw *sw)
{
	struct stat st;
	if (fstat(sw->ctl_fd, &st))
		return -errno;
	if ((uint64_t)st.st_size < sizeof(struct vale_ctl_hdr))
		return -EPROTO;
	struct vale_ctl_hdr *h =
	    mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, sw->ctl_fd, 0);
	if (h == MAP_FAILED)
		return -errno;
	sw->ctl_bus = 0;
	vale_guard_add(h, (uint64_t)st.st_size, &sw->ctl_bus);
	/* Read every field once into locals, validate the locals, keep them:
	 * the shared copy may change under us at any time. */
	uint64_t po, ao, mo, pr, size;
	uint32_t magic = LOAD_ACQ(&h->magic), version = LOAD_RLX(&h->version);
	uint32_t max_ports = LOAD_RLX(&h->max_ports), macs = LOAD_RLX(&h->mac_entries);
	uint32_t age_s = LOAD_RLX(&h->age_s);
	if (magic != VALE_MAGIC || version != VALE_LAYOUT_VERSION || max_ports < 2 ||
	    max_ports > VALE_LIMIT_PORTS || macs < 16 || macs > (1u << 22) || (macs & (macs - 1)) ||
	    age_s == 0)
		goto bad;
	ctl_layout(max_ports, macs, &po, &ao, &mo, &pr, &size);
	if (size != (uint64_t)st.st_size || LOAD_RLX(&h->ports_ofs) != po ||
	    LOAD_RLX(&h->active_ofs) != ao || LOAD_RLX(&h->mac_ofs) != mo ||
	    LOAD_RLX(&h->priv_ofs) != pr || sw->ctl_bus)
		goto bad;
	sw->ctl = h;
	sw->ctl_size = size;
	sw->max_ports = max_ports;
	sw->mac_mask = macs - 1;
	sw->age_s = age_s;
	sw->ports_ofs = po;
	sw->active_ofs = ao;
	sw->mac_ofs = mo;
	sw->priv_ofs = pr;
	sw->ports = (struct vale_port_ent *)((uint8_t *)h + po);
	sw->active = (uint32_t *)((uint8_t *)h + ao);
	sw->mac = (struct vale_mac_ent *)((uint8_t *)h + mo);
	sw->priv = (uint8_t *)h + pr;
	return 0;
bad:
	vale_guard_del(h);
	munmap(h, (size_t)st.st_size);
	return -EPROTO;
}

/* Is the control segment still the one ctl_map() validated? One look at the
 * header fields everything else was derived from (and the SIGBUS flag). */
bool vale_ctl_damaged(struct vale_sw *sw)
{
	const struct vale_ctl_hdr *h = sw->ctl;
	return sw->ctl_bus || LOAD_RLX(&h->magic) != VALE_MAGIC ||
	       LOAD_RLX(&h->version) != VALE_LAYOUT_VERSION ||
	       LOAD_RLX(&h->max_ports) != sw->max_ports ||
	       LOAD_RLX(&h->mac_entries) != sw->mac_mask + 1 ||
	       LOAD_RLX(&h->ports_ofs) != sw->ports_ofs || LOAD_RLX(&h->active_ofs) != sw->active_ofs ||
	       LOAD_RLX(&h->mac_ofs) != sw->mac_ofs || LOAD_RLX(&h->priv_ofs) != sw->priv_ofs;
}

int vale_ctl_damage_err(struct vale_sw *sw)
{
	return vale_err(EPROTO,
			"switch %s is damaged (its control segment was %s by a process on it); "
			"open ports keep working as far as they can, nothing new can join: remove "
			"it with 'vale-ctl --remove-switch %s'",
			sw->name, sw->ctl_bus ? "truncated" : "overwritten", sw->name);
}

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vale_sw *g_switches;

static void sw_free(struct vale_sw *sw)
{
	if (sw->maps) {
		for (uint32_t i = 0; i < sw->max_ports; i++) {
			struct vale_map *m = &sw->maps[i];
			if (m->region_gen) {
				vale_guard_del(m->base);
				munmap(m->base, m->size);
			}
			for (int e = 0; e < 2; e++)
				if (m->bell_fd[e] >= 0)
					close(m->bell_fd[e]);
		}
		free(sw->maps);
	}
	for (struct vale_grave *g = sw->graves, *n; g; g = n) {
		n = g->next;
		vale_guard_del(g->base);
		munmap(g->base, g->size);
		for (int e = 0; e < 2; e++)
			if (g->bell_fd[e] >= 0)
				close(g->bell_fd[e]);
		free(g);
	}
	if (sw->dl)
		dlclose(sw->dl);
	if (sw->ctl) {
		vale_guard_del(sw->ctl);
		munmap(sw->ctl, sw->ctl_size);
	}
	if (sw->ctl_fd >= 0)
		close(sw->ctl_fd);
	if (sw->dl_fd >= 0)
		close(sw->dl_fd);
	if (sw->dir_fd >= 0)
		close(sw->dir_fd);
	if (sw->run_fd >= 0)
		close(sw->run_fd);
	pthread_mutex_destroy(&sw->mlock);
	pthread_rwlock_destroy(&sw->sync_rw);
	free(sw);
}

/* Get this process's handle on switch `name`, creating the switch if asked. */
int vale_switch_get(const char *run_dir, const char *name, bool create, struct vale_sw **out)
{
	return vale_switch_get_ex(run_dir, name, create, -1, out);
}

int vale_switch_get_ex(const char *run_dir, const char *name, bool create, int64_t want_gid,
		       struct vale_sw **out)
{
	if (!run_dir || !*run_dir)
		run_dir = getenv("VALE_RUN_DIR");
	if (!run_dir || !*run_dir)
		run_dir = VALE_DEFAULT_RUN_DIR;
	if (!name || !valid_ident(name, VALE_SW_NAME_MAX - 1, false, false))
		return vale_err(EINVAL, "invalid switch name '%s'", name ? name : "");
	char dir[PATH_MAX];
	if (snprintf(dir, sizeof(dir), "%s/%s", run_dir, name) >= (int)sizeof(dir))
		return vale_err(ENAMETOOLONG, "run directory path too long");

	pthread_mutex_lock(&g_lock);
	for (struct vale_sw *s = g_switches; s; s = s->next) {
		if (strcmp(s->dir, dir) == 0 && !LOAD_ACQ(&s->ctl->dead) &&
		    !vale_ctl_damaged(s)) {
			if (want_gid >= 0 && (!s->shared || s->dir_gid != (uint32_t)want_gid)) {
				pthread_mutex_unlock(&g_lock);
				return vale_err(EPERM,
						"switch %s exists and is not shared with group %lld as asked",
						name, (long long)want_gid);
			}
			s->refs++;
			pthread_mutex_unlock(&g_lock);
			*out = s;
			return 0;
		}
	}
	pthread_mutex_unlock(&g_lock);

	struct vale_sw *sw = calloc(1, sizeof(*sw));
	if (!sw)
		return vale_err(ENOMEM, "out of memory");
	sw->ctl_fd = -1;
	sw->run_fd = sw->dir_fd = sw->dl_fd = -1;
	pthread_mutex_init(&sw->mlock, NULL);
	pthread_rwlock_init(&sw->sync_rw, NULL);
	snprintf(sw->dir, sizeof(sw->dir), "%s", dir);
	snprintf(sw->name, sizeof(sw->name), "%s", name);
	sw->lookup_gen = ~0u;
	int r;
	char ctl[PATH_MAX + 8];
	snprintf(ctl, sizeof(ctl), "%s/ctl", dir);
	for (int attempt = 0;; attempt++) {
		/* run and switch directories: walked without following symlinks, owners
		 * and modes checked (fsafe.c); a new switch is private (0700/0600)
		 * unless shared with a group */
		if (sw->dir_fd >= 0)
			close(sw->dir_fd);
		if (sw->run_fd >= 0)
			close(sw->run_fd);
		sw->dir_fd = sw->run_fd = -1;
		r = vale_swdir_open(sw, run_dir, create, want_gid, want_gid >= 0);
		if (r)
			goto fail;
		sw->ctl_fd = vale_sw_open(sw, "ctl", O_RDWR, S_IFREG, true);
		if (sw->ctl_fd == -ENOENT && create) {
			sw->ctl_fd = vale_sw_create(sw, "ctl", O_RDWR);
			if (sw->ctl_fd == -EEXIST)
				continue; /* created by another process meanwhile: open it */
			if (sw->ctl_fd < 0) {
				r = vale_err(-sw->ctl_fd, "cannot create switch %s (%s): %s", name, ctl,
					     strerror(-sw->ctl_fd));
				sw->ctl_fd = -1;
				goto fail;
			}
		}
		if (sw->ctl_fd < 0) {
			int e = -sw->ctl_fd;
			sw->ctl_fd = -1;
			if (e == ENOENT && !create) {
				r = vale_err(ENOENT, "no switch %s in %s", name, run_dir);
				goto fail;
			}
			if (e == ENOENT && attempt < 50)
				continue; /* removed under us between mkdir and open */
			r = -e; /* the message says why (vale_sw_open) */
			goto fail;
		}
		/* Initialisation is serialised by flock; a creator that died half-way
		 * left no magic, and the next one simply initialises again. */
		flock(sw->ctl_fd, LOCK_EX);
		struct stat st;
		fstat(sw->ctl_fd, &st);
		if (st.st_nlink == 0) { /* switch removed while we waited */
			flock(sw->ctl_fd, LOCK_UN);
			close(sw->ctl_fd);
			sw->ctl_fd = -1;
			if (attempt < 50)
				continue;
			r = vale_err(EAGAIN, "switch %s keeps being removed", name);
			goto fail;
		}
		uint32_t magic = 0;
		if (st.st_size >= (off_t)sizeof(uint32_t) &&
		    pread(sw->ctl_fd, &magic, sizeof(magic), 0) != sizeof(magic))
			magic = 0;
		if (magic != VALE_MAGIC && !ctl_never_finished(sw->dir_fd, &st, magic)) {
			/* not a half-made switch: a damaged one. Never initialise it
			 * again under processes that still use it; report it. */
			flock(sw->ctl_fd, LOCK_UN);
			r = -EPROTO; /* the message is set below, as for a failed ctl_map */
			goto damaged;
		}
		if (magic != VALE_MAGIC) {
			if (!create) {
				flock(sw->ctl_fd, LOCK_UN);
				r = vale_err(ENOENT, "no switch %s in %s", name, run_dir);
				goto fail;
			}
			r = ctl_init(sw->ctl_fd, name);
			if (r) {
				flock(sw->ctl_fd, LOCK_UN);
				r = vale_err(-r, "cannot create switch %s: %s", name, strerror(-r));
				goto fail;
			}
		}
		flock(sw->ctl_fd, LOCK_UN);
		r = ctl_map(sw);
		if (r) {
		damaged:
			r = vale_err(EPROTO,
				     "switch %s is damaged: its control segment %s is not a vale v%u "
				     "switch (damaged, or made by another version of vale); remove it "
				     "with 'vale-ctl --remove-switch %s'",
				     name, ctl, VALE_LAYOUT_VERSION, name);
			goto fail;
		}
		if (LOAD_ACQ(&sw->ctl->dead)) {
			vale_guard_del(sw->ctl);
			munmap(sw->ctl, sw->ctl_size);
			sw->ctl = NULL;
			close(sw->ctl_fd);
			sw->ctl_fd = -1;
			if (attempt < 50) {
				usleep(1000);
				continue;
			}
			r = vale_err(EAGAIN, "switch %s is being removed", name);
			goto fail;
		}
		break;
	}
	sw->test_lease_delay_us = env_u32("VALE_TEST_LEASE_DELAY_US", 0, 0, 1000000);
	sw->maps = calloc(sw->max_ports, sizeof(*sw->maps));
	if (!sw->maps) {
		r = vale_err(ENOMEM, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < sw->max_ports; i++)
		sw->maps[i].bell_fd[0] = sw->maps[i].bell_fd[1] = -1;
	sw->refs = 1;
	pthread_mutex_lock(&g_lock);
	sw->next = g_switches;
	g_switches = sw;
	pthread_mutex_unlock(&g_lock);
	*out = sw;
	return 0;
fail:
	sw_free(sw);
	return r;
}

void vale_switch_put(struct vale_sw *sw)
{
	pthread_mutex_lock(&g_lock);
	if (--sw->refs > 0) {
		pthread_mutex_unlock(&g_lock);
		return;
	}
	for (struct vale_sw **pp = &g_switches; *pp; pp = &(*pp)->next) {
		if (*pp == sw) {
			*pp = sw->next;
			break;
		}
	}
	pthread_mutex_unlock(&g_lock);
	sw_free(sw);
}

/* ---------------- port regions ---------------- */

struct geom {
	uint32_t nends, ntx, nrx, tx_slots, rx_slots, nbufs;
	uint64_t kring_ofs, buf_ofs, size;
	uint64_t ring_ofs[2][2 * VALE_MAX_RINGS];
};

static int geom_compute(struct geom *g)
{
	if (g->nends < 1 || g->nends > 2 || g->ntx < 1 || g->ntx > VALE_MAX_RINGS || g->nrx < 1 ||
	    g->nrx > VALE_MAX_RINGS || g->tx_slots < VALE_MIN_SLOTS || g->tx_slots > VALE_MAX_SLOTS ||
	    g->rx_slots < VALE_MIN_SLOTS || g->rx_slots > VALE_MAX_SLOTS)
		return -EINVAL;
	uint64_t o = REGION_HDR_SIZE;
	g->kring_ofs = o;
	o += (uint64_t)g->nends * (g->ntx + g->nrx) * sizeof(struct vale_kring);
	memset(g->ring_ofs, 0, sizeof(g->ring_ofs));
	for (uint32_t e = 0; e < g->nends; e++) {
		for (uint32_t i = 0; i < g->ntx; i++) {
			o = ALIGN_UP(o, 64);
			g->ring_ofs[e][i] = o;
			o += sizeof(struct vale_ring) + (uint64_t)g->tx_slots * sizeof(struct vale_slot);
		}
		for (uint32_t i = 0; i < g->nrx; i++) {
			o = ALIGN_UP(o, 64);
			g->ring_ofs[e][VALE_MAX_RINGS + i] = o;
			o += sizeof(struct vale_ring) + (uint64_t)g->rx_slots * sizeof(struct vale_slot);
		}
	}
	g->buf_ofs = ALIGN_UP(o, 4096);
	g->nbufs = 2 + g->nends * (g->ntx * g->tx_slots + g->nrx * g->rx_slots);
	g->size = g->buf_ofs + (uint64_t)g->nbufs * VALE_BUF_SIZE;
	return 0;
}

static void map_from_geom(struct vale_map *m, const struct geom *g, uint8_t *base, uint32_t gen)
{
	m->nends = g->nends;
	m->ntx = g->ntx;
	m->nrx = g->nrx;
	m->tx_slots = g->tx_slots;
	m->rx_slots = g->rx_slots;
	m->nbufs = g->nbufs;
	m->kring_ofs = g->kring_ofs;
	m->buf_ofs = g->buf_ofs;
	memcpy(m->ring_ofs, g->ring_ofs, sizeof(m->ring_ofs));
	m->base = base;
	m->size = g->size;
	m->region_gen = gen;
	m->bell_fd[0] = m->bell_fd[1] = -1;
	m->bus = 0;
}

static int region_create(struct vale_sw *sw, const char *path, struct geom *g, struct vale_map *m,
			 uint32_t gen, int *fd_out)
{
	int fd = vale_sw_create(sw, path, O_RDWR);
	if (fd == -EEXIST) { /* left over by a crash between create and record */
		unlinkat(sw->dir_fd, path, 0);
		fd = vale_sw_create(sw, path, O_RDWR);
	}
	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)g->size)) {
		int e = errno;
		close(fd);
		unlinkat(sw->dir_fd, path, 0);
		return -e;
	}
	uint8_t *base = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		int e = errno;
		close(fd);
		unlinkat(sw->dir_fd, path, 0);
		return -e;
	}
	map_from_geom(m, g, base, gen);
	vale_guard_add(base, g->size, &m->bus);
	struct vale_region_hdr *h = (struct vale_region_hdr *)base;
	h->version = VALE_LAYOUT_VERSION;
	h->size = g->size;
	h->ntx = g->ntx;
	h->nrx = g->nrx;
	h->tx_slots = g->tx_slots;
	h->rx_slots = g->rx_slots;
	h->nbufs = g->nbufs;
	h->buf_size = VALE_BUF_SIZE;
	h->nends = g->nends;
	h->kring_ofs = g->kring_ofs;
	h->buf_ofs = g->buf_ofs;
	for (uint32_t e = 0; e < 2; e++)
		for (uint32_t i = 0; i < 2 * VALE_MAX_RINGS; i++)
			h->ring_ofs[e * 2 * VALE_MAX_RINGS + i] = g->ring_ofs[e][i];
	uint32_t next_buf = 2; /* 0 and 1 are reserved, as in netmap */
	for (uint32_t e = 0; e < g->nends; e++) {
		for (int rx = 0; rx < 2; rx++) {
			uint32_t nr = rx ? g->nrx : g->ntx, ns = rx ? g->rx_slots : g->tx_slots;
			for (uint32_t i = 0; i < nr; i++) {
				struct vale_kring *k = vale_kring(m, e, rx, i);
				struct vale_ring *ring = vale_ring(m, e, rx, i);
				vale_lock_init(&k->lock);
				ring->num_slots = ns;
				ring->nr_buf_size = VALE_BUF_SIZE;
				ring->ringid = (uint16_t)i;
				ring->dir = (uint16_t)rx;
				ring->buf_ofs = (int64_t)g->buf_ofs - (int64_t)(m->ring_ofs[e][(rx ? VALE_MAX_RINGS : 0) + i]);
				ring->head = ring->cur = 0;
				ring->tail = rx ? 0 : ns - 1;
				k->hwcur = 0;
				k->hwtail = rx ? 0 : ns - 1;
				k->hwlease = 0;
				k->rtail = ring->tail;
				for (uint32_t s = 0; s < ns; s++)
					ring->slot[s].buf_idx = next_buf++;
			}
		}
	}
	STORE_REL(&h->magic, VALE_MAGIC);
	*fd_out = fd;
	return 0;
}

/* Map an existing region, validating its header against its size. */
static int region_map(struct vale_sw *sw, const char *path, uint32_t gen, struct vale_map *m,
		      int *fd_out)
{
	int fd = vale_sw_open(sw, path, O_RDWR, S_IFREG, fd_out != NULL); /* report when opening */
	if (fd < 0)
		return fd;
	struct stat st;
	struct vale_region_hdr h;
	if (fstat(fd, &st) || pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		close(fd);
		return -EPROTO;
	}
	struct geom g = {.nends = h.nends, .ntx = h.ntx, .nrx = h.nrx, .tx_slots = h.tx_slots,
			 .rx_slots = h.rx_slots};
	if (h.magic != VALE_MAGIC || h.version != VALE_LAYOUT_VERSION || geom_compute(&g) ||
	    g.size != (uint64_t)st.st_size || g.nbufs != h.nbufs) {
		close(fd);
		return -EPROTO;
	}
	uint8_t *base = mmap(NULL, g.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		int e = errno;
		close(fd);
		return -e;
	}
	map_from_geom(m, &g, base, gen);
	vale_guard_add(base, g.size, &m->bus); /* callers that move *m re-point the flag */
	if (fd_out)
		*fd_out = fd;
	else
		close(fd);
	return 0;
}

/* The mapping of the region that port `idx` lives in, for forwarding into it.
 * Returns NULL if the port is not active or its region cannot be mapped. */
struct vale_map *vale_map_get(struct vale_sw *sw, uint32_t idx, uint32_t *end)
{
	if (idx >= sw->max_ports)
		return NULL;
	struct vale_port_ent *e = &sw->ports[idx];
	if (LOAD_ACQ(&e->state) != VP_ACTIVE)
		return NULL;
	uint32_t ridx = LOAD_RLX(&e->region_idx), rgen = LOAD_RLX(&e->region_gen);
	uint32_t pend = LOAD_RLX(&e->end);
	if (ridx >= sw->max_ports || pend > 1)
		return NULL;
	struct vale_map *m = &sw->maps[ridx];
	if (likely(LOAD_ACQ(&m->region_gen) == rgen && rgen != 0)) {
		if (unlikely(pend >= m->nends || m->bus))
			return NULL; /* damaged entry, or its file was truncated */
		*end = pend;
		return m;
	}
	pthread_mutex_lock(&sw->mlock);
	if (m->region_gen != rgen || rgen == 0) {
		struct vale_map nm;
		memset(&nm, 0, sizeof(nm));
		char path[PATH_MAX + 32];
		region_path(sw, ridx, rgen, path, sizeof(path));
		/* A client flipping region numbers in the port table must not make us
		 * map without end: stale mappings wait in the graveyard until no sync
		 * can use them, and past a bound we stop remapping. */
		if (rgen == 0 || sw->ngraves >= 64 || region_map(sw, path, rgen, &nm, NULL)) {
			pthread_mutex_unlock(&sw->mlock);
			return NULL;
		}
		if (m->region_gen) { /* a sync elsewhere in this process may still copy into it */
			struct vale_grave *g = malloc(sizeof(*g));
			vale_guard_flag(m->base, NULL);
			if (g) {
				sw->ngraves++;
				g->base = m->base;
				g->size = m->size;
				g->bell_fd[0] = m->bell_fd[0];
				g->bell_fd[1] = m->bell_fd[1];
				g->next = sw->graves;
				sw->graves = g;
			}
		}
		STORE_REL(&m->region_gen, 0);
		uint32_t g2 = nm.region_gen;
		nm.region_gen = 0;
		*m = nm;
		vale_guard_flag(m->base, &m->bus);
		STORE_REL(&m->region_gen, g2);
	}
	pthread_mutex_unlock(&sw->mlock);
	if (pend >= m->nends)
		return NULL;
	*end = pend;
	return m;
}

/* Unmap stale mappings once no sync in this process can be inside them. */
void vale_graves_sweep(struct vale_sw *sw, bool wait)
{
	if (!LOAD_RLX(&sw->graves))
		return;
	if (wait)
		pthread_rwlock_wrlock(&sw->sync_rw);
	else if (pthread_rwlock_trywrlock(&sw->sync_rw))
		return; /* a sync is running here: next time */
	pthread_mutex_lock(&sw->mlock);
	struct vale_grave *g = sw->graves;
	sw->graves = NULL;
	sw->ngraves = 0;
	pthread_mutex_unlock(&sw->mlock);
	pthread_rwlock_unlock(&sw->sync_rw);
	for (struct vale_grave *n; g; g = n) {
		n = g->next;
		vale_guard_del(g->base);
		munmap(g->base, g->size);
		for (int e = 0; e < 2; e++)
			if (g->bell_fd[e] >= 0)
				close(g->bell_fd[e]);
		free(g);
	}
}

/* ---------------- liveness ---------------- */

static int ofd_lock(int fd, uint32_t end, bool exclusive, bool test_only)
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
	region_path(sw, e->region_idx, e->region_gen, path, sizeof(path));
	int fd = openat(sw->dir_fd, path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	int r = ofd_lock(fd, e->end, true, true);
	close(fd);
	e->last_probe_ns = vale_now_ns();
	return r;
}

/* ---------------- port table ---------------- */

static void active_publish(struct vale_sw *sw, uint32_t *list, uint32_t n)
{
	struct vale_ctl_hdr *h = sw->ctl;
	STORE_REL(&h->active_seq, h->active_seq + 1); /* odd: changing */
	FENCE();
	memcpy(sw->active, list, n * sizeof(uint32_t));
	STORE_RLX(&h->nactive, n);
	FENCE();
	STORE_REL(&h->active_seq, h->active_seq + 1);
}

/* Recompute the active list from the port table (after a crash or change). */
static void active_rebuild(struct vale_sw *sw)
{
	uint32_t n = 0;
	uint32_t *tmp = malloc(sw->max_ports * sizeof(uint32_t));
	if (!tmp)
		return;
	for (uint32_t i = 0; i < sw->max_ports; i++) {
		struct vale_port_ent *e = &sw->ports[i];
		if (e->state == VP_ACTIVE && !(e->flags & VPF_PIPE))
			tmp[n++] = i;
	}
	if (sw->ctl->active_seq & 1)
		sw->ctl->active_seq++;
	active_publish(sw, tmp, n);
	free(tmp);
}

static int find_port(struct vale_sw *sw, const char *name)
{
	for (uint32_t i = 0; i < sw->max_ports; i++) {
		struct vale_port_ent *e = &sw->ports[i];
		if (e->state != VP_FREE && strncmp(e->name, name, VALE_NAME_MAX) == 0)
			return (int)i;
	}
	return -1;
}

static bool switch_empty(struct vale_sw *sw)
{
	for (uint32_t i = 0; i < sw->max_ports; i++)
		if (sw->ports[i].state != VP_FREE)
			return false;
	return true;
}

/* Remove the switch's files; caller holds the ctl lock and checked it is empty. */
static void switch_destroy_locked(struct vale_sw *sw)
{
	STORE_REL(&sw->ctl->dead, 1);
	int dfd = openat(sw->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			unlinkat(sw->dir_fd, de->d_name, 0);
		}
		closedir(d);
	} else if (dfd >= 0) {
		close(dfd);
	}
	unlinkat(sw->run_fd, sw->name, AT_REMOVEDIR);
}

bool vale_switch_gc_locked(struct vale_sw *sw)
{
	if (!switch_empty(sw))
		return false;
	switch_destroy_locked(sw);
	return true;
}

static void reclaim_dead_leases_all(struct vale_sw *sw);

/* Free entry idx: forget its MACs, drop it from the active list, remove its
 * files (a pipe's region only when the other end is gone too). */
static void port_remove_locked(struct vale_sw *sw, uint32_t idx)
{
	struct vale_port_ent *e = &sw->ports[idx];
	STORE_REL(&e->state, VP_DYING);
	uint32_t n = 0, *tmp = malloc(sw->max_ports * sizeof(uint32_t));
	if (tmp) {
		uint32_t na = LOAD_RLX(&sw->ctl->nactive);
		for (uint32_t i = 0; i < na && i < sw->max_ports; i++)
			if (sw->active[i] != idx)
				tmp[n++] = sw->active[i];
		active_publish(sw, tmp, n);
		free(tmp);
	}
	vale_mac_forget_port(sw, idx);
	vale_lookup_refresh(sw);
	if (sw->dtor)
		sw->dtor(idx, sw->priv);
	char p[PATH_MAX + 32];
	bell_path(sw, idx, p, sizeof(p));
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
		region_path(sw, e->region_idx, e->region_gen, p, sizeof(p));
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
			port_remove_locked(sw, i);
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
		port_remove_locked(sw, i);
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

/* Create or join port `name` of switch sw; caller holds the ctl lock. */
static int port_open_locked(struct vale_sw *sw, const char *name, const struct vale_open_req *req,
			    vale_port *p)
{
	uint32_t of = req->flags;
	bool exclusive = of & VO_EXCLUSIVE;
	int idx = find_port(sw, name);
	char path[PATH_MAX + 32];
	int r;
	if (idx >= 0) {
		struct vale_port_ent *e = &sw->ports[idx];
		if (e->state != VP_ACTIVE)
			return vale_err(EBUSY, "port %s:%s is being removed", sw->name, name);
		if (of & VO_CREATE_PERSISTENT)
			return vale_err(EEXIST, "%s:%s exists", sw->name, name);
		region_path(sw, e->region_idx, e->region_gen, path, sizeof(path));
		r = region_map(sw, path, e->region_gen, &p->m, &p->region_fd);
		if (r == -EACCES || r == -ELOOP)
			return r; /* refused: the message says why */
		if (r)
			return vale_err(-r, "cannot map port %s:%s: %s", sw->name, name, strerror(-r));
		if (e->end >= p->m.nends) {
			return vale_err(EPROTO, "port %s:%s: damaged entry", sw->name, name);
		}
		r = ofd_lock(p->region_fd, e->end, exclusive, false);
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
		peer = find_port(sw, pname);
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
		region_path(sw, pe->region_idx, pe->region_gen, path, sizeof(path));
		r = region_map(sw, path, pe->region_gen, &p->m, &p->region_fd);
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
		struct geom g = {.nends = pipe ? 2 : 1,
				 .ntx = clamp_def(req->ntx, 1),
				 .nrx = clamp_def(req->nrx, 1),
				 .tx_slots = clamp_def(req->tx_slots, VALE_DEF_SLOTS),
				 .rx_slots = clamp_def(req->rx_slots, VALE_DEF_SLOTS)};
		if (pipe) { /* both ends see the same shape */
			g.ntx = g.nrx = g.ntx > g.nrx ? g.ntx : g.nrx;
			g.tx_slots = g.rx_slots = g.tx_slots > g.rx_slots ? g.tx_slots : g.rx_slots;
		}
		if (geom_compute(&g))
			return vale_err(EINVAL,
					"bad ring configuration for %s:%s: rings 1..%u, slots %u..%u",
					sw->name, name, VALE_MAX_RINGS, VALE_MIN_SLOTS, VALE_MAX_SLOTS);
		region_path(sw, idx2, e->gen, path, sizeof(path));
		r = region_create(sw, path, &g, &p->m, e->gen, &p->region_fd);
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
	if (!(of & VO_CREATE_PERSISTENT)) {
		r = ofd_lock(p->region_fd, e->end, exclusive, false);
		if (r)
			return vale_err(-r, "cannot lock port %s:%s: %s", sw->name, name, strerror(-r));
		e->owner_pid = getpid();
		e->nopen = 1;
	}
	/* the doorbell FIFO; failure only costs pollability */
	bell_path(sw, idx2, path, sizeof(path));
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
			active_publish(sw, tmp, na + 1);
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
	if (!name || !valid_ident(name, VALE_NAME_MAX - 1, false, true))
		return vale_err(EINVAL, "invalid port name '%s' (1..%d characters of [A-Za-z0-9_.-{}])",
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
			if (switch_empty(sw))
				switch_destroy_locked(sw);
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
	bell_path(p->sw, p->idx, bp, sizeof(bp));
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
					port_remove_locked(sw, p->idx);
			}
		}
		if (switch_empty(sw))
			switch_destroy_locked(sw);
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
	return 0;
}

/* ---------------- control operations ---------------- */

VALE_API int vale_create_persistent(const char *run_dir, const char *sw, const char *port,
				    const struct vale_open_req *req)
{
	struct vale_open_req r;
	memset(&r, 0, sizeof(r));
	if (req)
		r = *req;
	r.flags |= VO_CREATE_PERSISTENT;
	r.flags &= ~(uint32_t)VO_NO_CREATE;
	return vale_open(run_dir, sw, port, &r, NULL);
}

VALE_API int vale_remove_port(const char *run_dir, const char *swname, const char *port)
{
	struct vale_sw *sw;
	int r = vale_switch_get(run_dir, swname, false, &sw);
	if (r)
		return r;
	r = vale_ctl_lock(sw);
	if (r)
		goto out;
	int idx = find_port(sw, port);
	if (idx < 0 || sw->ports[idx].state != VP_ACTIVE) {
		r = vale_err(ENXIO, "no port %s:%s", swname, port);
	} else if (vale_port_in_use(sw, (uint32_t)idx) > 0) {
		r = vale_err(EBUSY, "%s:%s is in use (pid %d)", swname, port, sw->ports[idx].owner_pid);
	} else {
		port_remove_locked(sw, (uint32_t)idx);
		if (switch_empty(sw))
			switch_destroy_locked(sw);
		r = 0;
	}
	vale_ctl_unlock(sw);
out:
	vale_switch_put(sw);
	return r;
}

/* Remove a switch whose control segment cannot be trusted any more: its
 * port table is not read at all. Ports still in use are found by their
 * liveness locks on the region files (held while a process has one open). */
static int switch_remove_damaged(const char *run_dir, const char *swname)
{
	if (!run_dir || !*run_dir)
		run_dir = getenv("VALE_RUN_DIR");
	if (!run_dir || !*run_dir)
		run_dir = VALE_DEFAULT_RUN_DIR;
	int rfd, r0 = vale_secure_opendir(run_dir, "run directory", "choose another VALE_RUN_DIR", false,
					     0, &rfd);
	if (r0)
		return r0;
	int dfd = openat(rfd, swname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		int e = errno;
		close(rfd);
		return vale_err(e, "cannot open switch %s in %s: %s", swname, run_dir, strerror(e));
	}
	DIR *d = fdopendir(dup(dfd));
	int r = 0, busy = 0;
	if (!d)
		r = vale_err(errno, "cannot list switch %s: %s", swname, strerror(errno));
	for (int pass = 0; d && !r && pass < 2; pass++) { /* 0: look for users, 1: remove */
		rewinddir(d);
		struct dirent *de;
		while ((de = readdir(d))) {
			const char *n = de->d_name;
			if (n[0] == '.')
				continue;
			if (pass == 1) {
				unlinkat(dfd, n, 0);
				continue;
			}
			if (n[0] != 'p' || strstr(n, ".bell"))
				continue;
			int fd = openat(dfd, n, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
			if (fd < 0)
				continue;
			for (uint32_t end = 0; end < 2; end++)
				if (ofd_lock(fd, end, true, true) == 1) {
					busy++;
					break;
				}
			close(fd);
		}
		if (pass == 0 && busy)
			r = vale_err(EBUSY,
				     "switch %s is damaged and %d of its ports are still open: stop the "
				     "processes using them, then remove it",
				     swname, busy);
	}
	if (d)
		closedir(d);
	if (!r && unlinkat(rfd, swname, AT_REMOVEDIR))
		r = vale_err(errno, "cannot remove switch directory %s/%s: %s", run_dir, swname,
			     strerror(errno));
	close(dfd);
	close(rfd);
	return r;
}

VALE_API int vale_remove_switch(const char *run_dir, const char *swname)
{
	struct vale_sw *sw;
	int r = vale_switch_get(run_dir, swname, false, &sw);
	if (r == -EPROTO) /* damaged: its port table means nothing */
		return switch_remove_damaged(run_dir, swname);
	if (r)
		return r;
	r = vale_ctl_lock(sw);
	if (r == -EPROTO) {
		vale_switch_put(sw);
		return switch_remove_damaged(run_dir, swname);
	}
	if (r)
		goto out;
	vale_reap_locked(sw, true);
	for (uint32_t i = 0; i < sw->max_ports; i++) {
		struct vale_port_ent *e = &sw->ports[i];
		if (e->state == VP_ACTIVE && vale_port_in_use(sw, i) > 0) {
			r = vale_err(EBUSY, "switch %s: port %s is in use (pid %d)", swname, e->name,
				     e->owner_pid);
			break;
		}
	}
	if (!r) {
		for (uint32_t i = 0; i < sw->max_ports; i++)
			if (sw->ports[i].state != VP_FREE)
				port_remove_locked(sw, i);
		switch_destroy_locked(sw);
	}
	vale_ctl_unlock(sw);
out:
	vale_switch_put(sw);
	return r;
}

VALE_API int vale_reap(const char *run_dir, const char *swname)
{
	struct vale_sw *sw;
	int r = vale_switch_get(run_dir, swname, false, &sw);
	if (r)
		return r;
	r = vale_ctl_lock(sw);
	if (!r) {
		vale_reap_locked(sw, true);
		if (switch_empty(sw))
			switch_destroy_locked(sw);
		vale_ctl_unlock(sw);
	}
	vale_graves_sweep(sw, true);
	vale_switch_put(sw);
	return r;
}

/* Record who serves a port and a free-text description (attachments). */
VALE_API int vale_port_set_info(const char *run_dir, const char *swname, const char *port,
				int32_t fwd_pid, const char *info)
{
	struct vale_sw *sw;
	int r = vale_switch_get(run_dir, swname, false, &sw);
	if (r)
		return r;
	r = vale_ctl_lock(sw);
	if (!r) {
		int idx = find_port(sw, port);
		if (idx < 0) {
			r = vale_err(ENXIO, "no port %s:%s", swname, port);
		} else {
			struct vale_port_ent *e = &sw->ports[idx];
			e->fwd_pid = fwd_pid;
			if (fwd_pid)
				e->flags |= VPF_FORWARDER;
			else
				e->flags &= ~(uint32_t)VPF_FORWARDER;
			snprintf(e->info, sizeof(e->info), "%s", info ? info : "");
		}
		vale_ctl_unlock(sw);
	}
	vale_switch_put(sw);
	return r;
}
