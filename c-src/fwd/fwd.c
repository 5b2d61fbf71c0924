/*
 * vale: the forwarder between a kernel interface (struct vale_io, io.h) and
 * a vale port (a switch port, or one end of a pipe).
 *
 * Two threads per forwarder, one per direction, so a slow direction never
 * holds up the other and each sleeps on its own event:
 *
 *   kernel -> port  recv_batch() straight into the free slots of the port's
 *                   TX ring (the ring's own buffers: one copy), then one
 *                   vale_txsync() per batch. A backend that can leave the
 *                   frames where they are (vhost-user: the guest's memory,
 *                   mapped only in this process) describes them instead in
 *                   a private source table of the port handle
 *                   (vale_io_recv_direct, vale_set_tx_source): the txsync
 *                   copies them from there straight into the destinations'
 *                   rings (one copy), then the entries are cleared and the
 *                   backend gets its buffers back (vale_io_recv_release). Idle: poll() on the I/O fd and
 *                   the stop eventfd; every idle_ms the link is checked
 *                   (down / removed interfaces are seen even when the fd
 *                   says nothing, e.g. AF_XDP).
 *   port -> kernel  vale_rxsync(), the received slots' buffers go to
 *                   send_batch() as they are (one copy into the kernel ring,
 *                   one syscall per batch for AF_PACKET / AF_XDP). Idle:
 *                   vale_wait() on the port (futex; senders pay a wake-up
 *                   only when we sleep); a full kernel TX ring: poll for
 *                   VIO_POLL_OUT.
 *
 * A pipe end gives back-pressure (its TX ring stays full while the peer does
 * not read): the kernel->port thread then backs off, and the kernel counts
 * what it could not queue (rx_kernel_drops). A switch port waits for a full
 * destination (vale_set_backpressure, FWD_BACKPRESSURE_US) while the kernel's
 * socket buffer holds the rest; past that, the switch drops and counts.
 *
 * Interface down: frames from the port are dropped and counted (v2k_drops),
 * the state is VFS_DOWN until it is up again. Interface removed: both threads
 * end, the state is VFS_GONE with the message, vale_fwd_wait() returns.
 *
 * Frames pass as they are, virtio-net header included when the interface
 * was opened with one (VIO_F_VNET_HDR): the port must have the same header
 * length (vale_fwd_create refuses otherwise), so GSO super-frames and partial
 * checksums cross untouched and the switch converts for ports that differ.
 *
 * Only public APIs are used: io.h on the kernel side, vale.h and the ring
 * helpers of vale_app.h on the port side (rings reached through vale_info()).
 */
#include "vale_app.h"
#include "io.h"
#include "fwd.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct vale_fwd {
	struct vale_io *io;
	vale_port *p;
	struct vale_port_info info; /* the port's rings and sizes (vale_info) */
	struct vale_fwd_conf c;
	int stop_efd;
	volatile int stop;
	pthread_t th[2];
	int nth;
	int started;
	pthread_mutex_t lock; /* state, msg, running */
	pthread_cond_t cond;
	int running; /* threads still running */
	struct vale_fwd_stats st;
	/* kernel -> port scratch */
	void **kbufs;
	uint16_t *klens, *kflags;
	/* port -> kernel scratch */
	void **vbufs;
	uint16_t *vlens, *vflags;
	uint32_t *vslot;
	/* frames read in place (vale_io_recv_direct): the port's source table
	 * (ntx * tx_slots entries; NULL: recv_batch) and the backend's answer */
	struct vale_src_slot *srct, *kents;
	uint8_t trash[VALE_BUF_SIZE]; /* where a damaged slot's frame goes */
	int vnet_applied; /* the port's virtio-net header length as we last set it */
};

/* How long the kernel -> port thread's txsync may wait for a full
 * destination ring (vale_set_backpressure) before the switch drops. */
#define FWD_BACKPRESSURE_US 100000u

static __thread char f_errmsg[256];

VALE_API const char *vale_fwd_last_error(void) { return f_errmsg; }

static int ferr(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f_errmsg, sizeof f_errmsg, fmt, ap);
	va_end(ap);
	return -err;
}

#define ST_ADD(f, field, v) ADD_RLX(&(f)->st.field, (uint64_t)(v))

static void set_state(struct vale_fwd *f, uint32_t state, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void set_state(struct vale_fwd *f, uint32_t state, int err, const char *fmt, ...)
{
	pthread_mutex_lock(&f->lock);
	/* GONE and ERROR are final; STOPPED only replaces RUNNING/DOWN */
	if (f->st.state != VFS_GONE && f->st.state != VFS_ERROR) {
		if (state == VFS_DOWN && f->st.state != VFS_DOWN)
			ADD_RLX(&f->st.link_downs, 1);
		f->st.state = state;
		f->st.err = err;
		if (fmt) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(f->st.msg, sizeof f->st.msg, fmt, ap);
			va_end(ap);
		}
	}
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static uint32_t get_state(struct vale_fwd *f)
{
	return __atomic_load_n(&f->st.state, __ATOMIC_RELAXED);
}

/* The interface went away for good (or a fatal error): end both threads. */
static void fatal(struct vale_fwd *f, uint32_t state, int err)
{
	set_state(f, state, err, "%s", vale_io_last_error());
	f->stop = 1;
	uint64_t one = 1;
	if (write(f->stop_efd, &one, sizeof one) < 0) {
	}
	vale_wake(f->p);
}

/* Sleep up to ms, or until stopped. */
static void nap(struct vale_fwd *f, int ms)
{
	struct pollfd pfd = {.fd = f->stop_efd, .events = POLLIN};
	if (!f->stop)
		poll(&pfd, 1, ms);
}

/* The link is down: wait (checking every idle_ms) until it is up or gone.
 * Returns 0 when it is up again, -1 when the forwarder must end. */
static int wait_link_up(struct vale_fwd *f, int r)
{
	if (get_state(f) != VFS_DOWN)
		set_state(f, VFS_DOWN, r, "%s", vale_io_last_error());
	for (;;) {
		if (f->stop)
			return -1;
		int c = vale_io_check(f->io);
		if (c == 0) {
			set_state(f, VFS_RUNNING, 0, "link up again");
			return 0;
		}
		if (c != -ENETDOWN) {
			fatal(f, c == -ENODEV ? VFS_GONE : VFS_ERROR, c);
			return -1;
		}
		nap(f, f->c.idle_ms);
	}
}

/* An error from the kernel side; returns -1 when the thread must end. */
static int io_error(struct vale_fwd *f, int r)
{
	if (r == -ENETDOWN)
		return wait_link_up(f, r);
	if (r == -ENODEV || r == -ENXIO) {
		fatal(f, VFS_GONE, -ENODEV);
		return -1;
	}
	/* anything else: say it, back off, go on (a transient socket error) */
	ST_ADD(f, io_errors, 1);
	pthread_mutex_lock(&f->lock);
	snprintf(f->st.msg, sizeof f->st.msg, "%s", vale_io_last_error());
	f->st.err = r;
	pthread_mutex_unlock(&f->lock);
	nap(f, 10);
	return 0;
}

/* The backend's frames carry a virtio-net header (vhost-user with offloads,
 * once the guest negotiated them): give the port the same length, so the
 * switch passes super-frames and partial checksums, and converts for ports
 * without one. Checked once per batch (a load and a compare). */
static void apply_vnet(struct vale_fwd *f)
{
	int want = vale_io_vnet_hdr(f->io);
	if (likely(want == __atomic_load_n(&f->vnet_applied, __ATOMIC_RELAXED)) || want < 0) return;
	pthread_mutex_lock(&f->lock);
	if (want != f->vnet_applied && vale_set_vnet(f->p, want, -1) == 0)
		__atomic_store_n(&f->vnet_applied, want, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&f->lock);
}

/* ---------------- kernel -> port ---------------- */

static void *k2v_main(void *arg)
{
	struct vale_fwd *f = arg;
	pthread_setname_np(pthread_self(), "vale-fwd-k2v");
	/* the kernel buffers what we do not take yet: wait for room at a full
	 * destination rather than drop (a lost super-frame is 44 TCP segments) */
	vale_set_backpressure(f->p, FWD_BACKPRESSURE_US);
	vale_port *p = f->p;
	const struct vale_port_info *m = &f->info;
	uint32_t first = m->first_ring, last = m->last_ring < m->ntx ? m->last_ring : m->ntx;
	uint32_t ri = first, n = m->tx_slots, nbufs = m->nbufs;
	uint32_t backoff_us = 0;
	int iofd = vale_io_fd(f->io);
	if (first >= last)
		goto out; /* no TX ring bound */
	if (f->srct && vale_set_tx_source(p, f->srct) < 0)
		f->srct = NULL; /* not a switch port (a pipe end): frames are copied in */
	while (!f->stop) {
		apply_vnet(f);
		struct vale_ring *ring = vale_tx_ring(m, ri);
		uint32_t head = LOAD_RLX(&ring->head), tail = LOAD_ACQ(&ring->tail);
		if (unlikely(head >= n || tail >= n)) {
			vale_txsync(p, (int)ri); /* resets our view */
			continue;
		}
		uint32_t space = vale_ring_dist(head, tail, n);
		if (space == 0) {
			vale_txsync(p, (int)ri);
			tail = LOAD_ACQ(&ring->tail);
			space = vale_ring_dist(head, tail, n);
		}
		if (space == 0) {
			/* a pipe whose peer does not read: try the next ring, then back off */
			if (last - first > 1) {
				ri = ri + 1 == last ? first : ri + 1;
				if (ri != first)
					continue;
			}
			ST_ADD(f, k2v_waits, 1);
			backoff_us = backoff_us ? (backoff_us < 4000 ? backoff_us * 2 : 4000) : 20;
			usleep(backoff_us);
			continue;
		}
		backoff_us = 0;
		uint32_t max = space < f->c.batch ? space : f->c.batch;
		for (uint32_t k = 0, j = head; k < max; k++, j = vale_ring_next(j, n)) {
			uint32_t b = ring->slot[j].buf_idx;
			f->kbufs[k] = (b >= 2 && b < nbufs) ? (void *)vale_buf_at(m, b) : (void *)f->trash;
		}
		struct vale_src_slot *tab = f->srct ? f->srct + (uint64_t)ri * n : NULL;
		int got = tab ? vale_io_recv_direct(f->io, f->kbufs, f->klens, f->kflags, f->kents, max)
			      : vale_io_recv_batch(f->io, f->kbufs, f->klens, f->kflags, max);
		if (got > 0) {
			uint32_t j = head, frames = 0;
			uint64_t bytes = 0;
			for (int k = 0; k < got; k++, j = vale_ring_next(j, n)) {
				/* (with a table the switch reads it, not these) */
				ring->slot[j].len = f->klens[k];
				ring->slot[j].flags = f->kflags[k] & VS_MOREFRAG;
				if (tab)
					tab[j] = f->kents[k];
				bytes += f->klens[k];
				if (!(f->kflags[k] & VS_MOREFRAG))
					frames++;
			}
			STORE_REL(&ring->cur, j);
			STORE_REL(&ring->head, j);
			vale_txsync(p, (int)ri);
			if (tab) { /* sent or dropped: nothing may point into guest memory now */
				for (uint32_t k = 0, x = head; k < (uint32_t)got;
				     k++, x = vale_ring_next(x, n))
					tab[x].p = NULL;
				vale_io_recv_release(f->io);
			}
			ST_ADD(f, k2v_pkts, frames);
			ST_ADD(f, k2v_bytes, bytes);
			ST_ADD(f, k2v_batches, 1);
			if ((uint32_t)got == max && last - first > 1)
				ri = ri + 1 == last ? first : ri + 1;
			continue;
		}
		if (got == -ENOBUFS) { /* a big frame needs more slots than are free here */
			vale_txsync(p, (int)ri);
			if (space + 1 >= n) { /* cannot happen: io drops > VALE_MAX_FRAGS */
				nap(f, 1);
			} else {
				ST_ADD(f, k2v_waits, 1);
				usleep(20);
			}
			continue;
		}
		if (got < 0) {
			if (io_error(f, got) < 0)
				break;
			continue;
		}
		/* idle */
		ST_ADD(f, k_sleeps, 1);
		struct pollfd pfd[2] = {{.fd = iofd, .events = POLLIN}, {.fd = f->stop_efd, .events = POLLIN}};
		int r = poll(pfd, 2, f->c.idle_ms);
		if (f->stop)
			break;
		if (r == 0 || (r > 0 && (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)))) {
			int c = vale_io_check(f->io);
			if (c < 0) {
				if (io_error(f, c) < 0)
					break;
			} else if (r > 0 && !(pfd[0].revents & POLLIN)) {
				nap(f, 1); /* a stale error flag: do not spin on it */
			}
		}
	}
out:
	if (f->srct)
		vale_set_tx_source(p, NULL);
	pthread_mutex_lock(&f->lock);
	f->running--;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* ---------------- port -> kernel ---------------- */

/* Gather whole packets of RX ring `ring` from head up to tail (at most about
 * `cap` slots) into f->vbufs/vlens/vflags; zero-length slots (reclaimed
 * leases) are skipped. *end_slot: the slot after the last whole packet. */
static uint32_t gather(struct vale_fwd *f, struct vale_ring *ring, uint32_t n, uint32_t nbufs,
		       uint32_t head, uint32_t tail, uint32_t cap, uint32_t *end_slot)
{
	const struct vale_port_info *m = &f->info;
	uint32_t k = 0, j = head, whole_k = 0, whole_j = head;
	bool in_chain = false;
	while (j != tail && k < cap + VALE_MAX_FRAGS) {
		struct vale_slot *s = &ring->slot[j];
		uint16_t len = s->len, fl = s->flags & VS_MOREFRAG;
		if (!in_chain && !fl && len == 0) { /* an empty slot: nothing to send */
			j = vale_ring_next(j, n);
			if (k == whole_k)
				whole_j = j;
			continue;
		}
		if (!in_chain && k >= cap)
			break;
		uint32_t b = s->buf_idx;
		if (b >= 2 && b < nbufs && len <= VALE_BUF_SIZE) {
			f->vbufs[k] = vale_buf_at(m, b);
			f->vlens[k] = len;
		} else { /* damaged: send_batch drops it (and counts) */
			f->vbufs[k] = f->trash;
			f->vlens[k] = 0;
		}
		f->vflags[k] = fl;
		f->vslot[k] = j;
		k++;
		j = vale_ring_next(j, n);
		in_chain = fl;
		if (!fl) {
			whole_k = k;
			whole_j = j;
		}
	}
	*end_slot = whole_j;
	return whole_k;
}

static void *v2k_main(void *arg)
{
	struct vale_fwd *f = arg;
	pthread_setname_np(pthread_self(), "vale-fwd-v2k");
	vale_port *p = f->p;
	const struct vale_port_info *m = &f->info;
	uint32_t first = m->first_ring, last = m->last_ring < m->nrx ? m->last_ring : m->nrx;
	uint32_t n = m->rx_slots, nbufs = m->nbufs;
	if (first >= last)
		goto out;
	while (!f->stop) {
		apply_vnet(f);
		bool did = false, full = false;
		for (uint32_t ri = first; ri < last && !f->stop; ri++) {
			if (vale_rxsync(p, (int)ri) < 0)
				continue; /* our ring was reset: look again */
			struct vale_ring *ring = vale_rx_ring(m, ri);
			uint32_t head = LOAD_RLX(&ring->head), tail = LOAD_ACQ(&ring->tail);
			if (head == tail || head >= n || tail >= n)
				continue;
			uint32_t end;
			uint32_t k = gather(f, ring, n, nbufs, head, tail, f->c.batch, &end);
			uint32_t newhead = end, frames = 0;
			uint64_t bytes = 0;
			if (k) {
				int c = vale_io_send_batch(f->io, f->vbufs, f->vlens, f->vflags, k);
				if (c == -ENETDOWN) { /* link down: these frames have nowhere to go */
					for (uint32_t i = 0; i < k; i++)
						frames += !(f->vflags[i] & VS_MOREFRAG);
					ST_ADD(f, v2k_drops, frames);
					if (get_state(f) == VFS_RUNNING)
						set_state(f, VFS_DOWN, c, "%s", vale_io_last_error());
					frames = 0;
				} else if (c < 0) {
					if (c == -ENODEV || c == -ENXIO) {
						fatal(f, VFS_GONE, -ENODEV);
						break;
					}
					for (uint32_t i = 0; i < k; i++)
						frames += !(f->vflags[i] & VS_MOREFRAG);
					ST_ADD(f, v2k_drops, frames);
					ST_ADD(f, io_errors, 1);
					frames = 0;
				} else {
					if ((uint32_t)c < k) {
						newhead = f->vslot[c];
						full = true;
					}
					for (uint32_t i = 0; i < (uint32_t)c; i++) {
						frames += !(f->vflags[i] & VS_MOREFRAG);
						bytes += f->vlens[i];
					}
				}
			}
			if (newhead != head) {
				STORE_REL(&ring->cur, newhead);
				STORE_REL(&ring->head, newhead);
				did = true;
			}
			if (frames) {
				ST_ADD(f, v2k_pkts, frames);
				ST_ADD(f, v2k_bytes, bytes);
				ST_ADD(f, v2k_batches, 1);
			}
		}
		if (f->stop)
			break;
		if (full) { /* the kernel's TX ring is full: wait for room */
			ST_ADD(f, v2k_full, 1);
			int r = vale_io_poll(f->io, VIO_POLL_OUT, 20);
			if (r < 0 && r != -ENETDOWN) {
				if (io_error(f, r) < 0)
					break;
			}
			continue;
		}
		if (did)
			continue;
		/* idle: release what we sent, push what the kernel has not taken yet, sleep */
		vale_rxsync(p, -1);
		int wait_ms = f->c.idle_ms;
		if (vale_io_tx_pending(f->io)) {
			int r = vale_io_send_batch(f->io, NULL, NULL, NULL, 0);
			if (r == -ENODEV) {
				fatal(f, VFS_GONE, r);
				break;
			}
			wait_ms = 1;
		}
		ST_ADD(f, v_sleeps, 1);
		vale_wait(p, wait_ms);
	}
out:
	pthread_mutex_lock(&f->lock);
	f->running--;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* ---------------- API ---------------- */

VALE_API int vale_fwd_create(struct vale_io *io, vale_port *p, const struct vale_fwd_conf *conf,
			     struct vale_fwd **out)
{
	if (!io || !p || !out)
		return ferr(EINVAL, "vale_fwd_create: io, port and out are required");
	struct vale_fwd *f = calloc(1, sizeof *f);
	if (!f)
		return ferr(ENOMEM, "out of memory");
	f->io = io;
	f->p = p;
	int ri = vale_info(p, &f->info);
	if (ri < 0) {
		free(f);
		return ferr(-ri, "vale_info: %s", vale_last_error());
	}
	/* Slots pass as they are: both sides must agree on the virtio-net
	 * header in front of each frame (io.h VIO_F_VNET_HDR, vale.h). */
	struct vale_io_info ioi;
	vale_io_info(io, &ioi);
	if (ioi.vnet_hdr_len != f->info.vnet_hdr_len) {
		uint32_t plen = f->info.vnet_hdr_len;
		free(f);
		return ferr(EINVAL,
			    "'%s' carries a %u-byte virtio-net header, the port a %u-byte one "
			    "(open the port with the interface's header length)",
			    ioi.ifname, ioi.vnet_hdr_len, plen);
	}
	if (conf)
		f->c = *conf;
	if (f->c.batch == 0)
		f->c.batch = 256;
	if (f->c.batch > VALE_MAX_BATCH)
		f->c.batch = VALE_MAX_BATCH;
	if (f->c.idle_ms <= 0)
		f->c.idle_ms = 200;
	uint32_t cap = f->c.batch + VALE_MAX_FRAGS + 1;
	f->kbufs = calloc(cap, sizeof(void *));
	f->klens = calloc(cap, sizeof(uint16_t));
	f->kflags = calloc(cap, sizeof(uint16_t));
	f->vbufs = calloc(cap, sizeof(void *));
	f->vlens = calloc(cap, sizeof(uint16_t));
	f->vflags = calloc(cap, sizeof(uint16_t));
	f->vslot = calloc(cap, sizeof(uint32_t));
	if (vale_io_recv_direct(io, NULL, NULL, NULL, NULL, 0) == 0 && f->info.ntx &&
	    !(f->c.flags & VF_NO_K2V)) { /* the backend can leave frames in place */
		f->srct = calloc((size_t)f->info.ntx * f->info.tx_slots, sizeof *f->srct);
		f->kents = calloc(cap, sizeof *f->kents);
		if (!f->srct || !f->kents) {
			free(f->srct);
			free(f->kents);
			f->srct = f->kents = NULL; /* (then copied, as by any backend) */
		}
	}
	f->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!f->kbufs || !f->klens || !f->kflags || !f->vbufs || !f->vlens || !f->vflags ||
	    !f->vslot || f->stop_efd < 0) {
		int e = f->stop_efd < 0 ? errno : ENOMEM;
		if (f->stop_efd >= 0)
			close(f->stop_efd);
		f->stop_efd = -1;
		vale_fwd_destroy(f);
		return ferr(e, "vale_fwd_create: %s", strerror(e));
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	struct vale_io_info ii;
	vale_io_info(io, &ii);
	f->st.state = VFS_IDLE;
	f->vnet_applied = -1; /* the first check sets the port (a restart may find it changed) */
	snprintf(f->st.msg, sizeof f->st.msg, "%s: %s", ii.ifname, ii.mode);
	*out = f;
	return 0;
}

VALE_API int vale_fwd_start(struct vale_fwd *f)
{
	if (f->started)
		return ferr(EBUSY, "forwarder already started");
	f->started = 1;
	f->st.state = VFS_RUNNING;
	f->running = 0;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 256 * 1024);
	void *(*fn[2])(void *) = {k2v_main, v2k_main};
	for (int i = 0; i < 2; i++) {
		if (i == 0 && (f->c.flags & VF_NO_K2V))
			continue;
		if (i == 1 && (f->c.flags & VF_NO_V2K))
			continue;
		pthread_mutex_lock(&f->lock);
		f->running++;
		pthread_mutex_unlock(&f->lock);
		int e = pthread_create(&f->th[f->nth], &a, fn[i], f);
		if (e) {
			pthread_mutex_lock(&f->lock);
			f->running--;
			pthread_mutex_unlock(&f->lock);
			pthread_attr_destroy(&a);
			vale_fwd_stop(f);
			return ferr(e, "cannot start a forwarder thread: %s", strerror(e));
		}
		f->nth++;
	}
	pthread_attr_destroy(&a);
	return 0;
}

/* Block until the forwarder ends by itself (interface removed, fatal error)
 * or is stopped, or timeout_ms passes (-1: forever). Returns the state. */
VALE_API int vale_fwd_wait(struct vale_fwd *f, int timeout_ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	if (timeout_ms >= 0) {
		dl.tv_sec += timeout_ms / 1000;
		dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&f->lock);
	while (f->running > 0 && !f->stop) {
		if (timeout_ms < 0)
			pthread_cond_wait(&f->cond, &f->lock);
		else if (pthread_cond_timedwait(&f->cond, &f->lock, &dl) == ETIMEDOUT)
			break;
	}
	int s = (int)f->st.state;
	pthread_mutex_unlock(&f->lock);
	return s;
}

VALE_API void vale_fwd_stop(struct vale_fwd *f)
{
	if (!f)
		return;
	f->stop = 1;
	if (f->stop_efd >= 0) {
		uint64_t one = 1;
		if (write(f->stop_efd, &one, sizeof one) < 0) {
		}
	}
	if (f->p)
		vale_wake(f->p);
	for (int i = 0; i < f->nth; i++)
		pthread_join(f->th[i], NULL);
	f->nth = 0;
	if (f->started) {
		pthread_mutex_lock(&f->lock);
		if (f->st.state == VFS_RUNNING || f->st.state == VFS_DOWN || f->st.state == VFS_IDLE)
			f->st.state = VFS_STOPPED;
		pthread_cond_broadcast(&f->cond);
		pthread_mutex_unlock(&f->lock);
	}
}

VALE_API int vale_fwd_stats(struct vale_fwd *f, struct vale_fwd_stats *out)
{
	pthread_mutex_lock(&f->lock);
	*out = f->st;
	pthread_mutex_unlock(&f->lock);
	return (int)out->state;
}

VALE_API void vale_fwd_destroy(struct vale_fwd *f)
{
	if (!f)
		return;
	vale_fwd_stop(f);
	if (f->stop_efd >= 0)
		close(f->stop_efd);
	free(f->kbufs);
	free(f->klens);
	free(f->kflags);
	free(f->vbufs);
	free(f->vlens);
	free(f->vflags);
	free(f->vslot);
	free(f->srct);
	free(f->kents);
	free(f);
}
