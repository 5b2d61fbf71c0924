/*
 * bridge's forwarding loop (netmap's apps/bridge): move packets from the RX
 * rings of port A to the TX rings of port B and back, swapping buffer
 * indices (zero-copy) when both ports live in one memory region (the two
 * ends of a pipe, or one port looped back with -L), copying otherwise.
 * Slots with a length beyond the buffer size are sent with length 0, as
 * netmap does; zero-length single slots (published by the switch when it
 * reclaims a dead sender's lease) are not forwarded.
 *
 * cli/bridge.ts opens the ports, decides zero-copy (it knows which region
 * each port lives in) and runs vale_br_run() as one nonblocking FFI call;
 * counters live in memory owned here and are read by TS; SIGINT calls
 * vale_br_stop(). An idle bridge sleeps in poll() on both ports' doorbells.
 * Public API only (vale.h, vale_app.h), like any netmap application.
 */
#include "vale_app.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge.h"

struct br_port {
	vale_port *p;
	struct vale_port_info info;
	struct vale_ring *tx[VALE_MAX_RINGS], *rx[VALE_MAX_RINGS];
	uint32_t ntx, nrx;
};

struct br_ctx {
	struct vale_br_conf c;
	struct br_port port[2];
	bool loopback; /* one port: its RX goes back out of its TX */
	struct vale_br_stats *st;
};

/* netmap's process_rings(): up to `limit` slots from rx to tx; returns slots taken from rx. */
static uint32_t process_rings(struct br_ctx *g, struct br_port *src, struct vale_ring *rx,
			      struct br_port *dst, struct vale_ring *tx, uint32_t limit, int dir)
{
	uint32_t rn = src->info.rx_slots, tn = dst->info.tx_slots;
	uint32_t j = LOAD_RLX(&rx->head), k = LOAD_RLX(&tx->head);
	uint32_t rt = LOAD_ACQ(&rx->tail), tt = LOAD_ACQ(&tx->tail);
	if (j >= rn || rt >= rn || k >= tn || tt >= tn)
		return 0; /* the ring view was scribbled on: the next sync resets it */
	uint32_t m = rt >= j ? rt - j : rt + rn - j, room = tt >= k ? tt - k : tt + tn - k;
	if (m < limit)
		limit = m;
	uint64_t pkts = 0, bytes = 0, bad = 0, empty = 0;
	uint32_t taken = 0;
	for (; taken < limit && room > 0; taken++) {
		struct vale_slot *rs = &rx->slot[j];
		uint16_t more = rs->flags & VS_MOREFRAG;
		uint32_t len = rs->len, ridx = LOAD_RLX(&rs->buf_idx);
		j = vale_ring_next(j, rn);
		if (unlikely(len == 0 && !more)) { /* an empty packet: nothing to forward */
			empty++;
			continue;
		}
		struct vale_slot *ts = &tx->slot[k];
		if (unlikely(len > VALE_BUF_SIZE)) { /* "wrong len": sent empty */
			bad++;
			len = 0;
		}
		if (g->c.zerocopy) {
			uint32_t b = ts->buf_idx;
			if (likely(vale_buf_ok(&src->info, ridx))) {
				ts->buf_idx = ridx;
				rs->buf_idx = b;
			} else {
				bad++;
				len = 0;
			}
			ts->flags = (uint16_t)(VS_BUF_CHANGED | more);
			rs->flags = VS_BUF_CHANGED;
		} else {
			const uint8_t *sp = vale_slot_buf(&src->info, ridx);
			uint8_t *dp = vale_slot_buf(&dst->info, LOAD_RLX(&ts->buf_idx));
			if (likely(sp && dp))
				memcpy(dp, sp, len);
			else
				len = 0;
			ts->flags = more;
		}
		ts->len = (uint16_t)len;
		bytes += len;
		if (!more)
			pkts++;
		k = vale_ring_next(k, tn);
		room--;
	}
	STORE_REL(&rx->cur, j);
	STORE_REL(&rx->head, j);
	STORE_REL(&tx->cur, k);
	STORE_REL(&tx->head, k);
	struct vale_br_stats *st = g->st;
	if (pkts) {
		STORE_RLX(&st->pkts[dir], st->pkts[dir] + pkts);
		STORE_RLX(&st->bytes[dir], st->bytes[dir] + bytes);
	}
	if (unlikely(bad))
		STORE_RLX(&st->bad_len[dir], st->bad_len[dir] + bad);
	if (unlikely(empty))
		STORE_RLX(&st->empty[dir], st->empty[dir] + empty);
	return taken;
}

/* netmap's move(): from the RX rings of src to the TX rings of dst. */
static uint32_t move(struct br_ctx *g, int dir)
{
	struct br_port *src = &g->port[dir], *dst = &g->port[g->loopback ? 0 : 1 - dir];
	uint32_t si = 0, di = 0, m = 0;
	while (si < src->nrx && di < dst->ntx) {
		struct vale_ring *rx = src->rx[si], *tx = dst->tx[di];
		if (vale_ring_space(rx, src->info.rx_slots) == 0) {
			si++;
			continue;
		}
		if (vale_ring_space(tx, dst->info.tx_slots) == 0) {
			di++;
			continue;
		}
		m += process_rings(g, src, rx, dst, tx, g->c.burst, dir);
	}
	return m;
}

static bool rx_pending(struct br_port *bp)
{
	for (uint32_t i = 0; i < bp->nrx; i++)
		if (vale_ring_space(bp->rx[i], bp->info.rx_slots))
			return true;
	return false;
}

static bool tx_pending(struct br_port *bp)
{
	for (uint32_t i = 0; i < bp->ntx; i++) {
		struct vale_ring *r = bp->tx[i];
		uint32_t h = r->head, n = bp->info.tx_slots;
		if ((h == 0 ? n - 1 : h - 1) != LOAD_ACQ(&r->tail))
			return true;
	}
	return false;
}

static int port_setup(struct br_port *bp, vale_port *p)
{
	int r = vale_info(p, &bp->info);
	if (r < 0)
		return r;
	bp->p = p;
	vale_info_rings(&bp->info, bp->tx, &bp->ntx, bp->rx, &bp->nrx);
	return bp->ntx && bp->nrx ? 0 : -EINVAL;
}

/* b == a (or NULL) loops port a back to itself (-L). NULL on bad arguments. */
VALE_API void *vale_br_create(vale_port *a, vale_port *b, const uint8_t *conf, uint32_t conf_len)
{
	if (!a || conf_len < sizeof(struct vale_br_conf))
		return NULL;
	struct br_ctx *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	memcpy(&g->c, conf, sizeof(g->c));
	g->st = aligned_alloc(64, sizeof(struct vale_br_stats));
	if (!g->st || g->c.version != BR_VERSION)
		goto bad;
	memset(g->st, 0, sizeof(*g->st));
	if (g->c.burst < 1 || g->c.burst > 8192)
		g->c.burst = 1024;
	g->loopback = !b || b == a;
	if (port_setup(&g->port[0], a) < 0 || (!g->loopback && port_setup(&g->port[1], b) < 0))
		goto bad;
	return g;
bad:
	free(g->st);
	free(g);
	return NULL;
}

VALE_API void *vale_br_stats(void *ctx) { return ctx ? ((struct br_ctx *)ctx)->st : NULL; }

/* Forward until vale_br_stop() (a nonblocking FFI call). */
VALE_API int vale_br_run(void *ctx)
{
	struct br_ctx *g = ctx;
	if (!g)
		return -EINVAL;
	struct vale_br_stats *st = g->st;
	int nports = g->loopback ? 1 : 2;
	uint64_t idle_since = 0;
	int err = 0;
	while (!LOAD_ACQ(&st->stop)) {
		uint32_t moved = 0;
		for (int i = 0; i < nports; i++)
			vale_rxsync(g->port[i].p, -1);
		for (int d = 0; d < nports; d++)
			moved += move(g, d);
		for (int i = 0; i < nports; i++) {
			if (tx_pending(&g->port[i])) {
				int r = vale_txsync(g->port[i].p, -1);
				if (r < 0 && r != -EINVAL) {
					err = r;
					goto out;
				}
			}
		}
		if (moved) {
			idle_since = 0;
			continue;
		}
		/* idle: spin a little, then sleep on the doorbells */
		uint64_t now = vale_mono_ns();
		if (!idle_since)
			idle_since = now;
		if (now - idle_since < (uint64_t)g->c.spin_us * 1000) {
			__builtin_ia32_pause();
			continue;
		}
		struct pollfd pfd[2];
		int nfd = 0;
		bool ready = false;
		for (int d = 0; d < nports; d++) {
			/* data waiting here but no room on the other side: wait for that room */
			struct br_port *bp = &g->port[d];
			if (rx_pending(bp) && !g->loopback)
				bp = &g->port[1 - d];
			if (vale_bell_arm(bp->p) == 1) {
				ready = true;
				continue;
			}
			if (bp->info.bell_fd >= 0)
				pfd[nfd++] = (struct pollfd){.fd = bp->info.bell_fd, .events = POLLIN};
		}
		STORE_RLX(&st->sleeps, st->sleeps + 1);
		if (ready) { /* blocked both ways (slow pipe peers): back off briefly */
			struct timespec ts = {0, 20000};
			nanosleep(&ts, NULL);
		} else if (nfd) {
			poll(pfd, (nfds_t)nfd, 1000);
		} else {
			vale_wait(g->port[0].p, 10);
		}
		for (int i = 0; i < nports; i++)
			vale_bell_clear(g->port[i].p);
		idle_since = 0;
	}
out:
	for (int i = 0; i < nports; i++)
		vale_txsync(g->port[i].p, -1);
	STORE_RLX(&st->error, err);
	STORE_REL(&st->done, err ? 2u : 1u);
	return err;
}

VALE_API void vale_br_stop(void *ctx)
{
	struct br_ctx *g = ctx;
	if (!g)
		return;
	STORE_REL(&g->st->stop, 1u);
	vale_wake(g->port[0].p);
	if (!g->loopback)
		vale_wake(g->port[1].p);
}

VALE_API void vale_br_destroy(void *ctx)
{
	struct br_ctx *g = ctx;
	if (!g)
		return;
	free(g->st);
	free(g);
}
