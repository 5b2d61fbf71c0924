/*
 * vale: kernel-facing I/O backends (TAP, AF_PACKET, AF_XDP).
 *
 * A `vale_io` moves whole Ethernet frames between a Linux network interface
 * and caller-provided buffers, in batches, without allocation on the hot
 * path. It knows nothing about switches: the forwarder that attaches an
 * interface to a vale port passes pointers into the port's ring buffers
 * (VALE_BUF_SIZE bytes each) as `bufs[]`, and the `flags[]` array uses the
 * slot flag VS_MOREFRAG for every buffer of a frame but the last, exactly
 * like netmap slots.
 *
 * Backends:
 *   VIO_TAP     /dev/net/tun, IFF_TAP|IFF_NO_PI: the host stack (or a VM,
 *               or a namespace) on the other side. One read/writev per frame:
 *               tun has no batched interface.
 *   VIO_PACKET  AF_PACKET with mmap()ed rings bound to an existing
 *               interface: TPACKET_V2 RX ring (per-frame hand-off, µs
 *               latency) or, with VIO_F_RX_V3, a TPACKET_V3 block ring (fewer
 *               wake-ups, ~2x the rate, but up to block_tov_ms of added
 *               latency at low rates), and a TX ring of the same version
 *               flushed by one sendto() per batch.
 *   VIO_XDP     AF_XDP sockets (copy or zero-copy), one per RX queue, each
 *               with its UMEM, and a tiny XDP program (built in, no libbpf)
 *               redirecting every queue to its socket through an XSKMAP.
 *               Attached with a bpf_link that the kernel removes when the
 *               process exits or dies.
 *   VIO_AUTO    VIO_XDP when it can be set up on the interface, else
 *               VIO_PACKET; vale_io_info() tells which and why.
 *
 * All functions return >= 0 on success and -errno on failure; a message for
 * the last failure of the calling thread is returned by vale_io_last_error()
 * (it names the interface, the step, and the missing privilege if any).
 */
#ifndef VALE_IO_H
#define VALE_IO_H

#include <stdint.h>
#include "vale.h"

typedef struct vale_io vale_io;

enum { VIO_AUTO = 0, VIO_TAP = 1, VIO_PACKET = 2, VIO_XDP = 3 };
/* vhost-user (c-src/vhost/, io/vhost.c): the "interface name" is a Unix
 * socket path; VIO_VHOST listens on it (QEMU -chardev socket,path=, DPDK
 * virtio-user), VIO_VHOST_CLIENT connects to it and reconnects (QEMU with
 * server=on). Down (-ENETDOWN) while no front-end has its queues running. */
enum { VIO_VHOST = 4, VIO_VHOST_CLIENT = 5 };

/* vale_io_opts.flags */
#define VIO_F_UP 0x0001           /* bring the interface up if it is down */
#define VIO_F_ALLOW_DOWN 0x0002   /* PACKET/XDP: open even if the interface is down */
#define VIO_F_PROMISC 0x0004      /* PACKET/XDP: promiscuous while open (a bridge port needs it) */
#define VIO_F_QDISC_BYPASS 0x0008 /* PACKET: PACKET_QDISC_BYPASS (straight to the driver) */
#define VIO_F_SEE_OUTGOING 0x0010 /* PACKET: also receive frames the host sends on the interface */
#define VIO_F_RX_V3 0x0020        /* PACKET: TPACKET_V3 block RX ring: more throughput, but a
				   * block reaches us only when full or after block_tov_ms */
#define VIO_F_NO_CSUM_FIX 0x0040  /* PACKET/XDP: leave partial (offloaded) TCP/UDP checksums */
#define VIO_F_TAP_EXCL 0x0100     /* TAP: fail with EEXIST if the device exists */
#define VIO_F_TAP_NO_CREATE 0x0200 /* TAP: attach only, ENODEV if it does not exist */
#define VIO_F_TAP_PERSIST 0x0400  /* TAP: TUNSETPERSIST, the device outlives the handle */
#define VIO_F_TAP_VNET_HDR 0x0800 /* TAP: IFF_VNET_HDR with offloads off, a zero header added and
				   * stripped (frames as without it); VIO_F_VNET_HDR passes headers */
#define VIO_F_XDP_SKB 0x1000      /* XDP: generic (skb) mode only */
#define VIO_F_XDP_DRV 0x2000      /* XDP: native driver mode only */
#define VIO_F_XDP_ZEROCOPY 0x4000 /* XDP: require zero-copy (fail rather than copy) */
#define VIO_F_XDP_NO_SG 0x8000    /* XDP: do not use multi-buffer (frames > one UMEM chunk dropped) */
#define VIO_F_XDP_QUEUE 0x10000   /* XDP: bind only RX queue opts.queue (default: all queues) */
/* Offloads kept (virtio-net header pass-through): every frame in the
 * caller's buffers starts with a virtio-net header of opts.vnet_hdr_len
 * bytes (10: struct virtio_net_hdr, 12: with num_buffers, set to 1 on
 * receive), counted in lens[], as in a netmap port with a header. Frames
 * may then be up to 64 KiB (GSO super-frames, partial checksums: the
 * header says which), in MOREFRAG chains.
 *   TAP     IFF_VNET_HDR, TUNSETVNETHDRSZ and TUNSETOFFLOAD with opts.offloads
 *           (TUN_F_*; 0: checksum, TSO4/6 and USO4/6 where the kernel has
 *           them, less as it refuses; vale_io_info().offloads says what was set)
 *   PACKET  PACKET_VNET_HDR; recvmmsg (MTU-sized frames) or recvmsg (super-
 *           frames) into, sendmmsg from the caller's buffers (a ring frame
 *           would have to hold 64 KiB)
 *   XDP     refused (EOPNOTSUPP): XDP frames carry no metadata for it
 *   AUTO    veth and tun devices: PACKET with the header (why says so);
 *           other interfaces (NICs): XDP without a header when it can be set
 *           up (the flag is cleared in vale_io_info().flags), else PACKET
 *           with the header. */
#define VIO_F_VNET_HDR 0x20000
#define VIO_F_VHOST_OFFLOADS 0x40000 /* vhost: offer checksum/TSO offloads and carry the guest's
				      * virtio-net header in the frames (vale_io_vnet_hdr) */

#define VIO_NETNS_MAX 128
#define VIO_OFFLOADS_NONE 0x80000000u /* vale_io_opts.offloads: set none */
#define VIO_VNET_MAX_FRAME (65536u + 18u) /* with a header: a 64 KiB GSO frame + Ethernet, tag */

/* Options for vale_io_open(); zeroed fields take the defaults. 192 bytes. */
struct vale_io_opts {
	uint32_t flags;         /* VIO_F_* */
	uint32_t buf_size;      /* size of each caller buffer (default VALE_BUF_SIZE) */
	uint32_t rx_block_size; /* PACKET RX: ring block bytes (default 256 KiB) */
	uint32_t rx_blocks;     /* PACKET RX: number of blocks (default 16) */
	uint32_t block_tov_ms;  /* PACKET V3: hand over a partly filled block after this (default 1) */
	uint32_t tx_frames;     /* PACKET/XDP: TX ring frames (default 1024 / 2048) */
	uint32_t xdp_frames;    /* XDP: RX/fill ring size per queue (default 2048 / queues, >= 256) */
	uint32_t queue;         /* XDP with VIO_F_XDP_QUEUE: the one RX queue to bind */
	uint32_t mtu;           /* set the interface MTU at open if non-zero */
	uint32_t vnet_hdr_len;  /* VIO_F_VNET_HDR: 10 or 12 (0: 10) */
	uint32_t offloads;      /* TAP with VIO_F_VNET_HDR: TUN_F_* to set (0: all we know;
				 * VIO_OFFLOADS_NONE: none, whole checksummed frames) */
	uint32_t _pad[5];
	/* Open inside this network namespace: a name under /run/netns (as made
	 * by `ip netns add`) or a path such as /proc/PID/ns/net. Empty: ours. */
	char netns[VIO_NETNS_MAX];
};

struct vale_io_stats {
	uint64_t rx_pkts, rx_bytes;   /* frames delivered to the caller (bytes: without the
				       * virtio-net header) */
	uint64_t tx_pkts, tx_bytes;   /* frames handed to the kernel */
	uint64_t rx_batches, tx_batches; /* non-empty recv/send calls (avg batch = pkts/batches) */
	uint64_t rx_kernel_drops;     /* kernel could not queue to us: PACKET tp_drops, XDP
				       * rx_dropped + rx_ring_full + fill ring empty */
	uint64_t rx_truncated;        /* kernel gave us a cut frame (snaplen < len: GSO/GRO or
				       * MTU raised after open); dropped */
	uint64_t rx_oversize;         /* frame needed more than VALE_MAX_FRAGS buffers; dropped */
	uint64_t rx_csum_fixed;       /* partial checksums completed in user space */
	uint64_t tx_drops;            /* frames dropped here: larger than the device allows or
				       * than a TX ring frame, bad fragment chain */
	uint64_t tx_errors;           /* rejected by the kernel (WRONG_FORMAT, write error) */
	uint64_t tx_ring_full;        /* send calls that stopped because the TX ring was full */
	uint64_t kernel_freeze;       /* PACKET V3 tp_freeze_q_cnt */
	uint64_t xdp_tx_invalid;      /* XDP tx_invalid_descs */
	uint64_t rx_gso;              /* VIO_F_VNET_HDR: frames received with a GSO type in their
				       * header (super-frames, handed over whole) */
};

/* What an open handle is (vale_io_info). 240 bytes. */
struct vale_io_info {
	uint32_t kind;         /* VIO_TAP / VIO_PACKET / VIO_XDP */
	uint32_t ifindex;
	uint32_t mtu;          /* at open */
	uint32_t max_frame;    /* largest frame accepted by send_batch (without FCS and
				* without the virtio-net header) */
	uint32_t buf_size;
	int32_t fd;
	uint32_t flags;        /* VIO_F_* in effect */
	uint16_t vnet_hdr_len; /* VIO_F_VNET_HDR in effect: header bytes before each frame, else 0 */
	uint16_t offloads;     /* TAP: the TUN_F_* the kernel accepted (TUNSETOFFLOAD) */
	char ifname[16];
	char mode[64];         /* e.g. "af_xdp drv copy sg", "af_packet v3/v3 bypass" */
	char why[128];         /* VIO_AUTO: why this backend was chosen */
};

/* Link state of an interface (vale_io_link). 64 bytes. */
struct vale_io_link {
	uint32_t ifindex;
	uint32_t flags;        /* IFF_* (IFF_UP 0x1, IFF_RUNNING 0x40 ...) */
	uint32_t mtu;
	uint32_t rx_queues;    /* 0 if unknown */
	uint8_t mac[6];
	uint8_t up;            /* administratively up */
	uint8_t running;       /* operationally up (carrier) */
	uint32_t xdp_prog_id;  /* an XDP program is attached (0: none or unknown) */
	uint32_t _pad[9];
};

/* The TypeScript side (lib/kernel_io.ts) lays these out by hand. */
_Static_assert(sizeof(struct vale_io_opts) == 192, "vale_io_opts layout");
_Static_assert(sizeof(struct vale_io_stats) == 128, "vale_io_stats layout");
_Static_assert(sizeof(struct vale_io_info) == 240, "vale_io_info layout");
_Static_assert(sizeof(struct vale_io_link) == 64, "vale_io_link layout");

#define VIO_POLL_IN 0x1
#define VIO_POLL_OUT 0x4

#ifdef __cplusplus
extern "C" {
#endif

VALE_API const char *vale_io_last_error(void);
VALE_API const char *vale_io_kind_name(uint32_t kind);

/* Open `ifname` with backend `kind` (VIO_*). opts may be NULL. */
VALE_API int vale_io_open(uint32_t kind, const char *ifname, const struct vale_io_opts *opts,
			  struct vale_io **out);
VALE_API void vale_io_close(struct vale_io *h);

/* Copy received frames into bufs[0..max) (each opts.buf_size bytes). A frame
 * longer than a buffer continues in the next one(s); lens[i] is the bytes in
 * bufs[i], flags[i] has VS_MOREFRAG on every buffer of a frame but its last.
 * Returns the number of buffers filled (0: nothing pending); a frame that
 * does not fit in what is left stays queued for the next call. -ENOBUFS: the
 * next frame needs more buffers than `max` (call again with more); -ENODEV /
 * -ENETDOWN: the interface went away / down. */
VALE_API int vale_io_recv_batch(struct vale_io *h, void *const *bufs, uint16_t *lens,
				uint16_t *flags, uint32_t max);
/* Send the frames in bufs[0..n) (same fragment convention; flags may be NULL
 * when no frame is fragmented). Returns the number of buffers consumed: sent,
 * or dropped and counted in tx_drops (too short or long for the device, a
 * length over buf_size, more than VALE_MAX_FRAGS buffers). Fewer than n: the TX ring is full (wait
 * for VIO_POLL_OUT) or the last frame's fragment chain is incomplete. n = 0
 * flushes frames queued by an earlier call. */
VALE_API int vale_io_send_batch(struct vale_io *h, void *const *bufs, const uint16_t *lens,
				const uint16_t *flags, uint32_t n);

/* recv_batch for a sender with a source table (vale_set_tx_source): as
 * vale_io_recv_batch, and ents[i] tells where the bytes of bufs[i]'s slot
 * are: memory the backend mapped (a VM's, vhost-user: the frame is not
 * copied here, the switch copies it once) or bufs[i] (copied, as recv_batch
 * does). lens/flags say the same as ents. When it returns > 0 the backend
 * keeps those bytes in place (and its queue locked) until
 * vale_io_recv_release(), which the caller calls from this thread once the
 * txsync that sends them returned. -EOPNOTSUPP: the backend cannot (use
 * recv_batch); max 0 asks only that (0: it can). */
VALE_API int vale_io_recv_direct(struct vale_io *h, void *const *bufs, uint16_t *lens,
				 uint16_t *flags, struct vale_src_slot *ents, uint32_t max);
VALE_API void vale_io_recv_release(struct vale_io *h);

/* An fd for an event loop: POLLIN when frames wait (XDP on several queues:
 * an epoll fd, good for POLLIN only). vale_io_poll() waits for TX room. */
VALE_API int vale_io_fd(struct vale_io *h);
/* Threads: recv_batch (and polls for VIO_POLL_IN) on one thread and
 * send_batch (and polls for VIO_POLL_OUT) on another may run at once;
 * stats/info/check from one thread at a time; close when both are done. */

/* poll() the handle: returns the VIO_POLL_* bits ready, 0 on timeout, or
 * -ENODEV / -ENETDOWN (with a message) when the interface was removed or
 * went down. timeout_ms < 0 waits forever. */
VALE_API int vale_io_poll(struct vale_io *h, uint32_t events, int timeout_ms);
/* Check the interface: 0 fine, -ENODEV removed, -ENETDOWN down. */
VALE_API int vale_io_check(struct vale_io *h);
VALE_API int vale_io_stats(struct vale_io *h, struct vale_io_stats *out);
VALE_API int vale_io_info(struct vale_io *h, struct vale_io_info *out);

/* 1 when frames were queued by send_batch but the kernel has not taken them
 * yet (its socket buffer was full): call send_batch(n = 0) again soon. */
VALE_API int vale_io_tx_pending(struct vale_io *h);
/* TAP: set (1) or clear (0) TUNSETPERSIST on an open handle. Cleared, the
 * device goes away with the handle's close. */
VALE_API int vale_io_tap_persist(struct vale_io *h, int32_t on);

/* Interface queries and settings, optionally inside a network namespace
 * (netns: NULL/"" = ours). */
VALE_API int vale_io_link(const char *ifname, const char *netns, struct vale_io_link *out);
/* up: 1 up, 0 down, -1 unchanged; mtu: 0 unchanged. */
VALE_API int vale_io_set_link(const char *ifname, const char *netns, int32_t up, uint32_t mtu);
/* Turn TSO/GSO/GRO/LRO and checksum offloads on (1) or off (0) through the
 * ethtool ioctl; returns how many features were changed. Off is what a port
 * attached to a switch wants on the peer that sends into it. */
VALE_API int vale_io_set_offloads(const char *ifname, const char *netns, int32_t on);
/* Set the MAC address (6 bytes) of an interface (it may have to be down for
 * some drivers; TAP and veth take it while up). */
VALE_API int vale_io_set_mac(const char *ifname, const char *netns, const uint8_t *mac);
/* The virtio-net header length (0, 10, 12) that starts every frame recv_batch
 * returns and send_batch takes, now: the forwarder gives its port the same
 * (vale_set_vnet). vhost with VIO_F_VHOST_OFFLOADS: the guest's header once it
 * negotiated receive offloads, else 0; -1 for backends without an opinion
 * (kernel interfaces: their frames are plain, the port is left as it is). */
VALE_API int vale_io_vnet_hdr(struct vale_io *h);
/* AF_PACKET: take only frames whose skb mark is `mark` (a socket filter);
 * 0 takes every frame again. The kernel fast path (kfast.h) uses it: its tc
 * program sends the frames this socket must see a second time, marked. */
VALE_API int vale_io_mark_filter(struct vale_io *h, uint32_t mark);
/* The interface's driver ("veth", "tun", ...; "" if it does not say). */
VALE_API int vale_io_driver(struct vale_io *h, char *out, uint32_t size);
/* A vhost-user handle's state as JSON (front-end connected, features,
 * queues, counters of refusals); returns the length needed. */
VALE_API int vale_io_vhost_json(struct vale_io *h, char *buf, uint32_t len);

#ifdef __cplusplus
}
#endif

/* ---------------- the backend contract ----------------
 *
 * Every backend (io/tap.c, io/af_packet.c, io/af_xdp.c) is one table of
 * these, like netmap's netmap_bdg_ops; io/io.c picks the table for the kind
 * asked for (VIO_AUTO: XDP, else PACKET) and calls through it, never into a
 * backend by name. A backend's own state hangs off the handle's `priv` and is
 * seen by that backend's file only. The common part of a handle (struct
 * vale_io in io/io_impl.h) is what every backend fills at open: fd, poll_fd,
 * max_frame, mode, and updates on the hot path: st (the counters).
 *
 * All int functions return >= 0 or -errno with vio_err() set, as the API. */
struct pollfd;
struct vale_io_ops {
	/* Backend name, as vale_io_kind_name() and vale_io_info().mode start with. */
	const char *name;
	/* The VIO_* kind this table implements (vale_io_info().kind). */
	uint32_t kind;
	/* 1: the backend binds an existing interface: io.c first checks that it
	 * is there, applies opts.mtu and VIO_F_UP, refuses it down unless
	 * VIO_F_ALLOW_DOWN, and fills h->ifindex / h->mtu. 0: the backend makes
	 * or finds its interface itself (TAP creates it). */
	uint8_t needs_link;
	/* 1: h->fd is a socket whose SO_ERROR reports a removed device (the
	 * liveness check reads it); 0: it is not a socket (TAP). */
	uint8_t so_error;
	uint8_t _pad[2];
	/* Set up on `ifname` inside the namespace the caller entered: allocate
	 * the backend state into h->priv, set h->fd (and h->poll_fd when the fd
	 * to poll differs), h->max_frame and h->mode. On failure return -errno
	 * and leave what was made reachable from h: close() is called next. */
	int (*open)(struct vale_io *h, const char *ifname, const struct vale_io_opts *o);
	/* Free h->priv and whatever the backend made; called after a failed
	 * open too. h->fd, if still >= 0, is closed by io.c afterwards. */
	void (*close)(struct vale_io *h);
	/* vale_io_recv_batch() on a live handle (io.c has checked h->dead). */
	int (*recv_batch)(struct vale_io *h, void *const *bufs, uint16_t *lens, uint16_t *flags,
			  uint32_t max);
	/* vale_io_send_batch() on a live handle (io.c has checked h->dead). */
	int (*send_batch)(struct vale_io *h, void *const *bufs, const uint16_t *lens,
			  const uint16_t *flags, uint32_t n);
	/* The pollable fds: fill p[0..max) with `in` on every receiving fd and
	 * `out` on the sending one, return how many. NULL: h->fd alone. */
	int (*fds)(struct vale_io *h, struct pollfd *p, uint32_t max, short in, short out);
	/* Bring the kernel's own counters into h->st (vale_io_stats). NULL: the
	 * backend counts everything itself. */
	void (*stats)(struct vale_io *h);
	/* 1 while frames queued by send_batch wait for the kernel
	 * (vale_io_tx_pending). NULL: never. */
	int (*tx_pending)(struct vale_io *h);
	/* Push frames queued by an earlier send_batch: vale_io_poll() calls it
	 * while a sender waits for room. NULL: nothing to push. */
	void (*flush)(struct vale_io *h);
	/* vale_io_tap_persist(). NULL: the backend has no such setting (EINVAL). */
	int (*persist)(struct vale_io *h, int32_t on);
	/* The virtio-net header length the frames of recv/send carry right now
	 * (vale_io_vnet_hdr). NULL: plain Ethernet frames, and the port's
	 * setting is left alone. */
	int (*vnet_hdr)(struct vale_io *h);
	/* vale_io_check() for a backend that has no kernel interface: 0 up,
	 * -ENETDOWN down, -ENODEV gone. NULL: the interface is checked. */
	int (*check)(struct vale_io *h);
	/* vale_io_recv_direct() on a live handle; NULL: not supported. */
	int (*recv_direct)(struct vale_io *h, void *const *bufs, uint16_t *lens, uint16_t *flags,
			   struct vale_src_slot *ents, uint32_t max);
	/* vale_io_recv_release(); NULL with recv_direct NULL. */
	void (*recv_release)(struct vale_io *h);
};

/* The backends' tables (hidden symbols of libvale.so). */
extern const struct vale_io_ops vale_io_tap_ops, vale_io_packet_ops, vale_io_xdp_ops;
extern const struct vale_io_ops vale_io_vhost_ops, vale_io_vhost_client_ops;

#endif
