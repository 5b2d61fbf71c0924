// flush_cg — a deterministic driver for callgrind: vale0:a sends ITERS batches
// of 512 × 60-byte unicast frames to vale0:b in one process (b announces its
// MAC first), b drains each batch. Instructions per packet = (Ir at 300 − Ir
// at 100) / (200 × 512), which cancels the set-up. Build libvale for valgrind
// with -march=x86-64-v3 (docs/performance.md):
//
//   cc -std=gnu11 -fPIC -shared -fvisibility=hidden -D_GNU_SOURCE -Ic-src/include -Ic-src/core \
//      -O3 -march=x86-64-v3 -g -o /tmp/cg/libvale.so $(find c-src -name '*.c') -lpthread -ldl
//   cc -O2 -Ic-src/include -o /tmp/cg/flush_cg bench/c/flush_cg.c -L/tmp/cg -lvale -Wl,-rpath,/tmp/cg
//   for n in 100 300; do VALE_RUN_DIR=$(mktemp -d) valgrind --tool=callgrind /tmp/cg/flush_cg $n; done
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vale.h"
struct port { vale_port *p; uint8_t *bufs; struct vale_ring *tx, *rx; };
static void op(const char *name, struct port *o) {
	struct vale_open_req req = {.ring_id = -1};
	if (vale_open(NULL, "vale0", name, &req, &o->p) < 0) { fprintf(stderr, "%s\n", vale_last_error()); exit(1); }
	struct vale_port_info in; vale_info(o->p, &in);
	uint8_t *base = (uint8_t *)(uintptr_t)in.region_base;
	o->bufs = base + in.buf_ofs;
	o->tx = (struct vale_ring *)(base + in.tx_ring_ofs[0]);
	o->rx = (struct vale_ring *)(base + in.rx_ring_ofs[0]);
}
static void send(struct port *o, const uint8_t *f, uint32_t len, uint32_t k) {
	struct vale_ring *r = o->tx; uint32_t h = r->head, n = r->num_slots;
	for (uint32_t i = 0; i < k; i++) {
		memcpy(o->bufs + (uint64_t)r->slot[h].buf_idx * VALE_BUF_SIZE, f, len);
		r->slot[h].len = len; r->slot[h].flags = 0; h = h + 1 == n ? 0 : h + 1;
	}
	r->cur = h; __atomic_store_n(&r->head, h, __ATOMIC_RELEASE);
	vale_txsync(o->p, 0);
}
static void drain(struct port *o) {
	vale_rxsync(o->p, 0);
	uint32_t t = __atomic_load_n(&o->rx->tail, __ATOMIC_ACQUIRE);
	o->rx->cur = t; __atomic_store_n(&o->rx->head, t, __ATOMIC_RELEASE);
}
int main(int argc, char **argv) {
	int iters = argc > 1 ? atoi(argv[1]) : 200;
	struct port a, b; op("a", &a); op("b", &b);
	uint8_t fb[60] = {0xff,0xff,0xff,0xff,0xff,0xff, 2,0,0,0,0,0xb, 0x88,0xb5};
	send(&b, fb, 60, 1); drain(&a);
	uint8_t f[60] = {2,0,0,0,0,0xb, 2,0,0,0,0,0xa, 0x88,0xb5};
	for (int i = 0; i < iters; i++) { send(&a, f, 60, 512); drain(&b); }
	printf("done %d x 512\n", iters);
	vale_close(a.p); vale_close(b.p);
	return 0;
}
