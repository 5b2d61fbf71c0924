// vale_probe — small C helpers of the vale rows of the side-by-side benchmark
// (bench/vale_*.ts), linked against build/libvale.so and built on demand into
// build/bench/ by bench/vale_common.ts:
//
//   cc -O2 -o build/bench/vale_probe bench/c/vale_probe.c -Lbuild -lvale -Wl,-rpath,$PWD/build
//
// Every mode uses VALE_RUN_DIR (as every vale tool) and prints plain lines on stdout:
//
//   hold SWITCH N [NAME...]
//       opens N ports SWITCH:h0 … h<N-1> (default geometry) and the named
//       ports (shared: pkt-gen may open them too, and their counters stay after
//       it exits), prints `ready ports=K ms=T`, and holds them until SIGINT/SIGTERM.
//   announce SWITCH:PORT MAC
//       sends one broadcast frame with source MAC from an existing port, so the
//       switch learns MAC on PORT (the port stays open in its owner process).
//   stats SWITCH
//       prints `t_ns=<CLOCK_MONOTONIC>` and the switch's JSON (vale_switch_json).
//   counters SWITCH
//       the same counters in microseconds and without any lock: maps the
//       switch's control segment read-only (its layout is vale.h's) and prints
//       `t_ns=<CLOCK_MONOTONIC>`, then `port IDX NAME tx rx tx_bytes rx_bytes
//       ring_full bad_slot no_dest lookup` per active port. (vale_switch_json
//       also reaps, probing every port's region: ~80 ms with 1000 ports.)
//   ping SWITCH:PORT WARMUP_S SECS [LEN [DST_MAC]]
//       busy-polling ping: one frame in flight; RTT from just before the
//       txsync to the reply seen by rxsync (CLOCK_MONOTONIC). Prints `start`
//       when the window opens, then `result count= min_ns= p50_ns= p90_ns=
//       p99_ns= p999_ns= max_ns= avg_ns= secs= timeouts=` (10 ns histogram).
//   pong SWITCH:PORT
//       busy-polling pong in C (swaps the MACs, sends back), for comparison
//       with pkt-gen -f pong. Until SIGINT/SIGTERM.
//   wake-rx SWITCH:PORT WARMUP_S SECS
//       a sleeping receiver: vale_wait(-1) (no busy-poll); on each wake-up the
//       latency is now − the stamp the sender took just before its txsync.
//       Prints `start`, then `result count= … early= spurious= cpu_ns=` where
//       early = frames found before sleeping (not counted).
//   wake-tx SWITCH:PORT INTERVAL_US
//       sends one stamped frame every INTERVAL_US, until SIGINT/SIGTERM; then
//       prints `result sent= txsync_p50_ns= txsync_p99_ns=` (txsync includes
//       the wake-up system call).
//   kring SWITCH:PORT SECS
//       diagnosis, not used by the rows: samples the port's RX kring 0 every
//       ~100 µs (sleeping in between) and prints `result samples= empty_pending=
//       full_unpublished=`: the shares of samples where the receiver had nothing
//       published to read although producers held leases, and where moreover
//       the ring was completely leased (producers drop) — a producer preempted
//       between its lease and its publish blocks everyone behind it.
//   idle SWITCH:PORT
//       sleeps in vale_wait(-1), releases what arrives; prints `ready`; until
//       SIGINT/SIGTERM, then `result wakeups= frames= cpu_ns=`.
#define _GNU_SOURCE
#include "../../c-src/include/vale.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int s)
{
	(void)s;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "vale_probe: %s: %s\n", what, vale_last_error());
	exit(1);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

/* One open port and its first ring pair. */
struct port {
	vale_port *p;
	uint8_t *base, *bufs;
	struct vale_ring *tx, *rx;
};

static void open_port(const char *spec, uint32_t flags, struct port *o)
{
	char sw[64];
	snprintf(sw, sizeof(sw), "%s", spec);
	char *colon = strchr(sw, ':');
	if (!colon) {
		fprintf(stderr, "vale_probe: %s: expected SWITCH:PORT\n", spec);
		exit(2);
	}
	*colon = 0;
	struct vale_open_req req = {.ring_id = -1, .flags = flags};
	if (vale_open(NULL, sw, colon + 1, &req, &o->p) < 0)
		die(spec);
	struct vale_port_info in;
	if (vale_info(o->p, &in) < 0)
		die("vale_info");
	o->base = (uint8_t *)(uintptr_t)in.region_base;
	o->bufs = o->base + in.buf_ofs;
	o->tx = (struct vale_ring *)(o->base + in.tx_ring_ofs[0]);
	o->rx = (struct vale_ring *)(o->base + in.rx_ring_ofs[0]);
}

static inline uint8_t *buf(struct port *o, uint32_t idx)
{
	return o->bufs + (uint64_t)idx * VALE_BUF_SIZE;
}

static inline uint32_t nxt(uint32_t i, uint32_t n)
{
	return i + 1 == n ? 0 : i + 1;
}

static inline uint32_t rx_avail(struct vale_ring *r)
{
	uint32_t h = r->head, t = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	return t >= h ? t - h : t + r->num_slots - h;
}

static inline uint32_t tx_space(struct vale_ring *r)
{
	return rx_avail(r);
}

/* Fills the next TX slot with `len` bytes of `frame`; returns 0 when the ring is full. */
static int put_frame(struct port *o, const uint8_t *frame, uint32_t len)
{
	struct vale_ring *r = o->tx;
	if (!tx_space(r))
		return 0;
	uint32_t h = r->head;
	memcpy(buf(o, r->slot[h].buf_idx), frame, len);
	r->slot[h].len = (uint16_t)len;
	r->slot[h].flags = 0;
	h = nxt(h, r->num_slots);
	__atomic_store_n(&r->cur, h, __ATOMIC_RELEASE);
	__atomic_store_n(&r->head, h, __ATOMIC_RELEASE);
	return 1;
}

static void release_rx(struct vale_ring *r)
{
	uint32_t t = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	r->cur = t;
	__atomic_store_n(&r->head, t, __ATOMIC_RELEASE);
}

/* ---------------- latency histogram: 10 ns buckets up to 2 ms ---------------- */

#define HB 200000
struct hist {
	uint64_t *b;
	uint64_t count, over, sum, min, max;
};

static void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->b = calloc(HB, sizeof(uint64_t));
	h->min = ~0ull;
	if (!h->b)
		exit(1);
}

static void hist_reset(struct hist *h)
{
	uint64_t *b = h->b;
	memset(b, 0, HB * sizeof(uint64_t));
	memset(h, 0, sizeof(*h));
	h->b = b;
	h->min = ~0ull;
}

static inline void hist_add(struct hist *h, uint64_t ns)
{
	uint64_t k = ns / 10;
	if (k < HB)
		h->b[k]++;
	else
		h->over++;
	h->count++;
	h->sum += ns;
	if (ns < h->min)
		h->min = ns;
	if (ns > h->max)
		h->max = ns;
}

/* The q-quantile (nearest rank), bucket midpoint; max when it lies beyond the histogram. */
static uint64_t hist_q(const struct hist *h, double q)
{
	if (!h->count)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->count);
	if (rank >= h->count)
		rank = h->count - 1;
	uint64_t seen = 0;
	for (uint64_t k = 0; k < HB; k++) {
		seen += h->b[k];
		if (seen > rank) {
			uint64_t v = k * 10 + 5;
			return v < h->min ? h->min : v > h->max ? h->max : v;
		}
	}
	return h->max;
}

static void hist_print(const struct hist *h, const char *pfx)
{
	printf("%scount=%llu %smin_ns=%llu %sp50_ns=%llu %sp90_ns=%llu %sp99_ns=%llu %sp999_ns=%llu "
	       "%smax_ns=%llu %savg_ns=%.1f",
	       pfx, (unsigned long long)h->count, pfx, (unsigned long long)(h->count ? h->min : 0), pfx,
	       (unsigned long long)hist_q(h, 0.5), pfx, (unsigned long long)hist_q(h, 0.9), pfx,
	       (unsigned long long)hist_q(h, 0.99), pfx, (unsigned long long)hist_q(h, 0.999), pfx,
	       (unsigned long long)h->max, pfx, h->count ? (double)h->sum / (double)h->count : 0.0);
}

/* ---------------- frames ---------------- */

static const uint8_t BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t PING_SRC[6] = {0x02, 0, 0, 0, 0x0c, 0};
static const uint8_t PONG_MAC[6] = {0x02, 0, 0, 0, 0x0d, 0};

/* dst, src, ethertype 0x88b5, then u64 seq and u64 stamp at offset 14 */
static void make_frame(uint8_t *f, uint32_t len, const uint8_t *dst, const uint8_t *src)
{
	memset(f, 0, len);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	for (uint32_t i = 30; i < len; i++)
		f[i] = 0x55;
}

/* ---------------- modes ---------------- */

static int do_hold(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *sw = argv[0];
	long n = atol(argv[1]);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	int total = (int)n + (argc - 2);
	vale_port **ps = calloc((size_t)total + 1, sizeof(*ps));
	uint64_t t0 = now_ns();
	int k = 0;
	for (long i = 0; i < n && !stop; i++, k++) {
		char name[VALE_NAME_MAX];
		snprintf(name, sizeof(name), "h%ld", i);
		struct vale_open_req req = {.ring_id = -1};
		if (vale_open(NULL, sw, name, &req, &ps[k]) < 0) {
			fprintf(stderr, "vale_probe: hold %s:%s (after %d ports): %s\n", sw, name, k,
				vale_last_error());
			return 1;
		}
	}
	for (int i = 2; i < argc && !stop; i++, k++) {
		struct vale_open_req req = {.ring_id = -1};
		if (vale_open(NULL, sw, argv[i], &req, &ps[k]) < 0) {
			fprintf(stderr, "vale_probe: hold %s:%s: %s\n", sw, argv[i], vale_last_error());
			return 1;
		}
	}
	printf("ready ports=%d ms=%.1f\n", k, (double)(now_ns() - t0) / 1e6);
	fflush(stdout);
	while (!stop)
		pause();
	for (int i = 0; i < k; i++)
		vale_close(ps[i]);
	return 0;
}

static int do_announce(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	uint8_t mac[6], f[60];
	if (parse_mac(argv[1], mac))
		return 2;
	struct port o;
	open_port(argv[0], VO_NO_CREATE, &o);
	make_frame(f, sizeof(f), BCAST, mac);
	if (!put_frame(&o, f, sizeof(f))) {
		fprintf(stderr, "vale_probe: announce: TX ring full\n");
		return 1;
	}
	if (vale_txsync(o.p, -1) < 0)
		die("txsync");
	vale_close(o.p);
	printf("announced %s on %s\n", argv[1], argv[0]);
	return 0;
}

static int do_stats(int argc, char **argv)
{
	if (argc < 1)
		return 2;
	uint32_t cap = 1 << 16;
	for (;;) {
		char *b = malloc(cap);
		uint64_t t = now_ns();
		int r = vale_switch_json(NULL, argv[0], b, cap);
		if (r < 0)
			die("vale_switch_json");
		if ((uint32_t)r <= cap) {
			printf("t_ns=%llu\n%s\n", (unsigned long long)t, b);
			return 0;
		}
		free(b);
		cap = (uint32_t)r + 4096;
	}
}

static int do_counters(int argc, char **argv)
{
	if (argc < 1)
		return 2;
	const char *rd = getenv("VALE_RUN_DIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s/ctl", rd && *rd ? rd : "/dev/shm/vale", argv[0]);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "vale_probe: %s: %s\n", path, strerror(errno));
		return 1;
	}
	const uint8_t *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		fprintf(stderr, "vale_probe: mmap %s: %s\n", path, strerror(errno));
		return 1;
	}
	const struct vale_ctl_hdr *h = (const void *)base;
	if (h->magic != VALE_MAGIC || h->version != VALE_LAYOUT_VERSION ||
	    h->ports_ofs + (uint64_t)h->max_ports * sizeof(struct vale_port_ent) > (uint64_t)st.st_size) {
		fprintf(stderr, "vale_probe: %s: not a vale control segment of this layout\n", path);
		return 1;
	}
	const struct vale_port_ent *pe = (const void *)(base + h->ports_ofs);
	printf("t_ns=%llu\n", (unsigned long long)now_ns());
	for (uint32_t i = 0; i < h->max_ports; i++) {
		const struct vale_port_ent *e = &pe[i];
		if (e->state != VP_ACTIVE)
			continue;
		char name[VALE_NAME_MAX + 1];
		memcpy(name, e->name, VALE_NAME_MAX);
		name[VALE_NAME_MAX] = 0;
		const struct vale_counters *c = &e->c;
		printf("port %u %s %llu %llu %llu %llu %llu %llu %llu %llu\n", i, name,
		       (unsigned long long)c->tx_pkts, (unsigned long long)c->rx_pkts,
		       (unsigned long long)c->tx_bytes, (unsigned long long)c->rx_bytes,
		       (unsigned long long)c->drops[VD_RING_FULL], (unsigned long long)c->drops[VD_BAD_SLOT],
		       (unsigned long long)c->drops[VD_NO_DEST], (unsigned long long)c->drops[VD_LOOKUP]);
	}
	return 0;
}

static int do_ping(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	double warm = atof(argv[1]), secs = atof(argv[2]);
	uint32_t len = argc > 3 ? (uint32_t)atoi(argv[3]) : 60;
	uint8_t dst[6];
	memcpy(dst, PONG_MAC, 6);
	if (argc > 4 && parse_mac(argv[4], dst))
		return 2;
	if (len < 30 || len > VALE_BUF_SIZE)
		return 2;
	struct port o;
	open_port(argv[0], 0, &o);
	uint8_t f[VALE_BUF_SIZE];
	make_frame(f, len, dst, PING_SRC);
	struct hist h;
	hist_init(&h);
	uint64_t seq = 0, timeouts = 0;
	uint64_t t_start = now_ns(), t_win = t_start + (uint64_t)(warm * 1e9), t_end = 0;
	int in_window = 0;
	while (!stop) {
		uint64_t now = now_ns();
		if (!in_window && now >= t_win) {
			hist_reset(&h);
			timeouts = 0;
			in_window = 1;
			t_end = now + (uint64_t)(secs * 1e9);
			t_win = now;
			printf("start\n");
			fflush(stdout);
		}
		if (in_window && now >= t_end)
			break;
		seq++;
		memcpy(f + 14, &seq, 8);
		if (!put_frame(&o, f, len)) { /* cannot happen with one frame in flight */
			vale_txsync(o.p, -1);
			continue;
		}
		uint64_t t0 = now_ns();
		if (vale_txsync(o.p, -1) < 0)
			die("txsync");
		uint64_t deadline = t0 + 100000000ull, t1 = 0;
		int got = 0;
		while (!got) {
			vale_rxsync(o.p, -1);
			struct vale_ring *r = o.rx;
			uint32_t hd = r->head, tl = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
			if (hd != tl) {
				t1 = now_ns();
				for (; hd != tl; hd = nxt(hd, r->num_slots)) {
					uint64_t s;
					memcpy(&s, buf(&o, r->slot[hd].buf_idx) + 14, 8);
					if (r->slot[hd].len >= 22 && s == seq)
						got = 1;
				}
				release_rx(r);
				continue;
			}
			__builtin_ia32_pause();
			if (stop || now_ns() > deadline)
				break;
		}
		if (got)
			hist_add(&h, t1 - t0);
		else if (!stop)
			timeouts++;
	}
	uint64_t t_done = now_ns();
	printf("result ");
	hist_print(&h, "");
	printf(" secs=%.6f timeouts=%llu\n", (double)(t_done - t_win) / 1e9,
	       (unsigned long long)timeouts);
	vale_close(o.p);
	return in_window ? 0 : 1;
}

static int do_pong(int argc, char **argv)
{
	if (argc < 1)
		return 2;
	struct port o;
	open_port(argv[0], 0, &o);
	uint64_t n = 0;
	while (!stop) {
		vale_rxsync(o.p, -1);
		struct vale_ring *r = o.rx;
		uint32_t hd = r->head, tl = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
		if (hd == tl) {
			__builtin_ia32_pause();
			continue;
		}
		for (; hd != tl; hd = nxt(hd, r->num_slots)) {
			uint8_t f[VALE_BUF_SIZE];
			uint32_t len = r->slot[hd].len;
			if (len > VALE_BUF_SIZE || len < 14)
				continue;
			memcpy(f, buf(&o, r->slot[hd].buf_idx), len);
			uint8_t t[6];
			memcpy(t, f, 6);
			memcpy(f, f + 6, 6);
			memcpy(f + 6, t, 6);
			if (!memcmp(f + 6, BCAST, 6))
				memcpy(f + 6, PONG_MAC, 6);
			put_frame(&o, f, len);
			n++;
		}
		release_rx(r);
		vale_txsync(o.p, -1);
	}
	printf("result pongs=%llu\n", (unsigned long long)n);
	vale_close(o.p);
	return 0;
}

static int do_wake_rx(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	double warm = atof(argv[1]), secs = atof(argv[2]);
	struct port o;
	open_port(argv[0], 0, &o);
	printf("ready\n");
	fflush(stdout);
	struct hist h;
	hist_init(&h);
	uint64_t early = 0, spurious = 0, t_win = 0, t_end = 0, c0 = 0;
	int in_window = 0;
	uint64_t first = 0;
	while (!stop) {
		uint64_t now = now_ns();
		if (first && !in_window && now >= first + (uint64_t)(warm * 1e9)) {
			hist_reset(&h);
			early = spurious = 0;
			in_window = 1;
			t_win = now;
			t_end = now + (uint64_t)(secs * 1e9);
			c0 = cpu_ns();
			printf("start\n");
			fflush(stdout);
		}
		if (in_window && now >= t_end)
			break;
		/* anything already there was not a wake-up: release it uncounted */
		if (vale_rxsync(o.p, -1) > 0) {
			early++;
			release_rx(o.rx);
			continue;
		}
		int r = vale_wait(o.p, 200);
		uint64_t t1 = now_ns();
		if (r <= 0)
			continue;
		vale_rxsync(o.p, -1);
		struct vale_ring *rr = o.rx;
		uint32_t hd = rr->head, tl = __atomic_load_n(&rr->tail, __ATOMIC_ACQUIRE);
		if (hd == tl) {
			spurious++;
			continue;
		}
		if (!first)
			first = t1;
		/* the oldest frame woke us */
		uint64_t t0;
		memcpy(&t0, buf(&o, rr->slot[hd].buf_idx) + 22, 8);
		if (t0 && t0 <= t1)
			hist_add(&h, t1 - t0);
		release_rx(rr);
	}
	uint64_t c1 = cpu_ns(), t_done = now_ns();
	printf("result ");
	hist_print(&h, "");
	printf(" early=%llu spurious=%llu secs=%.6f cpu_ns=%llu\n", (unsigned long long)early,
	       (unsigned long long)spurious, in_window ? (double)(t_done - t_win) / 1e9 : 0.0,
	       (unsigned long long)(in_window ? c1 - c0 : 0));
	vale_close(o.p);
	return in_window ? 0 : 1;
}

static int do_wake_tx(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	uint64_t interval = (uint64_t)atol(argv[1]) * 1000ull;
	struct port o;
	open_port(argv[0], 0, &o);
	uint8_t f[60];
	make_frame(f, sizeof(f), BCAST, PING_SRC);
	struct hist h;
	hist_init(&h);
	uint64_t seq = 0;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!stop) {
		next.tv_nsec += (long)interval;
		while (next.tv_nsec >= 1000000000l) {
			next.tv_nsec -= 1000000000l;
			next.tv_sec++;
		}
		if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			continue;
		seq++;
		memcpy(f + 14, &seq, 8);
		uint32_t hd = o.tx->head;
		if (!put_frame(&o, f, sizeof(f))) {
			vale_txsync(o.p, -1);
			continue;
		}
		uint8_t *p = buf(&o, o.tx->slot[hd].buf_idx);
		uint64_t t0 = now_ns();
		memcpy(p + 22, &t0, 8);
		vale_txsync(o.p, -1);
		hist_add(&h, now_ns() - t0);
	}
	printf("result sent=%llu txsync_p50_ns=%llu txsync_p99_ns=%llu txsync_max_ns=%llu\n",
	       (unsigned long long)seq, (unsigned long long)hist_q(&h, 0.5),
	       (unsigned long long)hist_q(&h, 0.99), (unsigned long long)h.max);
	vale_close(o.p);
	return 0;
}

static int do_kring(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	double secs = atof(argv[1]);
	struct port o;
	open_port(argv[0], VO_NO_CREATE, &o);
	const struct vale_region_hdr *h = (const void *)o.base;
	const struct vale_kring *k =
	    (const void *)(o.base + h->kring_ofs + (uint64_t)h->ntx * sizeof(struct vale_kring));
	uint32_t n = h->rx_slots;
	uint64_t samples = 0, pending = 0, full = 0, t_end = now_ns() + (uint64_t)(secs * 1e9);
	while (!stop && now_ns() < t_end) {
		uint32_t cur = __atomic_load_n(&k->hwcur, __ATOMIC_ACQUIRE);
		uint32_t tail = __atomic_load_n(&k->hwtail, __ATOMIC_ACQUIRE);
		uint32_t lease = __atomic_load_n(&k->hwlease, __ATOMIC_ACQUIRE);
		samples++;
		if (tail == cur && lease != tail) {
			pending++;
			if (lease + 1 == cur || (lease + 1 == n && cur == 0))
				full++;
		}
		usleep(100);
	}
	printf("result samples=%llu empty_pending=%.4f full_unpublished=%.4f\n",
	       (unsigned long long)samples, samples ? (double)pending / (double)samples : 0.0,
	       samples ? (double)full / (double)samples : 0.0);
	vale_close(o.p);
	return 0;
}

static int do_idle(int argc, char **argv)
{
	if (argc < 1)
		return 2;
	struct port o;
	open_port(argv[0], 0, &o);
	printf("ready\n");
	fflush(stdout);
	uint64_t wakeups = 0, frames = 0, c0 = cpu_ns();
	while (!stop) {
		int n = vale_rxsync(o.p, -1);
		if (n > 0) {
			frames += (uint64_t)n;
			release_rx(o.rx);
			continue;
		}
		if (vale_wait(o.p, -1) > 0)
			wakeups++;
	}
	printf("result wakeups=%llu frames=%llu cpu_ns=%llu\n", (unsigned long long)wakeups,
	       (unsigned long long)frames, (unsigned long long)(cpu_ns() - c0));
	vale_close(o.p);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		goto usage;
	const char *m = argv[1];
	int r = 2;
	if (!strcmp(m, "hold"))
		r = do_hold(argc - 2, argv + 2);
	else if (!strcmp(m, "announce"))
		r = do_announce(argc - 2, argv + 2);
	else if (!strcmp(m, "stats"))
		r = do_stats(argc - 2, argv + 2);
	else if (!strcmp(m, "counters"))
		r = do_counters(argc - 2, argv + 2);
	else if (!strcmp(m, "ping"))
		r = do_ping(argc - 2, argv + 2);
	else if (!strcmp(m, "pong"))
		r = do_pong(argc - 2, argv + 2);
	else if (!strcmp(m, "wake-rx"))
		r = do_wake_rx(argc - 2, argv + 2);
	else if (!strcmp(m, "wake-tx"))
		r = do_wake_tx(argc - 2, argv + 2);
	else if (!strcmp(m, "kring"))
		r = do_kring(argc - 2, argv + 2);
	else if (!strcmp(m, "idle"))
		r = do_idle(argc - 2, argv + 2);
	if (r != 2)
		return r;
usage:
	fprintf(stderr, "usage: vale_probe hold SWITCH N [NAME...] | announce SWITCH:PORT MAC | "
			"stats SWITCH | counters SWITCH | ping SWITCH:PORT WARMUP_S SECS [LEN [DST_MAC]] | pong SWITCH:PORT "
			"| kring SWITCH:PORT SECS | wake-rx SWITCH:PORT WARMUP_S SECS | wake-tx SWITCH:PORT INTERVAL_US | idle "
			"SWITCH:PORT\n");
	return 2;
}
