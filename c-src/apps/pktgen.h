/*
 * pkt-gen's C loops (pktgen.c): the configuration lib/tools/pktgen.ts fills
 * and the per-thread counters it reads while the threads run. The codecs are
 * ffi/structs/tools.ts, checked field by field against these structs by
 * tests/abi_test.ts (through vale_abi_layout, c-src/core/abi.c).
 */
#ifndef VALE_APPS_PKTGEN_H
#define VALE_APPS_PKTGEN_H

#include <stdint.h>

#define PG_VERSION 1u
#define PG_MAX_THREADS 64
#define PG_MAX_FRAME (65536 + 16) /* frame + virtio-net header */

enum { PG_TX = 0, PG_RX = 1, PG_PING = 2, PG_PONG = 3, PG_TXSEQ = 4, PG_RXSEQ = 5 };

#define PGF_RAW 0x1 /* -P: send the frame as given, never rewrite headers */

/* flat address cycle of lib/tools/packet.ts (encodeCycle) */
#define CYC_RANDOM_SRC 0x1u
#define CYC_RANDOM_DST 0x2u
#define CYC_UDP_CSUM 0x4u
#define CYC_ACTIVE 0x8u
struct pg_cycle {
	uint32_t version, flags, l3_off, l4_off;
	uint32_t src_ip0, src_ip1, src_port0, src_port1;
	uint32_t dst_ip0, dst_ip1, dst_port0, dst_port1;
	uint32_t seed_lo, seed_hi, _r[2];
};

/* Filled by lib/tools/pktgen.ts (encodePktGenConf). */
struct vale_pg_conf {
	uint32_t version;   /* 0 PG_VERSION */
	uint32_t func;      /* 4 PG_* */
	uint32_t nthreads;  /* 8 */
	uint32_t burst;     /* 12 */
	uint64_t npackets;  /* 16 total, 0 = forever */
	uint32_t size;      /* 24 frame length (max with -l twice), vnet header excluded */
	uint32_t min_size;  /* 28 -l twice: lengths in [min_size, size), 0 = fixed */
	uint32_t frags;     /* 32 -F */
	uint32_t frag_size; /* 36 -M (0 = buffer size) */
	uint32_t rate;      /* 40 -R packets per second, 0 = unlimited */
	int32_t affinity;   /* 44 -a first CPU, -1 = none */
	uint32_t cpus;      /* 48 CPUs to spread threads over (-c, or all) */
	uint32_t forever;   /* 52 0 with -W: rx stops after 1 s without traffic */
	uint32_t dump;      /* 56 -X */
	uint32_t hdr_len;   /* 60 -H: virtio-net header bytes before the frame */
	uint32_t spin_us;   /* 64 busy-poll this long before sleeping (rx, ping, pong) */
	uint32_t flags;     /* 68 PGF_* */
	uint32_t frame_len; /* 72 bytes of the template given to vale_pg_create */
	uint32_t _pad;      /* 76 */
	uint64_t seed;      /* 80 random lengths */
	struct pg_cycle cycle; /* 88..152 */
};
_Static_assert(sizeof(struct vale_pg_conf) == 152, "pg conf");

/* One per thread, read by TS while the thread runs; offsets asserted below. */
struct vale_pg_stats {
	volatile uint64_t pkts, bytes, events; /* 0 8 16 */
	volatile uint64_t min_space;           /* 24 TS writes 99999 after each report */
	volatile uint32_t stop;                /* 32 set by vale_pg_stop */
	volatile uint32_t done;                /* 36 1: finished, 2: failed */
	volatile int32_t error;                /* 40 -errno when failed */
	volatile uint32_t timeouts;            /* 44 ping/pong waits that timed out */
	volatile uint64_t tic_ns, toc_ns;      /* 48 56 CLOCK_MONOTONIC; 0 = not yet */
	/* ping: the last one-second window, published under a seqlock */
	volatile uint32_t rep_seq;             /* 64 odd while being written */
	uint32_t rep_count;                    /* 68 */
	uint64_t rep_min, rep_sum;             /* 72 80 ns */
	uint64_t rep_buckets[64];              /* 88 power-of-two histogram */
	volatile uint64_t rtt_count, rtt_min, rtt_sum; /* 600 608 616 whole run */
	/* rxseq */
	volatile uint64_t seq_gaps, seq_lost, seq_ooo; /* 624 632 640 */
	volatile uint32_t seq_events;          /* 648 bumped on every gap/reorder */
	volatile uint32_t seq_last_exp;        /* 652 */
	volatile uint32_t seq_last_found;      /* 656 */
	volatile uint32_t seq_last_kind;       /* 660 1 gap, 2 out of order */
	volatile uint64_t frag_mismatch;       /* 664 packets with another fragment count */
	volatile uint64_t unparsed;            /* 672 frames too short or not IPv4 */
	uint32_t seq_log[8][4];                /* 680 the last events: exp, found, kind, 0 */
	volatile uint64_t sleeps;              /* 808 times the loop slept in vale_wait() */
	uint8_t _pad[1024 - 816];
};
_Static_assert(sizeof(struct vale_pg_stats) == 1024, "pg stats");
_Static_assert(__builtin_offsetof(struct vale_pg_stats, rep_buckets) == 88, "buckets");
_Static_assert(__builtin_offsetof(struct vale_pg_stats, rtt_count) == 600, "rtt");
_Static_assert(__builtin_offsetof(struct vale_pg_stats, seq_gaps) == 624, "seq");
_Static_assert(__builtin_offsetof(struct vale_pg_stats, unparsed) == 672, "unparsed");
_Static_assert(__builtin_offsetof(struct vale_pg_stats, seq_log) == 680, "seq log");

#endif
