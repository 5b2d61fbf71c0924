/*
 * Shared by the C test programs of tests/hostile/ (honest, hostile,
 * core_check, fuzz_shm): a seeded PRNG, the test frame format, clocks and a
 * crash reporter. Header-only so each program is one `cc` call.
 */
#ifndef HOSTILE_COMMON_H
#define HOSTILE_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vale.h"

#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* splitmix64: one 64-bit state, good enough for fuzzing, trivially seeded */
static inline uint64_t rnd64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}
static inline uint32_t rndn(uint64_t *s, uint32_t n) { return n ? (uint32_t)(rnd64(s) % n) : 0; }

/* An "interesting" 32-bit value: boundaries around n (a ring size, a count)
 * and the usual suspects, or plain random bits. */
static inline uint32_t rnd_edge32(uint64_t *s, uint32_t n)
{
	switch (rndn(s, 12)) {
	case 0: return 0;
	case 1: return 1;
	case 2: return n - 1;
	case 3: return n;
	case 4: return n + 1;
	case 5: return 0xffffffffu;
	case 6: return 0x7fffffffu;
	case 7: return 0x80000000u;
	case 8: return 0xfffffffeu;
	case 9: return rndn(s, n ? n : 1);
	case 10: return (uint32_t)rnd64(s) & 0xffff;
	default: return (uint32_t)rnd64(s);
	}
}
static inline uint64_t rnd_edge64(uint64_t *s, uint64_t n)
{
	switch (rndn(s, 8)) {
	case 0: return 0;
	case 1: return n - 1;
	case 2: return n + 1;
	case 3: return ~0ull;
	case 4: return 1ull << 63;
	case 5: return n * 2;
	case 6: return rnd64(s) % (n ? n : 1);
	default: return rnd64(s);
	}
}

static inline uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

/* ---- test frames ----
 * dst MAC, src MAC 02:00:00:00:ID>>8:ID, ethertype 0x88b5, then
 * magic "HONE", sender id, seq, total length, a pattern, and an FNV-1a
 * checksum of everything before it in the last 4 bytes. */
#define TF_MAGIC 0x454e4f48u
#define TF_MIN 64
#define TF_HOSTILE_ID 66 /* frames the hostile client builds (then damages): foreign */
static inline void tf_mac(uint8_t *m, uint32_t id)
{
	m[0] = 0x02;
	m[1] = m[2] = m[3] = 0;
	m[4] = (uint8_t)(id >> 8);
	m[5] = (uint8_t)id;
}
static inline uint32_t tf_fnv(const uint8_t *p, uint32_t n)
{
	uint32_t h = 2166136261u;
	for (uint32_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}
/* dst_id ~0: broadcast */
static inline void tf_build(uint8_t *b, uint32_t len, uint32_t src, uint32_t dst_id, uint32_t seq)
{
	if (dst_id == ~0u)
		memset(b, 0xff, 6);
	else
		tf_mac(b, dst_id);
	tf_mac(b + 6, src);
	b[12] = 0x88;
	b[13] = 0xb5;
	uint32_t hdr[4] = {TF_MAGIC, src, seq, len};
	memcpy(b + 14, hdr, sizeof(hdr));
	for (uint32_t i = 30; i < len - 4; i++)
		b[i] = (uint8_t)(seq * 31u + i);
	uint32_t c = tf_fnv(b, len - 4);
	memcpy(b + len - 4, &c, 4);
}
enum { TF_OK = 0, TF_BAD = 1, TF_FOREIGN = 2 };
/* TF_FOREIGN: not one of ours (a hostile client's bytes): not an error of the switch */
static inline int tf_check(const uint8_t *b, uint32_t len, uint32_t *src, uint32_t *seq)
{
	if (len < 30)
		return TF_FOREIGN;
	uint32_t hdr[4];
	memcpy(hdr, b + 14, sizeof(hdr));
	if (hdr[0] != TF_MAGIC || hdr[1] == TF_HOSTILE_ID)
		return TF_FOREIGN;
	if (hdr[3] != len || len < TF_MIN)
		return TF_BAD;
	uint32_t c;
	memcpy(&c, b + len - 4, 4);
	if (c != tf_fnv(b, len - 4))
		return TF_BAD;
	*src = hdr[1];
	*seq = hdr[2];
	return TF_OK;
}

/* ---- crash reporting ----
 * The test classifies a signal death as a crash; a backtrace on stderr tells
 * the hardening engineer where (libvale.so(+0xOFS): addr2line -e build/libvale.so OFS).
 * Not installed under ASan: its own reports are better. */
static __attribute__((unused)) void crash_handler(int sig)
{
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "CRASH signal %d pid %d\n", sig, (int)getpid());
	if (write(2, msg, (size_t)n) < 0) {
	}
	void *bt[64];
	int k = backtrace(bt, 64);
	backtrace_symbols_fd(bt, k, 2);
	signal(sig, SIG_DFL);
	raise(sig);
}
static inline void install_crash_handler(void)
{
#if !defined(__SANITIZE_ADDRESS__)
	void *bt[1];
	backtrace(bt, 1); /* loads libgcc now, not inside the handler */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = crash_handler;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGABRT, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
#endif
}

/* "vale0:a" → sw, port (static buffers of the caller) */
static inline int split_name(const char *s, char *sw, size_t swn, char *port, size_t pn)
{
	const char *c = strchr(s, ':');
	if (!c || (size_t)(c - s) >= swn || strlen(c + 1) >= pn)
		return -1;
	memcpy(sw, s, (size_t)(c - s));
	sw[c - s] = 0;
	strcpy(port, c + 1);
	return 0;
}

#endif
