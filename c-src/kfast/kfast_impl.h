/* The kernel fast path's private contract between kfast.c and prog.c. */
#ifndef VALE_KFAST_IMPL_H
#define VALE_KFAST_IMPL_H

#include <stdint.h>

/* The mark a frame carries on its second pass through the attachment's
 * ingress (see prog.c): "vale". The AF_PACKET socket takes only such frames. */
#define KF_MARK 0x76616c65u
#define KF_PROG_NAME "vale_kf"

/* Key of the MAC map: the six bytes of the MAC as in the frame, then two zero
 * bytes; a little-endian uint64_t load gives vale_mac48()'s value. */
/* Value of the MAC map: where a MAC is. */
struct kf_mac_val {
	uint32_t ifindex; /* its interface (redirect target); 0: a MAC of our own port */
	uint16_t port;    /* its switch port */
	uint16_t _r;
	uint64_t hits;    /* frames it sent through the fast path (our own MACs) */
};
_Static_assert(sizeof(struct kf_mac_val) == 16, "kf_mac_val");

/* Counters per destination port (an mmap()ed array map, indexed by port). */
struct kf_cnt {
	uint64_t pkts, bytes;
};
_Static_assert(sizeof(struct kf_cnt) == 16, "kf_cnt");

/* Build and load the tc program; returns its fd or -errno (log: the verifier's). */
int kf_prog_load(int mac_fd, int cnt_fd, uint32_t own_port, uint32_t own_ifindex, char *log,
		 uint32_t log_len);

#endif
