// flush_ipp — the data path's instructions per packet, under callgrind: one
// process, ports a -> b on the learning bridge, BATCH frames of LEN bytes per
// txsync, unicast, forwarded and received. Built with the library's sources
// (not the .so) so that callgrind sees one program:
//
//   cc -O3 -march=x86-64-v3 -g -D_GNU_SOURCE -Ic-src/include -Ic-src/core
//      bench/c/flush_ipp.c $(find c-src -name '*.c' ! -path '*/apps/*')
//      -lpthread -ldl -o /tmp/flush_ipp        (one command line)
//   valgrind --tool=callgrind /tmp/flush_ipp [-l LEN] [-b BATCH] [-n ROUNDS] [-s HDR] [-d HDR]
//
// Divide the program's total Ir by the packets it prints (the fill and the
// receive loop are counted too, the same before and after). -s/-d give the
// sender's and receiver's virtio-net header lengths (conversion cost); -g
// sends TCPv4 GSO super-frames of LEN payload bytes (gso_size 1448, the
// sender needs a header: -s 12) as MOREFRAG chains, e.g. -g -l 65000 -b 16.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "vale.h"
#include "vale_app.h"

int main(int argc, char **argv)
{
	int len = 60, batch = 512, rounds = 2000, sh = 0, dh = 0, gso = 0, c;
	while ((c = getopt(argc, argv, "l:b:n:s:d:g")) != -1) {
		if (c == 'l') len = atoi(optarg);
		else if (c == 'b') batch = atoi(optarg);
		else if (c == 'n') rounds = atoi(optarg);
		else if (c == 's') sh = atoi(optarg);
		else if (c == 'd') dh = atoi(optarg);
		else if (c == 'g') gso = 1;
		else return 2;
	}
	char dir[64];
	snprintf(dir, sizeof(dir), "/tmp/flush_ipp.%d", (int)getpid());
	struct vale_open_req rq = {.ring_id = -1, .flags = VO_VNET_HDR};
	vale_port *a, *b;
	rq.vnet_hdr_len = (uint32_t)sh;
	if (vale_open(dir, "vale0", "a", &rq, &a)) return fprintf(stderr, "%s\n", vale_last_error()), 1;
	rq.vnet_hdr_len = (uint32_t)dh;
	if (vale_open(dir, "vale0", "b", &rq, &b)) return fprintf(stderr, "%s\n", vale_last_error()), 1;
	struct vale_port_info ia, ib;
	vale_info(a, &ia);
	vale_info(b, &ib);
	struct vale_ring *tx = vale_tx_ring(&ia, 0), *rx = vale_rx_ring(&ib, 0), *btx = vale_tx_ring(&ib, 0);
	static uint8_t frame[VALE_MAX_FRAGS * VALE_BUF_SIZE];
	const uint8_t ma[6] = {2, 0, 0, 0, 0, 0xa}, mb[6] = {2, 0, 0, 0, 0, 0xb};
	/* b speaks once so the bridge learns it */
	uint8_t *f = vale_slot_buf(&ib, btx->slot[btx->head].buf_idx);
	memset(f, 0, 64);
	memcpy(f + dh, ma, 6);
	memcpy(f + dh + 6, mb, 6);
	btx->slot[btx->head].len = (uint16_t)(dh + 60);
	btx->head = btx->cur = vale_ring_next(btx->head, btx->num_slots);
	vale_txsync(b, 0);
	memcpy(frame + sh, mb, 6);
	memcpy(frame + sh + 6, ma, 6);
	frame[sh + 12] = 0x88, frame[sh + 13] = 0xb5;
	uint32_t flen = (uint32_t)(sh + len), nfr = 1;
	if (gso) { /* Ethernet, IPv4, TCP, payload; a partial checksum as a kernel sends it */
		uint8_t *e = frame + sh, *ip = e + 14, *tcp = ip + 20;
		e[12] = 0x08, e[13] = 0x00;
		ip[0] = 0x45, ip[2] = (uint8_t)((40 + len) >> 8), ip[3] = (uint8_t)(40 + len);
		ip[6] = 0x40, ip[8] = 64, ip[9] = 6;
		ip[12] = 10, ip[15] = 1, ip[16] = 10, ip[19] = 2;
		tcp[12] = 0x50, tcp[13] = 0x18;
		for (int i = 0; i < len; i++)
			tcp[20 + i] = (uint8_t)i;
		struct vale_vnet_hdr h = {.flags = VALE_VNET_F_NEEDS_CSUM, .gso_type = VALE_VNET_GSO_TCPV4,
					  .hdr_len = 54, .gso_size = 1448, .csum_start = 34,
					  .csum_offset = 16};
		memcpy(frame, &h, (size_t)sh);
		flen = (uint32_t)(sh + 54 + len);
		nfr = (flen + VALE_BUF_SIZE - 1) / VALE_BUF_SIZE;
	}
	uint64_t got = 0;
	for (int r = 0; r < rounds; r++) {
		uint32_t h = tx->head;
		for (int k = 0; k < batch; k++) {
			if (!gso) {
				memcpy(vale_slot_buf(&ia, tx->slot[h].buf_idx), frame, 64);
				tx->slot[h].len = (uint16_t)(sh + len);
				h = vale_ring_next(h, tx->num_slots);
				continue;
			}
			for (uint32_t f = 0; f < nfr; f++) { /* a super-frame: a chain */
				uint32_t part = f + 1 < nfr ? VALE_BUF_SIZE : flen - f * VALE_BUF_SIZE;
				memcpy(vale_slot_buf(&ia, tx->slot[h].buf_idx), frame + f * VALE_BUF_SIZE, part);
				tx->slot[h].len = (uint16_t)part;
				tx->slot[h].flags = f + 1 < nfr ? VS_MOREFRAG : 0;
				h = vale_ring_next(h, tx->num_slots);
			}
		}
		tx->head = tx->cur = h;
		vale_txsync(a, 0);
		vale_rxsync(b, 0);
		if (!gso) { /* one slot per frame (kept as it was: numbers stay comparable) */
			got += vale_ring_dist(rx->head, rx->tail, rx->num_slots);
			rx->head = rx->cur = rx->tail;
			continue;
		}
		for (uint32_t x = rx->head; x != rx->tail; x = vale_ring_next(x, rx->num_slots))
			got += !(rx->slot[x].flags & VS_MOREFRAG); /* frames, not slots */
		rx->head = rx->cur = rx->tail;
		vale_rxsync(b, 0); /* give the slots back before the next round */
	}
	vale_rxsync(b, 0);
	printf("frames %llu\n", (unsigned long long)got);
	vale_close(a);
	vale_close(b);
	vale_remove_switch(dir, "vale0");
	rmdir(dir);
	return 0;
}
