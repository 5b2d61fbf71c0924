/*
 * vale kernel I/O: checksum completion of frames a local stack sent with
 * checksum offload (CHECKSUM_PARTIAL), which nothing on a switch would
 * otherwise finish. Used by the AF_PACKET and AF_XDP receive paths.
 */
#include "csum.h"
#include "io_impl.h"

#include <string.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>

/* ------------------------------------------------------------------ */
/* checksum completion for CHECKSUM_PARTIAL frames: a sending stack that
 * counts on checksum offload (veth, local sockets) leaves the pseudo-header
 * sum in the TCP/UDP checksum field and expects the device to finish it.
 * AF_PACKET says so (TP_STATUS_CSUMNOTREADY); AF_XDP does not, so there we
 * finish a checksum only when the field holds exactly the pseudo-header sum
 * and the checksum is wrong (a complete, valid checksum is left alone). */

/* one summing loop for the switch and the backends (core/csum.h), folded */
static uint32_t csum_add(const uint8_t *p, uint32_t len)
{
	return vale_sum_fold(vale_sum_add(0, p, len));
}

static uint16_t fold16(uint32_t s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static uint16_t csum_fold(uint32_t s) { return (uint16_t)~fold16(s); }

/* Complete the TCP/UDP checksum of the frame in seg[0..nseg) (headers in
 * seg[0]). heuristic: the kernel did not say the checksum is partial.
 * Returns 1 if the checksum was completed. */
int vio_csum_complete(const struct vio_seg *seg, int nseg, int heuristic)
{
	uint8_t *f = (uint8_t *)seg[0].p;
	uint32_t len = seg[0].len, total = 0, off = 12;
	for (int i = 0; i < nseg; i++) total += seg[i].len;
	if (len < 14) return 0;
	uint16_t et = (uint16_t)(f[off] << 8 | f[off + 1]);
	while ((et == 0x8100 || et == 0x88a8) && off + 6 <= len) {
		off += 4;
		et = (uint16_t)(f[off] << 8 | f[off + 1]);
	}
	off += 2;
	uint8_t proto;
	uint32_t l4, end, pseudo;
	if (et == 0x0800) {
		if (off + 20 > len) return 0;
		const uint8_t *ip = f + off;
		uint32_t ihl = (ip[0] & 15u) * 4, tot = (uint32_t)(ip[2] << 8 | ip[3]);
		if ((ip[6] & 0x3f) || ip[7] || ihl < 20) return 0; /* a fragment */
		proto = ip[9];
		l4 = off + ihl;
		end = off + tot;
		pseudo = csum_add(ip + 12, 8);
	} else if (et == 0x86dd) {
		if (off + 40 > len) return 0;
		const uint8_t *ip = f + off;
		proto = ip[6];
		l4 = off + 40;
		end = l4 + (uint32_t)(ip[4] << 8 | ip[5]);
		/* skip hop-by-hop, routing, destination options */
		while ((proto == 0 || proto == 43 || proto == 60) && l4 + 8 <= len) {
			proto = f[l4];
			l4 += 8 + f[l4 + 1] * 8u;
		}
		pseudo = csum_add(ip + 8, 32);
	} else {
		return 0;
	}
	uint32_t coff;
	if (proto == 6)
		coff = 16;
	else if (proto == 17)
		coff = 6;
	else
		return 0;
	if (end > total || end < l4 || l4 + coff + 2 > len || l4 + coff + 2 > end) return 0;
	uint32_t l4len = end - l4;
	pseudo = fold16(pseudo) + htons((uint16_t)proto) + htons((uint16_t)l4len);
	uint16_t field;
	memcpy(&field, f + l4 + coff, 2);
	if (heuristic && field != fold16(pseudo)) return 0;
	/* sum [l4, end) across the segments */
	uint32_t sum = 0, pos = 0;
	for (int i = 0; i < nseg && pos < end; i++) {
		uint32_t a = pos > l4 ? pos : l4, b = pos + seg[i].len < end ? pos + seg[i].len : end;
		if (a < b) {
			uint16_t part = fold16(csum_add(seg[i].p + (a - pos), b - a));
			if ((a - l4) & 1) part = (uint16_t)(part << 8 | part >> 8);
			sum = fold16(sum + part);
		}
		pos += seg[i].len;
	}
	if (heuristic && csum_fold(sum + pseudo) == 0) return 0; /* already valid */
	uint16_t c = vale_l4_csum(sum, proto == 17);
	memcpy(f + l4 + coff, &c, 2);
	return 1;
}
