/*
 * vale kernel I/O: the AF_XDP backend, with no libbpf/libxdp.
 *
 * The XDP program is six instructions, assembled here:
 *     return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
 * (frames of queues without a socket go on to the kernel stack). It is
 * loaded with the bpf() syscall, attached with a bpf_link (BPF_LINK_CREATE),
 * which the kernel detaches when the link fd is closed, i.e. also when the
 * process is killed: nothing is left behind on the interface.
 *
 * One socket per RX queue of the device (or only opts.queue with
 * VIO_F_XDP_QUEUE), each with its own UMEM of private anonymous memory whose
 * chunks feed its fill ring; the first socket also has the TX ring, with its
 * TX chunks on a free stack. Frames are copied between the
 * UMEM and the caller's buffers (the vale ring buffers are 2048 bytes and not
 * registered as UMEM). Multi-buffer (XDP_USE_SG, kernel >= 6.6) carries
 * frames larger than a chunk; without it they are dropped and counted.
 */
#include "io_impl.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>
#include "../kfast/vbpf.h"
#include <linux/if_link.h>
#include <linux/if_xdp.h>

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#ifndef XDP_USE_SG
#define XDP_USE_SG (1 << 4)
#endif
#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD (1 << 0)
#endif
#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9
#endif
#ifndef BPF_F_XDP_HAS_FRAGS
#define BPF_F_XDP_HAS_FRAGS (1U << 5)
#endif

#define XDP_CHUNK 4096u
#define XDP_MAX_QUEUES 256

struct xring {
	uint32_t *producer, *consumer, *flags;
	void *desc;
	void *map;
	size_t map_len;
	uint32_t size, mask;
	uint32_t prod, cons; /* our copies of the index we own */
};

/* One AF_XDP socket, bound to one RX queue, with its own UMEM. */
struct xsk {
	int fd;
	uint32_t qid;
	uint8_t *umem;
	size_t umem_len;
	uint32_t nrx, ntx; /* chunks for RX (fill) and TX; ntx = 0: RX only */
	struct xring rx, tx, fill, comp;
};

struct xdp {
	int map_fd, prog_fd, link_fd, ep_fd;
	uint32_t nq, rr;
	struct xsk *q;            /* q[0] also sends */
	uint64_t *free_tx;        /* stack of free TX chunk addresses of q[0] */
	uint32_t nfree;
	int sg, zerocopy, drv;
	int need_kick;
};

static int xdp_map_create(uint32_t entries)
{
	return vbpf_map_create(BPF_MAP_TYPE_XSKMAP, 4, 4, entries, 0, "vale_xsks");
}

static int xdp_prog_load(int map_fd, int frags, char *log, uint32_t log_len)
{
	const struct bpf_insn insn[] = {
		/* r2 = ((struct xdp_md *)r1)->rx_queue_index */
		LDX_MEM(BPF_W, BPF_REG_2, BPF_REG_1, offsetof(struct xdp_md, rx_queue_index)),
		/* r1 = &xsks */
		LD_MAP_FD(BPF_REG_1, map_fd),
		LD_IMM64_HI(0),
		/* r3 = XDP_PASS: the action when no socket is at that index */
		MOV64_IMM(BPF_REG_3, XDP_PASS),
		CALL(BPF_FUNC_redirect_map),
		EXIT(),
	};
	return vbpf_prog_load(BPF_PROG_TYPE_XDP, BPF_XDP, frags ? BPF_F_XDP_HAS_FRAGS : 0, insn,
			      sizeof insn / sizeof insn[0], "vale_xsk", log, log_len);
}

static int xdp_link_create(int prog_fd, uint32_t ifindex, uint32_t xdp_flags)
{
	return vbpf_link_create(prog_fd, ifindex, BPF_XDP, xdp_flags);
}

static int ring_map(int fd, struct xring *r, const struct xdp_ring_offset *off, uint64_t pgoff,
		    uint32_t n, size_t desc_size)
{
	r->map_len = off->desc + n * desc_size;
	r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
		      (off_t)pgoff);
	if (r->map == MAP_FAILED) {
		r->map = NULL;
		return -errno;
	}
	uint8_t *b = r->map;
	r->producer = (uint32_t *)(b + off->producer);
	r->consumer = (uint32_t *)(b + off->consumer);
	r->flags = (uint32_t *)(b + off->flags);
	r->desc = b + off->desc;
	r->size = n;
	r->mask = n - 1;
	r->prod = *r->producer;
	r->cons = *r->consumer;
	return 0;
}

static uint32_t pow2_ge(uint32_t x)
{
	uint32_t p = 1;
	while (p < x) p <<= 1;
	return p;
}

static void xsk_free(struct xsk *s)
{
	if (s->fd >= 0) close(s->fd);
	s->fd = -1;
	struct xring *rs[4] = {&s->rx, &s->tx, &s->fill, &s->comp};
	for (int j = 0; j < 4; j++) {
		if (rs[j]->map) munmap(rs[j]->map, rs[j]->map_len);
		rs[j]->map = NULL;
	}
	if (s->umem) munmap(s->umem, s->umem_len);
	s->umem = NULL;
}

/* Socket + UMEM + rings for one queue, bound, in the XSKMAP. */
static int xsk_setup(struct vale_io *h, struct xdp *x, struct xsk *s, const char *ifname)
{
	int fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		if (e == EAFNOSUPPORT)
			return vio_err(-e, "AF_XDP is not supported by this kernel (CONFIG_XDP_SOCKETS)");
		return vio_err(-e, "AF_XDP socket for '%s': %s%s", ifname, strerror(e),
			       vio_priv_hint(e, "CAP_NET_RAW"));
	}
	s->fd = fd;
	s->umem_len = (size_t)(s->nrx + s->ntx) * XDP_CHUNK;
	s->umem = mmap(NULL, s->umem_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (s->umem == MAP_FAILED) {
		s->umem = NULL;
		return vio_err(-ENOMEM, "'%s': cannot map %zu bytes of UMEM", ifname, s->umem_len);
	}
	struct xdp_umem_reg ur = {
		.addr = (uint64_t)(uintptr_t)s->umem,
		.len = s->umem_len,
		.chunk_size = XDP_CHUNK,
		.headroom = 0,
	};
	if (setsockopt(fd, SOL_XDP, XDP_UMEM_REG, &ur, sizeof ur) < 0) {
		int e = errno;
		return vio_err(-e, "'%s': XDP_UMEM_REG: %s%s", ifname, strerror(e),
			       e == ENOMEM || e == EPERM ? " (RLIMIT_MEMLOCK too low?)" : "");
	}
	uint32_t nfill = s->nrx, ncomp = s->ntx ? s->ntx : 64;
	if (setsockopt(fd, SOL_XDP, XDP_UMEM_FILL_RING, &nfill, sizeof nfill) < 0 ||
	    setsockopt(fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &ncomp, sizeof ncomp) < 0 ||
	    setsockopt(fd, SOL_XDP, XDP_RX_RING, &s->nrx, sizeof s->nrx) < 0 ||
	    (s->ntx && setsockopt(fd, SOL_XDP, XDP_TX_RING, &s->ntx, sizeof s->ntx) < 0)) {
		int e = errno;
		return vio_err(-e, "'%s': AF_XDP ring setup: %s", ifname, strerror(e));
	}
	struct xdp_mmap_offsets off;
	socklen_t ol = sizeof off;
	if (getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &ol) < 0) {
		int e = errno;
		return vio_err(-e, "'%s': XDP_MMAP_OFFSETS: %s", ifname, strerror(e));
	}
	int r;
	if ((r = ring_map(fd, &s->rx, &off.rx, XDP_PGOFF_RX_RING, s->nrx, sizeof(struct xdp_desc))) ||
	    (s->ntx &&
	     (r = ring_map(fd, &s->tx, &off.tx, XDP_PGOFF_TX_RING, s->ntx, sizeof(struct xdp_desc)))) ||
	    (r = ring_map(fd, &s->fill, &off.fr, XDP_UMEM_PGOFF_FILL_RING, nfill, sizeof(uint64_t))) ||
	    (r = ring_map(fd, &s->comp, &off.cr, XDP_UMEM_PGOFF_COMPLETION_RING, ncomp,
			  sizeof(uint64_t))))
		return vio_err(r, "'%s': mmap of the AF_XDP rings: %s", ifname, strerror(-r));
	/* every RX chunk to the fill ring (its size: there is always room) */
	uint64_t *fdesc = s->fill.desc;
	for (uint32_t i = 0; i < s->nrx; i++)
		fdesc[(s->fill.prod + i) & s->fill.mask] = (uint64_t)i * XDP_CHUNK;
	s->fill.prod += s->nrx;
	STORE_REL(s->fill.producer, s->fill.prod);

	/* bind: zero-copy if the driver can (unless told), multi-buffer if the kernel can */
	uint16_t base = XDP_USE_NEED_WAKEUP;
	if (h->flags & VIO_F_XDP_ZEROCOPY) base |= XDP_ZEROCOPY;
	struct sockaddr_xdp sx = {
		.sxdp_family = AF_XDP,
		.sxdp_ifindex = h->ifindex,
		.sxdp_queue_id = s->qid,
	};
	for (int tries = 0;; tries++) {
		sx.sxdp_flags = base | (x->sg ? XDP_USE_SG : 0);
		if (bind(fd, (struct sockaddr *)&sx, sizeof sx) == 0) break;
		int e = errno;
		if (x->sg && s == x->q && (e == EINVAL || e == EOPNOTSUPP)) {
			x->sg = 0; /* kernel < 6.6: no multi-buffer */
			continue;
		}
		/* The kernel unregisters a closed socket's buffer pool from its
		 * queue in a deferred work item: a reopen right after a close
		 * (ours or another process's) sees EBUSY for a few ms. */
		if (e == EBUSY && tries < 100) {
			usleep(10000);
			continue;
		}
		if (e == EBUSY)
			return vio_err(-e, "'%s': queue %u is already used by another AF_XDP socket",
				       ifname, s->qid);
		if (e == EINVAL && s->qid)
			return vio_err(-e, "'%s': cannot bind AF_XDP to queue %u (no such queue?)",
				       ifname, s->qid);
		return vio_err(-e, "'%s': AF_XDP bind to queue %u: %s", ifname, s->qid,
			       strerror(e));
	}
	struct xdp_options xo;
	socklen_t xl = sizeof xo;
	if (getsockopt(fd, SOL_XDP, XDP_OPTIONS, &xo, &xl) == 0 && s == x->q)
		x->zerocopy = !!(xo.flags & XDP_OPTIONS_ZEROCOPY);
	if (s->ntx) {
		/* let one sendto() push the whole TX ring in copy mode (kernel >= 6.17) */
		uint32_t budget = s->ntx;
		setsockopt(fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof budget);
	}
	uint32_t key = s->qid;
	if (vbpf_map_update(x->map_fd, &key, &fd, 0) < 0) {
		int e = errno;
		return vio_err(-e, "'%s': XSKMAP update: %s", ifname, strerror(e));
	}
	return 0;
}

static int xdp_open(struct vale_io *h, const char *ifname, const struct vale_io_opts *o)
{
	struct xdp *x = calloc(1, sizeof *x);
	if (!x) return vio_err(-ENOMEM, "out of memory");
	h->priv = x;
	x->map_fd = x->prog_fd = x->link_fd = x->ep_fd = -1;

	struct vale_io_link l;
	int r = vio_link_query(h->ctl_fd, ifname, &l);
	if (r < 0) return r;
	if (l.xdp_prog_id)
		return vio_err(-EBUSY, "'%s' already has an XDP program attached (id %u)", ifname,
			       l.xdp_prog_id);
	/* every RX queue (frames of a queue without a socket would go to the
	 * host stack), or just the one asked for */
	uint32_t first = 0, nq = l.rx_queues ? l.rx_queues : 1;
	if (h->flags & VIO_F_XDP_QUEUE) {
		first = o ? o->queue : 0;
		nq = 1;
	}
	if (nq > XDP_MAX_QUEUES)
		return vio_err(-EOPNOTSUPP, "'%s' has %u RX queues; AF_XDP here takes at most %u",
			       ifname, nq, XDP_MAX_QUEUES);
	x->q = calloc(nq, sizeof *x->q);
	if (!x->q) return vio_err(-ENOMEM, "out of memory");
	x->nq = nq;
	uint32_t per_q = o && o->xdp_frames ? o->xdp_frames : 2048 / nq;
	per_q = pow2_ge(per_q < 256 ? 256 : per_q);
	uint32_t ntx = pow2_ge(o && o->tx_frames ? o->tx_frames : 1024);
	if (ntx < 64) ntx = 64;
	for (uint32_t i = 0; i < nq; i++) {
		x->q[i].fd = -1;
		x->q[i].qid = first + i;
		x->q[i].nrx = per_q;
		x->q[i].ntx = i == 0 ? ntx : 0;
	}

	/* the XSKMAP and the program first: they need CAP_BPF (+ CAP_NET_ADMIN) */
	x->map_fd = xdp_map_create(first + nq > 64 ? first + nq : 64);
	if (x->map_fd < 0) {
		int e = errno;
		if (e == EPERM) {
			/* say what is missing first: the socket needs CAP_NET_RAW */
			int t = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
			if (t < 0 && (errno == EPERM || errno == EACCES))
				return vio_err(-EPERM, "AF_XDP socket for '%s': %s%s", ifname,
					       strerror(EPERM), vio_priv_hint(EPERM, "CAP_NET_RAW"));
			if (t >= 0) close(t);
		}
		return vio_err(-e, "'%s': cannot create the XSKMAP: %s%s", ifname, strerror(e),
			       vio_priv_hint(e, "CAP_BPF and CAP_NET_ADMIN"));
	}
	int frags = !(h->flags & VIO_F_XDP_NO_SG);
	x->prog_fd = xdp_prog_load(x->map_fd, frags, NULL, 0);
	if (x->prog_fd < 0 && frags && errno == EINVAL) { /* kernel < 5.18: no frags flag */
		frags = 0;
		x->prog_fd = xdp_prog_load(x->map_fd, 0, NULL, 0);
	}
	if (x->prog_fd < 0) {
		int e = errno;
		static __thread char log[4096];
		log[0] = 0;
		if (e != EPERM && e != EACCES) xdp_prog_load(x->map_fd, frags, log, sizeof log);
		return vio_err(-e, "'%s': cannot load the XDP program: %s%s%s%.120s", ifname,
			       strerror(e), vio_priv_hint(e, "CAP_BPF and CAP_NET_ADMIN"),
			       log[0] ? ": " : "", log);
	}
	x->sg = frags;
	for (uint32_t i = 0; i < nq; i++) {
		r = xsk_setup(h, x, &x->q[i], ifname);
		if (r == -EINVAL && i > 0 && !(h->flags & VIO_F_XDP_QUEUE)) {
			/* fewer queues in use than reported: serve those */
			xsk_free(&x->q[i]);
			x->nq = nq = i;
			break;
		}
		if (r < 0) return r;
	}
	struct xsk *s0 = &x->q[0];
	x->free_tx = malloc(sizeof(uint64_t) * s0->ntx);
	if (!x->free_tx) return vio_err(-ENOMEM, "out of memory");
	for (uint32_t i = 0; i < s0->ntx; i++) x->free_tx[i] = (uint64_t)(s0->nrx + i) * XDP_CHUNK;
	x->nfree = s0->ntx;
	h->fd = s0->fd;
	h->poll_fd = s0->fd;
	if (nq > 1) {
		/* one fd for event loops: readable when any queue has frames */
		x->ep_fd = epoll_create1(EPOLL_CLOEXEC);
		if (x->ep_fd < 0) {
			int e = errno;
			return vio_err(-e, "epoll_create1: %s", strerror(e));
		}
		for (uint32_t i = 0; i < nq; i++) {
			struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
			epoll_ctl(x->ep_fd, EPOLL_CTL_ADD, x->q[i].fd, &ev);
		}
		h->poll_fd = x->ep_fd;
	}

	/* attach last, so frames are redirected only once every socket is ready:
	 * native mode if the driver has it, else generic */
	int e = 0;
	if (!(h->flags & VIO_F_XDP_SKB)) {
		x->link_fd = xdp_link_create(x->prog_fd, h->ifindex, XDP_FLAGS_DRV_MODE);
		if (x->link_fd >= 0) x->drv = 1;
		else e = errno;
	}
	if (x->link_fd < 0 && !(h->flags & VIO_F_XDP_DRV) && e != EBUSY && e != EEXIST &&
	    e != EPERM) {
		x->link_fd = xdp_link_create(x->prog_fd, h->ifindex, XDP_FLAGS_SKB_MODE);
		if (x->link_fd < 0) e = errno;
	}
	if (x->link_fd < 0) {
		if (e == EBUSY || e == EEXIST)
			return vio_err(-EBUSY, "'%s' already has an XDP program attached", ifname);
		return vio_err(-e, "'%s': cannot attach the XDP program (%s mode): %s%s", ifname,
			       (h->flags & VIO_F_XDP_DRV) ? "native" : "native or generic",
			       strerror(e), vio_priv_hint(e, "CAP_NET_ADMIN"));
	}
	h->max_frame = h->mtu + 14 + 4;
	if (!x->sg && h->max_frame > XDP_CHUNK) h->max_frame = XDP_CHUNK;
	char qs[32];
	if (nq == 1)
		snprintf(qs, sizeof qs, "queue %u", first);
	else
		snprintf(qs, sizeof qs, "queues %u-%u", first, first + nq - 1);
	snprintf(h->mode, sizeof h->mode, "af_xdp %s %s%s %s", x->drv ? "drv" : "skb",
		 x->zerocopy ? "zerocopy" : "copy", x->sg ? " sg" : "", qs);
	return 0;
}

static void xdp_close(struct vale_io *h)
{
	struct xdp *x = h->priv;
	if (!x) return;
	if (x->link_fd >= 0) close(x->link_fd); /* detaches the program */
	for (uint32_t i = 0; x->q && i < x->nq; i++) xsk_free(&x->q[i]);
	h->fd = -1; /* it was q[0]'s */
	if (x->ep_fd >= 0) close(x->ep_fd);
	if (x->prog_fd >= 0) close(x->prog_fd);
	if (x->map_fd >= 0) close(x->map_fd);
	free(x->q);
	free(x->free_tx);
	free(x);
	h->priv = NULL;
}

/* Receive from one socket; *need: buffers wanted by a frame that did not fit. */
static uint32_t xsk_recv(struct vale_io *h, struct xsk *s, void *const *bufs, uint16_t *lens,
			 uint16_t *flags, uint32_t max, uint32_t *need)
{
	struct xdp_desc *rd = s->rx.desc;
	uint64_t *fdsc = s->fill.desc;
	uint32_t prod = LOAD_ACQ(s->rx.producer), cons = s->rx.cons;
	uint32_t filled = 0;
	struct vio_seg seg[VALE_MAX_FRAGS];
	while (cons != prod && filled < max) {
		/* one packet: descriptors up to the first without XDP_PKT_CONTD */
		uint32_t m = 0, total = 0, c = cons;
		int complete = 0, bad = 0;
		while (c != prod) {
			struct xdp_desc *d = &rd[c & s->rx.mask];
			c++;
			if (m < VALE_MAX_FRAGS && d->addr + d->len <= s->umem_len)
				seg[m] = (struct vio_seg){s->umem + d->addr, d->len};
			else
				bad = 1;
			m++;
			total += d->len;
			if (!(d->options & XDP_PKT_CONTD)) {
				complete = 1;
				break;
			}
		}
		if (!complete) break; /* the rest is not published yet */
		uint32_t k = vio_frame_bufs(total, h->buf_size);
		if (bad || k > VALE_MAX_FRAGS) {
			h->st.rx_oversize++;
		} else if (k > max - filled) {
			*need = k;
			break;
		} else {
			if (!(h->flags & VIO_F_NO_CSUM_FIX))
				h->st.rx_csum_fixed += (uint64_t)vio_csum_complete(seg, (int)m, 1);
			vio_scatter_segs(seg, (int)m, bufs + filled, lens + filled, flags + filled,
					 h->buf_size);
			filled += k;
			h->st.rx_pkts++;
			h->st.rx_bytes += total;
		}
		/* chunks back to the fill ring */
		for (uint32_t j = 0; j < m; j++) {
			uint64_t a = rd[(cons + j) & s->rx.mask].addr;
			fdsc[s->fill.prod++ & s->fill.mask] = a & ~(uint64_t)(XDP_CHUNK - 1);
		}
		cons += m;
	}
	if (cons != s->rx.cons) {
		s->rx.cons = cons;
		STORE_REL(s->rx.consumer, cons);
		STORE_REL(s->fill.producer, s->fill.prod);
		if (LOAD_ACQ(s->fill.flags) & XDP_RING_NEED_WAKEUP)
			recvfrom(s->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
	}
	return filled;
}

static int xdp_recv(struct vale_io *h, void *const *bufs, uint16_t *lens, uint16_t *flags,
		 uint32_t max)
{
	struct xdp *x = h->priv;
	uint32_t filled = 0, need = 0;
	uint64_t before = h->st.rx_pkts;
	for (uint32_t k = 0; k < x->nq && filled < max; k++) {
		struct xsk *s = &x->q[(x->rr + k) % x->nq];
		uint32_t nd = 0;
		filled += xsk_recv(h, s, bufs + filled, lens + filled, flags + filled, max - filled,
				   &nd);
		if (nd > need) need = nd;
	}
	if (x->nq > 1) x->rr = x->rr + 1 == x->nq ? 0 : x->rr + 1;
	if (h->st.rx_pkts != before) h->st.rx_batches++;
	if (!filled && need > max)
		return vio_err(-ENOBUFS, "'%s': the next frame needs %u buffers, %u given",
			       h->ifname, need, max);
	return (int)filled;
}

static void xdp_reclaim(struct xdp *x)
{
	struct xsk *s = &x->q[0];
	uint32_t prod = LOAD_ACQ(s->comp.producer), cons = s->comp.cons;
	uint64_t *cd = s->comp.desc;
	while (cons != prod && x->nfree < s->ntx) x->free_tx[x->nfree++] = cd[cons++ & s->comp.mask];
	if (cons != s->comp.cons) {
		s->comp.cons = cons;
		STORE_REL(s->comp.consumer, cons);
	}
}

static int xdp_kick(struct vale_io *h, struct xdp *x)
{
	struct xring *tx = &x->q[0].tx;
	x->need_kick = 0;
	if (x->zerocopy && !(LOAD_ACQ(tx->flags) & XDP_RING_NEED_WAKEUP)) return 0;
	/* copy mode sends a budget of frames per call: repeat while the kernel
	 * says there is more (bounded) */
	for (int i = 0; i < 64; i++) {
		if (sendto(h->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0) {
			if (LOAD_ACQ(tx->consumer) == tx->prod) return 0;
			continue;
		}
		int e = errno;
		if (e == EINTR) continue;
		if (e == EAGAIN || e == EBUSY) {
			if (LOAD_ACQ(tx->consumer) == tx->prod) return 0;
			continue;
		}
		if (e == ENOBUFS) break;
		x->need_kick = 1;
		if (e == ENXIO || e == ENETDOWN || e == ENODEV) {
			int c = vio_check_alive(h);
			if (c < 0) return c;
			if (e == ENETDOWN) return vio_err(-ENETDOWN, "interface '%s' is down", h->ifname);
			/* ENXIO on a present interface: the socket lost its binding */
			h->dead = -ENODEV;
			return vio_err(-ENODEV, "interface '%s' was removed", h->ifname);
		}
		return vio_err(-e, "'%s': AF_XDP send: %s", h->ifname, strerror(e));
	}
	if (LOAD_ACQ(tx->consumer) != tx->prod) x->need_kick = 1;
	return 0;
}

static int xdp_send(struct vale_io *h, void *const *bufs, const uint16_t *lens,
		 const uint16_t *flags, uint32_t n)
{
	struct xdp *x = h->priv;
	struct xsk *s = &x->q[0];
	struct xring *tx = &s->tx;
	struct xdp_desc *td = tx->desc;
	uint32_t i = 0, queued = 0;
	uint64_t bytes = 0;
	xdp_reclaim(x);
	uint32_t room = tx->size - (tx->prod - LOAD_ACQ(tx->consumer));
	while (i < n) {
		uint32_t nb, len = vio_gather_len(lens, flags, i, n, h->buf_size, &nb);
		if (!nb) break;
		if (len < 14 || len > h->max_frame || nb > VALE_MAX_FRAGS) {
			h->st.tx_drops++;
			i += nb;
			continue;
		}
		uint32_t nd = (len + XDP_CHUNK - 1) / XDP_CHUNK;
		if (nd > x->nfree || nd > room) {
			h->st.tx_ring_full++;
			break;
		}
		/* copy the caller's fragments into nd chunks */
		uint32_t b = i, boff = 0;
		for (uint32_t d = 0; d < nd; d++) {
			uint64_t a = x->free_tx[--x->nfree];
			uint8_t *dst = s->umem + a;
			uint32_t want = len - d * XDP_CHUNK, got = 0;
			if (want > XDP_CHUNK) want = XDP_CHUNK;
			while (got < want) {
				uint32_t c = lens[b] - boff;
				if (c > want - got) c = want - got;
				memcpy(dst + got, (uint8_t *)bufs[b] + boff, c);
				got += c;
				boff += c;
				if (boff == lens[b]) {
					b++;
					boff = 0;
				}
			}
			struct xdp_desc *t = &td[tx->prod++ & tx->mask];
			t->addr = a;
			t->len = want;
			t->options = d + 1 < nd ? XDP_PKT_CONTD : 0;
		}
		room -= nd;
		queued++;
		bytes += len;
		i += nb;
	}
	if (queued) STORE_REL(tx->producer, tx->prod);
	if (queued || x->need_kick) {
		int r = xdp_kick(h, x);
		if (r < 0 && !queued) return r;
	}
	if (queued) {
		h->st.tx_pkts += queued;
		h->st.tx_bytes += bytes;
		h->st.tx_batches++;
	}
	return (int)i;
}

static void xdp_stats(struct vale_io *h)
{
	struct xdp *x = h->priv;
	uint64_t drops = 0, inval = 0;
	for (uint32_t i = 0; i < x->nq; i++) {
		struct xdp_statistics s;
		socklen_t l = sizeof s;
		if (getsockopt(x->q[i].fd, SOL_XDP, XDP_STATISTICS, &s, &l) == 0) {
			drops += s.rx_dropped + s.rx_ring_full;
			inval += s.tx_invalid_descs;
		}
	}
	/* cumulative in the kernel: not added up */
	h->st.rx_kernel_drops = drops;
	h->st.xdp_tx_invalid = inval;
}

static int xdp_tx_pending(struct vale_io *h)
{
	struct xdp *x = h->priv;
	return x && x->need_kick ? 1 : 0;
}

/* poll() set: every queue for input, q[0] for output */
static int xdp_fds(struct vale_io *h, struct pollfd *p, uint32_t max, short in, short out)
{
	struct xdp *x = h->priv;
	uint32_t n = 0;
	for (uint32_t i = 0; i < x->nq && n < max; i++)
		p[n++] = (struct pollfd){.fd = x->q[i].fd, .events = (short)(in | (i ? 0 : out))};
	return (int)n;
}

const struct vale_io_ops vale_io_xdp_ops = {
	.name = "af_xdp",
	.kind = VIO_XDP,
	.needs_link = 1,
	.so_error = 1,
	.open = xdp_open,
	.close = xdp_close,
	.recv_batch = xdp_recv,
	.send_batch = xdp_send,
	.fds = xdp_fds, /* every queue's socket */
	.stats = xdp_stats,
	.tx_pending = xdp_tx_pending,
	.flush = NULL, /* send_batch kicks the TX ring itself */
	.persist = NULL,
};
