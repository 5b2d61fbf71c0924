/*
 * vale kernel I/O: the API of io.h. Picks the backend's ops table for the
 * kind asked for (VIO_AUTO: AF_XDP when it can be set up, else AF_PACKET,
 * with the reason kept for vale_io_info) and calls through that table only:
 * no backend is named here but in the table below, and no backend's state
 * is looked into. Interface checks common to the backends that bind an
 * existing interface (MTU, up, down) are done here, before the backend's
 * open, inside the requested network namespace.
 */
#include "io_impl.h"

#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/filter.h>

/* The backends by kind (VIO_AUTO has none of its own). */
static const struct vale_io_ops *const backends[] = {
	[VIO_TAP] = &vale_io_tap_ops,
	[VIO_PACKET] = &vale_io_packet_ops,
	[VIO_XDP] = &vale_io_xdp_ops,
	[VIO_VHOST] = &vale_io_vhost_ops,
	[VIO_VHOST_CLIENT] = &vale_io_vhost_client_ops,
};
#define NBACKENDS (sizeof backends / sizeof backends[0])

static const struct vale_io_ops *backend(uint32_t kind)
{
	return kind < NBACKENDS ? backends[kind] : NULL;
}

VALE_API const char *vale_io_kind_name(uint32_t kind)
{
	if (kind == VIO_AUTO) return "auto";
	const struct vale_io_ops *ops = backend(kind);
	return ops ? ops->name : "?";
}

/* ------------------------------------------------------------------ */
/* open and close */

static int open_with(struct vale_io *h, const struct vale_io_ops *ops, const char *ifname,
		     const struct vale_io_opts *o)
{
	h->ops = ops;
	h->kind = ops->kind;
	return ops->open(h, ifname, o);
}

/* What the backend made, and its fd; the handle can be opened again. */
static void close_backend(struct vale_io *h)
{
	if (h->ops) h->ops->close(h);
	if (h->fd >= 0) close(h->fd);
	h->fd = -1;
	h->poll_fd = -1;
}

/* The interface must be there; apply opts.mtu and VIO_F_UP, refuse it down
 * unless VIO_F_ALLOW_DOWN. Fills h->ifindex, h->mtu and *lp. */
static int link_prepare(struct vale_io *h, const char *ifname, const struct vale_io_opts *opts,
			struct vale_io_link *lp)
{
	struct vale_io_link l;
	int r = vio_link_query(h->ctl_fd, ifname, &l);
	if (r < 0) {
		if (opts->netns[0])
			vio_err(r, "no network interface '%s' in namespace '%s'", ifname,
				opts->netns);
		return r;
	}
	if (opts->mtu && opts->mtu != l.mtu) {
		r = vio_link_set(h->ctl_fd, ifname, -1, opts->mtu);
		if (r < 0) return r;
		l.mtu = opts->mtu;
	}
	if (!l.up && (h->flags & VIO_F_UP)) {
		r = vio_link_set(h->ctl_fd, ifname, 1, 0);
		if (r < 0) return r;
		l.up = 1;
	}
	if (!l.up && !(h->flags & VIO_F_ALLOW_DOWN))
		return vio_err(-ENETDOWN, "interface '%s' is down (ip link set %s up, or open with 'up')",
			       ifname, ifname);
	h->ifindex = l.ifindex;
	h->mtu = l.mtu;
	*lp = l;
	return 0;
}

/* VIO_AUTO: AF_XDP when the interface has no XDP program yet and it can be
 * set up, else AF_PACKET; h->why says which and why. */
static int open_auto(struct vale_io *h, const char *ifname, const struct vale_io_opts *opts,
		     uint32_t xdp_prog_id)
{
	char why[128];
	int r;
	if (h->flags & VIO_F_VNET_HDR) {
		/* Offloads asked for. A veth or a TAP hands over what its stack
		 * sends: GSO super-frames with partial checksums, which AF_PACKET
		 * carries with the header (AF_XDP would make the peer segment).
		 * A NIC's frames are MTU-sized anyway: AF_XDP there. */
		char drv[32];
		vio_link_driver(h->ctl_fd, ifname, drv, sizeof drv);
		if (!strcmp(drv, "veth") || !strcmp(drv, "tun")) {
			snprintf(h->why, sizeof h->why,
				 "%s: af_packet with virtio-net header keeps GSO and checksum offloads",
				 drv);
			return open_with(h, &vale_io_packet_ops, ifname, opts);
		}
		if (!xdp_prog_id) {
			h->flags &= ~(uint32_t)VIO_F_VNET_HDR;
			r = open_with(h, &vale_io_xdp_ops, ifname, opts);
			if (r == 0) {
				snprintf(h->why, sizeof h->why,
					 "af_xdp available (driver %.32s: MTU-sized frames, no header)",
					 drv[0] ? drv : "?");
				return 0;
			}
			snprintf(why, sizeof why, "%.127s", vale_io_last_error());
			close_backend(h);
			h->flags |= VIO_F_VNET_HDR;
		} else {
			snprintf(why, sizeof why, "'%s' already has XDP program id %u", ifname,
				 xdp_prog_id);
		}
		snprintf(h->why, sizeof h->why, "af_packet with virtio-net header: %.80s", why);
		return open_with(h, &vale_io_packet_ops, ifname, opts);
	}
	if (xdp_prog_id) {
		snprintf(why, sizeof why, "'%s' already has XDP program id %u", ifname, xdp_prog_id);
		r = -EBUSY;
	} else {
		r = open_with(h, &vale_io_xdp_ops, ifname, opts);
		snprintf(why, sizeof why, "%.127s", r < 0 ? vale_io_last_error() : "");
	}
	if (r == 0) {
		snprintf(h->why, sizeof h->why, "af_xdp available");
		return 0;
	}
	close_backend(h);
	snprintf(h->why, sizeof h->why, "af_packet: %.116s", why);
	return open_with(h, &vale_io_packet_ops, ifname, opts);
}

static int check_open_args(uint32_t kind, const char *ifname, const struct vale_io_opts *opts)
{
	if (kind != VIO_AUTO && !backend(kind))
		return vio_err(-EINVAL, "unknown kernel I/O kind %u", kind);
	/* vhost-user: a socket path (sockaddr_un's sun_path) */
	size_t maxlen = kind == VIO_VHOST || kind == VIO_VHOST_CLIENT ? 108 : IFNAMSIZ;
	if (!ifname || !ifname[0] || strlen(ifname) >= maxlen)
		return vio_err(-EINVAL, "bad interface name '%s' (1..%d characters)",
			       ifname ? ifname : "", (int)maxlen - 1);
	if (opts->netns[VIO_NETNS_MAX - 1]) return vio_err(-EINVAL, "netns name too long");
	uint32_t bs = opts->buf_size ? opts->buf_size : VALE_BUF_SIZE;
	if (bs < 64 || bs > 65535) return vio_err(-EINVAL, "buf_size %u out of 64..65535", bs);
	if (opts->flags & VIO_F_VNET_HDR) {
		uint32_t l = opts->vnet_hdr_len;
		if (l != 0 && l != 10 && l != 12)
			return vio_err(-EINVAL, "virtio-net header length %u (10 or 12)", l);
		if (bs < 64 + 12) return vio_err(-EINVAL, "buf_size %u too small for a header", bs);
		if (kind == VIO_XDP)
			return vio_err(-EOPNOTSUPP,
				       "'%s': af_xdp frames carry no virtio-net header (use af_packet, "
				       "or no header)",
				       ifname);
	}
	return 0;
}

/* Inside the handle's namespace: the link checks (for backends that bind an
 * existing interface, and VIO_AUTO), then the backend's open. */
static int open_in_ns(struct vale_io *h, uint32_t kind, const char *ifname,
		      const struct vale_io_opts *opts)
{
	h->ctl_fd = vio_ctl_socket();
	if (h->ctl_fd < 0) return h->ctl_fd;
	const struct vale_io_ops *ops = backend(kind); /* NULL: VIO_AUTO */
	struct vale_io_link l = {0};
	if (!ops || ops->needs_link) {
		int r = link_prepare(h, ifname, opts, &l);
		if (r < 0) return r;
	}
	if (!ops) return open_auto(h, ifname, opts, l.xdp_prog_id);
	snprintf(h->why, sizeof h->why, "requested");
	return open_with(h, ops, ifname, opts);
}

VALE_API int vale_io_open(uint32_t kind, const char *ifname, const struct vale_io_opts *opts,
			  struct vale_io **out)
{
	struct vale_io_opts def;
	*out = NULL;
	if (!opts) {
		memset(&def, 0, sizeof def);
		opts = &def;
	}
	int r = check_open_args(kind, ifname, opts);
	if (r < 0) return r;

	struct vale_io *h = calloc(1, sizeof *h);
	if (!h) return vio_err(-ENOMEM, "out of memory");
	h->fd = -1;
	h->poll_fd = -1;
	h->ctl_fd = -1;
	h->flags = opts->flags;
	h->buf_size = opts->buf_size ? opts->buf_size : VALE_BUF_SIZE;
	snprintf(h->ifname, sizeof h->ifname, "%s", ifname);

	int saved;
	r = vio_ns_enter(opts->netns, &saved);
	if (r < 0) {
		free(h);
		return r;
	}
	r = open_in_ns(h, kind, ifname, opts);
	if (r < 0) {
		close_backend(h);
		if (h->ctl_fd >= 0) close(h->ctl_fd);
		vio_ns_leave(saved);
		free(h);
		return r;
	}
	vio_ns_leave(saved);
	*out = h;
	return 0;
}

VALE_API void vale_io_close(struct vale_io *h)
{
	if (!h) return;
	close_backend(h);
	if (h->ctl_fd >= 0) close(h->ctl_fd);
	free(h);
}

/* ------------------------------------------------------------------ */
/* the data path */

VALE_API int vale_io_recv_batch(struct vale_io *h, void *const *bufs, uint16_t *lens,
				uint16_t *flags, uint32_t max)
{
	if (h->dead) return vio_err(h->dead, "interface '%s' was removed", h->ifname);
	return h->ops->recv_batch(h, bufs, lens, flags, max);
}

VALE_API int vale_io_recv_direct(struct vale_io *h, void *const *bufs, uint16_t *lens,
				 uint16_t *flags, struct vale_src_slot *ents, uint32_t max)
{
	if (max == 0) /* a probe: no error message either way */
		return h->ops->recv_direct ? 0 : -EOPNOTSUPP;
	if (!h->ops->recv_direct)
		return vio_err(-EOPNOTSUPP, "'%s': frames cannot be read in place", h->ifname);
	if (h->dead) return vio_err(h->dead, "interface '%s' was removed", h->ifname);
	return h->ops->recv_direct(h, bufs, lens, flags, ents, max);
}

VALE_API void vale_io_recv_release(struct vale_io *h)
{
	if (h->ops->recv_release) h->ops->recv_release(h);
}

VALE_API int vale_io_send_batch(struct vale_io *h, void *const *bufs, const uint16_t *lens,
				const uint16_t *flags, uint32_t n)
{
	if (h->dead) return vio_err(h->dead, "interface '%s' was removed", h->ifname);
	return h->ops->send_batch(h, bufs, lens, flags, n);
}

VALE_API int vale_io_tx_pending(struct vale_io *h)
{
	if (h->dead || !h->ops->tx_pending) return 0;
	return h->ops->tx_pending(h);
}

VALE_API int vale_io_tap_persist(struct vale_io *h, int32_t on)
{
	if (!h->ops->persist) return vio_err(-EINVAL, "'%s' is not a TAP handle", h->ifname);
	return h->ops->persist(h, on);
}

VALE_API int vale_io_vnet_hdr(struct vale_io *h)
{
	return h->ops->vnet_hdr ? h->ops->vnet_hdr(h) : -1;
}

VALE_API int vale_io_mark_filter(struct vale_io *h, uint32_t mark)
{
	if (h->kind != VIO_PACKET)
		return vio_err(EOPNOTSUPP, "%s: a mark filter needs an AF_PACKET socket", h->ifname);
	if (!mark) {
		if (setsockopt(h->fd, SOL_SOCKET, SO_DETACH_FILTER, &mark, sizeof mark) < 0 &&
		    errno != ENOENT)
			return vio_err(errno, "%s: SO_DETACH_FILTER: %s", h->ifname, strerror(errno));
		return 0;
	}
	/* classic BPF: A = skb->mark; A == mark ? keep all : drop */
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_MARK)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, mark, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
	if (setsockopt(h->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0)
		return vio_err(errno, "%s: SO_ATTACH_FILTER: %s", h->ifname, strerror(errno));
	return 0;
}

VALE_API int vale_io_driver(struct vale_io *h, char *out, uint32_t size)
{
	return vio_link_driver(h->ctl_fd, h->ifname, out, size);
}

VALE_API int vale_io_fd(struct vale_io *h) { return h->poll_fd >= 0 ? h->poll_fd : h->fd; }

VALE_API int vale_io_check(struct vale_io *h) { return vio_check_alive(h); }

/* ------------------------------------------------------------------ */
/* waiting */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The VIO_POLL_* bits poll() reported in pfd[0..n); *err: an fd failed. */
static int poll_events(const struct pollfd *pfd, int n, int *err)
{
	int m = 0;
	*err = 0;
	for (int i = 0; i < n; i++) {
		if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL)) *err = 1;
		if (pfd[i].revents & POLLIN) m |= VIO_POLL_IN;
		if (pfd[i].revents & POLLOUT) m |= VIO_POLL_OUT;
	}
	return m;
}

VALE_API int vale_io_poll(struct vale_io *h, uint32_t events, int timeout_ms)
{
	if (h->dead) return vio_err(h->dead, "interface '%s' was removed", h->ifname);
	short in = (events & VIO_POLL_IN) ? POLLIN : 0, out = (events & VIO_POLL_OUT) ? POLLOUT : 0;
	struct pollfd pfd[257];
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	/* Wait in slices so that a removed interface is noticed even by a
	 * backend whose fd does not report it (AF_XDP). */
	for (;;) {
		int slice = 200;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			if (left < 0) left = 0;
			if (left < slice) slice = (int)left;
		}
		int n = 1;
		if (h->ops->fds)
			n = h->ops->fds(h, pfd, 257, in, out);
		else
			pfd[0] = (struct pollfd){.fd = h->fd, .events = (short)(in | out)};
		int r = poll(pfd, (nfds_t)n, slice);
		if (r < 0) {
			if (errno == EINTR) return 0;
			int e = errno;
			return vio_err(-e, "'%s': poll: %s", h->ifname, strerror(e));
		}
		if (r > 0) {
			int err, m = poll_events(pfd, n, &err);
			if (err) {
				int c = vio_check_alive(h);
				if (c < 0) return c;
				/* transient error (the link flapped): report what is ready */
			}
			if (m) return m;
		}
		if (out && h->ops->flush) h->ops->flush(h); /* the sender's poll: push what is queued */
		/* nothing ready: is the interface still there? (rate limited, so
		 * busy polling with timeout 0 stays cheap) */
		int64_t now = now_ms();
		if (timeout_ms != 0 || now - h->last_check_ms >= 100) {
			h->last_check_ms = now;
			int c = vio_check_alive(h);
			if (c < 0) return c;
		}
		if (deadline >= 0 && now >= deadline) return 0;
	}
}

/* ------------------------------------------------------------------ */
/* what a handle is and has done */

VALE_API int vale_io_stats(struct vale_io *h, struct vale_io_stats *out)
{
	if (h->ops->stats) h->ops->stats(h);
	*out = h->st;
	return 0;
}

VALE_API int vale_io_info(struct vale_io *h, struct vale_io_info *out)
{
	memset(out, 0, sizeof *out);
	out->kind = h->kind;
	out->ifindex = h->ifindex;
	out->mtu = h->mtu;
	out->max_frame = h->max_frame;
	out->buf_size = h->buf_size;
	out->fd = vale_io_fd(h);
	out->flags = h->flags;
	out->vnet_hdr_len = (uint16_t)h->vnet_len;
	out->offloads = (uint16_t)h->offloads;
	snprintf(out->ifname, sizeof out->ifname, "%s", h->ifname);
	snprintf(out->mode, sizeof out->mode, "%s", h->mode);
	snprintf(out->why, sizeof out->why, "%s", h->why);
	return 0;
}
