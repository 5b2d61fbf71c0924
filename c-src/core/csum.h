/* Internet checksums (RFC 1071) for the switch's offloads (offload.c) and
 * the kernel backends' checksum completion (io/csum.c): one summing loop.
 * Summed as native 16-bit words in memory order: the ones' complement sum
 * does not depend on byte order, and the folded result stored back as it is
 * lands in network order. */
#ifndef VALE_CSUM_H
#define VALE_CSUM_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Add `len` bytes at p to the running sum s (fold with vale_sum_fold). An
 * odd length ends the sum: bytes that arrive in pieces need offload.c's rsum. */
static inline uint64_t vale_sum_add(uint64_t s, const uint8_t *p, uint32_t len)
{
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		s += (w & 0xffffffffu) + (w >> 32);
		p += 8;
		len -= 8;
	}
	if (len >= 4) {
		uint32_t w;
		memcpy(&w, p, 4);
		s += w;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t w;
		memcpy(&w, p, 2);
		s += w;
		p += 2;
		len -= 2;
	}
	if (len)
		s += *p; /* little endian: an odd last byte is the low half of its word */
	return s;
}

/* The sum folded to 16 bits (not complemented). */
static inline uint16_t vale_sum_fold(uint64_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* The TCP/UDP checksum to store for the sum s (pseudo-header included):
 * folded and complemented. A UDP checksum of 0 means "none" (RFC 768), so a
 * computed 0 is written as 0xffff, the same number in ones' complement; TCP
 * keeps 0x0000, as the sender's stack writes it (receivers accept 0xffff, but
 * tshark reports it as bad: RFC 1624). Every checksum vale completes or
 * computes ends here. */
static inline uint16_t vale_l4_csum(uint64_t s, bool udp)
{
	uint16_t c = (uint16_t)~vale_sum_fold(s);
	return c == 0 && udp ? 0xffff : c;
}

#endif
