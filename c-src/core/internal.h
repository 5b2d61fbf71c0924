/* Process-private state of libvale and helpers shared by its C files. */
#ifndef VALE_INTERNAL_H
#define VALE_INTERNAL_H

#include "vale_app.h" /* atomics, likely(), ring index arithmetic */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define REGION_HDR_SIZE 4096u
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))

/* A validated, process-private copy of a region's geometry plus its mapping.
 * Geometry is read from the region header once, checked against the file
 * size, and never read from shared memory again, so a client scribbling on
 * the header cannot make us index outside the mapping. */
struct vale_map {
	uint32_t region_gen; /* 0: not mapped */
	uint32_t nends, ntx, nrx, tx_slots, rx_slots, nbufs;
	uint8_t *base;
	uint64_t size;
	uint64_t kring_ofs, buf_ofs;
	uint64_t ring_ofs[2][2 * VALE_MAX_RINGS];
	int bell_fd[2]; /* write side of each end's doorbell, opened lazily (-1) */
	volatile uint32_t bus; /* the file shrank under us: mapping replaced (guard.c) */
};

struct vale_grave { /* a stale mapping unmapped once no sync can be using it */
	struct vale_grave *next;
	void *base;
	uint64_t size;
	int bell_fd[2];
};

typedef uint32_t (*vale_lookup_fn)(const uint8_t *buf, uint32_t len, uint8_t *dst_ring,
				   uint32_t src_port, void *priv);
typedef int (*vale_config_fn)(const char *req, uint32_t len, void *priv, uint32_t priv_size,
			      char *reply, uint32_t reply_len);
typedef void (*vale_dtor_fn)(uint32_t port, void *priv);

/* One per switch per process, shared by all ports of that switch here. */
struct vale_sw {
	struct vale_sw *next;
	int refs;
	char dir[PATH_MAX];
	char name[VALE_SW_NAME_MAX];
	int ctl_fd;
	struct vale_ctl_hdr *ctl;
	uint64_t ctl_size;
	volatile uint32_t ctl_bus; /* ctl shrank under us: mapping replaced (guard.c) */
	uint64_t ports_ofs, active_ofs, mac_ofs, priv_ofs; /* as validated at map time */
	struct vale_port_ent *ports;
	uint32_t *active;
	struct vale_mac_ent *mac;
	uint8_t *priv;
	uint32_t max_ports, mac_mask, age_s;
	uint32_t test_lease_delay_us;
	/* VALE_TEST_LEASE_DELAY_US above: widen the lease window (crash tests) */
	struct vale_map *maps; /* indexed by region index */
	pthread_mutex_t mlock; /* maps slow path and graveyard */
	pthread_rwlock_t sync_rw; /* syncs hold it shared; unmapping takes it exclusive */
	struct vale_grave *graves;
	uint32_t ngraves;
	/* lookup module as loaded in this process */
	uint32_t lookup_gen;
	int lookup_kind; /* LK_* */
	vale_lookup_fn lookup;
	vale_config_fn config;
	vale_dtor_fn dtor;
	void *dl;
	/* files (fsafe.c): everything is opened relative to these, never by path */
	int run_fd, dir_fd;      /* run directory and switch directory (O_DIRECTORY) */
	uint32_t dir_uid, dir_gid; /* owner of the switch directory */
	bool shared;             /* group-shared switch (directory 02770, files 0660) */
	int dl_fd;               /* the checked module file dlopen()ed via /proc/self/fd */
	int lookup_errno;        /* the switch's module was refused here (0: fine) */
	char lookup_err[400];    /* ... and why */
};
enum { LK_LEARNING = 0, LK_PORTMAP = 1, LK_ETHERTYPE = 2, LK_USER = 3 };

#define VALE_MAX_MONITORS 16 /* monitors of one port */

/* one packet of a flush batch */
struct vale_ft {
	uint32_t slot;   /* first slot in the source TX ring */
	uint32_t len;    /* total length */
	uint32_t dst;    /* port index, VALE_BROADCAST or VALE_DROP */
	uint32_t next;   /* next packet for the same destination list */
	uint16_t nfrags;
	uint8_t dst_ring;
	uint8_t _p;
};

struct vale_port {
	struct vale_sw *sw;
	uint32_t idx, gen, end;
	uint32_t flags;      /* VPF_* of the entry */
	uint32_t oflags;     /* VO_* requested */
	int region_fd;       /* holds our OFD lock on byte `end` while open */
	struct vale_map m;   /* own region (private copy; not in sw->maps) */
	uint32_t first_ring, last_ring;
	int bell_rd;         /* our doorbell, read side (O_RDWR FIFO) */
	/* flush scratch, allocated at open: no allocation on the hot path */
	struct vale_ft ft[VALE_MAX_BATCH];
	uint32_t *dst_head, *dst_tail; /* max_ports + 1 (last: broadcast list) */
	uint32_t *dst_npk, *dst_nsl;   /* packets and slots queued per destination */
	uint32_t *touched;
	uint32_t *act; /* snapshot of the active list for floods */
	uint32_t ntouched;
	uint32_t shl; /* our virtio-net header length during this flush */
	volatile uint32_t woken; /* vale_wake() not yet seen by a vale_wait() (wait.c) */
	/* our monitors (monitor.c), one list per direction, each rebuilt by its
	 * own sync when our entry's mon_seq moves: a TX thread and an RX thread
	 * may share this handle (the forwarders do), and never share a list */
	struct vale_monlist {
		uint32_t seen; /* mon_seq the list was built from */
		uint32_t n;    /* monitors (0: the common case) */
		struct vale_mon { uint32_t idx, gen; } m[VALE_MAX_MONITORS];
	} mon_tx, mon_rx;
	const volatile uint32_t *mon_seq; /* our entry's mon_seq (set at open) */
	/* vale_set_backpressure(): how long a flush may wait for room in a full
	 * destination (0: drop at once, netmap's way), and the last destination
	 * seen not draining at all (not waited for again for a while) */
	uint32_t bp_wait_us;
	uint32_t bp_stalled_idx;
	uint64_t bp_stalled_until_ns;
	/* vale_set_tx_source(): the sender's private source table (NULL: the
	 * slots' own buffers, the common case; one load per txsync) */
	const struct vale_src_slot *srct;
	const struct vale_src_slot *src_cur; /* srct's part for the ring being flushed */
};

/* ---- guard.c: mappings of files that may shrink under us ---- */
void vale_guard_add(void *base, uint64_t size, volatile uint32_t *flag);
void vale_guard_flag(void *base, volatile uint32_t *flag);
void vale_guard_del(void *base);

/* ---- err.c: the bottom of core/ ---- */
int vale_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t vale_now_ns(void);
bool vale_pid_alive(int32_t pid);

/* ---- switch.c: switch handles, control segment, control lock, active list ---- */
bool vale_ctl_damaged(struct vale_sw *sw);
int vale_ctl_damage_err(struct vale_sw *sw);
int vale_ctl_lock(struct vale_sw *sw);
void vale_ctl_unlock(struct vale_sw *sw);
int vale_switch_get(const char *run_dir, const char *sw, bool create, struct vale_sw **out);
/* the same, for vale_open: want_gid >= 0 shares a new switch (VO_GROUP) */
int vale_switch_get_ex(const char *run_dir, const char *sw, bool create, int64_t want_gid,
		       struct vale_sw **out);
void vale_switch_put(struct vale_sw *sw);
/* port and switch names: letters, digits, _ . - (and { } for pipes) */
bool vale_valid_ident(const char *s, size_t max, bool allow_empty, bool allow_pipe);
/* file names inside the switch directory (opened relative to sw->dir_fd) */
void vale_region_path(struct vale_sw *sw, uint32_t idx, uint32_t gen, char *out, size_t n);
void vale_bell_path(struct vale_sw *sw, uint32_t idx, char *out, size_t n);
/* publish a new active list (seqlock); caller holds the ctl lock */
void vale_active_publish(struct vale_sw *sw, uint32_t *list, uint32_t n);
bool vale_switch_empty(struct vale_sw *sw);
/* Remove the switch's files; caller holds the ctl lock and checked it is empty. */
void vale_switch_destroy_locked(struct vale_sw *sw);
/* remove the switch if no port is left (listing); caller holds the ctl lock */
bool vale_switch_gc_locked(struct vale_sw *sw);

/* ---- region.c: port regions and the cache of other ports' mappings ---- */
struct vale_geom { /* a region's layout, computed from its sizes */
	uint32_t nends, ntx, nrx, tx_slots, rx_slots, nbufs;
	uint64_t kring_ofs, buf_ofs, size;
	uint64_t ring_ofs[2][2 * VALE_MAX_RINGS];
};
int vale_geom_compute(struct vale_geom *g);
int vale_region_create(struct vale_sw *sw, const char *path, struct vale_geom *g, struct vale_map *m,
		       uint32_t gen, int *fd_out);
int vale_region_map(struct vale_sw *sw, const char *path, uint32_t gen, struct vale_map *m,
		    int *fd_out);
struct vale_map *vale_map_get(struct vale_sw *sw, uint32_t port_idx, uint32_t *end);
/* Unmap stale mappings once no sync in this process can be inside them
 * (wait == false: only if that is so right now). */
void vale_graves_sweep(struct vale_sw *sw, bool wait);
/* Unmap and free a list of stale mappings (no sync may be using them). */
void vale_graves_free(struct vale_grave *g);

/* ---- port.c: ports, the port table, liveness, reaping ---- */
void vale_reap_locked(struct vale_sw *sw, bool force);
int vale_port_in_use(struct vale_sw *sw, uint32_t idx);
int vale_ofd_lock(int fd, uint32_t end, bool exclusive, bool test_only);
int vale_find_port(struct vale_sw *sw, const char *name);
void vale_port_remove_locked(struct vale_sw *sw, uint32_t idx);
int vale_vnet_check(int32_t hdr_len, int32_t mtu);
void vale_vnet_apply(struct vale_port_ent *e, int32_t hdr_len, int32_t mtu);

static inline struct vale_kring *vale_kring(const struct vale_map *m, uint32_t end, bool rx,
					    uint32_t ring)
{
	uint32_t k = end * (m->ntx + m->nrx) + (rx ? m->ntx + ring : ring);
	return (struct vale_kring *)(m->base + m->kring_ofs + (uint64_t)k * sizeof(struct vale_kring));
}
static inline struct vale_ring *vale_ring(const struct vale_map *m, uint32_t end, bool rx,
					  uint32_t ring)
{
	return (struct vale_ring *)(m->base + m->ring_ofs[end][(rx ? VALE_MAX_RINGS : 0) + ring]);
}
static inline uint8_t *vale_buf(const struct vale_map *m, uint32_t idx)
{
	return m->base + m->buf_ofs + (uint64_t)idx * VALE_BUF_SIZE;
}
static inline struct vale_wake *vale_wakep(const struct vale_map *m, uint32_t end)
{
	return &((struct vale_region_hdr *)m->base)->wake[end];
}
static inline uint32_t ring_add(uint32_t i, uint32_t k, uint32_t n)
{
	i += k;
	return i >= n ? i - n : i;
}

/* ---- lock.c: locks in shared memory (see there why not pthread mutexes) ---- */
#define VALE_KRING_STALE_MS 200 /* a kring lock unchanged this long is taken over */
#define VALE_CTL_STALE_MS 1000	/* the control lock: port-table changes do file I/O */
extern uint32_t vale_g_pid;	/* our pid, kept right across fork() */
void vale_lock_init(struct vale_lock *l);
int vale_lock_slow(struct vale_lock *l, uint32_t stale_ms, bool *recovered);
void vale_unlock_slow(struct vale_lock *l);
/* Lock; *recovered is set when the lock was taken over from a dead, stuck or
 * garbage owner, so the caller repairs what it protects. Never fails. */
static inline void vale_lock(struct vale_lock *l, uint32_t stale_ms, bool *recovered)
{
	uint32_t z = 0;
	*recovered = false;
	if (likely(__atomic_compare_exchange_n(&l->owner, &z, vale_g_pid, false, __ATOMIC_ACQUIRE,
					       __ATOMIC_RELAXED))) {
		ADD_RLX(&l->seq, 1);
		return;
	}
	vale_lock_slow(l, stale_ms, recovered);
}
static inline void vale_unlock(struct vale_lock *l)
{
	uint32_t me = vale_g_pid;
	if (likely(__atomic_compare_exchange_n(&l->owner, &me, 0, false, __ATOMIC_RELEASE,
					       __ATOMIC_RELAXED)))
		return;
	vale_unlock_slow(l); /* waiters to wake, or not ours any more */
}

/* ---- fsafe.c: paths, owners and permissions ----
 * vale never follows a symlink and never uses a file or directory of another
 * user (see the comment at the top of fsafe.c). Every function returns a
 * -errno and sets vale_last_error() when it refuses. */
#define VALE_DEFAULT_RUN_DIR "/dev/shm/vale"
bool vale_in_group(uint32_t gid);
int vale_secure_opendir(const char *path, const char *what, const char *hint, bool create,
			mode_t last_mode, int *fd_out);
/* Open (creating it if asked) the run directory and switch directory of sw
 * (sw->name set); fills sw->run_fd, dir_fd, dir_uid, dir_gid, shared.
 * want_gid: share a new switch with this group (-1: the VALE_GROUP fallback);
 * strict: fail when an existing switch is not shared that way. */
int vale_swdir_open(struct vale_sw *sw, const char *run_dir, bool create, int64_t want_gid,
		    bool strict);
/* A file of the switch directory: O_NOFOLLOW, then type, links, owner and
 * mode checked. type: S_IFREG or S_IFIFO. Returns the fd or -errno; sets the
 * message only when report. */
int vale_sw_open(struct vale_sw *sw, const char *name, int flags, mode_t type, bool report);
/* Create a new regular file (O_EXCL) with the switch's mode and group. */
int vale_sw_create(struct vale_sw *sw, const char *name, int flags);
/* (Re)create a doorbell FIFO with the switch's mode and group; 0 or -errno. */
int vale_sw_mkfifo(struct vale_sw *sw, const char *name);
/* A lookup module may run here: the switch and the object are the caller's or
 * root's and nobody else can write them. Returns an O_RDONLY fd of the object. */
int vale_module_open(struct vale_sw *sw, const char *path, int *fd_out);

/* ---- lookup.c ---- */
int vale_lookup_refresh(struct vale_sw *sw);
/* MACs are handled as the 48 low bits of a little-endian load: no byte
 * shuffling on the hot path (frames have >= 14 bytes, buffers 2048). */
static inline uint64_t vale_mac48(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v & 0xffffffffffffull;
}
static inline uint32_t vale_mac_hash(uint64_t mac, uint32_t mask)
{
	return (uint32_t)((mac * 0x9E3779B97F4A7C15ull) >> 40) & mask;
}

/* VALE's learning bridge: learn the source when unicast, forward a known
 * unicast destination to its port, flood the rest. Entries older than the
 * switch's age are ignored (and overwritten), so they age out. */
static inline uint32_t vale_learning_lookup(struct vale_sw *sw, const uint8_t *buf, uint32_t src,
					    bool learn, uint32_t now_s)
{
	uint64_t smac = vale_mac48(buf + 6);
	if (learn && !(smac & 1)) {
		struct vale_mac_ent *e = &sw->mac[vale_mac_hash(smac, sw->mac_mask)];
		uint64_t key = smac << 16 | src;
		/* write only what changed: a hot entry stays clean in other caches */
		if (LOAD_RLX(&e->key) != key)
			STORE_RLX(&e->key, key);
		if (LOAD_RLX(&e->seen_s) != now_s)
			STORE_RLX(&e->seen_s, now_s);
	}
	uint64_t dmac = vale_mac48(buf);
	if (dmac & 1)
		return VALE_BROADCAST; /* broadcast and multicast */
	const struct vale_mac_ent *e = &sw->mac[vale_mac_hash(dmac, sw->mac_mask)];
	uint64_t key = LOAD_RLX(&e->key);
	if ((key >> 16) != dmac || key == 0)
		return VALE_BROADCAST;
	if (now_s - LOAD_RLX(&e->seen_s) > sw->age_s)
		return VALE_BROADCAST; /* aged out */
	return (uint32_t)(key & 0xffff);
}
void vale_mac_forget_port(struct vale_sw *sw, uint32_t port);

/* ---- wait.c: waking a sleeping owner ---- */
void vale_wake_end_slow(struct vale_map *m, uint32_t end, struct vale_sw *sw, uint32_t bell_idx);
/* Wake the owner of `end` of region m if it sleeps (the protocol: see
 * vale_wake_end_slow in wait.c). One fence and one load when nobody sleeps:
 * the common case costs no call and no system call. */
static inline void vale_wake_end(struct vale_map *m, uint32_t end, struct vale_sw *sw,
				 uint32_t bell_idx)
{
	struct vale_wake *w = vale_wakep(m, end);
	FENCE();
	uint32_t bits = LOAD_RLX(&w->waiting);
	if (likely(!(bits & (VW_FUTEX | VW_BELL))))
		return; /* nobody sleeps, or every sleeper was woken and has not looked yet */
	vale_wake_end_slow(m, end, sw, bell_idx);
}

/* ---- monitor.c: copy monitors (/r /t /z) ---- */
/* The directions a monitor copies: /t TX, /r RX, /rt, /z (alone) both. */
static inline uint32_t vale_mon_dirs(uint32_t of)
{
	uint32_t d = of & (VO_MONITOR_TX | VO_MONITOR_RX);
	return d ? d : VO_MONITOR_TX | VO_MONITOR_RX;
}
void vale_mon_refresh(vale_port *p, bool rx, uint32_t seq);
void vale_mon_copy(vale_port *p, bool rx, const struct vale_ring *ring, uint32_t nslots, uint32_t ri,
		   uint32_t from, uint32_t to);
/* The one shared load a sync pays for monitors: has our monitor list changed? */
static inline void vale_mon_check(vale_port *p, bool rx)
{
	uint32_t s = LOAD_ACQ(p->mon_seq);
	if (unlikely(s != (rx ? p->mon_rx.seen : p->mon_tx.seen)))
		vale_mon_refresh(p, rx, s);
}

/* ---- lease.c (the lease steps of the flush: lease.h) ---- */
void vale_reclaim_leases(struct vale_kring *k, struct vale_ring *ring, uint32_t nslots, bool force,
			 struct vale_counters *c);

#endif
