/*
 * vale: netmap's VALE switch in user space.
 *
 * Public C API of libvale.so (loaded by ffi/symbols.ts) and the layout of
 * the shared memory every process on a switch maps. Everything here is
 * flat, fixed-size and position independent (offsets, never pointers), so
 * any process can map a region at any address.
 *
 * Shared memory for switch "vale0" under the run directory R
 * (VALE_RUN_DIR, default /dev/shm/vale):
 *   R/vale0/ctl            control segment: header, port table, MAC table,
 *                          lookup module name and private area
 *   R/vale0/p<idx>.<gen>   one region per port: kring states, netmap rings,
 *                          buffers (a pipe pair shares one region)
 *   R/vale0/p<idx>.bell    doorbell FIFO of a port (pollable wake-ups)
 */
#ifndef VALE_H
#define VALE_H

#include <stdint.h>
#include <stddef.h>
#include <pthread.h>

#define VALE_API __attribute__((visibility("default")))

#define VALE_MAGIC 0x454c4156u /* "VALE" little endian */
#define VALE_LAYOUT_VERSION 3u /* 2: garbage-proof locks (c-src/core/lock.c); 3: virtio-net headers, MTU */

/* slot flags, as netmap */
#define VS_BUF_CHANGED 0x0001
#define VS_REPORT 0x0002
#define VS_FORWARD 0x0004
#define VS_NO_LEARN 0x0008
#define VS_INDIRECT 0x0010
#define VS_MOREFRAG 0x0020

#define VALE_MAX_FRAGS 64
#define VALE_MAX_RINGS 16
#define VALE_MIN_SLOTS 8
#define VALE_MAX_SLOTS 4096
#define VALE_DEF_SLOTS 1024
#define VALE_BUF_SIZE 2048 /* every buffer of a switch */
#define VALE_NAME_MAX 16   /* port name incl. NUL, as netmap (15 chars) */
#define VALE_SW_NAME_MAX 32
#define VALE_DEF_MAX_PORTS 2048
#define VALE_LIMIT_PORTS 65000
#define VALE_DEF_MAC_ENTRIES 4096
#define VALE_DEF_AGE_S 300
#define VALE_NLEASES 64 /* concurrent leases per RX ring */
#define VALE_MAX_BATCH 1024
#define VALE_PRIV_SIZE 65536 /* lookup module's shared private area */

/* ---------------- virtio-net headers and MTU (offloads) ----------------
 *
 * Every port has a virtio-net header length (0, 10 or 12, as netmap's
 * NETMAP_REQ_PORT_HDR_SET) and an MTU: the largest Ethernet frame, header
 * not included, the switch makes for it when it converts (default 1514).
 * The contract:
 *  - A packet of a port with a header is a slot chain (VS_MOREFRAG) that
 *    starts with the header (struct vale_vnet_hdr, its first hdr_len bytes),
 *    then the Ethernet frame. The header may fill the first slot alone.
 *  - Such a port may send and receive frames up to VALE_MAX_MTU bytes (64 KiB
 *    of IP plus Ethernet and one 802.1Q tag) plus the header: GSO super-frames
 *    with partial checksums, as the virtio spec says. VALE_MAX_FRAGS buffers of
 *    VALE_BUF_SIZE bytes hold one.
 *  - Lookup sees the Ethernet frame (the header is skipped).
 *  - Between ports with the same header length the switch copies header and
 *    frame as they are (no MTU check, as netmap). Between ports that differ it
 *    converts (c-src/core/offload.c): 10 <-> 12 rewrite (num_buffers = 1);
 *    toward a port without a header it segments TCP (TSO), splits UDP (USO:
 *    datagrams, UFO: IP fragments) to the destination's MTU and completes
 *    partial checksums; toward a port with a header from one without, it
 *    prepends a zero header (the frame is complete; num_buffers = 1 in a 12-byte
 *    one). Malformed headers are
 *    dropped (VD_BAD_VNET), frames above the MTU that cannot be segmented too
 *    (VD_TOO_BIG), both counted on the source.
 *  - Pipes pass slots as they are (no conversion).
 */
#define VALE_DEF_MTU 1514
#define VALE_MIN_MTU 64
#define VALE_MAX_MTU (65535 + 14 + 4) /* IP datagram + Ethernet + one 802.1Q tag */

/* The virtio-net header (virtio spec 5.1.6; little endian). 10 bytes, 12 with
 * num_buffers (VIRTIO_NET_F_MRG_RXBUF / VERSION_1). */
struct vale_vnet_hdr {
	uint8_t flags;        /* VALE_VNET_F_* */
	uint8_t gso_type;     /* VALE_VNET_GSO_*, | VALE_VNET_GSO_ECN */
	uint16_t hdr_len;     /* Ethernet + IP + L4 headers (a hint) */
	uint16_t gso_size;    /* payload bytes per segment */
	uint16_t csum_start;  /* checksum from here (frame offset) ... */
	uint16_t csum_offset; /* ... stored at csum_start + csum_offset */
	uint16_t num_buffers; /* 12-byte header only */
};
#define VALE_VNET_F_NEEDS_CSUM 1
#define VALE_VNET_F_DATA_VALID 2
#define VALE_VNET_F_RSC_INFO 4
#define VALE_VNET_GSO_NONE 0
#define VALE_VNET_GSO_TCPV4 1
#define VALE_VNET_GSO_UDP 3    /* UFO: IP fragments of one datagram */
#define VALE_VNET_GSO_TCPV6 4
#define VALE_VNET_GSO_UDP_L4 5 /* USO: separate datagrams of gso_size */
#define VALE_VNET_GSO_ECN 0x80

/* lookup results */
#define VALE_BROADCAST 0xffffffffu
#define VALE_DROP 0xfffffffeu

/* drop reasons (index into vale_counters.drops) */
enum {
	VD_RING_FULL = 0, /* destination RX ring had no room (counted on the destination) */
	VD_BAD_SLOT = 1,  /* bad buf_idx/len/fragment chain (counted on the port that wrote it) */
	VD_NO_DEST = 2,   /* no port to deliver to (counted on the source) */
	VD_LOOKUP = 3,    /* lookup module said drop, or frame < 14 bytes (source) */
	VD_BAD_VNET = 4,  /* malformed virtio-net header, or a frame that does not parse as
			   * its header says (counted on the source) */
	VD_TOO_BIG = 5,   /* larger than the destination's MTU and not segmentable (source) */
	VD_NREASONS = 6,
};

/* ---------------- netmap-compatible ring and slot ---------------- */

struct vale_slot {
	uint32_t buf_idx;
	uint16_t len;
	uint16_t flags;
	uint64_t ptr;
};

/* The application's view of one ring (netmap_ring). head/cur are written by
 * the application, tail by the sync calls that run in the application's own
 * process. The switch's own view lives in vale_kring. */
struct vale_ring {
	int64_t buf_ofs;   /* from this ring to buffer 0 */
	uint32_t num_slots;
	uint32_t nr_buf_size;
	uint16_t ringid;
	uint16_t dir;      /* 0 tx, 1 rx */
	uint32_t _pad0;
	uint32_t head;
	uint32_t cur;
	uint32_t tail;
	uint32_t flags;
	int64_t ts_sec, ts_usec;
	uint8_t _pad1[64 - 56];
	struct vale_slot slot[]; /* num_slots */
};

/* The switch's view of one ring, shared by every producer and the consumer.
 * Producers lease slots [hwlease, ...) under `lock`, fill them without it,
 * and publish in lease order by advancing hwtail. */
struct vale_lease {
	uint32_t start, end; /* slot range [start, end) mod num_slots */
	int32_t pid;         /* producer, to reclaim the lease if it dies */
	uint32_t done;       /* 0 pending, 1 filled */
};

/* A lock in shared memory that garbage cannot turn into an abort or an
 * endless wait (c-src/core/lock.c): owner pid (| a waiters bit), 0 when free,
 * and a count of acquisitions. */
struct vale_lock {
	volatile uint32_t owner;
	volatile uint32_t seq;
};

struct vale_kring {
	/* producers' line(s) */
	struct vale_lock lock;
	uint32_t hwlease;     /* next slot to lease */
	uint32_t lease_first; /* oldest lease not yet published (counter) */
	uint32_t lease_next;  /* next lease number */
	uint32_t _p0;
	uint64_t lease_ops;   /* leases granted, to spot a lease stuck for long */
	uint64_t first_since; /* lease_ops when lease_first last moved */
	uint8_t _pad_p[64 - ((sizeof(struct vale_lock) + 32) % 64)];
	/* published */
	_Alignas(64) volatile uint32_t hwtail; /* first slot not yet published */
	uint32_t _p1[15];
	/* consumer's line */
	_Alignas(64) volatile uint32_t hwcur; /* first slot not yet released by the consumer */
	uint32_t rtail;                       /* tail last exposed to the application */
	uint32_t _p2[14];
	struct vale_lease leases[VALE_NLEASES];
};

/* One per port end: how a sleeping process is woken. */
struct vale_wake {
	volatile uint32_t waiting;  /* VW_* bits and the count of vale_wait() callers */
	volatile uint32_t wake_seq; /* futex word */
	volatile uint32_t tx_waiting; /* vale_wait() callers of a pipe end (room in the peer's RX ring) */
	uint32_t _p[13];
};
/* Several handles (threads, processes) may wait on one port end and share
 * this word. A caller never clears VW_FUTEX when it returns (another caller
 * may still sleep on it): only a waker does, and wakes everybody. */
#define VW_FUTEX 1u   /* armed: a futex sleeper has not been woken since it looked */
#define VW_BELL 2u    /* armed: ring the doorbell FIFO */
#define VW_SLEEPER 0x100u /* one vale_wait() caller (count in bits 8..31) */

/* ---------------- port region ---------------- */

struct vale_region_hdr {
	uint32_t magic, version;
	uint64_t size;
	uint32_t ntx, nrx;        /* ring pairs of this port (of each end for a pipe) */
	uint32_t tx_slots, rx_slots;
	uint32_t nbufs, buf_size;
	uint32_t nends;           /* 1, or 2 for a pipe region */
	uint32_t _p;
	uint64_t kring_ofs;       /* array of (nends * (ntx + nrx)) krings */
	uint64_t ring_ofs[2 * 2 * VALE_MAX_RINGS]; /* [end][tx rings..., rx rings...] */
	uint64_t buf_ofs;         /* buffer 0 */
	uint8_t _pad[64];
	_Alignas(64) struct vale_wake wake[2];
};

/* ---------------- control segment ---------------- */

struct vale_counters {
	volatile uint64_t tx_pkts, tx_bytes; /* sent by this port into the switch */
	volatile uint64_t rx_pkts, rx_bytes; /* delivered to this port's RX rings */
	volatile uint64_t drops[VD_NREASONS];
	volatile uint64_t sync_errors;       /* txsync/rxsync rejected a bad head/cur */
	volatile uint64_t leases_reclaimed;  /* leases of dead senders published empty */
	uint64_t _pad[16 - 6 - VD_NREASONS];
};

enum { VP_FREE = 0, VP_ACTIVE = 1, VP_DYING = 2 };

#define VPF_PERSISTENT 0x1 /* created by vale-ctl -n: stays until removed */
#define VPF_EXCLUSIVE 0x2  /* opened with /x */
#define VPF_PIPE 0x4       /* one end of a pipe; region shared with its peer */
#define VPF_ATTACHED 0x8   /* a persistent port attached to this switch (vale-ctl -a) */
#define VPF_FORWARDER 0x10 /* served by a forwarder process (kernel interface) */
#define VPF_MONITOR 0x20   /* a monitor (/r /t /z) of port mon_of: never forwards (monitor.c) */

struct vale_port_ent {
	volatile uint32_t state; /* VP_* */
	volatile uint32_t gen;   /* bumped on every (re)allocation of this index */
	char name[VALE_NAME_MAX];
	uint32_t flags;          /* VPF_* */
	int32_t owner_pid;       /* process that opened it last (0: none) */
	int32_t fwd_pid;         /* forwarder process serving it (attachments) */
	uint32_t nopen;          /* informational: liveness is probed with file locks */
	uint32_t ntx, nrx, tx_slots, rx_slots, nbufs;
	uint32_t region_idx, region_gen; /* region file p<idx>.<gen> (a pipe's slave uses its master's) */
	uint32_t end;            /* which end of the region (pipes: 0 master, 1 slave) */
	uint32_t pipe_peer;      /* port index of the other end, or ~0 */
	uint32_t _p0;
	uint64_t region_size;
	uint64_t created_ns;
	volatile uint64_t last_probe_ns;
	char info[64];           /* free text, e.g. "veth1 af_packet" for attachments */
	volatile uint32_t vnet_hdr_len; /* 0, 10 or 12 (anything else is taken as 0) */
	volatile uint32_t mtu;   /* VALE_MIN_MTU..VALE_MAX_MTU (else VALE_DEF_MTU) */
	/* the kernel fast path (c-src/kfast/, include/kfast.h): set by the forwarder of an
	 * attachment while frames may be redirected to its interface; 0: never. Readers
	 * check it all (namespace, live pid, vale's program on that interface) */
	volatile uint32_t kf_ifindex; /* the interface, in the forwarder's network namespace */
	volatile uint32_t kf_netns;   /* that namespace (inode number of /proc/self/ns/net) */
	volatile int32_t kf_pid;      /* the forwarder */
	volatile uint32_t kf_on;      /* bit 0: on (others reserved) */
	/* monitors (c-src/core/monitor.c), on a line of their own: written only
	 * when a monitor comes or goes, read once per sync by the monitored port */
	volatile uint32_t mon_seq; /* monitored port: bumped when one of its monitors comes or goes */
	uint32_t mon_of;           /* monitor: index of the monitored port ... */
	uint32_t mon_of_gen;       /* ... and its generation when the monitor opened */
	uint32_t mon_flags;        /* monitor: VO_MONITOR_* it was opened with */
	uint8_t _pad[256 - 208];
	struct vale_counters c;  /* 128 bytes */
};
_Static_assert(sizeof(struct vale_counters) == 128, "counters");
_Static_assert(sizeof(struct vale_port_ent) == 384, "port entry");
_Static_assert(offsetof(struct vale_port_ent, mon_seq) == 192, "port entry: monitor line");

struct vale_mac_ent {
	volatile uint64_t key; /* mac (48 bits) << 16 | port index; 0 = empty */
	volatile uint32_t seen_s; /* CLOCK_MONOTONIC seconds when last learned */
	uint32_t _p;
};

struct vale_ctl_hdr {
	uint32_t magic, version;
	uint64_t size;
	uint32_t max_ports, mac_entries;
	uint32_t age_s;
	volatile uint32_t dead;     /* switch being removed: reopen */
	struct vale_lock lock;      /* port table changes */
	char name[VALE_SW_NAME_MAX];
	char lookup[64];            /* "learning" (default), "portmap", "ethertype", or a .so path */
	volatile uint32_t lookup_gen; /* bumped when lookup/config changes */
	volatile uint32_t nactive;    /* entries in the active list (switch ports that forward) */
	volatile uint32_t active_seq; /* seqlock of the active list: odd while it changes */
	volatile uint32_t batch;      /* packets per flush, 1..VALE_MAX_BATCH; 0 (or out of
				       * range: shared memory) = VALE_MAX_BATCH, netmap's
				       * dev.netmap.bridge; vale_set_batch */
	uint64_t ports_ofs, active_ofs, mac_ofs, priv_ofs;
	uint64_t created_ns;
};

/* ---------------- API ---------------- */

typedef struct vale_port vale_port;

/* How to open a port; the name has been parsed by lib/names.ts. */
struct vale_open_req {
	uint32_t ntx, nrx;         /* ring pairs; 0 = default (1) */
	uint32_t tx_slots, rx_slots; /* 0 = default (1024) */
	uint32_t flags;            /* VO_* */
	int32_t ring_id;           /* -1 all rings, else bind one ring pair (-N) */
	uint32_t group;            /* with VO_GROUP: gid a new switch is shared with */
	uint32_t vnet_hdr_len;     /* with VO_VNET_HDR: the port's header length (0, 10, 12) */
	uint32_t mtu;              /* 0: keep (a new port: VALE_DEF_MTU), else the port's MTU */
	uint32_t _pad;
};
_Static_assert(sizeof(struct vale_open_req) == 40, "open request");
#define VO_EXCLUSIVE 0x1 /* /x */
#define VO_CREATE_PERSISTENT 0x2 /* vale-ctl -n: create, do not open */
#define VO_PIPE_MASTER 0x4 /* name is X{Y */
#define VO_PIPE_SLAVE 0x8  /* name is X}Y */
#define VO_NO_CREATE 0x10  /* fail with ENOENT if the port does not exist */
#define VO_RX_ONLY 0x20
#define VO_TX_ONLY 0x40
/* Create the switch shared with group `group` (directory 02770, files 0660)
 * instead of private to the caller (0700/0600); an existing switch must be
 * shared with that group (EPERM otherwise). Without it, VALE_GROUP (a group
 * name or number) is used when the call creates the switch. */
#define VO_GROUP 0x80
/* Set the port's virtio-net header length to vnet_hdr_len, on a port this
 * call creates or on an existing one (as netmap's NETMAP_REQ_PORT_HDR_SET on
 * an open port); without it a new port has none and an existing one keeps its. */
#define VO_VNET_HDR 0x100
/* Monitors (netmap's /t /r /z): `port` names the port to monitor, which must
 * exist. The caller gets a new port whose RX rings receive copies of what
 * that port sends (TX), receives (RX) or both; it cannot send. ZCOPY (/z) is
 * accepted and works as a copy monitor: see docs/port-names.md#monitors. */
#define VO_MONITOR_TX 0x200
#define VO_MONITOR_RX 0x400
#define VO_MONITOR_ZCOPY 0x800

/* Port info for TS (flat, filled by vale_port_info). */
struct vale_port_info {
	uint64_t region_base;  /* address of the port's region in this process */
	uint64_t region_size;
	uint32_t ntx, nrx, tx_slots, rx_slots;
	uint32_t nbufs, buf_size;
	uint32_t port_idx, port_gen;
	uint32_t first_ring, last_ring; /* bound ring pairs [first, last) */
	int32_t bell_fd;
	uint32_t flags;
	uint64_t tx_ring_ofs[VALE_MAX_RINGS]; /* from region_base */
	uint64_t rx_ring_ofs[VALE_MAX_RINGS];
	uint64_t buf_ofs;
	uint32_t vnet_hdr_len;  /* the port's header length and MTU when vale_info ran */
	uint32_t mtu;
};

/* The layout every process on a switch shares, and that the TypeScript side
 * (ffi/, lib/) reads by offset: any change is a VALE_LAYOUT_VERSION change. */
_Static_assert(sizeof(struct vale_slot) == 16, "vale_slot layout");
_Static_assert(sizeof(struct vale_ring) == 64, "vale_ring layout");
_Static_assert(offsetof(struct vale_ring, head) == 24 && offsetof(struct vale_ring, cur) == 28 &&
		       offsetof(struct vale_ring, tail) == 32 && offsetof(struct vale_ring, slot) == 64,
	       "vale_ring fields");
_Static_assert(sizeof(struct vale_lease) == 16, "vale_lease layout");
_Static_assert(sizeof(struct vale_lock) == 8, "vale_lock layout");
_Static_assert(sizeof(struct vale_kring) == 1216, "vale_kring layout");
_Static_assert(offsetof(struct vale_kring, hwtail) == 64 && offsetof(struct vale_kring, hwcur) == 128,
	       "vale_kring: producers, published and consumer on their own cache lines");
_Static_assert(sizeof(struct vale_wake) == 64, "vale_wake layout");
_Static_assert(sizeof(struct vale_region_hdr) == 768, "vale_region_hdr layout");
_Static_assert(offsetof(struct vale_region_hdr, wake) == 640, "vale_region_hdr wake");
_Static_assert(sizeof(struct vale_mac_ent) == 16, "vale_mac_ent layout");
_Static_assert(sizeof(struct vale_ctl_hdr) == 192, "vale_ctl_hdr layout");
_Static_assert(sizeof(struct vale_vnet_hdr) == 12, "virtio-net header");
_Static_assert(offsetof(struct vale_port_ent, vnet_hdr_len) == 168 &&
		       offsetof(struct vale_port_ent, mtu) == 172,
	       "vale_port_ent offload fields");
_Static_assert(sizeof(struct vale_port_info) == 336, "vale_port_info layout");
_Static_assert(offsetof(struct vale_port_info, tx_ring_ofs) == 64 &&
		       offsetof(struct vale_port_info, buf_ofs) == 320 &&
		       offsetof(struct vale_port_info, mtu) == 332,
	       "vale_port_info fields");

/* The rings an open port binds (its -N selection), from vale_info(): the
 * loops of pkt-gen, bridge and the forwarders all start from this. */
static inline void vale_info_rings(const struct vale_port_info *i, struct vale_ring **tx,
				   uint32_t *ntx, struct vale_ring **rx, uint32_t *nrx)
{
	uint8_t *base = (uint8_t *)(uintptr_t)i->region_base;
	*ntx = *nrx = 0;
	for (uint32_t k = i->first_ring; k < i->last_ring; k++) {
		if (k < i->ntx)
			tx[(*ntx)++] = (struct vale_ring *)(base + i->tx_ring_ofs[k]);
		if (k < i->nrx)
			rx[(*nrx)++] = (struct vale_ring *)(base + i->rx_ring_ofs[k]);
	}
}

#ifdef __cplusplus
extern "C" {
#endif

/* All functions return >= 0 on success, -errno on failure; the last error
 * message of the calling thread is available from vale_strerror(). */
VALE_API const char *vale_last_error(void);
VALE_API uint32_t vale_abi_version(void);

VALE_API int vale_open(const char *run_dir, const char *sw, const char *port,
		       const struct vale_open_req *req, vale_port **out);
VALE_API void vale_close(vale_port *p);
VALE_API int vale_info(vale_port *p, struct vale_port_info *out);

/* netmap's NIOCTXSYNC / NIOCRXSYNC on one ring (or all bound rings if ring < 0).
 * Return the number of slots forwarded/received, or -EINVAL when the
 * application's head/cur were out of range (the ring was reset). */
VALE_API int vale_txsync(vale_port *p, int ring);
VALE_API int vale_rxsync(vale_port *p, int ring);

/* Sleep until an RX ring of p has data (or, for pipes, a TX ring has room),
 * or timeout_ms passes (-1 forever). Returns 1 ready, 0 timeout. */
VALE_API int vale_wait(vale_port *p, int timeout_ms);
/* Wake a vale_wait() of this port from another thread (close, Ctrl-C). */
VALE_API void vale_wake(vale_port *p);
/* Arm the doorbell FIFO before poll()ing bell_fd; returns 1 if data is already
 * there (do not sleep). vale_bell_clear() drains it after poll() returns. */
VALE_API int vale_bell_arm(vale_port *p);
VALE_API void vale_bell_clear(vale_port *p);

/* Group name (or decimal number) to gid, for VO_GROUP. 0 or -ENOENT. */
VALE_API int vale_group_id(const char *name, uint32_t *gid);
/* Check (create = 1: and create, 0700) directory RUN/sub without following
 * symlinks: every component owned by root or the caller, writable by nobody
 * else unless sticky. 0 or -errno with a message. */
VALE_API int vale_secure_dir(const char *run_dir, const char *sub, int create);

/* Control operations (vale-ctl). */
VALE_API int vale_create_persistent(const char *run_dir, const char *sw, const char *port,
				    const struct vale_open_req *req);
VALE_API int vale_remove_port(const char *run_dir, const char *sw, const char *port);
VALE_API int vale_remove_switch(const char *run_dir, const char *sw);
VALE_API int vale_set_lookup(const char *run_dir, const char *sw, const char *module);
/* Packets per flush of switch sw (netmap's dev.netmap.bridge): 1..VALE_MAX_BATCH,
 * 0 = the default (VALE_MAX_BATCH). */
VALE_API int vale_set_batch(const char *run_dir, const char *sw, uint32_t batch);
VALE_API int vale_lookup_config(const char *run_dir, const char *sw, const char *req,
				char *reply, uint32_t reply_len);
/* JSON description of a switch (ports, owners, counters, MAC table); returns
 * the length needed (call again with a bigger buffer if > buflen). */
VALE_API int vale_switch_json(const char *run_dir, const char *sw, char *buf, uint32_t buflen);
/* Reclaim ports of dead processes, stuck leases and recover locks. */
VALE_API int vale_reap(const char *run_dir, const char *sw);
/* Record the forwarder process serving a port and a free-text description. */
VALE_API int vale_port_set_info(const char *run_dir, const char *sw, const char *port,
				int32_t fwd_pid, const char *info);
/* Set the virtio-net header length (0, 10, 12; -1 keeps it) and the MTU
 * (VALE_MIN_MTU..VALE_MAX_MTU; 0 the default, -1 keeps it) of an open port, or
 * of a port by name (vale-ctl): as netmap's NETMAP_REQ_PORT_HDR_SET, allowed
 * while the port is open; the switch uses the new values from the next txsync
 * of each sender. vale_info() and vale_switch_json() show them. */
VALE_API int vale_set_vnet(vale_port *p, int32_t vnet_hdr_len, int32_t mtu);
VALE_API int vale_port_set_vnet(const char *run_dir, const char *sw, const char *port,
				int32_t vnet_hdr_len, int32_t mtu);

/* User lookup modules (mSwitch): a shared object exporting these names.
 * `priv` is the switch's shared private area (VALE_PRIV_SIZE bytes), the same
 * in every process; config() runs under the switch lock. */
typedef uint32_t vale_user_lookup_t(const uint8_t *frame, uint32_t len, uint8_t *dst_ring,
				    uint32_t src_port, void *priv);
typedef int vale_user_config_t(const char *req, uint32_t len, void *priv, uint32_t priv_size,
			       char *reply, uint32_t reply_len);
typedef void vale_user_dtor_t(uint32_t port, void *priv);
#define VALE_LOOKUP_SYM "vale_lookup"
#define VALE_CONFIG_SYM "vale_config"
#define VALE_DTOR_SYM "vale_dtor"

/* Read-only queries for C programs (core/query.c; the libpcap interposer):
 * the switch's counters of an open port (-ESTALE if its entry was reclaimed),
 * and the names of a switch's ports, each NUL-terminated (returns the bytes
 * needed; call again with a bigger buffer if > buflen). */
VALE_API int vale_port_counters(vale_port *p, struct vale_counters *out);
VALE_API int vale_port_names(const char *run_dir, const char *sw, char *buf, uint32_t buflen);

/* Back-pressure for this handle's senders (core/flush.c): a txsync that finds
 * a destination's RX ring full waits up to max_wait_us for room (yielding,
 * then 20 µs sleeps) before dropping, as netmap always does (0, the default).
 * For senders with a buffer behind them (the kernel forwarder's socket): a
 * dropped 64 KiB TCP super-frame costs a retransmit of 44 segments. A
 * destination whose reader does not move for 1 ms is not waited for again
 * for 200 ms. Per handle, not shared; returns 0. */
VALE_API int vale_set_backpressure(vale_port *p, uint32_t max_wait_us);

/* Sending from the sender's own memory (core/flush.c, "Source tables"): a
 * process-private table parallel to the handle's TX rings, one entry per TX
 * slot (ntx * tx_slots entries, ring r's slot s at r * tx_slots + s). While
 * one is set, the flush takes each slot's bytes, length and MOREFRAG from the
 * entry, never from the shared slot or its buffer: memory only this process
 * maps (a VM's memory, for the vhost-user forwarder) crosses the switch in
 * one copy, and no other member of the switch can point the flush anywhere
 * (the shared slots stay what they were, written by whoever may write them).
 * An entry with p NULL or len > VALE_BUF_SIZE is a bad slot (dropped,
 * counted). The caller keeps what an entry points to mapped and unchanged
 * until the txsync that sends it returns, and clears the entries then.
 * Switch ports only (a pipe moves buffers, not bytes): -EOPNOTSUPP otherwise.
 * NULL turns it off. Per handle, not shared; use it from the thread that
 * calls txsync. */
struct vale_src_slot {
	const void *p;
	uint16_t len;
	uint16_t flags; /* VS_MOREFRAG */
	uint32_t _pad;
};
VALE_API int vale_set_tx_source(vale_port *p, struct vale_src_slot *tab);

#ifdef __cplusplus
}
#endif
#endif
