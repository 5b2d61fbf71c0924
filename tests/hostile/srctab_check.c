/*
 * srctab_check — a sender with a source table (vale_set_tx_source, what the
 * vhost-user forwarder uses to send guest frames in one copy), driven from C
 * so it also runs under ASan/UBSan (tests/vhost_user_test.ts builds it both
 * ways).
 *
 *   srctab_check        (VALE_RUN_DIR: a private run directory)
 *
 * Port a sends from private memory: each frame ends right before a PROT_NONE
 * page, so a read past its length faults. Before every txsync the shared TX
 * slots of a are scribbled (buffer index, length, MOREFRAG: what another
 * member of the switch could write): the flush must read nothing from them.
 * Receivers: b (no header: the plain copy), c (a 12-byte virtio-net header:
 * the conversion path), m (a TX monitor of a). Checked, exactly: every frame
 * reaches b, c and m with its bytes (c behind a plain header: zeros, one
 * buffer), a 3000-byte frame
 * as a two-slot chain, and a NULL entry is a bad slot counted on a. Prints
 * "ok" or "FAIL: why" (exit 1).
 */
#include "common.h"
#include "vale_app.h"

#include <sys/mman.h>
#include <unistd.h>

#define N 64          /* frames per round */
#define ROUNDS 20
#define BIG 3000      /* the chain frame: 2048 + 952 */

static int fail(const char *why)
{
	printf("FAIL: %s [%s]\n", why, vale_last_error());
	return 1;
}

/* Memory that ends at a PROT_NONE page: [base, base + size). */
static uint8_t *guarded(size_t size)
{
	long ps = sysconf(_SC_PAGESIZE);
	size_t span = (size + (size_t)ps - 1) / (size_t)ps * (size_t)ps;
	uint8_t *m = mmap(NULL, span + (size_t)ps, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	if (mprotect(m + span, (size_t)ps, PROT_NONE) < 0)
		return NULL;
	return m + span - size;
}

/* Frames received on p's ring 0 since the last call: count them and check
 * each against what frame k of the round holds (behind hl zero bytes). */
static int drain(vale_port *p, uint32_t hl, const uint8_t *const *want, const uint32_t *wlen,
		 uint32_t *k, const char *who)
{
	struct vale_port_info i;
	vale_info(p, &i);
	struct vale_ring *rx = vale_rx_ring(&i, 0);
	vale_rxsync(p, 0);
	static uint8_t got[8192];
	uint32_t glen = 0;
	for (uint32_t x = rx->head; x != rx->tail; x = vale_ring_next(x, rx->num_slots)) {
		struct vale_slot *s = &rx->slot[x];
		if (glen + s->len > sizeof got) {
			printf("FAIL: %s: a frame too long\n", who);
			return -1;
		}
		memcpy(got + glen, vale_slot_buf(&i, s->buf_idx), s->len);
		glen += s->len;
		if (s->flags & VS_MOREFRAG)
			continue;
		uint32_t f = *k;
		if (glen != hl + wlen[f] || memcmp(got + hl, want[f], wlen[f]) != 0) {
			printf("FAIL: %s: frame %u: %u bytes, want %u (or other bytes)\n", who, f,
			       glen, hl + wlen[f]);
			return -1;
		}
		for (uint32_t z = 0; z < hl; z++) { /* zeros; num_buffers 1 (a 12-byte header) */
			if (got[z] != (z == 10 ? 1 : 0)) {
				printf("FAIL: %s: frame %u: a non-zero header\n", who, f);
				return -1;
			}
		}
		(*k)++;
		glen = 0;
	}
	rx->head = rx->cur = rx->tail;
	vale_rxsync(p, 0);
	return 0;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *dir = getenv("VALE_RUN_DIR");
	struct vale_open_req rq = {.ring_id = -1};
	vale_port *a, *b, *c, *m;
	if (vale_open(dir, "vale0", "a", &rq, &a) < 0 || vale_open(dir, "vale0", "b", &rq, &b) < 0)
		return fail("open a, b");
	struct vale_open_req rc = {.ring_id = -1, .flags = VO_VNET_HDR, .vnet_hdr_len = 12, .mtu = 9000};
	if (vale_open(dir, "vale0", "c", &rc, &c) < 0)
		return fail("open c");
	struct vale_open_req rm = {.ring_id = -1, .flags = VO_MONITOR_TX};
	if (vale_open(dir, "vale0", "a", &rm, &m) < 0)
		return fail("open a monitor of a");
	struct vale_port_info ia;
	vale_info(a, &ia);
	struct vale_src_slot *tab = calloc((size_t)ia.ntx * ia.tx_slots, sizeof *tab);
	if (!tab || vale_set_tx_source(a, tab) < 0)
		return fail("vale_set_tx_source");
	/* frames of 60..1514 bytes, and one of BIG, each ending at a guard page */
	const uint8_t *want[N];
	uint32_t wlen[N];
	for (uint32_t f = 0; f < N; f++) {
		uint32_t len = f == 7 ? BIG : 60 + (f * 97) % 1455;
		uint8_t *fr = guarded(len);
		if (!fr)
			return fail("mmap");
		memset(fr, 0xff, 6); /* broadcast: b, c and the monitor */
		uint8_t src[6] = {2, 0, 0, 0, 0, 0xa};
		memcpy(fr + 6, src, 6);
		fr[12] = 0x88, fr[13] = 0xb5;
		for (uint32_t x = 14; x < len; x++)
			fr[x] = (uint8_t)(x * 7 + f);
		want[f] = fr;
		wlen[f] = len;
	}
	struct vale_ring *tx = vale_tx_ring(&ia, 0);
	uint32_t kb = 0, kc = 0, km = 0, total = 0;
	for (int r = 0; r < ROUNDS; r++) {
		uint32_t h = tx->head, n = tx->num_slots;
		for (uint32_t f = 0; f < N; f++) {
			uint32_t len = wlen[f];
			for (uint32_t off = 0; off < len;) {
				uint32_t part = len - off > VALE_BUF_SIZE ? VALE_BUF_SIZE : len - off;
				tab[h] = (struct vale_src_slot){want[f] + off, (uint16_t)part,
								off + part < len ? VS_MOREFRAG : 0, 0};
				/* what another member could write into the shared slot */
				tx->slot[h].buf_idx = 0xfffffff0u - (uint32_t)r;
				tx->slot[h].len = 0xffff;
				tx->slot[h].flags = (r & 1) ? VS_MOREFRAG : 0;
				off += part;
				h = vale_ring_next(h, n);
			}
		}
		tx->head = tx->cur = h;
		if (vale_txsync(a, 0) < 0)
			return fail("txsync");
		for (uint32_t x = 0; x < n; x++)
			tab[x].p = NULL;
		uint32_t k0 = kb;
		if (drain(b, 0, want, wlen, &kb, "b") < 0 || drain(c, 12, want, wlen, &kc, "c") < 0 ||
		    drain(m, 0, want, wlen, &km, "monitor"))
			return 1;
		if (kb - k0 != N || kc != kb || km != kb) {
			printf("FAIL: round %d: b got %u, c %u, the monitor %u of %u\n", r, kb - k0,
			       kc - k0, km - k0, N);
			return 1;
		}
		kb = kc = km = 0;
		total += N;
	}
	/* a NULL entry: a bad slot, counted on the sender */
	struct vale_counters before, after;
	vale_port_counters(a, &before);
	uint32_t h = tx->head;
	tab[h] = (struct vale_src_slot){NULL, 60, 0, 0};
	tx->slot[h].len = 60;
	tx->head = tx->cur = vale_ring_next(h, tx->num_slots);
	vale_txsync(a, 0);
	tab[h].p = NULL;
	vale_port_counters(a, &after);
	if (after.drops[VD_BAD_SLOT] != before.drops[VD_BAD_SLOT] + 1)
		return fail("a NULL entry was not counted as a bad slot");
	/* a pipe end refuses a table */
	vale_port *pm;
	struct vale_open_req rp = {.ring_id = -1, .flags = VO_PIPE_MASTER};
	if (vale_open(dir, "vale0", "pp{1", &rp, &pm) < 0)
		return fail("open a pipe end");
	if (vale_set_tx_source(pm, tab) != -EOPNOTSUPP)
		return fail("a pipe end took a source table");
	vale_close(pm);
	vale_set_tx_source(a, NULL);
	vale_close(m);
	vale_close(c);
	vale_close(b);
	vale_close(a);
	free(tab);
	printf("ok %u frames\n", total);
	return 0;
}
