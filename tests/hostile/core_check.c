/*
 * core_check — the core scenarios of libvale driven from C, so they can run
 * under AddressSanitizer/UBSan (tests/sanitize_test.ts links this against
 * build/asan/libvale.so; Deno itself cannot load an ASan library without
 * preloading the runtime).
 *
 *   core_check SW        (VALE_RUN_DIR: a private run directory)
 *
 * Scenarios, each printing "ok NAME" (or "FAIL NAME: why" and exit 1):
 *   learning   3 ports: floods reach everyone else, learned unicast only its target
 *   frags      fragmented frames (MOREFRAG chains) up to 9000 bytes, intact
 *   pipe       a pipe pair both ways, by buffer swap
 *   persistent a port created persistent, opened, closed, still listed, removed
 *   reopen     close and reopen a port 20 times with traffic in between
 *   sigkill    a sender (this program, --victim) SIGKILLed mid-flood: the switch keeps working,
 *              the dead port is reaped
 */
#include "common.h"

#include <sys/wait.h>

static const char *g_sw;
static int g_fail;

#define CHECK(cond, name, ...)                                                                     \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			printf("FAIL %s: ", name);                                                 \
			printf(__VA_ARGS__);                                                       \
			printf(" [%s]\n", vale_last_error());                                      \
			fflush(stdout);                                                            \
			_exit(1); /* not exit(): LeakSanitizer would report the ports left open */ \
		}                                                                                  \
	} while (0)

struct port {
	vale_port *p;
	struct vale_port_info i;
	struct vale_ring *tx, *rx;
	uint8_t *bufs;
};

static int port_open(struct port *q, const char *name, uint32_t flags)
{
	struct vale_open_req req = {.ring_id = -1, .flags = flags};
	memset(q, 0, sizeof(*q));
	int r = vale_open(NULL, g_sw, name, &req, &q->p);
	if (r < 0)
		return r;
	vale_info(q->p, &q->i);
	q->tx = (void *)(uintptr_t)(q->i.region_base + q->i.tx_ring_ofs[0]);
	q->rx = (void *)(uintptr_t)(q->i.region_base + q->i.rx_ring_ofs[0]);
	q->bufs = (uint8_t *)(uintptr_t)(q->i.region_base + q->i.buf_ofs);
	return 0;
}

static void port_close(struct port *q)
{
	vale_close(q->p);
	q->p = NULL;
}

static uint8_t *slot_buf(struct port *q, struct vale_slot *s)
{
	return q->bufs + (uint64_t)s->buf_idx * VALE_BUF_SIZE;
}

/* Queue one frame (split into 2048-byte fragments); false if no room. */
static bool queue_frame(struct port *q, const uint8_t *f, uint32_t len)
{
	struct vale_ring *t = q->tx;
	uint32_t n = q->i.tx_slots, nf = (len + VALE_BUF_SIZE - 1) / VALE_BUF_SIZE;
	uint32_t room = t->tail >= t->head ? t->tail - t->head : t->tail + n - t->head;
	if (room < nf)
		return false;
	uint32_t h = t->head;
	for (uint32_t k = 0, off = 0; k < nf; k++) {
		struct vale_slot *s = &t->slot[h];
		uint32_t l = len - off > VALE_BUF_SIZE ? VALE_BUF_SIZE : len - off;
		memcpy(slot_buf(q, s), f + off, l);
		s->len = (uint16_t)l;
		s->flags = k + 1 < nf ? VS_MOREFRAG : 0;
		off += l;
		h = h + 1 == n ? 0 : h + 1;
	}
	t->head = t->cur = h;
	return true;
}

static bool send_frame(struct port *q, const uint8_t *f, uint32_t len)
{
	for (int tries = 0; tries < 100; tries++) {
		if (queue_frame(q, f, len))
			return vale_txsync(q->p, 0) >= 0;
		vale_txsync(q->p, 0);
		usleep(1000);
	}
	return false;
}

/* Receive for up to ms, reassembling fragments; calls fn per frame. */
typedef void frame_fn(const uint8_t *f, uint32_t len, void *arg);
static uint32_t recv_frames(struct port *q, uint32_t ms, uint32_t want, frame_fn *fn, void *arg)
{
	static uint8_t asm_buf[VALE_MAX_FRAGS * VALE_BUF_SIZE];
	uint32_t got = 0, alen = 0;
	uint64_t t0 = now_ms();
	while (got < want && now_ms() - t0 < ms) {
		vale_rxsync(q->p, 0);
		struct vale_ring *r = q->rx;
		uint32_t n = q->i.rx_slots;
		while (r->head != r->tail) {
			struct vale_slot *s = &r->slot[r->head];
			if (alen + s->len <= sizeof(asm_buf)) {
				memcpy(asm_buf + alen, slot_buf(q, s), s->len);
				alen += s->len;
			}
			if (!(s->flags & VS_MOREFRAG)) {
				if (alen)
					fn(asm_buf, alen, arg);
				got++;
				alen = 0;
			}
			r->head = r->cur = r->head + 1 == n ? 0 : r->head + 1;
		}
		if (got < want)
			vale_wait(q->p, 20);
	}
	return got;
}

struct tally {
	uint32_t ok, bad, foreign, from[8];
};
static void count_frame(const uint8_t *f, uint32_t len, void *arg)
{
	struct tally *t = arg;
	uint32_t src, seq;
	int r = tf_check(f, len, &src, &seq);
	if (r == TF_OK) {
		t->ok++;
		if (src < 8)
			t->from[src]++;
	} else if (r == TF_BAD) {
		t->bad++;
	} else {
		t->foreign++;
	}
}

static bool send_test(struct port *q, uint32_t src, uint32_t dst, uint32_t seq, uint32_t len)
{
	static uint8_t f[VALE_MAX_FRAGS * VALE_BUF_SIZE];
	tf_build(f, len, src, dst, seq);
	return send_frame(q, f, len);
}

static void drain(struct port *q)
{
	struct tally t = {0};
	recv_frames(q, 30, ~0u, count_frame, &t);
}

static void learning(void)
{
	struct port a, b, c;
	CHECK(port_open(&a, "la", 0) == 0 && port_open(&b, "lb", 0) == 0 &&
		  port_open(&c, "lc", 0) == 0,
	      "learning", "open");
	/* everyone announces: each broadcast reaches the two others */
	CHECK(send_test(&a, 1, ~0u, 0, 64) && send_test(&b, 2, ~0u, 0, 64) &&
		  send_test(&c, 3, ~0u, 0, 64),
	      "learning", "send broadcast");
	struct tally ta = {0}, tb = {0}, tc = {0};
	recv_frames(&a, 500, 2, count_frame, &ta);
	recv_frames(&b, 500, 2, count_frame, &tb);
	recv_frames(&c, 500, 2, count_frame, &tc);
	CHECK(ta.from[2] == 1 && ta.from[3] == 1 && tb.from[1] == 1 && tb.from[3] == 1 &&
		  tc.from[1] == 1 && tc.from[2] == 1,
	      "learning", "flood: a %u/%u b %u/%u c %u/%u", ta.from[2], ta.from[3], tb.from[1],
	      tb.from[3], tc.from[1], tc.from[2]);
	/* learned unicast: a → b only */
	for (uint32_t i = 0; i < 100; i++)
		CHECK(send_test(&a, 1, 2, i + 1, 64 + i * 14), "learning", "send unicast");
	memset(&tb, 0, sizeof(tb));
	memset(&tc, 0, sizeof(tc));
	recv_frames(&b, 1000, 100, count_frame, &tb);
	recv_frames(&c, 100, ~0u, count_frame, &tc);
	CHECK(tb.from[1] == 100 && tb.bad == 0 && tc.ok == 0, "learning",
	      "unicast: b got %u (bad %u), c got %u", tb.from[1], tb.bad, tc.ok);
	char json[65536];
	int jl = vale_switch_json(NULL, g_sw, json, sizeof(json));
	CHECK(jl > 0 && strstr(json, "\"la\""), "learning", "switch json (%d)", jl);
	port_close(&a);
	port_close(&b);
	port_close(&c);
	printf("ok learning\n");
}

static void frags(void)
{
	struct port a, b;
	CHECK(port_open(&a, "fa", 0) == 0 && port_open(&b, "fb", 0) == 0, "frags", "open");
	CHECK(send_test(&b, 2, ~0u, 0, 64), "frags", "announce");
	drain(&a);
	uint32_t lens[] = {2048, 2049, 4096, 4097, 6000, 8191, 9000, 1514, 9000, 3000};
	for (uint32_t i = 0; i < 10; i++)
		CHECK(send_test(&a, 1, 2, i + 1, lens[i]), "frags", "send %u", lens[i]);
	struct tally t = {0};
	recv_frames(&b, 1000, 10, count_frame, &t);
	CHECK(t.from[1] == 10 && t.bad == 0, "frags", "got %u intact of 10 (bad %u)", t.from[1],
	      t.bad);
	port_close(&a);
	port_close(&b);
	printf("ok frags\n");
}

static void pipe_(void)
{
	struct port m, s;
	CHECK(port_open(&m, "x{1", VO_PIPE_MASTER) == 0 && port_open(&s, "x}1", VO_PIPE_SLAVE) == 0,
	      "pipe", "open");
	for (uint32_t i = 0; i < 50; i++)
		CHECK(send_test(&m, 1, 2, i, 64 + i * 30), "pipe", "send m");
	struct tally t = {0};
	recv_frames(&s, 1000, 50, count_frame, &t);
	CHECK(t.from[1] == 50 && t.bad == 0, "pipe", "slave got %u of 50", t.from[1]);
	for (uint32_t i = 0; i < 50; i++)
		CHECK(send_test(&s, 2, 1, i, 4000), "pipe", "send s");
	memset(&t, 0, sizeof(t));
	recv_frames(&m, 1000, 50, count_frame, &t);
	CHECK(t.from[2] == 50 && t.bad == 0, "pipe", "master got %u of 50", t.from[2]);
	port_close(&m);
	port_close(&s);
	printf("ok pipe\n");
}

static void persistent(void)
{
	CHECK(vale_create_persistent(NULL, g_sw, "pp", NULL) == 0, "persistent", "create");
	struct port p, a;
	CHECK(port_open(&p, "pp", VO_NO_CREATE) == 0 && port_open(&a, "pa", 0) == 0, "persistent",
	      "open");
	CHECK(send_test(&p, 4, ~0u, 0, 64), "persistent", "announce");
	drain(&a);
	for (uint32_t i = 0; i < 20; i++)
		CHECK(send_test(&a, 1, 4, i + 1, 100), "persistent", "send");
	struct tally t = {0};
	recv_frames(&p, 1000, 20, count_frame, &t);
	CHECK(t.from[1] == 20, "persistent", "got %u of 20", t.from[1]);
	port_close(&p);
	vale_reap(NULL, g_sw);
	char json[65536];
	CHECK(vale_switch_json(NULL, g_sw, json, sizeof(json)) > 0 && strstr(json, "\"pp\""),
	      "persistent", "gone after close");
	CHECK(vale_remove_port(NULL, g_sw, "pp") == 0, "persistent", "remove");
	CHECK(vale_switch_json(NULL, g_sw, json, sizeof(json)) > 0 && !strstr(json, "\"pp\""),
	      "persistent", "still listed after remove");
	port_close(&a);
	printf("ok persistent\n");
}

static void reopen(void)
{
	struct port a, d;
	CHECK(port_open(&a, "ra", 0) == 0, "reopen", "open a");
	for (uint32_t round = 0; round < 20; round++) {
		CHECK(port_open(&d, "rd", 0) == 0, "reopen", "open d #%u", round);
		CHECK(send_test(&d, 4, ~0u, round, 64), "reopen", "announce");
		drain(&a);
		for (uint32_t i = 0; i < 10; i++)
			CHECK(send_test(&a, 1, 4, i, 200 + round), "reopen", "send");
		struct tally t = {0};
		recv_frames(&d, 1000, 10, count_frame, &t);
		CHECK(t.from[1] == 10, "reopen", "round %u: got %u of 10", round, t.from[1]);
		port_close(&d);
	}
	port_close(&a);
	printf("ok reopen\n");
}

static void sigkill(void)
{
	struct port a, b;
	CHECK(port_open(&a, "ka", 0) == 0 && port_open(&b, "kb", 0) == 0, "sigkill", "open");
	for (int round = 0; round < 5; round++) {
		fflush(stdout);
		/* exec, not just fork: a forked child would inherit this process's
		 * switch handle (and its cached pid, recorded in leases) */
		pid_t pid = fork();
		if (pid == 0) {
			execl("/proc/self/exe", "core_check", "--victim", g_sw, (char *)NULL);
			_exit(127);
		}
		CHECK(pid > 0, "sigkill", "fork");
		usleep(30000 + 20000 * (uint32_t)round);
		kill(pid, SIGKILL);
		int st;
		waitpid(pid, &st, 0);
		CHECK(WIFSIGNALED(st), "sigkill", "victim exited by itself (%d)", st);
		drain(&a);
		drain(&b);
		CHECK(send_test(&b, 2, ~0u, 0, 64), "sigkill", "announce");
		drain(&a);
		for (uint32_t i = 0; i < 20; i++)
			CHECK(send_test(&a, 1, 2, i + 1, 300), "sigkill", "send");
		struct tally t = {0};
		recv_frames(&b, 1000, 20, count_frame, &t);
		CHECK(t.from[1] == 20, "sigkill", "round %d: got %u of 20", round, t.from[1]);
	}
	vale_reap(NULL, g_sw);
	char json[65536];
	CHECK(vale_switch_json(NULL, g_sw, json, sizeof(json)) > 0 && !strstr(json, "\"victim\""),
	      "sigkill", "dead port not reaped");
	port_close(&a);
	port_close(&b);
	printf("ok sigkill\n");
}

static int victim(void)
{
	struct port v;
	if (port_open(&v, "victim", 0))
		return 3;
	for (uint32_t i = 0;; i++) { /* flood until killed */
		queue_frame(&v, (uint8_t[64]){0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2}, 64);
		vale_txsync(v.p, 0);
		if (i % 64 == 0)
			usleep(100);
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "--victim")) {
		g_sw = argv[2];
		return victim();
	}
	if (argc < 2) {
		fprintf(stderr, "usage: core_check SW\n");
		return 64;
	}
	g_sw = argv[1];
	alarm(60);
	learning();
	frags();
	pipe_();
	persistent();
	reopen();
	sigkill();
	int r = vale_remove_switch(NULL, g_sw); /* normally gone with its last port */
	if (!g_fail && r != 0 && r != -ENOENT) {
		printf("FAIL remove-switch: %s\n", vale_last_error());
		g_fail = 1;
	}
	return g_fail;
}
