// pktgen_c — pkt-gen's tx / rx loops driven from pure C, to compare with
// cli/pkt-gen.ts (the same loops driven from Deno). Built on demand by
// bench/pktgen_bench.ts against build/libvale.so:
//
//   cc -O2 -o build/pktgen_c bench/c/pktgen_c.c -Lbuild -lvale -Wl,-rpath,$PWD/build
//
//   pktgen_c tx|rx SWITCH:PORT COUNT LEN [pg|raw]
//
// pg  (default): the very loop pkt-gen runs (c-src/apps/pktgen.c, vale_pg_run),
//                configured as `pkt-gen -f tx|rx -n COUNT -l LEN` does.
// raw:           the smallest loop that does the same work through the public
//                API: tx sets slot lengths of prefilled buffers and txsyncs
//                every 512 packets; rx rxsyncs and releases what arrived.
// rx stops after COUNT packets or one second without traffic (pkt-gen -W).
// VALE_RUN_DIR selects the run directory, as for every vale tool.
//
// stdout: `result pkts=N bytes=B secs=T` (T from the first to the last packet).
#define _GNU_SOURCE
#include "../../c-src/include/vale.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void *vale_pg_create(const uint8_t *conf, uint32_t conf_len, const uint8_t *frame, uint32_t len);
int vale_pg_set_port(void *ctx, uint32_t i, vale_port *p);
void *vale_pg_stats(void *ctx);
int vale_pg_run(void *ctx);
void vale_pg_destroy(void *ctx);

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint16_t csum(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* pkt-gen's default frame: broadcast, 10.0.0.1:1234 -> 10.1.0.1:1234, checksummed */
static void build_frame(uint8_t *f, uint32_t len)
{
	static const char pay[] = "netmap pkt-gen DIRECT payload\nhttp://info.iet.unipi.it/~luigi/netmap/ ";
	memset(f, 0, len);
	memset(f, 0xff, 6);
	f[12] = 0x08;
	uint8_t *ip = f + 14, *udp = f + 34;
	ip[0] = 0x45;
	ip[1] = 0x10;
	ip[2] = (uint8_t)((len - 14) >> 8), ip[3] = (uint8_t)(len - 14);
	ip[6] = 0x40;
	ip[8] = 64;
	ip[9] = 17;
	ip[12] = 10, ip[15] = 1;
	ip[16] = 10, ip[17] = 1, ip[19] = 1;
	uint16_t c = csum(ip, 20, 0);
	ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
	udp[0] = 0x04, udp[1] = 0xd2, udp[2] = 0x04, udp[3] = 0xd2;
	udp[4] = (uint8_t)((len - 34) >> 8), udp[5] = (uint8_t)(len - 34);
	for (uint32_t i = 42, k = 0; i < len; i++, k = (k + 1) % (sizeof(pay) - 1))
		f[i] = (uint8_t)pay[k];
	uint32_t ps = 17 + (len - 34);
	for (int i = 12; i < 20; i += 2)
		ps += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	c = csum(udp, len - 34, ps);
	udp[6] = (uint8_t)(c >> 8), udp[7] = (uint8_t)(c ? c : 0xffff);
	if (!c)
		udp[6] = 0xff;
}

static int run_pg(vale_port *p, int tx, uint64_t count, uint32_t len, uint64_t *pkts, uint64_t *bytes,
		  double *secs)
{
	uint8_t conf[152] = {0}, frame[65536];
	uint32_t *w = (uint32_t *)conf;
	w[0] = 1;              /* version */
	w[1] = tx ? 0 : 1;     /* func */
	w[2] = 1;              /* threads */
	w[3] = 512;            /* burst */
	*(uint64_t *)(conf + 16) = count;
	w[6] = len;            /* size */
	w[8] = 1;              /* frags */
	*(int32_t *)(conf + 44) = -1; /* affinity */
	w[12] = 1;             /* cpus */
	w[13] = tx ? 1 : 0;    /* forever (rx: -W) */
	w[16] = 100;           /* spin_us */
	w[18] = len;           /* frame_len */
	uint32_t *cyc = (uint32_t *)(conf + 88);
	cyc[0] = 1, cyc[1] = 0x4, cyc[2] = 14, cyc[3] = 34; /* UDP checksum kept, nothing cycles */
	build_frame(frame, len);
	void *ctx = vale_pg_create(conf, sizeof(conf), frame, len);
	if (!ctx || vale_pg_set_port(ctx, 0, p) < 0)
		return -EINVAL;
	int r = vale_pg_run(ctx);
	uint64_t *st = vale_pg_stats(ctx);
	*pkts = st[0];
	*bytes = st[1];
	*secs = (double)(st[7] - st[6]) / 1e9; /* toc - tic */
	vale_pg_destroy(ctx);
	return r;
}

static inline uint32_t space(struct vale_ring *r)
{
	uint32_t h = r->head, t = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE), n = r->num_slots;
	return t >= h ? t - h : t + n - h;
}

static int run_raw(vale_port *p, int tx, uint64_t count, uint32_t len, uint64_t *pkts, uint64_t *bytes,
		   double *secs)
{
	struct vale_port_info in;
	vale_info(p, &in);
	uint8_t *base = (uint8_t *)(uintptr_t)in.region_base;
	struct vale_ring *r = (struct vale_ring *)(base + (tx ? in.tx_ring_ofs[0] : in.rx_ring_ofs[0]));
	uint32_t n = r->num_slots;
	uint64_t done = 0, b = 0, t0 = 0, t1 = 0;
	if (tx) {
		uint8_t frame[2048];
		build_frame(frame, len);
		for (uint32_t i = 0; i < n; i++)
			memcpy(base + in.buf_ofs + (uint64_t)r->slot[i].buf_idx * VALE_BUF_SIZE, frame, len);
		t0 = now_ns();
		while (done < count) {
			uint32_t m = space(r), h = r->head;
			if (m > 512)
				m = 512;
			if (m > count - done)
				m = (uint32_t)(count - done);
			for (uint32_t i = 0; i < m; i++) {
				r->slot[h].len = (uint16_t)len;
				r->slot[h].flags = 0;
				h = h + 1 == n ? 0 : h + 1;
			}
			r->head = r->cur = h;
			vale_txsync(p, -1);
			done += m;
			b += (uint64_t)m * len;
		}
		t1 = now_ns();
	} else {
		uint64_t last = 0;
		while (done < count) {
			vale_rxsync(p, -1);
			uint32_t m = space(r), h = r->head;
			if (!m) {
				uint64_t now = now_ns();
				if (t0 && now - last > 1000000000ull)
					break;
				if (!t0 || now - last > 100000)
					vale_wait(p, 100);
				continue;
			}
			if (!t0)
				t0 = now_ns();
			if (m > count - done)
				m = (uint32_t)(count - done);
			for (uint32_t i = 0; i < m; i++) {
				b += r->slot[h].len;
				h = h + 1 == n ? 0 : h + 1;
			}
			r->head = r->cur = h;
			done += m;
			last = t1 = now_ns();
		}
	}
	*pkts = done;
	*bytes = b;
	*secs = (double)(t1 - t0) / 1e9;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: pktgen_c tx|rx SWITCH:PORT COUNT LEN [pg|raw]\n");
		return 2;
	}
	int tx = strcmp(argv[1], "tx") == 0;
	char sw[64];
	snprintf(sw, sizeof(sw), "%s", argv[2]);
	char *colon = strchr(sw, ':');
	if (!colon)
		return 2;
	*colon = 0;
	uint64_t count = strtoull(argv[3], NULL, 10);
	uint32_t len = (uint32_t)atoi(argv[4]);
	int raw = argc > 5 && strcmp(argv[5], "raw") == 0;
	struct vale_open_req req = {.ring_id = -1};
	vale_port *p;
	if (vale_open(NULL, sw, colon + 1, &req, &p) < 0) {
		fprintf(stderr, "pktgen_c: %s\n", vale_last_error());
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	uint64_t pkts, bytes;
	double secs;
	int r = raw ? run_raw(p, tx, count, len, &pkts, &bytes, &secs)
		    : run_pg(p, tx, count, len, &pkts, &bytes, &secs);
	vale_close(p);
	if (r < 0) {
		fprintf(stderr, "pktgen_c: error %d\n", r);
		return 1;
	}
	printf("result pkts=%llu bytes=%llu secs=%.6f\n", (unsigned long long)pkts,
	       (unsigned long long)bytes, secs);
	return 0;
}
