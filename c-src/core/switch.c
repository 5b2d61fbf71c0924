/*
 * Switch handles: the per-process struct vale_sw of a switch, its control
 * segment (created, validated, mapped; damage detection), the control lock,
 * the active list, file names inside the switch directory, and removing an
 * empty switch. Below port.c and region.c: calls only err, lock, guard,
 * fsafe (and dlclose for a module loaded by lookup.c).
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

/* A switch or port name: 1..max bytes of printable ASCII except space and the
 * characters the name grammar (lib/names.ts) reserves -- '/' (also the path
 * separator: a switch is a directory), ':' (switch:port), '^' '*' '@' (suffixes),
 * '{' '}' (pipes; only when allow_pipe) -- and not starting with '.' (no hidden
 * names, no "." or ".."). The 2012 VALE names (vale-a, vale-foo) need '-'. */
bool vale_valid_ident(const char *s, size_t max, bool allow_empty, bool allow_pipe)
{
	size_t n = strnlen(s, max + 1);
	if (n > max || (n == 0 && !allow_empty))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || strchr("/:^*@", c) ||
		    (!allow_pipe && (c == '{' || c == '}')))
			return false;
	}
	return !(n > 0 && s[0] == '.');
}

/* File names inside the switch directory (opened relative to sw->dir_fd). */
void vale_region_path(struct vale_sw *sw, uint32_t idx, uint32_t gen, char *out, size_t n)
{
	snprintf(out, n, "p%u.%u", idx, gen);
}
void vale_bell_path(struct vale_sw *sw, uint32_t idx, char *out, size_t n)
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
	vale_graves_free(sw->graves);
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
	if (!name || !vale_valid_ident(name, VALE_SW_NAME_MAX - 1, false, false))
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

/* ---------------- active list and removal ---------------- */

void vale_active_publish(struct vale_sw *sw, uint32_t *list, uint32_t n)
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
	vale_active_publish(sw, tmp, n);
	free(tmp);
}

bool vale_switch_empty(struct vale_sw *sw)
{
	for (uint32_t i = 0; i < sw->max_ports; i++)
		if (sw->ports[i].state != VP_FREE)
			return false;
	return true;
}

/* Remove the switch's files; caller holds the ctl lock and checked it is empty. */
void vale_switch_destroy_locked(struct vale_sw *sw)
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
	if (!vale_switch_empty(sw))
		return false;
	vale_switch_destroy_locked(sw);
	return true;
}
