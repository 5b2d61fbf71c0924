/*
 * bridge's C loop (bridge.c): the configuration lib/tools/bridge.ts fills and
 * the counters it reads. Codecs: ffi/structs/tools.ts, checked by
 * tests/abi_test.ts.
 */
#ifndef VALE_APPS_BRIDGE_H
#define VALE_APPS_BRIDGE_H

#include <stdint.h>

#define BR_VERSION 1u

/* Filled by lib/tools/bridge.ts. */
struct vale_br_conf {
	uint32_t version;  /* 0 BR_VERSION */
	uint32_t burst;    /* 4 slots moved per ring pass (netmap's -b, 1..8192) */
	uint32_t zerocopy; /* 8 swap buffers: both ports share one region */
	uint32_t spin_us;  /* 12 busy-poll this long before sleeping */
};

struct vale_br_stats {
	volatile uint64_t pkts[2];    /* 0 8: [0] A -> B, [1] B -> A (complete packets) */
	volatile uint64_t bytes[2];   /* 16 24 */
	volatile uint64_t bad_len[2]; /* 32 40: slots longer than a buffer, sent empty */
	volatile uint64_t empty[2];   /* 48 56: zero-length slots not forwarded */
	volatile uint32_t stop;       /* 64 */
	volatile uint32_t done;       /* 68 */
	volatile int32_t error;       /* 72 */
	volatile uint32_t sleeps;     /* 76 times the bridge went to sleep */
	uint8_t _pad[128 - 80];
};
_Static_assert(sizeof(struct vale_br_stats) == 128, "br stats");

#endif
