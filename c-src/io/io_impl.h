/*
 * vale kernel I/O: what the files of io/ share and nothing else sees. The
 * public API and the backend contract (struct vale_io_ops) are in io.h.
 *
 *   io.c         the API: picks a backend's ops table, dispatches through it
 *   tap.c, af_packet.c, af_xdp.c   one backend each (its ops table)
 *   link.c       interfaces: links, MTU, flags, MACs, offloads, namespaces
 *   sg.c         scatter/gather of frames over caller buffers
 *   csum.c       completing partial (offloaded) TCP/UDP checksums
 *   err.c        the per-thread error message
 *
 * Files call down this list's helpers (link, sg, csum, err), never up into
 * io.c or across into another backend.
 */
#ifndef VALE_IO_IMPL_H
#define VALE_IO_IMPL_H

#include "io.h"
#include "vale_app.h" /* LOAD_ACQ, STORE_REL for the kernel's rings */
#include <stdbool.h>
#include <stddef.h>

/* A handle: the common part every backend fills and io.c reads. */
struct vale_io {
	const struct vale_io_ops *ops; /* the backend */
	uint32_t kind;      /* ops->kind */
	uint32_t flags;
	uint32_t buf_size;
	uint32_t ifindex;
	uint32_t mtu;
	uint32_t max_frame; /* send limit (frame only, without the virtio-net header) */
	uint32_t vnet_len;  /* VIO_F_VNET_HDR: header bytes before each frame (10/12), else 0 */
	uint32_t offloads;  /* TAP: TUN_F_* accepted by the kernel */
	int fd;
	int poll_fd;        /* what vale_io_fd() returns (XDP, several queues: an epoll fd) */
	int ctl_fd;         /* AF_INET dgram socket for ioctls in the right netns */
	int dead;           /* -ENODEV once the interface is gone */
	int64_t last_check_ms;
	char ifname[16];
	char mode[64];
	char why[128];
	struct vale_io_stats st;
	void *priv;         /* backend state: seen by the backend's own file only */
};

/* ---- err.c ---- */
int vio_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *vio_priv_hint(int err, const char *need);

/* ---- link.c ---- */
int vio_ns_enter(const char *netns, int *saved);
int vio_ns_leave(int saved);
int vio_ctl_socket(void);
int vio_link_query(int ctl_fd, const char *ifname, struct vale_io_link *out);
int vio_link_set(int ctl_fd, const char *ifname, int32_t up, uint32_t mtu);
int vio_check_alive(struct vale_io *h);
int vio_link_driver(int ctl_fd, const char *ifname, char *out, size_t size);

/* ---- sg.c ---- */
uint32_t vio_frame_bufs(uint32_t len, uint32_t buf_size);
uint32_t vio_gather_len(const uint16_t *lens, const uint16_t *flags, uint32_t i, uint32_t n,
			uint32_t buf_size, uint32_t *nbufs);
struct vio_seg {
	const uint8_t *p;
	uint32_t len;
};
uint32_t vio_scatter_segs(const struct vio_seg *seg, int nseg, void *const *bufs,
			  uint16_t *lens, uint16_t *flags, uint32_t buf_size);
void vio_scatter(const uint8_t *src, uint32_t len, void *const *bufs, uint16_t *lens,
		 uint16_t *flags, uint32_t buf_size);

/* The virtio-net header (little-endian fields, legacy layout on x86). */
#define VIO_VNET_GSO_NONE 0
#define VIO_VNET_NUM_BUFFERS_OFF 10 /* 12-byte header: num_buffers */
/* After a frame was received with a header: a 12-byte header says
 * num_buffers = 1 (the kernel writes 10 bytes), a GSO type is counted. */
static inline void vio_vnet_rx_done(struct vale_io *h, uint8_t *hdr)
{
	if (h->vnet_len == 12) {
		hdr[VIO_VNET_NUM_BUFFERS_OFF] = 1;
		hdr[VIO_VNET_NUM_BUFFERS_OFF + 1] = 0;
	}
	if (hdr[1] != VIO_VNET_GSO_NONE) h->st.rx_gso++;
}

/* ---- csum.c ---- */
int vio_csum_complete(const struct vio_seg *seg, int nseg, int heuristic);

#endif
