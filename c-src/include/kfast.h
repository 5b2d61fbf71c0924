/*
 * vale: the kernel fast path of attachments (c-src/kfast/).
 *
 * Two attachments of one switch that the kernel serves (veths, the TAPs of
 * VMs, on AF_PACKET with a virtio-net header) would move every frame
 * kernel -> ring -> ring -> kernel: three copies and two processes per frame.
 * Where the switch has learned that a unicast destination is on another such
 * port, the kernel can hand the frame straight to that port's interface, as
 * OVS's kernel datapath does for the flows its daemon installed: a tc
 * program (tcx ingress, no copy, GSO super-frames stay whole) redirects it,
 * and the switch stays the one that decides: the program only follows the
 * switch's learning table (copied into a BPF map by this forwarder), counts
 * every frame it redirects into the switch's port counters (tx of the
 * source, rx of the destination, as if the switch had forwarded it), and
 * sends everything else (broadcasts, unknown or unlearned MACs, ports with
 * monitors, switches with another lookup module) the normal way.
 *
 *   vale_io_open(VIO_PACKET, "veth1", {VIO_F_VNET_HDR ...}, &io);
 *   vale_open(..., "veth1", ..., &port);   vale_fwd_create(io, port, ...);
 *   vale_kfast_start(port, io, 0, &k);     // frames start taking the short cut
 *   ...
 *   vale_kfast_stop(k);                    // before closing io and port
 *
 * The program and its maps belong to the process: a forwarder that dies
 * (SIGKILL too) takes them with it, and the kernel detaches the program.
 */
#ifndef VALE_KFAST_H
#define VALE_KFAST_H

#include <stdint.h>
#include "io.h"

struct vale_kfast;

/* What vale_kfast_stats() reports. 128 bytes. */
struct vale_kfast_stats {
	uint64_t fast_pkts, fast_bytes; /* frames the kernel redirected from our port */
	uint64_t macs;        /* MACs in the map now (ours and other ports') */
	uint64_t dests;       /* other ports frames may be redirected to now */
	uint64_t syncs;       /* map synchronisations with the switch's table */
	uint64_t map_errors;  /* failed map updates (the entry stays out: slow path) */
	uint32_t active;      /* 1: the fast path is on for our port */
	uint32_t why_off;     /* VKF_OFF_*: why not (0: on) */
	uint64_t refreshed;   /* MAC table entries kept alive for fast-path senders */
	uint64_t _r[8];
};
_Static_assert(sizeof(struct vale_kfast_stats) == 128, "vale_kfast_stats");
enum { VKF_ON = 0, VKF_OFF_MONITOR = 1, VKF_OFF_LOOKUP = 2 };

#ifdef __cplusplus
extern "C" {
#endif

/* Start the fast path for port p, served by the AF_PACKET handle io (with a
 * virtio-net header, in this process's network namespace). Needs CAP_BPF and
 * CAP_NET_ADMIN; -EOPNOTSUPP for another kind of handle, with a message. */
VALE_API int vale_kfast_start(vale_port *p, struct vale_io *io, uint32_t flags,
			      struct vale_kfast **out);
/* Stop: the program is detached, the last counts are added to the switch. */
VALE_API void vale_kfast_stop(struct vale_kfast *k);
VALE_API int vale_kfast_stats(struct vale_kfast *k, struct vale_kfast_stats *out);
/* 1 if vale's fast-path program is attached to the interface ifindex (of the
 * caller's network namespace), 0 if not, -errno if it cannot be asked. */
VALE_API int vale_kfast_attached(uint32_t ifindex);

#ifdef __cplusplus
}
#endif
#endif
