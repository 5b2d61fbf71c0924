/*
 * kfast_lure — a switch client that lies in its port entry, for
 * tests/kfast_test.ts: it claims to be a fast-path attachment (the kf_* fields
 * and VPF_FORWARDER in its own entry of the switch's shared port table) whose
 * interface is IFINDEX, a decoy interface vale never attached, and makes the
 * switch learn MAC on its port. The forwarders of real attachments must not
 * believe it (vale's program is not on IFINDEX): frames to MAC must reach this
 * port's RX ring through the switch, and none the decoy.
 *
 *   kfast_lure SW PORT IFINDEX MAC MAX_MS
 *
 * Prints "ready" once the switch learned MAC, then counts the frames its RX
 * ring receives until stdin closes or MAX_MS pass, re-writing the lie every
 * 10 ms, and prints "rx N" (N: frames to MAC).
 */
#include "common.h"
#include "vale_app.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>

static int parse_mac(const char *s, uint8_t m[6])
{
	unsigned v[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		m[i] = (uint8_t)v[i];
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: kfast_lure SW PORT IFINDEX MAC MAX_MS\n");
		return 2;
	}
	uint8_t mac[6];
	if (parse_mac(argv[4], mac) < 0)
		return 2;
	uint32_t ifindex = (uint32_t)atoi(argv[3]);
	uint64_t deadline = vale_mono_ns() + (uint64_t)atoll(argv[5]) * 1000000ull;
	const char *run = getenv("VALE_RUN_DIR");
	struct vale_open_req req = {.flags = VO_VNET_HDR, .vnet_hdr_len = 12};
	vale_port *p;
	if (vale_open(NULL, argv[1], argv[2], &req, &p) < 0) {
		fprintf(stderr, "kfast_lure: open: %s\n", vale_last_error());
		return 3;
	}
	struct vale_port_info pi;
	vale_info(p, &pi);
	/* the lie, in our own entry of the shared port table */
	char path[1200];
	snprintf(path, sizeof path, "%s/%s/ctl", run ? run : "/dev/shm/vale", argv[1]);
	int fd = open(path, O_RDWR);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "kfast_lure: %s: %s\n", path, strerror(errno));
		return 3;
	}
	uint8_t *ctl = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	const struct vale_ctl_hdr *h = (const void *)ctl;
	if (ctl == MAP_FAILED || pi.port_idx >= h->max_ports ||
	    h->ports_ofs + (uint64_t)h->max_ports * sizeof(struct vale_port_ent) > (uint64_t)st.st_size) {
		fprintf(stderr, "kfast_lure: the port table is out of reach\n");
		return 3;
	}
	struct vale_port_ent *e = (void *)(ctl + h->ports_ofs);
	e += pi.port_idx;
	struct stat ns;
	stat("/proc/self/ns/net", &ns);
	/* one frame from MAC (broadcast, ethertype 0x88b5): the switch learns MAC here */
	struct vale_ring *tx = vale_tx_ring(&pi, 0);
	struct vale_slot *sl = &tx->slot[tx->head];
	uint8_t *b = vale_slot_buf(&pi, sl->buf_idx);
	if (!b)
		return 3;
	memset(b, 0, 12 + 60);
	memset(b + 12, 0xff, 6);
	memcpy(b + 12 + 6, mac, 6);
	b[12 + 12] = 0x88;
	b[12 + 13] = 0xb5;
	sl->len = 12 + 60;
	tx->head = tx->cur = (tx->head + 1) % pi.tx_slots;
	vale_txsync(p, 0);
	printf("ready\n");
	fflush(stdout);
	uint64_t got = 0;
	struct vale_ring *rx = vale_rx_ring(&pi, 0);
	while (vale_mono_ns() < deadline) {
		e->flags |= VPF_FORWARDER;
		e->kf_ifindex = ifindex;
		e->kf_netns = (uint32_t)ns.st_ino;
		e->kf_pid = getpid();
		e->kf_on = 3;
		vale_rxsync(p, 0);
		while (rx->head != LOAD_ACQ(&rx->tail)) {
			struct vale_slot *s = &rx->slot[rx->head];
			uint8_t *f = vale_slot_buf(&pi, s->buf_idx);
			if (f && s->len >= 12 + 14 && !memcmp(f + 12, mac, 6))
				got++;
			rx->head = rx->cur = (rx->head + 1) % pi.rx_slots;
		}
		struct pollfd pf = {.fd = 0, .events = POLLIN};
		if (poll(&pf, 1, 10) > 0)
			break; /* stdin closed (or written to): done */
	}
	printf("rx %llu\n", (unsigned long long)got);
	vale_close(p);
	return 0;
}
