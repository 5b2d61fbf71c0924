/*
 * honest — a well-behaved client for the hostile tests (tests/hostile_test.ts,
 * tests/sanitize_test.ts), linked against libvale.
 *
 *   honest run SW:PORT ID PEER_ID [MAX_MS]
 *       opens the port, prints "ready", then until SIGINT/SIGTERM (or MAX_MS,
 *       default 30000) sends bursts of checksummed frames — unicast to PEER_ID's
 *       MAC and every 4th one broadcast, so they also flood into every other
 *       port's RX ring, hostile ones included — and receives and verifies what
 *       arrives. On the signal it closes the port, prints one JSON line
 *       {sent, received, bad, ...} and exits 0: anything else (a signal death,
 *       an abort, a hang) is the switch's fault.
 *   honest probe SW
 *       does the switch still work? Opens two fresh ports, sends 20 unicast
 *       frames from one to the other; exit 0 if all arrive intact within 1 s,
 *       2 if not, 3 if a port cannot be opened (message on stderr). alarm(4)
 *       bounds it: a hang ends in SIGALRM.
 *
 * Every slot is checked before its buffer is touched: another process may
 * have scribbled on our rings, and that must not crash *this* program either.
 */
#include "common.h"

static volatile sig_atomic_t stop;
static void on_stop(int s)
{
	(void)s;
	stop = 1;
}

struct stats {
	uint64_t sent, received, bad, foreign, empty, bad_slots, tx_err, rx_err, from_peer;
};

/* Put up to `want` frames into TX ring 0; returns how many. */
static uint32_t send_burst(const struct vale_port_info *pi, struct vale_ring *tx,
			   uint32_t id, uint32_t peer, uint32_t *seq, uint32_t want, bool bcast_some)
{
	uint8_t *base = (uint8_t *)(uintptr_t)pi->region_base;
	uint32_t n = pi->tx_slots, head = tx->head, tail = tx->tail, k = 0;
	if (head >= n || tail >= n)
		return 0; /* ring view damaged: the next txsync resets it */
	while (head != tail && k < want) {
		struct vale_slot *s = &tx->slot[head];
		if (s->buf_idx < 2 || s->buf_idx >= pi->nbufs)
			break;
		uint8_t *b = base + pi->buf_ofs + (uint64_t)s->buf_idx * VALE_BUF_SIZE;
		uint32_t len = TF_MIN + (*seq * 37u) % (1514 - TF_MIN);
		bool bc = bcast_some && (*seq % 4 == 0);
		tf_build(b, len, id, bc ? ~0u : peer, *seq);
		s->len = (uint16_t)len;
		s->flags = 0;
		(*seq)++;
		head = head + 1 == n ? 0 : head + 1;
		k++;
	}
	tx->head = tx->cur = head;
	return k;
}

static void recv_all(const struct vale_port_info *pi, struct vale_ring *rx,
		     uint32_t peer, struct stats *st)
{
	uint8_t *base = (uint8_t *)(uintptr_t)pi->region_base;
	uint32_t n = pi->rx_slots, head = rx->head, tail = rx->tail;
	if (head >= n || tail >= n)
		return;
	for (uint32_t guard = 0; head != tail && guard < n; guard++) {
		struct vale_slot *s = &rx->slot[head];
		uint32_t bi = s->buf_idx, len = s->len;
		if (bi < 2 || bi >= pi->nbufs || len > VALE_BUF_SIZE) {
			st->bad_slots++;
		} else if (len == 0) {
			st->empty++; /* a reclaimed lease of a dead sender: published empty */
		} else {
			uint32_t src = 0, seq = 0;
			int r = tf_check(base + pi->buf_ofs + (uint64_t)bi * VALE_BUF_SIZE, len, &src,
					 &seq);
			if (r == TF_OK) {
				st->received++;
				if (src == peer)
					st->from_peer++;
			} else if (r == TF_BAD) {
				st->bad++;
			} else {
				st->foreign++;
			}
		}
		head = head + 1 == n ? 0 : head + 1;
	}
	rx->head = rx->cur = head;
}

static int do_run(int argc, char **argv)
{
	if (argc < 5)
		return 64;
	char sw[64], port[64];
	if (split_name(argv[2], sw, sizeof(sw), port, sizeof(port)))
		return 64;
	uint32_t id = (uint32_t)atoi(argv[3]), peer = (uint32_t)atoi(argv[4]);
	uint64_t max_ms = argc > 5 ? strtoull(argv[5], NULL, 0) : 30000;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	vale_port *p = NULL;
	int r = vale_open(NULL, sw, port, NULL, &p);
	if (r < 0) {
		fprintf(stderr, "honest: open %s: %s\n", argv[2], vale_last_error());
		return 3;
	}
	struct vale_port_info pi;
	vale_info(p, &pi);
	struct vale_ring *tx = (struct vale_ring *)(uintptr_t)(pi.region_base + pi.tx_ring_ofs[0]);
	struct vale_ring *rx = (struct vale_ring *)(uintptr_t)(pi.region_base + pi.rx_ring_ofs[0]);
	struct stats st = {0};
	uint32_t seq = 0;
	/* announce ourselves so the learning bridge knows our MAC */
	st.sent += send_burst(&pi, tx, id, ~0u, &seq, 1, false);
	if (vale_txsync(p, 0) < 0)
		st.tx_err++;
	printf("ready\n");
	fflush(stdout);
	uint64_t t0 = now_ms();
	while (!stop && now_ms() - t0 < max_ms) {
		st.sent += send_burst(&pi, tx, id, peer, &seq, 16, true);
		if (vale_txsync(p, 0) < 0)
			st.tx_err++;
		if (vale_rxsync(p, 0) < 0)
			st.rx_err++;
		recv_all(&pi, rx, peer, &st);
		vale_wait(p, 2); /* short: paces the sender, returns early when frames arrive */
	}
	vale_close(p);
	printf("{\"id\":%u,\"sent\":%llu,\"received\":%llu,\"from_peer\":%llu,\"bad\":%llu,"
	       "\"foreign\":%llu,\"empty\":%llu,\"bad_slots\":%llu,\"tx_err\":%llu,\"rx_err\":%llu,"
	       "\"signalled\":%s}\n",
	       id, (unsigned long long)st.sent, (unsigned long long)st.received,
	       (unsigned long long)st.from_peer, (unsigned long long)st.bad,
	       (unsigned long long)st.foreign, (unsigned long long)st.empty,
	       (unsigned long long)st.bad_slots, (unsigned long long)st.tx_err,
	       (unsigned long long)st.rx_err, stop ? "true" : "false");
	fflush(stdout);
	return 0;
}

static int do_probe(int argc, char **argv)
{
	if (argc < 3)
		return 64;
	alarm(4);
	vale_port *a = NULL, *b = NULL;
	if (vale_open(NULL, argv[2], "probe_a", NULL, &a) < 0 ||
	    vale_open(NULL, argv[2], "probe_b", NULL, &b) < 0) {
		fprintf(stderr, "probe: open on %s: %s\n", argv[2], vale_last_error());
		return 3;
	}
	struct vale_port_info ia, ib;
	vale_info(a, &ia);
	vale_info(b, &ib);
	struct vale_ring *atx = (struct vale_ring *)(uintptr_t)(ia.region_base + ia.tx_ring_ofs[0]);
	struct vale_ring *btx = (struct vale_ring *)(uintptr_t)(ib.region_base + ib.tx_ring_ofs[0]);
	struct vale_ring *brx = (struct vale_ring *)(uintptr_t)(ib.region_base + ib.rx_ring_ofs[0]);
	struct vale_ring *arx = (struct vale_ring *)(uintptr_t)(ia.region_base + ia.rx_ring_ofs[0]);
	uint32_t sa = 0, sb = 0;
	/* b announces itself, a sends 20 unicast to b */
	send_burst(&ib, btx, 902, ~0u, &sb, 1, false);
	vale_txsync(b, 0);
	vale_rxsync(a, 0);
	struct stats sta = {0}, stb = {0};
	recv_all(&ia, arx, 902, &sta);
	vale_rxsync(a, 0);
	send_burst(&ia, atx, 901, 902, &sa, 20, false);
	int tr = vale_txsync(a, 0);
	uint64_t t0 = now_ms();
	while (stb.from_peer < 20 && now_ms() - t0 < 1000) {
		vale_rxsync(b, 0);
		recv_all(&ib, brx, 901, &stb);
		vale_wait(b, 20);
	}
	vale_close(a);
	vale_close(b);
	if (stb.from_peer < 20 || stb.bad) {
		fprintf(stderr, "probe: got %llu/20 intact frames (bad %llu, txsync %d: %s)\n",
			(unsigned long long)stb.from_peer, (unsigned long long)stb.bad, tr,
			tr < 0 ? vale_last_error() : "ok");
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	install_crash_handler();
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return do_run(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "probe"))
		return do_probe(argc, argv);
	fprintf(stderr, "usage: honest run SW:PORT ID PEER_ID [MAX_MS] | honest probe SW\n");
	return 64;
}
