/*
 * vale kernel I/O: the TAP backend (/dev/net/tun, IFF_TAP|IFF_NO_PI).
 *
 * tun has no batched interface: one readv() per received frame, straight
 * into the caller's buffers (plus a staging tail for a frame that does not
 * fit in what is left), and one writev() per sent frame, gathering its
 * fragments. The fd is non-blocking; recv stops at EAGAIN.
 *
 * With VIO_F_VNET_HDR the virtio-net header is part of the frame in the
 * caller's buffers (read and written as it is), and the offloads set with
 * TUNSETOFFLOAD let the kernel hand over 64 KiB GSO frames with partial
 * checksums and take them back: the frame crosses once, not per segment.
 * The legacy VIO_F_TAP_VNET_HDR adds and strips a zero header instead.
 */
#include "io_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/if_tun.h>

#define TAP_VNET_LEN 10 /* struct virtio_net_hdr, the default TUNSETVNETHDRSZ */
#define TAP_MAX_FRAME 65535u

/* Newer than some installed headers */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif

struct tap {
	uint8_t *stage;      /* a frame that did not fit in the caller's buffers */
	uint32_t stage_size;
	uint32_t pend_len;   /* > 0: a frame waits in stage[0..pend_len) */
	uint32_t vnet;       /* legacy VIO_F_TAP_VNET_HDR: 0 or TAP_VNET_LEN (added/stripped here) */
	uint8_t hdr[TAP_VNET_LEN];
};

/* Header size and offloads of a TAP carrying virtio-net headers. The
 * offloads asked for (0: all we know) are tried, then less as the kernel
 * refuses them (USO needs 6.2, all of TSO needs checksums): h->offloads is
 * what was set. */
static int tap_offloads(struct vale_io *h, int fd, const char *ifname, uint32_t want)
{
	int sz = (int)h->vnet_len;
	if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
		int e = errno;
		return vio_err(-e, "TAP '%s': TUNSETVNETHDRSZ %d: %s", ifname, sz, strerror(e));
	}
	if (want & VIO_OFFLOADS_NONE) want = 0;
	else if (!want) want = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6;
	const unsigned int tries[] = {
		want,
		want & ~(unsigned int)(TUN_F_USO4 | TUN_F_USO6),
		want & TUN_F_CSUM,
		0,
	};
	for (unsigned i = 0; i < sizeof tries / sizeof tries[0]; i++) {
		if (i && tries[i] == tries[i - 1]) continue;
		if (ioctl(fd, TUNSETOFFLOAD, tries[i]) == 0) {
			h->offloads = tries[i];
			return 0;
		}
	}
	int e = errno;
	return vio_err(-e, "TAP '%s': TUNSETOFFLOAD: %s", ifname, strerror(e));
}

static int tap_open(struct vale_io *h, const char *ifname, const struct vale_io_opts *o)
{
	struct tap *t = calloc(1, sizeof *t);
	if (!t) return vio_err(-ENOMEM, "out of memory");
	h->priv = t;
	if (h->flags & VIO_F_VNET_HDR) {
		h->vnet_len = o && o->vnet_hdr_len ? o->vnet_hdr_len : TAP_VNET_LEN;
		if (h->vnet_len != 10 && h->vnet_len != 12)
			return vio_err(-EINVAL, "virtio-net header length %u (10 or 12)", h->vnet_len);
		h->flags &= ~(uint32_t)VIO_F_TAP_VNET_HDR; /* the real one wins */
	}
	t->vnet = (h->flags & VIO_F_TAP_VNET_HDR) ? TAP_VNET_LEN : 0;
	t->stage_size = VALE_MAX_FRAGS * h->buf_size + VIO_VNET_MAX_FRAME + 64;
	t->stage = malloc(t->stage_size);
	if (!t->stage) return vio_err(-ENOMEM, "out of memory");

	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	if (h->flags & VIO_F_TAP_NO_CREATE) {
		if (ioctl(h->ctl_fd, SIOCGIFINDEX, &ifr) < 0)
			return vio_err(-ENODEV, "no TAP interface '%s'%s%s", ifname,
				       o && o->netns[0] ? " in namespace " : "",
				       o && o->netns[0] ? o->netns : "");
	}
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return vio_err(-e, "no /dev/net/tun (CONFIG_TUN missing? modprobe tun)");
		/* EACCES is the device's mode (0600 root on many hosts), EPERM a
		 * security module: either way this user lacks a privilege, and
		 * which one must not depend on how the host set the mode up */
		if (e == EACCES || e == EPERM)
			return vio_err(-e,
				       "cannot open /dev/net/tun: %s (the device is not accessible "
				       "to this user: needs read/write access to /dev/net/tun, and "
				       "CAP_NET_ADMIN unless TAP '%s' is persistent and owned by "
				       "this user: ip tuntap add %s mode tap user $USER)",
				       strerror(e), ifname, ifname);
		return vio_err(-e, "cannot open /dev/net/tun: %s", strerror(e));
	}
	h->fd = fd;
	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (h->flags & VIO_F_TAP_EXCL) ifr.ifr_flags |= IFF_TUN_EXCL;
	if (t->vnet || h->vnet_len) ifr.ifr_flags |= IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		switch (e) {
		case EPERM:
			return vio_err(-e,
				       "cannot create or attach TAP '%s': %s (needs CAP_NET_ADMIN, "
				       "or a persistent TAP owned by this user: "
				       "ip tuntap add %s mode tap user $USER)",
				       ifname, strerror(e), ifname);
		case EEXIST:
			return vio_err(-e, "TAP '%s' already exists", ifname);
		case EBUSY:
			return vio_err(-e, "TAP '%s' is busy (attached by another process?)", ifname);
		case EINVAL:
			return vio_err(-e,
				       "'%s' exists and is not a TAP device (or its flags differ)",
				       ifname);
		}
		return vio_err(-e, "TUNSETIFF '%s': %s", ifname, strerror(e));
	}
	if (h->vnet_len) {
		int r = tap_offloads(h, fd, ifname, o ? o->offloads : 0);
		if (r < 0) return r;
	} else {
		/* no offloads: the kernel hands us whole, checksummed frames */
		ioctl(fd, TUNSETOFFLOAD, 0);
	}
	if (h->flags & VIO_F_TAP_PERSIST) {
		if (ioctl(fd, TUNSETPERSIST, 1) < 0) {
			int e = errno;
			return vio_err(-e, "TAP '%s': TUNSETPERSIST: %s%s", ifname, strerror(e),
				       vio_priv_hint(e, "CAP_NET_ADMIN"));
		}
	}
	snprintf(h->ifname, sizeof h->ifname, "%s", ifr.ifr_name); /* "tap%d" resolved */
	struct vale_io_link l;
	int r;
	if (o && o->mtu) {
		r = vio_link_set(h->ctl_fd, h->ifname, -1, o->mtu);
		if (r < 0) return r;
	}
	if (h->flags & VIO_F_UP) {
		r = vio_link_set(h->ctl_fd, h->ifname, 1, 0);
		if (r < 0) return r;
	}
	r = vio_link_query(h->ctl_fd, h->ifname, &l);
	if (r < 0) return r;
	h->ifindex = l.ifindex;
	h->mtu = l.mtu;
	h->max_frame = h->vnet_len ? VIO_VNET_MAX_FRAME : TAP_MAX_FRAME;
	char off[48] = "";
	if (h->vnet_len)
		snprintf(off, sizeof off, " %u%s%s%s%s", h->vnet_len,
			 (h->offloads & TUN_F_CSUM) ? " csum" : " no-offloads",
			 (h->offloads & TUN_F_TSO4) ? " tso4" : "",
			 (h->offloads & TUN_F_TSO6) ? " tso6" : "",
			 (h->offloads & TUN_F_USO4) ? " uso" : "");
	snprintf(h->mode, sizeof h->mode, "tap%s%.40s%s", t->vnet || h->vnet_len ? " vnet_hdr" : "",
		 off, (h->flags & VIO_F_TAP_PERSIST) ? " persist" : "");
	return 0;
}

static void tap_close(struct vale_io *h)
{
	struct tap *t = h->priv;
	if (!t) return;
	free(t->stage);
	free(t);
	h->priv = NULL;
}

static int tap_gone(struct vale_io *h, int e)
{
	/* EBADFD: the device was deleted under us; EIO: it is down */
	if (e == EBADFD || e == ENXIO || e == ENODEV) {
		h->dead = -ENODEV;
		return vio_err(-ENODEV, "TAP '%s' was removed", h->ifname);
	}
	if (e == EIO) {
		int c = vio_check_alive(h);
		if (c < 0) return c;
		return vio_err(-ENETDOWN, "TAP '%s' is down", h->ifname);
	}
	return vio_err(-e, "TAP '%s': %s", h->ifname, strerror(e));
}

static void fill_lens(uint32_t len, uint16_t *lens, uint16_t *flags, uint32_t bs)
{
	uint32_t k = vio_frame_bufs(len, bs);
	for (uint32_t j = 0; j + 1 < k; j++) {
		lens[j] = (uint16_t)bs;
		flags[j] = VS_MOREFRAG;
	}
	lens[k - 1] = (uint16_t)(len - (k - 1) * bs);
	flags[k - 1] = 0;
}

static int tap_recv(struct vale_io *h, void *const *bufs, uint16_t *lens, uint16_t *flags,
		 uint32_t max)
{
	struct tap *t = h->priv;
	uint32_t bs = h->buf_size, filled = 0;
	uint64_t before = h->st.rx_pkts;
	if (t->pend_len) {
		uint32_t k = vio_frame_bufs(t->pend_len, bs);
		if (k > max)
			return vio_err(-ENOBUFS, "'%s': the next frame needs %u buffers, %u given",
				       h->ifname, k, max);
		vio_scatter(t->stage, t->pend_len, bufs, lens, flags, bs);
		h->st.rx_pkts++;
		h->st.rx_bytes += t->pend_len - h->vnet_len;
		t->pend_len = 0;
		filled = k;
	}
	struct iovec iov[VALE_MAX_FRAGS + 2];
	while (filled < max) {
		uint32_t nb = max - filled, c = 0;
		if (nb > VALE_MAX_FRAGS) nb = VALE_MAX_FRAGS;
		if (t->vnet) iov[c++] = (struct iovec){t->hdr, t->vnet};
		for (uint32_t j = 0; j < nb; j++) iov[c++] = (struct iovec){bufs[filled + j], bs};
		/* the tail goes to staging right after room for the parts above */
		iov[c++] = (struct iovec){t->stage + (size_t)nb * bs, t->stage_size - (size_t)nb * bs};
		ssize_t r = readv(h->fd, iov, (int)c);
		if (r < 0) {
			int e = errno;
			if (e == EAGAIN) break;
			if (e == EINTR) continue;
			if (filled) break; /* report next time */
			return tap_gone(h, e);
		}
		if ((uint32_t)r <= t->vnet + h->vnet_len) continue;
		uint32_t len = (uint32_t)r - t->vnet;
		uint32_t k = vio_frame_bufs(len, bs);
		if (k <= nb) {
			if (h->vnet_len) vio_vnet_rx_done(h, bufs[filled]);
			fill_lens(len, lens + filled, flags + filled, bs);
			filled += k;
			h->st.rx_pkts++;
			h->st.rx_bytes += len - h->vnet_len;
			continue;
		}
		/* it spilled into staging: make it contiguous there */
		for (uint32_t j = 0; j < nb; j++) memcpy(t->stage + (size_t)j * bs, bufs[filled + j], bs);
		if (k > VALE_MAX_FRAGS) {
			h->st.rx_oversize++;
			continue;
		}
		if (h->vnet_len) vio_vnet_rx_done(h, t->stage);
		t->pend_len = len;
		if (!filled) {
			if (h->st.rx_pkts != before) h->st.rx_batches++;
			return vio_err(-ENOBUFS, "'%s': the next frame needs %u buffers, %u given",
				       h->ifname, k, max);
		}
		break;
	}
	if (h->st.rx_pkts != before) h->st.rx_batches++;
	return (int)filled;
}

static int tap_send(struct vale_io *h, void *const *bufs, const uint16_t *lens,
		 const uint16_t *flags, uint32_t n)
{
	struct tap *t = h->priv;
	static const uint8_t zero_hdr[TAP_VNET_LEN];
	struct iovec iov[VALE_MAX_FRAGS + 1];
	uint32_t i = 0, sent = 0;
	uint64_t bytes = 0;
	while (i < n) {
		uint32_t nb, len = vio_gather_len(lens, flags, i, n, h->buf_size, &nb);
		if (!nb) break;
		if (len < 14 + h->vnet_len || len > h->max_frame + h->vnet_len ||
		    nb > VALE_MAX_FRAGS) {
			h->st.tx_drops++;
			i += nb;
			continue;
		}
		uint32_t c = 0;
		if (t->vnet) iov[c++] = (struct iovec){(void *)zero_hdr, t->vnet};
		for (uint32_t j = 0; j < nb; j++) iov[c++] = (struct iovec){bufs[i + j], lens[i + j]};
		ssize_t r = writev(h->fd, iov, (int)c);
		if (r < 0) {
			int e = errno;
			if (e == EINTR) continue;
			if (e == EAGAIN || e == ENOBUFS) {
				h->st.tx_ring_full++;
				break;
			}
			if (e == EBADFD || e == ENXIO || e == ENODEV || e == EIO) {
				if (sent) break; /* report it on the next call */
				return tap_gone(h, e);
			}
			h->st.tx_errors++; /* EINVAL, EFAULT: this frame */
			i += nb;
			continue;
		}
		sent++;
		bytes += len - h->vnet_len;
		i += nb;
	}
	if (sent) {
		h->st.tx_pkts += sent;
		h->st.tx_bytes += bytes;
		h->st.tx_batches++;
	}
	return (int)i;
}

static int tap_persist(struct vale_io *h, int32_t on)
{
	if (ioctl(h->fd, TUNSETPERSIST, on ? 1 : 0) < 0) {
		int e = errno;
		return vio_err(-e, "TAP '%s': TUNSETPERSIST: %s%s", h->ifname, strerror(e),
			       vio_priv_hint(e, "CAP_NET_ADMIN"));
	}
	if (on) h->flags |= VIO_F_TAP_PERSIST;
	else h->flags &= ~(uint32_t)VIO_F_TAP_PERSIST;
	return 0;
}

const struct vale_io_ops vale_io_tap_ops = {
	.name = "tap",
	.kind = VIO_TAP,
	.needs_link = 0, /* creates its interface, or attaches to one by name */
	.so_error = 0,
	.open = tap_open,
	.close = tap_close,
	.recv_batch = tap_recv,
	.send_batch = tap_send,
	.fds = NULL, /* h->fd */
	.stats = NULL,
	.tx_pending = NULL, /* writev() either takes a frame or fails */
	.flush = NULL,
	.persist = tap_persist,
};
