/*
 * A plain libpcap program for tests/pcap_interposer_test.ts, built against
 * the system's <pcap/pcap.h> and run with build/libvale-pcap.so preloaded:
 * it knows nothing about vale.
 *
 *   pcap_probe inject DEV N LEN     pcap_inject (even i) / pcap_sendpacket (odd i)
 *                                   N frames of LEN bytes: broadcast, byte k = (i + k) & 0xff
 *   pcap_probe select DEV N         non-blocking capture driven by select() on
 *                                   pcap_get_selectable_fd until N frames came;
 *                                   prints "ready" once activated, then one JSON line
 *   pcap_probe next DEV N           pcap_next_ex until N frames (blocking, 5 s timeout)
 */
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

static int count_cb_n;
static unsigned long sum;

static void cb(u_char *u, const struct pcap_pkthdr *h, const u_char *d)
{
	count_cb_n++;
	for (unsigned k = 0; k < h->caplen; k++)
		sum += d[k];
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	char eb[PCAP_ERRBUF_SIZE];
	if (argc < 4)
		return 2;
	const char *mode = argv[1], *dev = argv[2];
	int n = atoi(argv[3]);
	if (strcmp(mode, "inject") == 0) {
		int len = argc > 4 ? atoi(argv[4]) : 60;
		pcap_t *p = pcap_open_live(dev, 65535, 0, 100, eb);
		if (!p) {
			fprintf(stderr, "pcap_open_live: %s\n", eb);
			return 1;
		}
		u_char *f = malloc((size_t)len);
		for (int i = 0; i < n; i++) {
			for (int k = 0; k < len; k++)
				f[k] = (u_char)(i + k);
			memset(f, 0xff, 6);
			int r = i % 2 ? pcap_sendpacket(p, f, len) : pcap_inject(p, f, (size_t)len);
			if (r != (i % 2 ? 0 : len)) {
				fprintf(stderr, "send %d: %s\n", i, pcap_geterr(p));
				return 1;
			}
		}
		printf("injected %d\n", n);
		pcap_close(p);
		return 0;
	}
	pcap_t *p = pcap_create(dev, eb);
	if (!p) {
		fprintf(stderr, "pcap_create: %s\n", eb);
		return 1;
	}
	pcap_set_timeout(p, 5000);
	if (pcap_activate(p) < 0) {
		fprintf(stderr, "pcap_activate: %s\n", pcap_geterr(p));
		return 1;
	}
	if (strcmp(mode, "select") == 0) {
		if (pcap_setnonblock(p, 1, eb) < 0 || pcap_getnonblock(p, eb) != 1) {
			fprintf(stderr, "setnonblock failed\n");
			return 1;
		}
		int fd = pcap_get_selectable_fd(p);
		/* nothing sent yet: not readable, and a non-blocking dispatch returns 0 at once */
		fd_set rs;
		FD_ZERO(&rs);
		FD_SET(fd, &rs);
		struct timeval tv = {0, 0};
		int idle_readable = select(fd + 1, &rs, NULL, NULL, &tv);
		double t0 = now();
		int idle_dispatch = pcap_dispatch(p, -1, cb, NULL);
		double idle_s = now() - t0;
		printf("ready\n");
		fflush(stdout);
		int selects = 0, empty = 0;
		t0 = now();
		while (count_cb_n < n && now() - t0 < 20) {
			FD_ZERO(&rs);
			FD_SET(fd, &rs);
			tv.tv_sec = 1;
			tv.tv_usec = 0;
			if (select(fd + 1, &rs, NULL, NULL, &tv) <= 0)
				continue;
			selects++;
			int r = pcap_dispatch(p, 7, cb, NULL); /* small batches: the fd must stay readable */
			if (r < 0) {
				fprintf(stderr, "dispatch: %s\n", pcap_geterr(p));
				return 1;
			}
			if (r == 0)
				empty++;
		}
		struct pcap_stat st;
		pcap_stats(p, &st);
		printf("{\"got\":%d,\"sum\":%lu,\"selects\":%d,\"empty\":%d,\"idle_readable\":%d,"
		       "\"idle_dispatch\":%d,\"idle_fast\":%s,\"recv\":%u,\"drop\":%u,\"ifdrop\":%u}\n",
		       count_cb_n, sum, selects, empty, idle_readable, idle_dispatch,
		       idle_s < 0.5 ? "true" : "false", st.ps_recv, st.ps_drop, st.ps_ifdrop);
	} else {
		printf("ready\n");
		fflush(stdout);
		int got = 0;
		struct pcap_pkthdr *h;
		const u_char *d;
		double t0 = now();
		while (got < n && now() - t0 < 20) {
			int r = pcap_next_ex(p, &h, &d);
			if (r < 0) {
				fprintf(stderr, "next_ex: %s\n", pcap_geterr(p));
				return 1;
			}
			if (r == 1) {
				got++;
				for (unsigned k = 0; k < h->caplen; k++)
					sum += d[k];
			}
		}
		printf("{\"got\":%d,\"sum\":%lu}\n", got, sum);
	}
	pcap_close(p);
	return 0;
}
