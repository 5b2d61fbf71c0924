/*
 * Offloads: converting one packet between two ports whose virtio-net header
 * lengths differ (c-src/core/offload.c). The flush (flush.c) snapshots a
 * source packet (struct vo_src), plans its conversion for one destination
 * (vale_off_plan: how many destination slots, or why it is dropped), leases
 * that many slots and writes them (vale_off_emit). Nothing here allocates;
 * every length comes from the snapshot or the plan, never again from shared
 * memory, so what was counted is what is written.
 */
#ifndef VALE_OFFLOAD_H
#define VALE_OFFLOAD_H

#include "internal.h"

/* The header length a port entry says (shared memory: anything else is 0). */
static inline uint32_t vale_vnet_len(uint32_t v) { return v == 10 || v == 12 ? v : 0; }
/* The MTU a port entry says (out of range: the default). */
static inline uint32_t vale_mtu_of(uint32_t v)
{
	return v >= VALE_MIN_MTU && v <= VALE_MAX_MTU ? v : VALE_DEF_MTU;
}

/* A header's fields, read once (little endian, as virtio 1.0 and every host
 * vale runs on). p has 12 readable bytes (a buffer is 2048): one fixed-size
 * copy; a 10-byte header has no num_buffers. */
static inline void vale_vnet_read(const uint8_t *p, uint32_t hl, struct vale_vnet_hdr *h)
{
	memcpy(h, p, sizeof(*h));
	if (hl < sizeof(*h))
		h->num_buffers = 0;
}

/* The checks of a header that need no parsing of the frame (phase 1 runs them
 * on every packet of a port with a header): known flags and GSO type, ECN only
 * with TCP, a segment size with GSO, hdr_len and the checksum position inside
 * the frame of flen bytes. */
static inline bool vale_vnet_hdr_ok(const struct vale_vnet_hdr *h, uint32_t flen)
{
	uint32_t gso = h->gso_type & (uint32_t)~VALE_VNET_GSO_ECN;
	if (h->flags & ~(uint32_t)(VALE_VNET_F_NEEDS_CSUM | VALE_VNET_F_DATA_VALID))
		return false;
	if (gso != VALE_VNET_GSO_NONE && gso != VALE_VNET_GSO_TCPV4 && gso != VALE_VNET_GSO_UDP &&
	    gso != VALE_VNET_GSO_TCPV6 && gso != VALE_VNET_GSO_UDP_L4)
		return false;
	if ((h->gso_type & VALE_VNET_GSO_ECN) && gso != VALE_VNET_GSO_TCPV4 &&
	    gso != VALE_VNET_GSO_TCPV6)
		return false;
	if (gso != VALE_VNET_GSO_NONE && h->gso_size == 0)
		return false;
	if (h->hdr_len > flen)
		return false;
	if ((h->flags & VALE_VNET_F_NEEDS_CSUM) &&
	    (uint32_t)h->csum_start + h->csum_offset + 2 > flen)
		return false;
	return true;
}

/* A source packet: its buffers and lengths as read once from its slots. */
struct vo_src {
	const uint8_t *p[VALE_MAX_FRAGS];
	uint32_t len[VALE_MAX_FRAGS];
	uint32_t n, total;
};

/* Headers of a GSO frame a segment starts with: Ethernet (+ 802.1Q), IPv4
 * (up to 60) or IPv6, TCP (up to 60) or UDP; room for an IPv6 fragment header. */
#define VO_MAX_HDRS (18 + 60 + 60 + 8)

enum { VO_COPY, VO_CSUM, VO_TSO, VO_USO, VO_UFO };

/* How one packet becomes what one destination receives. */
struct vo_plan {
	uint32_t kind;          /* VO_* */
	uint32_t sh, dh;        /* header lengths of source and destination */
	uint32_t flen;          /* the source's Ethernet frame (without its header) */
	struct vale_vnet_hdr vh; /* the source header (zero when it has none) */
	uint32_t slots;         /* destination slots the emit fills, exactly */
	uint32_t frames;        /* frames it makes */
	/* segmentation (TSO, USO, UFO) */
	uint32_t l3;            /* offset of the IP header (14 or 18) */
	uint32_t iphl;          /* IP header length (IPv6: 40) */
	uint32_t l4;            /* offset of TCP/UDP (l3 + iphl) */
	uint32_t hlen;          /* bytes each segment copies from hdrs (TSO/USO: l4 + L4 header) */
	uint32_t end;           /* end of the IP datagram in the frame */
	uint32_t seg;           /* payload bytes per segment (UFO: per fragment, a multiple of 8) */
	bool v6;
	uint8_t hdrs[VO_MAX_HDRS]; /* the headers, copied once from the source */
};

/* Plan packet s for a destination with header length dh and MTU dmtu.
 * Returns the destination slots needed (> 0) or -VD_BAD_VNET / -VD_TOO_BIG. */
int vale_off_plan(const struct vo_src *s, uint32_t sh, uint32_t dh, uint32_t dmtu,
		  struct vo_plan *pl);

/* Where an emit writes: pl->slots slots of a destination RX ring from slot j. */
struct vo_out {
	struct vale_slot *slot; /* the ring's slots */
	uint8_t *dbase;         /* buffer 0 */
	uint32_t nbufs, n, j;
};

/* Write the planned frames into exactly pl->slots slots from o->j (MOREFRAG
 * chains). A frame whose destination buffer index is bad is published as
 * empty slots. Returns the frames delivered; *bytes their length, *bad
 * the frames emptied. */
uint32_t vale_off_emit(const struct vo_plan *pl, const struct vo_src *s, const struct vo_out *o,
		       uint64_t *bytes, uint32_t *bad);

#endif
