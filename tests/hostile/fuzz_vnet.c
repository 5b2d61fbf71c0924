/*
 * fuzz_vnet: the offload path (c-src/core/offload.c) under ASan/UBSan.
 * Port a (12-byte header) sends GSO super-frames — TCPv4/v6, USO, UFO,
 * partial checksums, with and without a VLAN tag — built valid, then mutated
 * (header fields, bytes of the headers, lengths, truncation) and split into
 * slot chains at random points, to b (no header, an MTU changed now and then)
 * and c (its header length changed now and then). Properties: no sanitizer
 * report, every frame b receives from a conversion fits b's MTU, every chain
 * that comes out is well formed, and the switch counted every packet a sent
 * (tx_packets).
 *
 *   fuzz_vnet RUN_DIR SEED SECONDS
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "vale.h"
#include "vale_app.h"

static uint64_t rs;
static uint32_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (uint32_t)(rs >> 11);
}
static uint32_t rndn(uint32_t n) { return n ? rnd() % n : 0; }

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static const uint8_t MA[6] = {2, 0, 0, 0, 0, 0xa}, MB[6] = {2, 0, 0, 0, 0, 0xb},
		     MC[6] = {2, 0, 0, 0, 0, 0xc};

/* A valid super-frame after a 12-byte header in f; returns its total length. */
static uint32_t build(uint8_t *f, uint32_t cap)
{
	uint32_t kind = rndn(5); /* 0 tso4, 1 tso6, 2 uso, 3 ufo, 4 csum only */
	bool v6 = kind == 1 || ((kind == 2 || kind == 3) && rndn(2));
	bool udp = kind == 2 || kind == 3 || (kind == 4 && rndn(2));
	uint32_t l3 = rndn(3) ? 14 : 18, iphl = v6 ? 40 : 20, l4hl = udp ? 8 : 20 + 4 * rndn(11);
	uint32_t hlen = l3 + iphl + l4hl;
	uint32_t maxpay = cap - 12 - hlen;
	if (maxpay > 65535 - iphl - l4hl)
		maxpay = 65535 - iphl - l4hl;
	uint32_t pay = rndn(4) ? rndn(maxpay + 1) : rndn(3000);
	uint8_t *e = f + 12;
	memset(f, 0, 12 + hlen);
	uint32_t dst = rndn(8);
	memcpy(e, dst < 4 ? MB : dst < 7 ? MC : (const uint8_t *)"\xff\xff\xff\xff\xff\xff", 6);
	memcpy(e + 6, MA, 6);
	if (l3 == 18) {
		put16(e + 12, 0x8100);
		put16(e + 14, rndn(4096));
	}
	put16(e + l3 - 2, v6 ? 0x86dd : 0x0800);
	uint8_t *ip = e + l3;
	if (v6) {
		ip[0] = 0x60;
		put16(ip + 4, l4hl + pay);
		ip[6] = udp ? 17 : 6;
		ip[7] = 64;
	} else {
		ip[0] = 0x45;
		put16(ip + 2, iphl + l4hl + pay);
		put16(ip + 4, rnd());
		put16(ip + 6, 0x4000);
		ip[8] = 64;
		ip[9] = udp ? 17 : 6;
	}
	uint8_t *l4 = ip + iphl;
	put16(l4, rnd());
	put16(l4 + 2, rnd());
	if (udp) {
		put16(l4 + 4, 8 + pay);
	} else {
		for (int i = 4; i < 12; i++)
			l4[i] = (uint8_t)rnd();
		l4[12] = (uint8_t)((l4hl / 4) << 4);
		l4[13] = (uint8_t)(rnd() & 0x7f);
	}
	for (uint32_t i = 0; i < pay; i++)
		e[hlen + i] = (uint8_t)(i * 7 + 3);
	struct vale_vnet_hdr h = {0};
	h.flags = VALE_VNET_F_NEEDS_CSUM;
	h.csum_start = (uint16_t)(l3 + iphl);
	h.csum_offset = udp ? 6 : 16;
	h.hdr_len = (uint16_t)hlen;
	static const uint8_t types[] = {VALE_VNET_GSO_TCPV4, VALE_VNET_GSO_TCPV6,
					VALE_VNET_GSO_UDP_L4, VALE_VNET_GSO_UDP, 0};
	h.gso_type = types[kind];
	h.gso_size = (uint16_t)(kind == 4 ? 0 : 1 + rndn(rndn(4) ? 9000 : 200));
	memcpy(f, &h, 12);
	return 12 + hlen + pay;
}

/* Stack a few mutations on the header and the first bytes of the frame. */
static uint32_t mutate(uint8_t *f, uint32_t len, uint32_t cap)
{
	uint32_t n = rndn(4);
	for (uint32_t k = 0; k < n; k++) {
		switch (rndn(6)) {
		case 0: f[rndn(12)] = (uint8_t)rnd(); break;                 /* a header byte */
		case 1: f[rndn(12)] ^= (uint8_t)(1u << rndn(8)); break;       /* a header bit */
		case 2: if (len > 12) f[12 + rndn(len - 12 < 160 ? len - 12 : 160)] = (uint8_t)rnd(); break;
		case 3: len = rndn(len + 1); break;                           /* truncated */
		case 4: { uint32_t o = rndn(5) * 2 + 2;                       /* a boundary u16 */
			static const uint16_t b[] = {0, 1, 7, 8, 0xffff, 0x7fff, 1514, 2048};
			uint16_t v = b[rndn(8)];
			memcpy(f + o, &v, 2);
			break; }
		case 5: if (len + 8 <= cap) len += rndn(9); break;            /* trailing bytes */
		}
	}
	return len;
}

/* Queue f[0..len) on the TX ring as a chain split at random points. */
static bool send_chain(const struct vale_port_info *i, struct vale_ring *tx, const uint8_t *f,
		       uint32_t len)
{
	uint32_t ns = i->tx_slots, h = tx->head, off = 0, k = 0;
	uint32_t room = vale_ring_space(tx, ns);
	uint32_t parts[VALE_MAX_FRAGS], np = 0;
	while (np < VALE_MAX_FRAGS) {
		uint32_t left = len - off;
		uint32_t p = left <= 2048 && rndn(3) ? left : (np == 0 && rndn(4) == 0 ? 12 : 1 + rndn(2048));
		if (p > left)
			p = left;
		parts[np++] = p;
		off += p;
		if (off >= len)
			break;
	}
	if (off < len || np > room)
		return false;
	off = 0;
	for (k = 0; k < np; k++) {
		struct vale_slot *s = &tx->slot[h];
		uint8_t *b = vale_slot_buf(i, s->buf_idx);
		if (!b)
			return false;
		memcpy(b, f + off, parts[k]);
		off += parts[k];
		s->len = (uint16_t)parts[k];
		s->flags = k + 1 < np ? VS_MOREFRAG : 0;
		h = vale_ring_next(h, ns);
	}
	tx->head = tx->cur = h;
	return true;
}

struct rx_stats {
	uint64_t frames, too_long;
};

/* Drain a port's RX ring; frames of a port without a header fed by conversion must fit mtu. */
static int drain(vale_port *p, const struct vale_port_info *i, uint32_t mtu, bool check_mtu,
		 struct rx_stats *st)
{
	vale_rxsync(p, -1);
	struct vale_ring *r = vale_rx_ring(i, 0);
	uint32_t ns = i->rx_slots, h = r->head, t = r->tail, flen = 0, nf = 0;
	while (h != t) {
		struct vale_slot *s = &r->slot[h];
		if (s->len > VALE_BUF_SIZE || !vale_buf_ok(i, s->buf_idx))
			return fprintf(stderr, "bad slot out: len %u idx %u\n", s->len, s->buf_idx), -1;
		flen += s->len;
		nf++;
		if (nf > VALE_MAX_FRAGS)
			return fprintf(stderr, "chain of %u slots out\n", nf), -1;
		if (!(s->flags & VS_MOREFRAG)) {
			if (flen) {
				st->frames++;
				if (check_mtu && flen > mtu)
					st->too_long++;
			}
			flen = nf = 0;
		}
		h = vale_ring_next(h, ns);
	}
	r->head = r->cur = h;
	vale_rxsync(p, -1);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return fprintf(stderr, "usage: fuzz_vnet RUN_DIR SEED SECONDS\n"), 2;
	const char *dir = argv[1];
	rs = strtoull(argv[2], NULL, 0) * 0x9E3779B97F4A7C15ull + 1;
	double secs = atof(argv[3]);
	struct vale_open_req rq = {.ring_id = -1, .flags = VO_VNET_HDR, .rx_slots = 1024};
	vale_port *a, *b, *c;
	rq.vnet_hdr_len = 12;
	if (vale_open(dir, "vale0", "a", &rq, &a))
		return fprintf(stderr, "open a: %s\n", vale_last_error()), 1;
	rq.vnet_hdr_len = 0;
	if (vale_open(dir, "vale0", "b", &rq, &b))
		return fprintf(stderr, "open b: %s\n", vale_last_error()), 1;
	rq.vnet_hdr_len = 10;
	if (vale_open(dir, "vale0", "c", &rq, &c))
		return fprintf(stderr, "open c: %s\n", vale_last_error()), 1;
	struct vale_port_info ia, ib, ic;
	vale_info(a, &ia);
	vale_info(b, &ib);
	vale_info(c, &ic);
	/* b and c speak once so that unicast to them is learned */
	uint8_t hello[72] = {0};
	memcpy(hello + 10, MA, 6);
	memcpy(hello + 16, MC, 6);
	send_chain(&ic, vale_tx_ring(&ic, 0), hello, 70);
	vale_txsync(c, -1);
	memcpy(hello, MA, 6);
	memcpy(hello + 6, MB, 6);
	struct vale_ring *btx = vale_tx_ring(&ib, 0);
	memcpy(vale_slot_buf(&ib, btx->slot[btx->head].buf_idx), hello, 60);
	btx->slot[btx->head].len = 60;
	btx->head = btx->cur = vale_ring_next(btx->head, ib.tx_slots);
	vale_txsync(b, -1);
	static uint8_t f[VALE_MAX_FRAGS * VALE_BUF_SIZE];
	struct rx_stats sb = {0, 0}, sc = {0, 0}, sa = {0, 0};
	uint32_t mtu = VALE_DEF_MTU, chl = 10;
	uint64_t sent = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t it = 0;; it++) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9 > secs)
			break;
		if (it % 64 == 0) { /* new settings, between batches */
			static const uint32_t mtus[] = {64, 100, 576, 1280, 1514, 1518, 4000, 9000, 65553};
			mtu = mtus[rndn(9)];
			if (vale_set_vnet(b, -1, (int32_t)mtu))
				return fprintf(stderr, "set mtu %u: %s\n", mtu, vale_last_error()), 1;
			static const uint32_t hls[] = {0, 10, 12};
			chl = hls[rndn(3)];
			vale_set_vnet(c, (int32_t)chl, -1);
		}
		uint32_t len = build(f, sizeof(f));
		len = mutate(f, len, sizeof(f));
		if (send_chain(&ia, vale_tx_ring(&ia, 0), f, len))
			sent++;
		if (it % 8 == 7 || rndn(4) == 0) {
			if (vale_txsync(a, -1) < 0)
				return fprintf(stderr, "txsync: %s\n", vale_last_error()), 1;
			if (drain(b, &ib, mtu, true, &sb) || drain(c, &ic, 0, false, &sc) ||
			    drain(a, &ia, 0, false, &sa))
				return 1;
		}
	}
	vale_txsync(a, -1);
	if (drain(b, &ib, mtu, true, &sb) || drain(c, &ic, 0, false, &sc))
		return 1;
	/* the MAC table learns the fuzzer's random source addresses: the JSON can
	 * outgrow any fixed buffer, so grow it to what the call says it needs */
	size_t cap = 65536;
	char *js = malloc(cap);
	int n = js ? vale_switch_json(dir, "vale0", js, (uint32_t)cap) : -1;
	if (n > 0 && (size_t)n > cap) {
		cap = (size_t)n;
		char *bigger = realloc(js, cap);
		if (bigger) {
			js = bigger;
			n = vale_switch_json(dir, "vale0", js, (uint32_t)cap);
		}
	}
	printf("fuzz_vnet: %llu packets sent, %llu frames to b (%llu over its MTU), %llu to c\n",
	       (unsigned long long)sent, (unsigned long long)sb.frames,
	       (unsigned long long)sb.too_long, (unsigned long long)sc.frames);
	unsigned long long txp = ~0ull;
	if (js && n > 0 && (size_t)n <= cap) {
		const char *p = strstr(js, "\"name\":\"a\"");
		const char *t = p ? strstr(p, "\"tx_packets\":") : NULL;
		const char *d = p ? strstr(p, "\"drops\"") : NULL;
		if (t)
			txp = strtoull(t + 13, NULL, 10);
		if (d)
			printf("a: tx_packets %llu %.120s\n", txp, d);
	}
	free(js);
	if (txp != sent) {
		fprintf(stderr, "a sent %llu packets, the switch counted %llu\n",
			(unsigned long long)sent, txp);
		return 1;
	}
	vale_close(a);
	vale_close(b);
	vale_close(c);
	if (sb.too_long)
		return fprintf(stderr, "frames over the MTU delivered\n"), 1;
	return 0;
}
