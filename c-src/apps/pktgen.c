/*
 * pkt-gen's per-packet loops: tx, rx, ping, pong, txseq, rxseq (netmap's
 * apps/pkt-gen behaviour), driven by cli/pkt-gen.ts through lib/pktgen.ts.
 *
 * The TypeScript side opens one port handle per thread, fills a
 * struct vale_pg_conf, and calls vale_pg_run() as ONE nonblocking FFI call:
 * it starts `nthreads` pthreads (pinned with -a), joins them and returns.
 * Meanwhile TS reads each thread's struct vale_pg_stats (which lives here,
 * in memory the C side owns, so the garbage collector never moves it) every
 * -T ms and prints netmap's lines; SIGINT calls vale_pg_stop(), which sets
 * the stop flags and wakes sleeping threads. Bounded runs (-n) stop by
 * themselves.
 *
 * Like a netmap application this file only uses the public API (vale.h, vale_app.h):
 * rings and buffers are reached through vale_info(), as NETMAP_TXRING() and
 * NETMAP_BUF() would. Nothing is allocated and no system call is made per
 * packet: TX buffers are filled once (lazily: every slot starts marked
 * BUF_CHANGED, as netmap's pkt-gen does) and then only slot lengths are set;
 * when addresses cycle (-s/-d ranges, -z/-Z), random lengths (-l twice) or
 * sequence numbers (txseq) make frames differ, only the IPv4 and UDP headers
 * (and the sequence word) are rewritten, with both checksums computed in
 * O(1) from sums of the constant parts taken once at start (the payload's
 * sum comes from a prefix-sum table, so any length costs the same).
 */
#include "vale_app.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "pktgen.h"

struct pg_ctx;

struct pg_thread {
	struct pg_ctx *g;
	uint32_t me;
	vale_port *port;
	struct vale_port_info info;
	struct vale_ring *tx[VALE_MAX_RINGS], *rx[VALE_MAX_RINGS];
	uint32_t ntx, nrx;
	struct vale_pg_stats *st;
	pthread_t th;
	bool started;
	uint64_t npackets; /* this thread's share of -n */
	bool idle;         /* its share is zero: nothing to do */
	double period_ns;  /* rate limiting: one burst every period */
	uint32_t burst;
	uint64_t idle_ns;  /* rx_wait(): recent waits for data (moving average) */
	/* frame state */
	uint8_t *pkt;     /* private copy of the frame, headers kept current */
	uint32_t sip, dip, sp, dp; /* current addresses, host order */
	uint64_t idx;     /* packet index (random generators) */
	uint64_t rng;     /* random lengths */
	uint32_t *seq_exp; /* rxseq: expected sequence per ring */
	uint8_t *seq_first;
	uint32_t set_next; /* -P with several frames: the next one to send */
};

struct pg_ctx {
	struct vale_pg_conf c;
	uint8_t *frame;    /* template, c.frame_len bytes (vnet header included) */
	uint32_t len;      /* hdr_len + size */
	uint32_t l3, l4;   /* offsets of the IPv4 and UDP headers in the frame */
	bool vary;         /* frames differ from packet to packet */
	bool udp_csum;     /* template carries a UDP checksum */
	uint32_t ip_const; /* sum of the IPv4 header words that never change */
	uint32_t *psum;    /* psum[k]: sum of the first k payload words */
	uint32_t npsum;
	uint32_t seq_tmpl; /* sum of the template's first two payload words (txseq) */
	uint32_t ping_tmpl; /* ... first six (ping's stamp) */
	uint32_t frag_size, frags;
	/* -P FILE with several frames (vale_pg_set_frames): sent in turn */
	uint8_t *set;       /* the frames back to back, vnet headers included */
	uint64_t *set_off;  /* where frame k starts in set */
	uint32_t *set_len;  /* its length (vnet header included) */
	uint32_t nset;
	struct vale_pg_stats *stats; /* nthreads, 64-byte aligned */
	struct pg_thread t[PG_MAX_THREADS];
	pthread_mutex_t out_lock; /* -X dumps from several threads */
};

/* ---------------- small helpers ---------------- */

static inline uint32_t fold(uint64_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}
static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void wr16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline uint32_t w32sum(uint32_t v) { return (v >> 16) + (v & 0xffff); }

/* lib/packet.ts cycleRandom32(): packet i's random value for a lane */
static inline uint32_t lowbias32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}
static inline uint32_t cycle_rand32(const struct pg_cycle *c, uint64_t i, uint32_t lane)
{
	return lowbias32(c->seed_lo ^ lowbias32((uint32_t)i ^ lowbias32((uint32_t)(i >> 32) ^ c->seed_hi ^
									  ((lane + 1) * 0x9e3779b9u))));
}
static inline uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Sleep until `deadline` (CLOCK_MONOTONIC ns). The thread's timer slack is
 * 1 µs (thread_main), so the sleep ends within a few µs of the deadline when
 * a CPU is free. It used to spin the last 100 µs of every period: at 2 Mpps
 * that kept 40 % of a CPU busy, and on a machine whose CPUs are all taken the
 * scheduler then kept the receiver off the CPU for milliseconds. Being a few
 * µs late costs nothing: the schedule is absolute (pace_wait). */
static void wait_until(uint64_t deadline, volatile uint32_t *stop)
{
	for (;;) {
		uint64_t now = vale_mono_ns();
		if (now >= deadline || LOAD_RLX(stop))
			return;
		uint64_t left = deadline - now;
		if (left > 2000) {
			uint64_t d = deadline;
			if (left > 100000000ull) /* look at the stop flag now and then */
				d = now + 100000000ull;
			struct timespec ts = {.tv_sec = (time_t)(d / 1000000000ull),
					      .tv_nsec = (long)(d % 1000000000ull)};
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		} else {
			__builtin_ia32_pause();
		}
	}
}

/* -R: wait until the next burst is due; *next is the schedule (one burst per
 * period), *last when the previous burst went out (0: none yet).
 *
 * netmap's pkt-gen advances the schedule by one period per burst and, when
 * it is late, sends the missed bursts back to back. A sender here is late
 * now and then by milliseconds (the first touches of the buffers' pages cost
 * 5-10 ms per 512-packet burst at start-up; a thread waits for a CPU), and
 * that catch-up put up to 18 bursts into the destination within 50 µs: far
 * faster than a receiver asleep between bursts can wake (10 µs to several ms
 * from the futex wake to its rxsync, measured), so its RX ring overflowed and
 * whole bursts were dropped at a rate far below capacity. Now the catch-up
 * is paced too: a burst never follows the previous one by less than half a
 * period (at most twice the rate while behind), and a debt of more than
 * PG_MAX_DEBT periods is forgiven (after a long stall the stream resumes at
 * the nominal rate; the rate pkt-gen reports shows the time lost). */
#define PG_MAX_DEBT 4

/* -R: when the first burst goes out. netmap's pkt-gen starts a rate-limited
 * sender at a whole second of the wall clock 1 to 2 s from now (every thread
 * at the same one). Here that also keeps the stream clear of the start-up of
 * the processes at both ends: traced, the sender's own JavaScript thread ran
 * 3 ms in one go about 25 ms after a start, and a receiver woken on that CPU
 * waited for it, past the time its ring could hold. */
static uint64_t pace_start(volatile uint32_t *stop)
{
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	uint64_t start = vale_mono_ns() + 2000000000ull - (uint64_t)rt.tv_nsec;
	wait_until(start, stop);
	return start;
}
static void pace_wait(struct pg_thread *t, uint64_t *next, uint64_t *last, volatile uint32_t *stop)
{
	const uint64_t p = (uint64_t)t->period_ns;
	*next += p;
	uint64_t now = vale_mono_ns();
	if (now > *next + PG_MAX_DEBT * p)
		*next = now - PG_MAX_DEBT * p;
	uint64_t at = *next;
	if (*last && at < *last + p / 2)
		at = *last + p / 2;
	wait_until(at, stop);
	*last = vale_mono_ns();
}

/* netmap's dump_payload(), written straight to fd 1 (no stdio buffering to mix
 * with Deno's own writes). */
static void dump_payload(struct pg_ctx *g, const uint8_t *p, uint32_t len, const struct vale_ring *ring,
			 uint32_t cur)
{
	static const char hex[] = "0123456789abcdef";
	char out[8192];
	size_t o = 0;
	pthread_mutex_lock(&g->out_lock);
	o += (size_t)snprintf(out, sizeof(out), "ring %p cur %5u [buf %6u flags 0x%04x len %5u]\n",
			      (const void *)ring, cur, ring->slot[cur].buf_idx, ring->slot[cur].flags, len);
	for (uint32_t i = 0; i < len; i += 16) {
		char line[112];
		memset(line, ' ', sizeof(line));
		size_t b = (size_t)snprintf(line, 16, "%5u: ", i); /* "%5d: " then 16 "%02x " */
		line[b] = ' ';
		uint32_t j = 0;
		for (; j < 16 && i + j < len; j++) {
			line[b + j * 3] = hex[p[i + j] >> 4];
			line[b + j * 3 + 1] = hex[p[i + j] & 15];
			line[b + 48 + j] = (p[i + j] >= 0x20 && p[i + j] < 0x7f) ? (char)p[i + j] : '.';
		}
		line[b + 48 + j] = '\n';
		size_t ll = b + 48 + j + 1;
		if (o + ll > sizeof(out)) {
			if (write(1, out, o) < 0) {
			}
			o = 0;
		}
		memcpy(out + o, line, ll);
		o += ll;
	}
	if (o && write(1, out, o) < 0) {
	}
	pthread_mutex_unlock(&g->out_lock);
}

/* ---------------- frames ---------------- */

/* Sum of payload bytes [0, plen) as 16-bit big-endian words. */
static inline uint32_t payload_sum(const struct pg_ctx *g, uint32_t plen)
{
	uint32_t k = plen >> 1;
	if (k >= g->npsum)
		k = g->npsum - 1;
	uint64_t s = g->psum[k];
	if (plen & 1)
		s += (uint32_t)g->frame[g->l4 + 8 + plen - 1] << 8;
	return fold(s);
}

/* Write the current addresses, lengths for a frame of `len` bytes (vnet
 * header included), an optional txseq number, and both checksums into t->pkt. */
static void build_headers(struct pg_thread *t, uint32_t len, bool seq, uint32_t seqno)
{
	struct pg_ctx *g = t->g;
	uint8_t *ip = t->pkt + g->l3, *udp = t->pkt + g->l4;
	uint32_t ip_len = len - g->c.hdr_len - 14; /* as netmap: frame length - Ethernet header */
	uint32_t ulen = ip_len - 20, plen = ulen >= 8 ? ulen - 8 : 0;
	if (len < g->l4 + 8) /* a frame shorter than its headers: lengths as netmap writes them */
		plen = 0;
	wr16(ip + 2, ip_len);
	wr32(ip + 12, t->sip);
	wr32(ip + 16, t->dip);
	uint32_t addr = w32sum(t->sip) + w32sum(t->dip);
	wr16(ip + 10, ~fold((uint64_t)g->ip_const + (ip_len & 0xffff) + addr) & 0xffff);
	wr16(udp, t->sp);
	wr16(udp + 2, t->dp);
	wr16(udp + 4, ulen);
	uint64_t pay = 0;
	if (g->udp_csum) {
		pay = payload_sum(g, plen);
		if (seq && plen >= 4) /* the first payload word pair carries the sequence number */
			pay += (~g->seq_tmpl & 0xffff) + w32sum(seqno);
	}
	if (seq)
		wr32(udp + 8, seqno);
	if (g->udp_csum) {
		uint64_t s = 17 + 2ull * (ulen & 0xffff) + addr + t->sp + t->dp + fold(pay);
		uint32_t c = ~fold(s) & 0xffff;
		wr16(udp + 6, c ? c : 0xffff);
	}
}

/* netmap's update_ip(): step the odometer src port -> src IP -> dst port -> dst IP. */
static void next_addresses(struct pg_thread *t)
{
	const struct pg_cycle *c = &t->g->c.cycle;
	uint64_t i = ++t->idx;
	if (c->flags & CYC_RANDOM_SRC) {
		t->sip = cycle_rand32(c, i, 0);
		t->sp = cycle_rand32(c, i, 1) & 0xffff;
	} else {
		if (t->sp < c->src_port1) {
			t->sp++;
			return;
		}
		t->sp = c->src_port0;
		if (t->sip < c->src_ip1) {
			t->sip++;
			return;
		}
		t->sip = c->src_ip0;
	}
	if (c->flags & CYC_RANDOM_DST) {
		t->dip = cycle_rand32(c, i, 2);
		t->dp = cycle_rand32(c, i, 3) & 0xffff;
	} else {
		if (t->dp < c->dst_port1) {
			t->dp++;
			return;
		}
		t->dp = c->dst_port0;
		if (t->dip < c->dst_ip1) {
			t->dip++;
			return;
		}
		t->dip = c->dst_ip0;
	}
}

static inline uint32_t pick_len(struct pg_thread *t)
{
	struct pg_ctx *g = t->g;
	if (!g->c.min_size)
		return g->len;
	/* netmap: size in [min, max) */
	uint32_t span = g->c.size - g->c.min_size;
	return g->c.hdr_len + g->c.min_size + (uint32_t)(xorshift64(&t->rng) % span);
}

/* ---------------- tx / txseq ---------------- */

/* -P with several frames: up to `count` packets, each the next frame of the
 * set in turn (copied whole: they differ), split into fragments as any frame
 * with -F / -M or when longer than a buffer. Returns packets queued. */
static uint32_t send_set(struct pg_thread *t, struct vale_ring *ring, uint32_t count,
			 uint64_t *bytes)
{
	struct pg_ctx *g = t->g;
	const uint32_t ns = t->info.tx_slots;
	uint32_t n = vale_ring_space(ring, ns), head = LOAD_RLX(&ring->head), sent = 0;
	if (unlikely(head >= ns))
		return 0;
	const uint32_t frags = g->frags, fsz = g->frag_size;
	uint32_t k = t->set_next;
	uint64_t b = 0;
	for (; sent < count; sent++) {
		const uint8_t *f = g->set + g->set_off[k];
		uint32_t len = g->set_len[k], nf = 1, fl = len;
		if (frags > 1 || len > fsz) { /* the split of send_packets() */
			fl = len / frags;
			nf = frags;
			if (fl > fsz) {
				fl = fsz;
				nf = (len + fsz - 1) / fsz;
			} else if (fl == 0) {
				fl = 1;
				nf = len;
			}
		}
		if (n < nf)
			break;
		for (uint32_t x = 0, off = 0; x < nf; x++) {
			struct vale_slot *s = &ring->slot[head];
			uint32_t l = x + 1 == nf ? len - off : fl;
			uint8_t *p = vale_slot_buf(&t->info, s->buf_idx);
			if (p)
				memcpy(p, f + off, l);
			s->len = (uint16_t)l;
			/* every packet is copied whole here: no BUF_CHANGED bookkeeping */
			s->flags = x + 1 == nf ? 0 : VS_MOREFRAG;
			if (unlikely(g->c.dump) && p)
				dump_payload(g, p, l, ring, head);
			off += l;
			head = vale_ring_next(head, ns);
		}
		n -= nf;
		b += len;
		k = k + 1 == g->nset ? 0 : k + 1;
	}
	t->set_next = k;
	if (sent) {
		STORE_REL(&ring->cur, head);
		STORE_REL(&ring->head, head);
	}
	*bytes += b;
	return sent;
}

/* Fill up to `count` packets into ring; returns packets queued. */
static uint32_t send_packets(struct pg_thread *t, struct vale_ring *ring, uint32_t count, bool seq,
			     uint64_t seq0, uint64_t *bytes)
{
	struct pg_ctx *g = t->g;
	const uint32_t ns = t->info.tx_slots;
	uint32_t n = vale_ring_space(ring, ns), head = LOAD_RLX(&ring->head);
	uint32_t sent = 0;
	if (unlikely(head >= ns))
		return 0;
	if (unlikely(g->nset)) /* -P with several frames */
		return send_set(t, ring, count, bytes);
	const uint32_t frags = g->frags, fsz = g->frag_size;
	const bool vary = g->vary, dump = g->c.dump;
	const uint32_t hoff = g->l3, hlen = g->l4 + 8 + (seq ? 4 : 0) - g->l3;
	uint64_t b = 0;
	if (likely(!vary && !dump && !g->c.min_size && frags == 1 && g->len <= fsz)) {
		/* the common case: the buffers already hold the frame, set lengths */
		const uint32_t len = g->len;
		if (count > n)
			count = n;
		for (; sent < count; sent++) {
			struct vale_slot *s = &ring->slot[head];
			if (unlikely(s->flags)) {
				uint8_t *p;
				if ((s->flags & VS_BUF_CHANGED) && (p = vale_slot_buf(&t->info, s->buf_idx)))
					memcpy(p, t->pkt, len);
				s->flags = 0;
			}
			s->len = (uint16_t)len;
			head = vale_ring_next(head, ns);
		}
		b = (uint64_t)sent * len;
		goto out;
	}
	for (; sent < count; sent++) {
		uint32_t len = pick_len(t);
		uint32_t nf = 1, fl = len;
		if (frags > 1 || len > fsz) { /* netmap's split: len / frags each, at most fsz */
			fl = len / frags;
			nf = frags;
			if (fl > fsz) {
				fl = fsz;
				nf = (len + fsz - 1) / fsz;
			} else if (fl == 0) {
				fl = 1;
				nf = len;
			}
		}
		if (n < nf)
			break;
		if (vary)
			build_headers(t, len, seq, (uint32_t)(seq0 + sent));
		if (likely(nf == 1)) {
			struct vale_slot *s = &ring->slot[head];
			if (unlikely(s->flags & VS_BUF_CHANGED) || vary) {
				uint8_t *p = vale_slot_buf(&t->info, s->buf_idx);
				if (p) {
					/* a fresh buffer gets the whole frame (the longest length:
					 * a later, longer packet only rewrites the headers) */
					if (s->flags & VS_BUF_CHANGED)
						memcpy(p, t->pkt, g->len < VALE_BUF_SIZE ? g->len : VALE_BUF_SIZE);
					else
						memcpy(p + hoff, t->pkt + hoff, hlen);
				}
			}
			s->len = (uint16_t)len;
			s->flags = 0;
			if (unlikely(dump)) {
				uint8_t *p = vale_slot_buf(&t->info, s->buf_idx);
				if (p)
					dump_payload(g, p, len, ring, head);
			}
			head = vale_ring_next(head, ns);
			n--;
		} else {
			uint32_t off = 0;
			for (uint32_t f = 0; f < nf; f++) {
				struct vale_slot *s = &ring->slot[head];
				uint32_t l = f + 1 == nf ? len - off : fl;
				uint8_t *p = vale_slot_buf(&t->info, s->buf_idx);
				if (p)
					memcpy(p, t->pkt + off, l);
				s->len = (uint16_t)l;
				/* it holds a piece now: a single-slot packet must copy the frame again */
				s->flags = VS_BUF_CHANGED | (f + 1 == nf ? 0 : VS_MOREFRAG);
				if (unlikely(dump) && p)
					dump_payload(g, p, l, ring, head);
				off += l;
				head = vale_ring_next(head, ns);
			}
			n -= nf;
		}
		b += len;
		if (vary && g->c.cycle.flags & CYC_ACTIVE)
			next_addresses(t);
	}
out:
	if (sent) {
		STORE_REL(&ring->cur, head);
		STORE_REL(&ring->head, head);
	}
	*bytes += b;
	return sent;
}

static bool tx_pending(struct pg_thread *t)
{
	for (uint32_t i = 0; i < t->ntx; i++) {
		struct vale_ring *r = t->tx[i];
		uint32_t h = r->head, tl = LOAD_ACQ(&r->tail), n = t->info.tx_slots;
		if ((h == 0 ? n - 1 : h - 1) != tl) /* netmap's nm_tx_pending */
			return true;
	}
	return false;
}

static int sender_body(struct pg_thread *t, bool seq)
{
	struct vale_pg_stats *st = t->st;
	const uint64_t n = t->npackets;
	uint64_t sent = 0, events = 0, bytes = 0;
	int64_t tosend = 0;
	bool pipe = t->info.flags & VPF_PIPE; /* back-pressure instead of drops */
	for (uint32_t i = 0; i < t->ntx; i++) /* first use of every slot copies the frame */
		for (uint32_t j = 0; j < t->info.tx_slots; j++)
			t->tx[i]->slot[j].flags = VS_BUF_CHANGED;
	uint64_t next = t->period_ns > 0 ? pace_start(&st->stop) : vale_mono_ns(), last = 0;
	STORE_RLX(&st->tic_ns, next);
	while (!LOAD_RLX(&st->stop) && (n == 0 || sent < n)) {
		if (t->period_ns > 0 && tosend <= 0) {
			tosend = t->burst;
			pace_wait(t, &next, &last, &st->stop);
		}
		uint32_t progress = 0;
		for (uint32_t i = 0; i < t->ntx; i++) {
			uint64_t limit = t->period_ns > 0 ? (uint64_t)tosend : t->burst;
			if (n > 0 && n - sent < limit)
				limit = n - sent;
			if (limit == 0)
				break;
			uint32_t m = send_packets(t, t->tx[i], (uint32_t)limit, seq, sent, &bytes);
			sent += m;
			progress += m;
			if (m)
				events++;
			if (t->period_ns > 0) {
				tosend -= m;
				if (tosend <= 0)
					break;
			}
		}
		int r = vale_txsync(t->port, -1);
		if (unlikely(r < 0))
			return r;
		STORE_RLX(&st->pkts, sent);
		STORE_RLX(&st->bytes, bytes);
		STORE_RLX(&st->events, events);
		if (!progress && pipe) {
			/* The peer is slow: spin a while as rx does (a sleep and its
			 * wake-up cost tens of µs each), then sleep until it frees room. */
			uint64_t until = vale_mono_ns() + (uint64_t)t->g->c.spin_us * 1000;
			bool moved = false;
			while (!moved && vale_mono_ns() < until && !LOAD_RLX(&st->stop)) {
				moved = vale_txsync(t->port, -1) > 0;
				__builtin_ia32_pause();
			}
			if (!moved)
				vale_wait(t->port, 100);
		}
	}
	/* flush, and for pipes wait until the peer took everything */
	vale_txsync(t->port, -1);
	while (!LOAD_RLX(&st->stop) && tx_pending(t)) {
		if (pipe)
			vale_wait(t->port, 100);
		vale_txsync(t->port, -1);
	}
	STORE_RLX(&st->toc_ns, vale_mono_ns());
	return 0;
}

/* ---------------- rx / rxseq ---------------- */

/* Busy-poll for spin_us, then sleep; returns 1 when something arrived, 0 on
 * a timeout or a wake-up without data.
 *
 * With `adaptive` (rx, rxseq) the spin is skipped unless it pays. Traffic
 * paced in bursts (-R: a burst every 0.1-1 ms) leaves the receiver idle far
 * longer than the spin: spinning 100 µs after every burst then burns up to
 * 40 % of a CPU for nothing, and on a machine whose CPUs are all busy the
 * scheduler then lets the receiver wait for a CPU for milliseconds after its
 * wake-up, and its ring overflows. So rx spins only while the recent waits
 * (idle_ns, a moving average) took less than half the spin; otherwise it
 * sleeps at once. ping and pong always spin: their next packet is the reply
 * to the one just sent, and the spin keeps a wake-up out of the RTT. */
static int rx_wait(struct pg_thread *t, int timeout_ms, bool adaptive)
{
	const uint64_t spin = (uint64_t)t->g->c.spin_us * 1000;
	uint64_t t0 = vale_mono_ns();
	uint64_t until = !adaptive || 2 * t->idle_ns < spin ? t0 + spin : t0;
	int r = 1;
	for (;;) {
		if (vale_rxsync(t->port, -1) > 0)
			goto out;
		if (LOAD_RLX(&t->st->stop))
			return 0;
		if (vale_mono_ns() >= until)
			break;
		__builtin_ia32_pause();
	}
	STORE_RLX(&t->st->sleeps, t->st->sleeps + 1);
	r = vale_wait(t->port, timeout_ms);
	if (r > 0)
		vale_rxsync(t->port, -1);
out:
	if (r > 0) { /* timeouts say nothing about the traffic */
		uint64_t waited = vale_mono_ns() - t0;
		t->idle_ns = (3 * t->idle_ns + waited) / 4;
	}
	return r;
}

static void seq_check(struct pg_thread *t, uint32_t ring, const uint8_t *p, uint32_t len)
{
	struct pg_ctx *g = t->g;
	struct vale_pg_stats *st = t->st;
	uint32_t h = g->c.hdr_len;
	if (len < h + 46 || rd16(p + h + 12) != 0x0800) {
		st->unparsed++;
		return;
	}
	uint32_t l4 = h + 14 + (uint32_t)(p[h + 14] & 0x0f) * 4;
	if (len < l4 + 12) {
		st->unparsed++;
		return;
	}
	uint32_t seq = rd32(p + l4 + 8);
	if (!t->seq_first[ring]) {
		t->seq_first[ring] = 1;
	} else if (seq != t->seq_exp[ring]) {
		uint32_t delta = seq - t->seq_exp[ring];
		st->seq_last_exp = t->seq_exp[ring];
		st->seq_last_found = seq;
		if (delta < (0xffffffffu >> 1)) {
			st->seq_gaps++;
			st->seq_lost += delta;
			st->seq_last_kind = 1;
		} else {
			st->seq_ooo++;
			st->seq_last_kind = 2;
		}
		uint32_t *log = st->seq_log[st->seq_events % 8];
		log[0] = st->seq_last_exp;
		log[1] = seq;
		log[2] = st->seq_last_kind;
		STORE_REL(&st->seq_events, st->seq_events + 1);
	}
	t->seq_exp[ring] = seq + 1;
}

static int receiver_body(struct pg_thread *t, bool seq)
{
	struct pg_ctx *g = t->g;
	struct vale_pg_stats *st = t->st;
	const uint64_t n = t->npackets;
	uint64_t pkts = 0, bytes = 0, events = 0;
	uint32_t frags = 0, frags_exp = 1;
	bool first_pkt = true;
	/* unbounded wait for the first packet */
	while (!LOAD_RLX(&st->stop)) {
		if (vale_rxsync(t->port, -1) > 0 || vale_wait(t->port, 1000) > 0)
			break;
	}
	uint64_t last_rx = vale_mono_ns();
	STORE_RLX(&st->tic_ns, last_rx);
	while (!LOAD_RLX(&st->stop) && (n == 0 || pkts < n)) {
		if (vale_rxsync(t->port, -1) <= 0) {
			if (rx_wait(t, 1000, true) <= 0 && !LOAD_RLX(&st->stop)) {
				/* -W: a second without traffic ends it (a wait also returns early
				 * when another thread's ring of this port was woken) */
				uint64_t now = vale_mono_ns();
				if (!g->c.forever && now - last_rx >= 1000000000ull &&
				    vale_rxsync(t->port, -1) <= 0) {
					STORE_RLX(&st->toc_ns, now - 1000000000ull); /* minus the idle second */
					goto out;
				}
				continue;
			}
		}
		uint64_t cur_space = 0;
		bool got_any = false;
		for (uint32_t i = 0; i < t->nrx; i++) {
			struct vale_ring *r = t->rx[i];
			uint32_t ns = t->info.rx_slots, head = r->head, tail = LOAD_ACQ(&r->tail);
			if (head >= ns || tail >= ns)
				continue;
			uint32_t m = head + ns - tail; /* free space, as netmap computes it */
			if (m >= ns)
				m -= ns;
			cur_space += m;
			uint32_t avail = tail >= head ? tail - head : tail + ns - head;
			if (!avail)
				continue;
			if (avail > g->c.burst)
				avail = g->c.burst;
			uint32_t got = 0;
			if (likely(!seq && !g->c.dump)) {
				/* count packets and bytes; n - pkts slots hold at most n - pkts packets */
				if (n && n - pkts < avail)
					avail = (uint32_t)(n - pkts);
				for (uint32_t k = 0; k < avail; k++) {
					const struct vale_slot *s = &r->slot[head];
					/* the sender just wrote these slots on another CPU: ask for
					 * the lines ahead so that their transfers overlap */
					__builtin_prefetch(&r->slot[head + 16 < ns ? head + 16 : head + 16 - ns]);
					bytes += s->len;
					got += !(s->flags & VS_MOREFRAG);
					head = vale_ring_next(head, ns);
				}
				avail = 0;
			}
			for (uint32_t k = 0; k < avail; k++) {
				if (n && pkts + got >= n)
					break;
				struct vale_slot *s = &r->slot[head];
				uint32_t len = s->len;
				bytes += len;
				if (unlikely(g->c.dump || seq)) {
					const uint8_t *p = vale_slot_buf(&t->info, s->buf_idx);
					if (p && len <= VALE_BUF_SIZE) {
						if (g->c.dump)
							dump_payload(g, p, len, r, head);
						if (seq && frags == 0)
							seq_check(t, i, p, len);
					}
				}
				frags++;
				if (!(s->flags & VS_MOREFRAG)) {
					if (seq) {
						if (!first_pkt && frags != frags_exp)
							st->frag_mismatch++;
						first_pkt = false;
						frags_exp = frags;
					}
					frags = 0;
					got++;
				}
				head = vale_ring_next(head, ns);
			}
			STORE_REL(&r->cur, head);
			STORE_REL(&r->head, head);
			pkts += got;
			if (got) {
				events++;
				got_any = true;
			}
		}
		if (got_any)
			last_rx = vale_mono_ns();
		if (cur_space < LOAD_RLX(&st->min_space))
			STORE_RLX(&st->min_space, cur_space);
		STORE_RLX(&st->pkts, pkts);
		STORE_RLX(&st->bytes, bytes);
		STORE_RLX(&st->events, events);
	}
	vale_rxsync(t->port, -1); /* release what we consumed */
	STORE_RLX(&st->toc_ns, vale_mono_ns());
out:
	STORE_RLX(&st->pkts, pkts);
	STORE_RLX(&st->bytes, bytes);
	STORE_RLX(&st->events, events);
	return 0;
}

/* ---------------- ping / pong ---------------- */

static inline uint32_t msb64(uint64_t x) { return x ? 63u - (uint32_t)__builtin_clzll(x) : 0; }

static void ping_publish(struct vale_pg_stats *st, uint32_t count, uint64_t tmin, uint64_t sum,
			 const uint64_t *buckets)
{
	STORE_REL(&st->rep_seq, st->rep_seq + 1);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	st->rep_count = count;
	st->rep_min = tmin;
	st->rep_sum = sum;
	memcpy(st->rep_buckets, buckets, sizeof(st->rep_buckets));
	__atomic_thread_fence(__ATOMIC_RELEASE);
	STORE_REL(&st->rep_seq, st->rep_seq + 1);
}

static int ping_body(struct pg_thread *t)
{
	struct pg_ctx *g = t->g;
	struct vale_pg_stats *st = t->st;
	const uint64_t n = t->npackets;
	const uint32_t size = g->len, h = g->c.hdr_len;
	uint64_t sent = 0, events = 0, count = 0, tmin = ~0ull, av = 0;
	uint64_t buckets[64] = {0};
	int64_t tosend = 0;
	struct vale_ring *ring = t->tx[0];
	if (size > VALE_BUF_SIZE || size < h + 54)
		return -EINVAL;
	uint64_t last_print = t->period_ns > 0 ? pace_start(&st->stop) : vale_mono_ns();
	uint64_t next = last_print, last = 0;
	STORE_RLX(&st->tic_ns, last_print);
	while (!LOAD_RLX(&st->stop) && (n == 0 || sent < n)) {
		if (t->period_ns > 0 && tosend <= 0) {
			tosend = t->burst;
			pace_wait(t, &next, &last, &st->stop);
		}
		uint64_t limit = t->period_ns > 0 ? (uint64_t)tosend : t->burst;
		if (n > 0 && n - sent < limit)
			limit = n - sent;
		const uint32_t tns = t->info.tx_slots;
		uint32_t m = 0, head = LOAD_RLX(&ring->head);
		for (; m < limit && head < tns; m++) {
			if (vale_ring_space(ring, tns) <= m) /* "-- ouch, cannot send" */
				break;
			struct vale_slot *s = &ring->slot[head];
			uint8_t *p = vale_slot_buf(&t->info, s->buf_idx);
			if (p) {
				memcpy(p, g->frame, size);
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				uint32_t w[3] = {(uint32_t)sent, (uint32_t)ts.tv_sec, (uint32_t)ts.tv_nsec};
				memcpy(p + h + 42, w, sizeof(w)); /* host order, as netmap */
				if (g->udp_csum) { /* netmap leaves it stale; we keep it valid */
					uint64_t ns = 0;
					for (int k = 0; k < 6; k++)
						ns += rd16(p + h + 42 + 2 * k);
					uint32_t hc = rd16(p + g->l4 + 6);
					uint32_t c = ~fold((~hc & 0xffff) + (~g->ping_tmpl & 0xffff) + fold(ns)) & 0xffff;
					wr16(p + g->l4 + 6, c ? c : 0xffff);
				}
			}
			s->len = (uint16_t)size;
			s->flags = 0;
			if (unlikely(g->c.dump) && p)
				dump_payload(g, p, size, ring, head);
			sent++;
			head = vale_ring_next(head, tns);
		}
		STORE_REL(&ring->cur, head);
		STORE_REL(&ring->head, head);
		if (m)
			events++;
		STORE_RLX(&st->pkts, sent);
		STORE_RLX(&st->bytes, sent * size);
		STORE_RLX(&st->events, events);
		if (t->period_ns > 0)
			tosend -= m;
		int r = vale_txsync(t->port, -1);
		if (r < 0)
			return r;
		/* see what we got back */
		if (vale_rxsync(t->port, -1) <= 0 && rx_wait(t, 3000, false) <= 0) {
			if (!LOAD_RLX(&st->stop))
				__atomic_fetch_add(&st->timeouts, 1, __ATOMIC_RELAXED);
			continue;
		}
		uint64_t now = 0;
		for (uint32_t i = 0; i < t->nrx; i++) {
			struct vale_ring *rr = t->rx[i];
			uint32_t ns = t->info.rx_slots, hd = rr->head, tl = LOAD_ACQ(&rr->tail);
			if (hd >= ns || tl >= ns)
				continue;
			while (hd != tl) {
				struct vale_slot *s = &rr->slot[hd];
				const uint8_t *p = vale_slot_buf(&t->info, s->buf_idx);
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				if (p && s->len >= h + 54) {
					uint32_t w[3];
					memcpy(w, p + h + 42, sizeof(w));
					int64_t ds = (int64_t)(uint32_t)((uint32_t)ts.tv_sec - w[1]);
					int64_t dn = (int64_t)ts.tv_nsec - (int64_t)w[2];
					int64_t cur = ds * 1000000000ll + dn;
					uint64_t tc = cur < 0 ? 0 : (uint64_t)cur;
					if (tc < tmin)
						tmin = tc;
					count++;
					av += tc;
					buckets[msb64(tc)]++;
					st->rtt_sum += tc;
					if (tc < st->rtt_min || st->rtt_count == 0)
						st->rtt_min = tc;
					STORE_REL(&st->rtt_count, st->rtt_count + 1);
				}
				hd = vale_ring_next(hd, ns);
			}
			STORE_REL(&rr->cur, hd);
			STORE_REL(&rr->head, hd);
		}
		now = vale_mono_ns();
		if (now - last_print >= 1000000000ull) {
			ping_publish(st, (uint32_t)count, tmin, av, buckets);
			memset(buckets, 0, sizeof(buckets));
			count = 0;
			av = 0;
			tmin = ~0ull;
			last_print = now;
		}
	}
	vale_rxsync(t->port, -1);
	STORE_RLX(&st->toc_ns, vale_mono_ns());
	return 0;
}

static int pong_body(struct pg_thread *t)
{
	struct pg_ctx *g = t->g;
	struct vale_pg_stats *st = t->st;
	const uint64_t n = t->npackets;
	const uint32_t h = g->c.hdr_len;
	uint64_t sent = 0, bytes = 0, events = 0;
	struct vale_ring *txr = t->tx[0];
	STORE_RLX(&st->tic_ns, vale_mono_ns());
	while (!LOAD_RLX(&st->stop) && (n == 0 || sent < n)) {
		if (vale_rxsync(t->port, -1) <= 0 && rx_wait(t, 1000, false) <= 0) {
			if (!LOAD_RLX(&st->stop))
				__atomic_fetch_add(&st->timeouts, 1, __ATOMIC_RELAXED);
			continue;
		}
		const uint32_t tns = t->info.tx_slots;
		uint32_t txhead = LOAD_RLX(&txr->head), txavail = vale_ring_space(txr, tns);
		if (unlikely(txhead >= tns))
			txavail = 0;
		uint32_t m = 0;
		for (uint32_t i = 0; i < t->nrx; i++) {
			struct vale_ring *rr = t->rx[i];
			uint32_t ns = t->info.rx_slots, hd = rr->head, tl = LOAD_ACQ(&rr->tail);
			if (hd >= ns || tl >= ns)
				continue;
			while (hd != tl && (n == 0 || sent < n)) {
				struct vale_slot *rs = &rr->slot[hd];
				hd = vale_ring_next(hd, ns);
				if (txavail == 0)
					continue; /* no room: drop, as netmap */
				struct vale_slot *ts = &txr->slot[txhead];
				/* rx and tx rings of one port share its region: swap buffers */
				uint32_t b = ts->buf_idx;
				ts->buf_idx = rs->buf_idx;
				rs->buf_idx = b;
				ts->len = rs->len;
				ts->flags = (uint16_t)(VS_BUF_CHANGED | (rs->flags & VS_MOREFRAG));
				rs->flags = VS_BUF_CHANGED;
				uint8_t *p = vale_slot_buf(&t->info, ts->buf_idx);
				if (p && ts->len >= h + 14) {
					uint8_t tmp[6];
					memcpy(tmp, p + h, 6); /* swap source and destination MAC */
					memmove(p + h, p + h + 6, 6);
					memcpy(p + h + 6, tmp, 6);
					if (rd16(p + h + 12) == 0x0800 && ts->len >= h + 34) { /* and IPv4 */
						uint8_t a[4];
						memcpy(a, p + h + 26, 4);
						memmove(p + h + 26, p + h + 30, 4);
						memcpy(p + h + 30, a, 4);
					}
					if (unlikely(g->c.dump))
						dump_payload(g, p, ts->len, txr, txhead);
				}
				bytes += ts->len;
				txhead = vale_ring_next(txhead, tns);
				txavail--;
				if (!(ts->flags & VS_MOREFRAG)) {
					sent++;
					m++;
				}
			}
			STORE_REL(&rr->cur, hd);
			STORE_REL(&rr->head, hd);
		}
		STORE_REL(&txr->cur, txhead);
		STORE_REL(&txr->head, txhead);
		if (m)
			events++;
		int r = vale_txsync(t->port, -1);
		if (r < 0)
			return r;
		STORE_RLX(&st->pkts, sent);
		STORE_RLX(&st->bytes, bytes);
		STORE_RLX(&st->events, events);
	}
	vale_rxsync(t->port, -1);
	vale_txsync(t->port, -1);
	STORE_RLX(&st->toc_ns, vale_mono_ns());
	return 0;
}

/* ---------------- threads ---------------- */

static void *thread_main(void *arg)
{
	struct pg_thread *t = arg;
	struct pg_ctx *g = t->g;
	/* precise sleeps for the rate limiter (wait_until), not 50 µs late */
	prctl(PR_SET_TIMERSLACK, 1ul, 0ul, 0ul, 0ul);
	if (g->c.affinity >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		uint32_t ncpu = g->c.cpus ? g->c.cpus : 1;
		CPU_SET(((uint32_t)g->c.affinity + t->me) % ncpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	int r = 0;
	switch (t->idle ? ~0u : g->c.func) {
	case ~0u:
		STORE_RLX(&t->st->tic_ns, vale_mono_ns());
		break;
	case PG_TX:
		r = sender_body(t, false);
		break;
	case PG_TXSEQ:
		r = sender_body(t, true);
		break;
	case PG_RX:
		r = receiver_body(t, false);
		break;
	case PG_RXSEQ:
		r = receiver_body(t, true);
		break;
	case PG_PING:
		r = ping_body(t);
		break;
	case PG_PONG:
		r = pong_body(t);
		break;
	default:
		r = -EINVAL;
	}
	if (!t->st->toc_ns)
		STORE_RLX(&t->st->toc_ns, vale_mono_ns());
	STORE_RLX(&t->st->error, r);
	STORE_REL(&t->st->done, r < 0 ? 2u : 1u);
	return NULL;
}

static void ctx_free(struct pg_ctx *g)
{
	if (!g)
		return;
	for (uint32_t i = 0; i < PG_MAX_THREADS; i++) {
		free(g->t[i].pkt);
		free(g->t[i].seq_exp);
		free(g->t[i].seq_first);
	}
	free(g->frame);
	free(g->set);
	free(g->set_off);
	free(g->set_len);
	free(g->psum);
	free(g->stats);
	pthread_mutex_destroy(&g->out_lock);
	free(g);
}

/* Create a context from a conf and the template frame (vnet header
 * included); NULL on bad arguments (lengths, thread count, version). */
VALE_API void *vale_pg_create(const uint8_t *conf, uint32_t conf_len, const uint8_t *frame,
			      uint32_t frame_len)
{
	if (conf_len < sizeof(struct vale_pg_conf))
		return NULL;
	struct pg_ctx *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	pthread_mutex_init(&g->out_lock, NULL);
	memcpy(&g->c, conf, sizeof(g->c));
	struct vale_pg_conf *c = &g->c;
	if (c->version != PG_VERSION || c->nthreads < 1 || c->nthreads > PG_MAX_THREADS ||
	    c->func > PG_RXSEQ || c->size < 16 || c->size > 65536 || c->hdr_len > 16 ||
	    frame_len != c->hdr_len + c->size || (c->min_size && c->min_size >= c->size))
		goto bad;
	if (c->burst == 0)
		c->burst = 1;
	g->len = frame_len;
	/* the private copy is padded so header writes of a short frame stay inside */
	g->frame = calloc(1, PG_MAX_FRAME + 64);
	if (!g->frame)
		goto bad;
	memcpy(g->frame, frame, frame_len);
	g->l3 = c->hdr_len + (c->cycle.l3_off ? c->cycle.l3_off : 14);
	g->l4 = c->hdr_len + (c->cycle.l4_off ? c->cycle.l4_off : 34);
	bool raw = c->flags & PGF_RAW;
	bool ipv4 = !raw && rd16(g->frame + c->hdr_len + 12) == 0x0800;
	g->udp_csum = ipv4 && (c->cycle.flags & CYC_UDP_CSUM) && rd16(g->frame + g->l4 + 6) != 0;
	g->vary = ipv4 && ((c->cycle.flags & CYC_ACTIVE) || c->min_size || c->func == PG_TXSEQ);
	if (g->vary) {
		const uint8_t *ip = g->frame + g->l3;
		/* version/IHL/TOS, id, flags/fragment, TTL/protocol: the words that never change */
		g->ip_const = rd16(ip) + rd16(ip + 4) + rd16(ip + 6) + rd16(ip + 8);
		uint32_t plen = g->len > g->l4 + 8 ? g->len - g->l4 - 8 : 0;
		g->npsum = plen / 2 + 1;
		g->psum = malloc(sizeof(uint32_t) * g->npsum);
		if (!g->psum)
			goto bad;
		g->psum[0] = 0;
		for (uint32_t k = 1; k < g->npsum; k++)
			g->psum[k] = g->psum[k - 1] + rd16(g->frame + g->l4 + 8 + 2 * (k - 1));
		g->seq_tmpl = plen >= 4 ? fold((uint64_t)g->psum[2]) : 0;
	}
	if (ipv4 && g->len >= g->l4 + 8 + 12) {
		uint64_t s = 0;
		for (int k = 0; k < 6; k++)
			s += rd16(g->frame + c->hdr_len + 42 + 2 * k);
		g->ping_tmpl = fold(s);
	}
	g->frag_size = c->frag_size && c->frag_size < VALE_BUF_SIZE ? c->frag_size : VALE_BUF_SIZE;
	g->frags = c->frags ? c->frags : 1;
	if (g->frags > 63)
		goto bad;
	g->stats = aligned_alloc(64, sizeof(struct vale_pg_stats) * c->nthreads);
	if (!g->stats)
		goto bad;
	memset(g->stats, 0, sizeof(struct vale_pg_stats) * c->nthreads);
	for (uint32_t i = 0; i < c->nthreads; i++) {
		struct pg_thread *t = &g->t[i];
		t->g = g;
		t->me = i;
		t->st = &g->stats[i];
		t->st->min_space = 0; /* netmap's first report shows 0, then 99999 */
		t->npackets = c->npackets / c->nthreads + (i < c->npackets % c->nthreads ? 1 : 0);
		t->idle = c->npackets && t->npackets == 0; /* more threads than packets */
		t->burst = c->burst;
		if (c->rate) {
			double r = (double)c->rate / c->nthreads;
			t->period_ns = 1e9 * t->burst / r;
		}
		t->pkt = malloc(PG_MAX_FRAME + 64);
		t->seq_exp = calloc(VALE_MAX_RINGS, sizeof(uint32_t));
		t->seq_first = calloc(VALE_MAX_RINGS, 1);
		if (!t->pkt || !t->seq_exp || !t->seq_first)
			goto bad;
		memcpy(t->pkt, g->frame, PG_MAX_FRAME + 64);
		if (ipv4) {
			t->sip = rd32(g->frame + g->l3 + 12);
			t->dip = rd32(g->frame + g->l3 + 16);
			t->sp = rd16(g->frame + g->l4);
			t->dp = rd16(g->frame + g->l4 + 2);
		}
		t->rng = (c->seed ? c->seed : 0x9e3779b97f4a7c15ull) + 0x632be59bd9b4e019ull * (i + 1);
	}
	return g;
bad:
	ctx_free(g);
	return NULL;
}

/* -P FILE with several frames: `set` holds them as records of a u32 length
 * (little endian, vnet header included) and that many bytes. Every TX thread
 * then sends them in turn, from the first, instead of the template (tx only:
 * the other functions keep the template, the file's first frame). Lengths are
 * checked as the template's: hdr_len + 16 .. hdr_len + 65536. Call before
 * vale_pg_run. 0 or -EINVAL / -ENOMEM. */
VALE_API int vale_pg_set_frames(void *ctx, const uint8_t *set, uint64_t set_len)
{
	struct pg_ctx *g = ctx;
	if (!g || !set || g->set || g->c.func != PG_TX)
		return -EINVAL;
	uint32_t n = 0;
	for (uint64_t o = 0; o < set_len; n++) {
		uint32_t l;
		if (set_len - o < 4)
			return -EINVAL;
		memcpy(&l, set + o, 4);
		if (l < g->c.hdr_len + 16 || l > g->c.hdr_len + 65536 || set_len - o - 4 < l)
			return -EINVAL;
		o += 4 + (uint64_t)l;
	}
	if (n == 0)
		return -EINVAL;
	g->set = malloc(set_len);
	g->set_off = malloc(sizeof(uint64_t) * n);
	g->set_len = malloc(sizeof(uint32_t) * n);
	if (!g->set || !g->set_off || !g->set_len) {
		free(g->set);
		free(g->set_off);
		free(g->set_len);
		g->set = NULL;
		g->set_off = NULL;
		g->set_len = NULL;
		return -ENOMEM;
	}
	memcpy(g->set, set, set_len);
	uint64_t o = 0;
	for (uint32_t k = 0; k < n; k++) {
		memcpy(&g->set_len[k], g->set + o, 4);
		g->set_off[k] = o + 4;
		o += 4 + (uint64_t)g->set_len[k];
	}
	g->nset = n;
	return 0;
}

/* Give thread i its port (opened by TS on ring i when nthreads > 1). */
VALE_API int vale_pg_set_port(void *ctx, uint32_t i, vale_port *p)
{
	struct pg_ctx *g = ctx;
	if (!g || i >= g->c.nthreads || !p)
		return -EINVAL;
	struct pg_thread *t = &g->t[i];
	int r = vale_info(p, &t->info);
	if (r < 0)
		return r;
	t->port = p;
	vale_info_rings(&t->info, t->tx, &t->ntx, t->rx, &t->nrx);
	if (!t->ntx || !t->nrx)
		return -EINVAL;
	return 0;
}

/* The stats array (nthreads x 1024 bytes), valid until vale_pg_destroy. */
VALE_API void *vale_pg_stats(void *ctx) { return ctx ? ((struct pg_ctx *)ctx)->stats : NULL; }

/* Run every thread to completion (a nonblocking FFI call); returns the first
 * thread's error, or 0. */
VALE_API int vale_pg_run(void *ctx)
{
	struct pg_ctx *g = ctx;
	if (!g)
		return -EINVAL;
	for (uint32_t i = 0; i < g->c.nthreads; i++)
		if (!g->t[i].port)
			return -EINVAL;
	int err = 0;
	for (uint32_t i = 0; i < g->c.nthreads; i++) {
		struct pg_thread *t = &g->t[i];
		int r = pthread_create(&t->th, NULL, thread_main, t);
		if (r) {
			t->st->error = -r;
			t->st->done = 2;
			err = -r;
			for (uint32_t k = 0; k < i; k++) /* stop what started */
				STORE_RLX(&g->t[k].st->stop, 1u);
			break;
		}
		t->started = true;
	}
	for (uint32_t i = 0; i < g->c.nthreads; i++) {
		struct pg_thread *t = &g->t[i];
		if (!t->started)
			continue;
		pthread_join(t->th, NULL);
		t->started = false;
		if (!err && t->st->error < 0)
			err = t->st->error;
	}
	return err;
}

/* Ctrl-C: ask every thread to stop and wake the ones asleep. */
VALE_API void vale_pg_stop(void *ctx)
{
	struct pg_ctx *g = ctx;
	if (!g)
		return;
	for (uint32_t i = 0; i < g->c.nthreads; i++) {
		STORE_REL(&g->t[i].st->stop, 1u);
		if (g->t[i].port)
			vale_wake(g->t[i].port);
	}
}

VALE_API void vale_pg_destroy(void *ctx) { ctx_free(ctx); }
