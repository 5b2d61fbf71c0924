// flush_ipp — the data path's instructions per packet, under callgrind: one
// process, ports a -> b on the learning bridge, BATCH frames of LEN bytes per
// txsync, unicast, forwarded and received. Built with the library's sources
// (not the .so) so that callgrind sees one program:
//
//   cc -O3 -march=x86-64-v3 -g -D_GNU_SOURCE -Ic-src/include -Ic-src/core \
//      bench/c/flush_ipp.c $(find c-src -name '*.c' ! -path '*/apps/*') \
//      -lpthread -ldl -o /tmp/flush_ipp
//   valgrind --tool=callgrind /tmp/flush_ipp [-l LEN] [-b BATCH] [-n ROUNDS] [-s HDR] [-d HDR]
//
// Divide the program's total Ir by the packets it prints (the fill and the
// receive loop are counted too, the same before and after). -s/-d give the
// sender's and receiver's virtio-net header lengths (conversion cost).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "vale.h"
#include "vale_app.h"

int main(int argc, char **argv)
{
	int len = 60, batch = 512, rounds = 2000, sh = 0, dh = 0, c;
	while ((c = getopt(argc, argv, "l:b:n:s:d:")) != -1) {
		if (c == 'l') len = atoi(optarg);
		else if (c == 'b') batch = atoi(optarg);
		else if (c == 'n') rounds = atoi(optarg);
		else if (c == 's') sh = atoi(optarg);
		else if (c == 'd') dh = atoi(optarg);
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
	uint8_t frame[2048] = {0};
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
	uint64_t got = 0;
	for (int r = 0; r < rounds; r++) {
		uint32_t h = tx->head;
		for (int k = 0; k < batch; k++) {
			memcpy(vale_slot_buf(&ia, tx->slot[h].buf_idx), frame, 64);
			tx->slot[h].len = (uint16_t)(sh + len);
			h = vale_ring_next(h, tx->num_slots);
		}
		tx->head = tx->cur = h;
		vale_txsync(a, 0);
		vale_rxsync(b, 0);
		got += vale_ring_dist(rx->head, rx->tail, rx->num_slots);
		rx->head = rx->cur = rx->tail;
	}
	vale_rxsync(b, 0);
	printf("packets %llu\n", (unsigned long long)got);
	vale_close(a);
	vale_close(b);
	vale_remove_switch(dir, "vale0");
	rmdir(dir);
	return 0;
}
