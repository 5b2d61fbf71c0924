/*
 * vale kernel I/O: the vhost-user backends (VIO_VHOST: we listen on a Unix
 * socket; VIO_VHOST_CLIENT: we connect to one and reconnect). Not a kernel
 * interface: the "interface name" is the socket path, the other side a VM's
 * virtio-net (QEMU) or DPDK's virtio-user, whose rings and memory we map.
 * The protocol and the rings are c-src/vhost/; this file is only the ops
 * table the forwarder drives, so `vale-ctl -a valeX:vhost:PATH` runs like
 * any attachment: recv_direct describes the guest's TX frames in place (the
 * switch copies them once, from guest memory, into the destinations; the
 * chains go back at recv_release), recv_batch copies them into the port's TX
 * ring buffers (a pipe end, in a process), send_batch puts the port's RX
 * buffers into the guest's RX buffers.
 *
 * "Link down" is "no front-end, or its queues are not running": recv and
 * send return -ENETDOWN, so the forwarder counts frames to the port as drops
 * and polls vale_io_check() until a front-end is back.
 */
#include "io_impl.h"
#include "../vhost/vhost.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int vhost_open_common(struct vale_io *h, const char *path, bool client)
{
	struct vh_dev *d = calloc(1, sizeof *d);
	if (!d) return vio_err(-ENOMEM, "out of memory");
	h->priv = d;
	const char *base = strrchr(path, '/');
	snprintf(h->ifname, sizeof h->ifname, "%s", base ? base + 1 : path);
	int r = vh_dev_start(d, path, client, h->flags & VIO_F_VHOST_OFFLOADS, h->mode);
	if (r < 0) return vio_err(r, "vhost-user %s: %s", path, d->last_err[0] ? d->last_err : strerror(-r));
	h->poll_fd = d->in_epfd;
	h->mtu = 1500;
	h->max_frame = 65535;
	snprintf(h->why, sizeof h->why, "requested");
	return 0;
}

static int vhost_open(struct vale_io *h, const char *path, const struct vale_io_opts *o)
{
	return vhost_open_common(h, path, false);
}
static int vhost_client_open(struct vale_io *h, const char *path, const struct vale_io_opts *o)
{
	return vhost_open_common(h, path, true);
}

static void vhost_close(struct vale_io *h)
{
	struct vh_dev *d = h->priv;
	if (!d) return;
	vh_dev_stop(d);
	free(d);
	h->priv = NULL;
	h->poll_fd = -1;
}

static int down(struct vale_io *h)
{
	struct vh_dev *d = h->priv;
	return vio_err(-ENETDOWN, "vhost-user %s: %s", d->path,
		       d->connected ? "front-end connected, its queues are not running"
				    : "no front-end connected");
}

static int vhost_recv_common(struct vale_io *h, void *const *bufs, uint16_t *lens,
			     uint16_t *flags, struct vale_src_slot *ents, uint32_t max)
{
	uint64_t frames = 0, bytes = 0;
	int r = vh_dequeue(h->priv, bufs, lens, flags, ents, max, h->buf_size, &frames, &bytes);
	if (frames) {
		h->st.rx_pkts += frames;
		h->st.rx_bytes += bytes;
		h->st.rx_batches++;
	}
	if (r == -ENETDOWN) return down(h);
	if (r == -ENOBUFS) return vio_err(r, "vhost-user: the next frame needs more buffers");
	return r;
}

static int vhost_recv(struct vale_io *h, void *const *bufs, uint16_t *lens, uint16_t *flags,
		      uint32_t max)
{
	return vhost_recv_common(h, bufs, lens, flags, NULL, max);
}

/* The guest's TX frames described in place (guest memory): the switch's
 * flush copies them once, straight into the destinations' rings. */
static int vhost_recv_direct(struct vale_io *h, void *const *bufs, uint16_t *lens,
			     uint16_t *flags, struct vale_src_slot *ents, uint32_t max)
{
	return vhost_recv_common(h, bufs, lens, flags, ents, max);
}

static void vhost_recv_release(struct vale_io *h)
{
	vh_release(h->priv);
}

static int vhost_send(struct vale_io *h, void *const *bufs, const uint16_t *lens,
		      const uint16_t *flags, uint32_t n)
{
	if (n == 0) return 0;
	uint64_t frames = 0, bytes = 0, drops = 0;
	int r = vh_enqueue(h->priv, bufs, lens, flags, n, h->buf_size, &frames, &bytes, &drops);
	if (frames) {
		h->st.tx_pkts += frames;
		h->st.tx_bytes += bytes;
		h->st.tx_batches++;
	}
	h->st.tx_drops += drops;
	if ((uint32_t)r < n && r >= 0) h->st.tx_ring_full++;
	if (r == -ENETDOWN) return down(h);
	return r;
}

/* Kicks of the TX queue wake the receiving side; kicks of the RX queue (the
 * guest added buffers) wake a sender waiting for room. */
static int vhost_fds(struct vale_io *h, struct pollfd *p, uint32_t max, short in, short out)
{
	struct vh_dev *d = h->priv;
	int n = 0;
	if (in && (uint32_t)n < max) p[n++] = (struct pollfd){.fd = d->in_epfd, .events = POLLIN};
	if (out && (uint32_t)n < max) p[n++] = (struct pollfd){.fd = d->out_epfd, .events = POLLIN};
	return n;
}

static int vhost_vnet_hdr(struct vale_io *h)
{
	return (int)__atomic_load_n(&((struct vh_dev *)h->priv)->port_hdr, __ATOMIC_ACQUIRE);
}

static int vhost_check(struct vale_io *h)
{
	return vh_dev_ready(h->priv) ? 0 : down(h);
}

const struct vale_io_ops vale_io_vhost_ops = {
	.name = "vhost",
	.kind = VIO_VHOST,
	.open = vhost_open,
	.close = vhost_close,
	.recv_batch = vhost_recv,
	.send_batch = vhost_send,
	.fds = vhost_fds,
	.check = vhost_check,
	.vnet_hdr = vhost_vnet_hdr,
	.recv_direct = vhost_recv_direct,
	.recv_release = vhost_recv_release,
};

const struct vale_io_ops vale_io_vhost_client_ops = {
	.name = "vhost-client",
	.kind = VIO_VHOST_CLIENT,
	.open = vhost_client_open,
	.close = vhost_close,
	.recv_batch = vhost_recv,
	.send_batch = vhost_send,
	.fds = vhost_fds,
	.check = vhost_check,
	.vnet_hdr = vhost_vnet_hdr,
	.recv_direct = vhost_recv_direct,
	.recv_release = vhost_recv_release,
};

VALE_API int vale_io_vhost_json(struct vale_io *h, char *buf, uint32_t len)
{
	if (!h || (h->ops != &vale_io_vhost_ops && h->ops != &vale_io_vhost_client_ops))
		return vio_err(-EINVAL, "not a vhost-user handle");
	return vh_dev_json(h->priv, buf, len);
}
