/*
 * Port regions: their geometry (checked against the file before it is
 * trusted), creating and mapping region files, the per-switch cache of
 * other ports' mappings used by the flush (vale_map_get), and the graveyard
 * of stale mappings unmapped once no sync can be inside them. Mappings are
 * registered with guard.c, which replaces one whose file shrank.
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

/* ---------------- port regions ---------------- */


int vale_geom_compute(struct vale_geom *g)
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

static void map_from_geom(struct vale_map *m, const struct vale_geom *g, uint8_t *base, uint32_t gen)
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

int vale_region_create(struct vale_sw *sw, const char *path, struct vale_geom *g, struct vale_map *m,
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
int vale_region_map(struct vale_sw *sw, const char *path, uint32_t gen, struct vale_map *m,
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
	struct vale_geom g = {.nends = h.nends, .ntx = h.ntx, .nrx = h.nrx, .tx_slots = h.tx_slots,
			 .rx_slots = h.rx_slots};
	if (h.magic != VALE_MAGIC || h.version != VALE_LAYOUT_VERSION || vale_geom_compute(&g) ||
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
		vale_region_path(sw, ridx, rgen, path, sizeof(path));
		/* A client flipping region numbers in the port table must not make us
		 * map without end: stale mappings wait in the graveyard until no sync
		 * can use them, and past a bound we stop remapping. */
		if (rgen == 0 || sw->ngraves >= 64 || vale_region_map(sw, path, rgen, &nm, NULL)) {
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
	vale_graves_free(g);
}

void vale_graves_free(struct vale_grave *g)
{
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
