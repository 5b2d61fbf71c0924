/*
 * vale vhost-user back-end: what the files of c-src/vhost/ and the I/O
 * backend glue (io/vhost.c) share.
 *
 *   proto.c   the socket: message framing (fds by SCM_RIGHTS), negotiation,
 *             the control thread (listen or connect, one front-end at a time)
 *   mem.c     the front-end's memory table: mapping, address translation
 *   vring.c   split virtqueues: guest TX chains -> described in place for the
 *             switch (or copied into caller buffers), caller buffers -> guest
 *             RX buffers (mergeable), notifications
 *
 * Written from QEMU's vhost-user specification (docs/interop/vhost-user.rst)
 * and the virtio 1.x specification (split virtqueues, virtio-net header).
 * Everything the front-end sends (messages, fds, ring indices, descriptors)
 * is checked before use; a front-end that breaks the rules is refused and
 * counted (struct vh_counters), never trusted with our memory.
 *
 * Locking: each virtqueue has a mutex, held by the data thread for one batch
 * and by the control thread while it changes that queue; a memory table
 * change holds both. So a data thread never sees a region unmapped under it.
 */
#ifndef VALE_VHOST_H
#define VALE_VHOST_H

#include <pthread.h>
#include <stdint.h>
#include <stdbool.h>
#include "vale.h"

/* ---- protocol constants (vhost-user spec) ---- */
enum {
	VHU_GET_FEATURES = 1,
	VHU_SET_FEATURES = 2,
	VHU_SET_OWNER = 3,
	VHU_RESET_OWNER = 4,
	VHU_SET_MEM_TABLE = 5,
	VHU_SET_LOG_BASE = 6,
	VHU_SET_LOG_FD = 7,
	VHU_SET_VRING_NUM = 8,
	VHU_SET_VRING_ADDR = 9,
	VHU_SET_VRING_BASE = 10,
	VHU_GET_VRING_BASE = 11,
	VHU_SET_VRING_KICK = 12,
	VHU_SET_VRING_CALL = 13,
	VHU_SET_VRING_ERR = 14,
	VHU_GET_PROTOCOL_FEATURES = 15,
	VHU_SET_PROTOCOL_FEATURES = 16,
	VHU_GET_QUEUE_NUM = 17,
	VHU_SET_VRING_ENABLE = 18,
	VHU_SEND_RARP = 19,
	VHU_NET_SET_MTU = 20,
};
#define VHU_VERSION 0x1u
#define VHU_FLAG_VERSION_MASK 0x3u
#define VHU_FLAG_REPLY 0x4u
#define VHU_FLAG_NEED_REPLY 0x8u
#define VHU_VRING_IDX_MASK 0xffu
#define VHU_VRING_NOFD 0x100u
#define VHU_MAX_REGIONS 8
#define VHU_MAX_FDS 8
#define VHU_MAX_PAYLOAD 4096 /* larger than any message we accept (mem table: 264) */

/* feature bits */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VHOST_USER_F_PROTOCOL_FEATURES 30
#define VIRTIO_F_VERSION_1 32
#define VHU_PROTO_F_MQ 0
#define VHU_PROTO_F_REPLY_ACK 3

#define VH_BIT(b) (1ull << (b))
/* What we offer: modern devices, mergeable RX buffers, indirect descriptors,
 * event-idx notification suppression, and the protocol-feature extension. */
#define VH_FEATURES                                                                         \
	(VH_BIT(VIRTIO_F_VERSION_1) | VH_BIT(VIRTIO_NET_F_MRG_RXBUF) |                      \
	 VH_BIT(VIRTIO_F_INDIRECT_DESC) | VH_BIT(VIRTIO_F_EVENT_IDX) |                      \
	 VH_BIT(VHOST_USER_F_PROTOCOL_FEATURES))
/* With offloads (VIO_F_VHOST_OFFLOADS): partial checksums and TCP segmentation
 * both ways; the switch converts for ports without a virtio-net header. */
#define VH_OFFLOADS                                                                         \
	(VH_BIT(VIRTIO_NET_F_CSUM) | VH_BIT(VIRTIO_NET_F_GUEST_CSUM) |                      \
	 VH_BIT(VIRTIO_NET_F_GUEST_TSO4) | VH_BIT(VIRTIO_NET_F_GUEST_TSO6) |                \
	 VH_BIT(VIRTIO_NET_F_HOST_TSO4) | VH_BIT(VIRTIO_NET_F_HOST_TSO6))
/* The guest takes whatever the switch hands a port with a header. */
#define VH_GUEST_RX_OFFLOADS                                                                \
	(VH_BIT(VIRTIO_NET_F_GUEST_CSUM) | VH_BIT(VIRTIO_NET_F_GUEST_TSO4) |                \
	 VH_BIT(VIRTIO_NET_F_GUEST_TSO6))
#define VH_PROTO_FEATURES (VH_BIT(VHU_PROTO_F_REPLY_ACK))

/* split ring layout (virtio 1.x, 2.7) */
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_USED_F_NO_NOTIFY 1
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VH_MAX_QSIZE 32768
#define VH_MAX_CHAIN 1024 /* descriptors in one chain (direct + indirect) */

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* num, then used_event */
};
struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};
struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[]; /* num, then avail_event */
};

/* ---- memory table (mem.c) ---- */
struct vh_region {
	uint64_t gpa, size, uva; /* guest-physical start, length, front-end's virtual start */
	uint8_t *host;           /* where gpa maps here */
	void *map;               /* mmap() result */
	uint64_t map_len;
};
struct vh_mem {
	uint32_t n;
	struct vh_region r[VHU_MAX_REGIONS];
};
/* Host address of [gpa, gpa + len) or NULL when it is not inside one region. */
static inline uint8_t *vh_gpa(const struct vh_mem *m, uint64_t gpa, uint64_t len)
{
	for (uint32_t i = 0; i < m->n; i++) {
		const struct vh_region *r = &m->r[i];
		uint64_t off = gpa - r->gpa;
		if (gpa >= r->gpa && off < r->size && len <= r->size - off)
			return r->host + off;
	}
	return NULL;
}
uint8_t *vh_uva(const struct vh_mem *m, uint64_t uva, uint64_t len);
void vh_mem_unmap(struct vh_mem *m);
struct vh_dev;
/* Map the regions of a SET_MEM_TABLE payload with their fds into *out (SIGBUS
 * in them, a file shrunk under us, marks `d`: fault.c). */
int vh_mem_map(struct vh_dev *d, struct vh_mem *out, const uint8_t *payload, uint32_t size,
	       const int *fds, int nfds, char *why, uint32_t why_len);
/* fault.c */
void vh_fault_watch(struct vh_dev *d, void *start, uint64_t len);
void vh_fault_unwatch(void *start);

/* ---- counters (what a misbehaving front-end costs it) ---- */
struct vh_counters {
	uint64_t connects, disconnects, rejected_conns;
	uint64_t msgs, bad_msgs, unknown_msgs; /* bad: framing, sizes, fds, values */
	uint64_t bad_desc;      /* a chain out of memory, looping, too long, wrong direction */
	uint64_t bad_index;     /* avail idx / head index out of range: queue stopped */
	uint64_t rx_no_bufs;    /* the guest had no RX buffers: sends stopped (retry) */
	uint64_t rx_drops;      /* frames to the guest dropped: too large for its buffers */
	uint64_t tx_offload_refused; /* guest frames needing an offload the port cannot carry */
	uint64_t mem_faults;    /* the front-end shrank mapped memory: connection ended */
	uint64_t tx_direct;     /* guest frames the switch copied straight from guest memory */
	uint64_t tx_copied;     /* guest frames copied into the port's TX ring first (two copies) */
	uint64_t kicks_in, calls_out;
};

/* ---- one virtqueue (vring.c) ---- */
struct vh_vq {
	pthread_mutex_t lock;
	uint32_t num;         /* 0: not set */
	uint64_t desc_uva, avail_uva, used_uva;
	bool addr_set;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail;  /* next avail entry we take */
	uint16_t last_used;   /* our used idx (published at the end of a batch) */
	uint16_t signalled;   /* used idx at the last call (event idx) */
	bool kicked;          /* SET_VRING_KICK received: the ring is started */
	bool enabled;
	bool broken;          /* bad index seen: stopped until reset */
	bool notify_on;       /* we asked the guest for kicks */
	int kick_fd, call_fd; /* -1: none */
	int epfd;             /* the epoll fd the kick fd is registered in (not owned) */
	/* scratch for one chain: host pointers and lengths */
	struct { uint8_t *p; uint32_t len; } *seg;
	/* vh_dequeue with a source table: the chains the switch is reading, given
	 * back by vh_release (the queue's lock is held in between) */
	uint16_t *held;
	uint32_t nheld;
	uint16_t held_old_used;
	bool holding;
};
#define VH_MAX_HELD 2048 /* chains one dequeue may hold (> a batch and a frame's buffers) */

/* The device: one front-end connection, two queues (0 RX to the guest, 1 TX
 * from the guest). */
struct vh_dev {
	char path[108];
	bool client;          /* we connect (the front-end listens, server=on) */
	int listen_fd, conn_fd;
	int stop_efd;         /* wakes the control thread to end */
	int in_epfd, out_epfd; /* TX kick (and state changes), RX kick */
	pthread_t th;
	bool th_started;
	volatile int stop;
	pthread_mutex_t mlock; /* features, mem, counters text */
	uint64_t features, proto_features;
	bool owner, connected;
	uint32_t hdr_len;     /* virtio-net header: 12 (VERSION_1 / MRG_RXBUF) or 10 */
	bool offloads;        /* offer VH_OFFLOADS (VIO_F_VHOST_OFFLOADS) */
	volatile uint32_t port_hdr; /* the header frames carry on the port side: hdr_len when the
				     * guest took VH_GUEST_RX_OFFLOADS, else 0 (headers stripped) */
	bool mrg, event_idx, indirect;
	struct vh_mem mem;
	struct vh_vq vq[2];
	struct vh_counters c;
	char last_err[256];   /* the last refusal, for people */
	volatile int mem_fault; /* set by the SIGBUS handler (fault.c) */
	char *mode;           /* the handle's mode text (64 bytes), kept current */
};

/* proto.c */
int vh_dev_start(struct vh_dev *d, const char *path, bool client, bool offloads, char *mode);
void vh_dev_stop(struct vh_dev *d);
int vh_dev_ready(struct vh_dev *d);
int vh_dev_json(struct vh_dev *d, char *buf, uint32_t len);

/* vring.c */
int vh_vq_init(struct vh_vq *q);
void vh_vq_fini(struct vh_vq *q);
void vh_vq_reset(struct vh_vq *q);
int vh_vq_map(struct vh_dev *d, struct vh_vq *q);
bool vh_vq_ready(const struct vh_vq *q);
/* Guest TX -> caller buffers (vale_io recv_batch semantics). With `ents`
 * (vale_io_recv_direct): a frame whose pieces the switch can read in place is
 * described in ents[] (pointers into guest memory) instead of copied, every
 * other one copied into bufs and ents pointing at them; when frames were
 * taken (> 0) the queue stays locked and its chains held until vh_release. */
int vh_dequeue(struct vh_dev *d, void *const *bufs, uint16_t *lens, uint16_t *flags,
	       struct vale_src_slot *ents, uint32_t max, uint32_t buf_size, uint64_t *frames,
	       uint64_t *bytes);
/* Give the held chains back to the guest (used ring, call) and unlock. */
void vh_release(struct vh_dev *d);
/* Caller buffers -> guest RX (vale_io send_batch semantics). */
int vh_enqueue(struct vh_dev *d, void *const *bufs, const uint16_t *lens, const uint16_t *flags,
	       uint32_t n, uint32_t buf_size, uint64_t *frames, uint64_t *bytes, uint64_t *drops);

#define VH_ADD(d, f, v) __atomic_fetch_add(&(d)->c.f, (uint64_t)(v), __ATOMIC_RELAXED)

#endif
