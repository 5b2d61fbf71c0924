/*
 * A misbehaving vhost-user front-end for tests/vhost_user_test.ts: speaks
 * the protocol to a vale vhost-user port, then breaks its rules. Written
 * from the vhost-user and virtio specifications; knows nothing of vale's
 * internals (it only talks to the socket).
 *
 *   vhost_evil SOCK desc     negotiate, then on the TX queue: a good frame,
 *                            six bad chains (outside memory, huge length, a
 *                            loop, head out of range, nested indirect, a
 *                            device-writable buffer), a good frame through an
 *                            indirect table; prints "tx used N" (7: the head
 *                            out of range names no chain to return). Then RX: a bad chain and a good one,
 *                            waits for one frame from the switch, prints
 *                            "rx len L". Then an avail index 1000 ahead:
 *                            prints "broken", waits for stdin to close.
 *   vhost_evil SOCK shrink   negotiate, send a good frame, then shrink the
 *                            memfd of the memory table below a buffer and
 *                            post that buffer: the back-end's read faults
 *                            (SIGBUS, caught) and it ends the connection;
 *                            prints "tx used 1", then "disconnected".
 *   vhost_evil SOCK rewrite  negotiate, then send 20000 good frames (60 bytes,
 *                            broadcast) while a second thread keeps rewriting
 *                            the TX descriptors (outside memory, a huge
 *                            length, crossing the end of memory, and back)
 *                            and the frames' bytes: the back-end must take
 *                            each chain as it was when it read it (once) and
 *                            never read outside our memory, however long the
 *                            switch reads the frame; prints "tx used 20000".
 *   vhost_evil SOCK garbage  a series of bad messages (each framing error
 *                            ends its connection; the others are refused
 *                            and the connection stays): prints one line per
 *                            step with what came back.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE (2u << 20)
#define GPA0 0x100000ull
#define QN 8

struct hdr {
	uint32_t req, flags, size;
};
struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

static const char *sock_path;
static int fd = -1;
static uint8_t *mem;
static int memfd;

static void die(const char *m)
{
	fprintf(stderr, "vhost_evil: %s: %s\n", m, strerror(errno));
	exit(2);
}

static int conn(void)
{
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s", sock_path);
	for (int i = 0; i < 100; i++) {
		if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
			struct timeval tv = {.tv_sec = 3};
			setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
			return s;
		}
		usleep(50000);
	}
	die("connect");
	return -1;
}

static void sendmsg_fds(uint32_t req, uint32_t flags, const void *p, uint32_t size, const int *fds,
			int nfds)
{
	uint8_t buf[512];
	struct hdr h = {req, flags, size};
	memcpy(buf, &h, sizeof h);
	memcpy(buf + sizeof h, p, size);
	struct iovec iov = {buf, sizeof h + size};
	union {
		char c[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr a;
	} cm;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds) {
		mh.msg_control = cm.c;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0) die("sendmsg");
}

/* Read a reply's u64 (or -1 when the connection ended / timed out). */
static int64_t reply_u64(void)
{
	uint8_t b[12 + 8];
	size_t got = 0;
	while (got < sizeof b) {
		ssize_t r = recv(fd, b + got, sizeof b - got, 0);
		if (r <= 0) return -1;
		got += (size_t)r;
	}
	uint64_t v;
	memcpy(&v, b + 12, 8);
	return (int64_t)v;
}

/* A request with REPLY_ACK: returns the ack (0 ok, else refused; -1 gone). */
static int64_t req_ack(uint32_t req, const void *p, uint32_t size, const int *fds, int nfds)
{
	sendmsg_fds(req, 1 | 8, p, size, fds, nfds);
	return reply_u64();
}

static uint64_t gpa(uint32_t off) { return GPA0 + off; }
static uint64_t uva(uint32_t off) { return (uint64_t)(uintptr_t)mem + off; }

/* queue q's rings: desc, avail, used at fixed offsets */
static uint32_t desc_off(int q) { return q ? 0x3000 : 0x0000; }
static uint32_t avail_off(int q) { return q ? 0x4000 : 0x1000; }
static uint32_t used_off(int q) { return q ? 0x5000 : 0x2000; }
static struct desc *D(int q) { return (struct desc *)(mem + desc_off(q)); }
static volatile uint16_t *avail(int q) { return (volatile uint16_t *)(mem + avail_off(q)); }
static volatile uint16_t *used(int q) { return (volatile uint16_t *)(mem + used_off(q)); }

static int kick[2], call[2];

static void negotiate(void)
{
	sendmsg_fds(1, 1, NULL, 0, NULL, 0); /* GET_FEATURES */
	int64_t f = reply_u64();
	if (f < 0) die("GET_FEATURES");
	/* VERSION_1 | MRG_RXBUF | INDIRECT | PROTOCOL_FEATURES; no event idx */
	uint64_t want = (1ull << 32) | (1ull << 15) | (1ull << 28) | (1ull << 30);
	sendmsg_fds(3, 1, NULL, 0, NULL, 0); /* SET_OWNER */
	sendmsg_fds(15, 1, NULL, 0, NULL, 0);
	int64_t pf = reply_u64();
	uint64_t ack = 1ull << 3;
	if (pf < 0 || !(pf & (int64_t)ack)) die("no REPLY_ACK");
	sendmsg_fds(16, 1, &ack, 8, NULL, 0);
	if (req_ack(2, &want, 8, NULL, 0) != 0) die("SET_FEATURES");
	memfd = memfd_create("evil", 0);
	if (ftruncate(memfd, MEM_SIZE) < 0) die("ftruncate");
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (mem == MAP_FAILED) die("mmap");
	uint8_t mt[8 + 32] = {0};
	uint32_t one = 1;
	memcpy(mt, &one, 4);
	uint64_t r[4] = {GPA0, MEM_SIZE, uva(0), 0};
	memcpy(mt + 8, r, 32);
	if (req_ack(5, mt, sizeof mt, &memfd, 1) != 0) die("SET_MEM_TABLE");
	for (int q = 0; q < 2; q++) {
		uint32_t st[2] = {(uint32_t)q, QN};
		if (req_ack(8, st, 8, NULL, 0) != 0) die("SET_VRING_NUM");
		uint64_t a[5];
		uint32_t ai[2] = {(uint32_t)q, 0};
		memcpy(a, ai, 8);
		a[1] = uva(desc_off(q));
		a[2] = uva(used_off(q));
		a[3] = uva(avail_off(q));
		a[4] = 0;
		if (req_ack(9, a, 40, NULL, 0) != 0) die("SET_VRING_ADDR");
		uint32_t base[2] = {(uint32_t)q, 0};
		if (req_ack(10, base, 8, NULL, 0) != 0) die("SET_VRING_BASE");
		kick[q] = eventfd(0, 0);
		call[q] = eventfd(0, EFD_NONBLOCK);
		uint64_t idx = (uint64_t)q;
		if (req_ack(13, &idx, 8, &call[q], 1) != 0) die("SET_VRING_CALL");
		if (req_ack(12, &idx, 8, &kick[q], 1) != 0) die("SET_VRING_KICK");
		uint32_t en[2] = {(uint32_t)q, 1};
		if (req_ack(18, en, 8, NULL, 0) != 0) die("SET_VRING_ENABLE");
	}
}

static uint16_t tx_avail;

/* Make head `head` available on queue q and kick. */
static void post(int q, uint16_t *idx, uint16_t head)
{
	avail(q)[2 + (*idx % QN)] = head;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	(*idx)++;
	avail(q)[1] = *idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint64_t one = 1;
	if (write(kick[q], &one, 8) < 0) die("kick");
}

static int wait_used(int q, uint16_t n, int ms)
{
	for (int i = 0; i < ms; i++) {
		if (__atomic_load_n(&used(q)[1], __ATOMIC_ACQUIRE) == n) return 0;
		usleep(1000);
	}
	return -1;
}

/* a 60-byte broadcast frame behind a 12-byte zero header at buffer offset off */
static void good_frame(uint32_t off)
{
	memset(mem + off, 0, 12 + 60);
	memset(mem + off + 12, 0xff, 6);
	uint8_t src[6] = {0x02, 0xee, 0, 0, 0, 1};
	memcpy(mem + off + 12 + 6, src, 6);
	mem[off + 12 + 12] = 0x88; /* a local experimental ethertype */
	mem[off + 12 + 13] = 0xb5;
}

static int do_desc(void)
{
	negotiate();
	struct desc *d = D(1);
	/* 0: good */
	good_frame(0x10000);
	d[0] = (struct desc){gpa(0x10000), 72, 0, 0};
	post(1, &tx_avail, 0);
	/* 1: outside memory */
	d[1] = (struct desc){GPA0 + MEM_SIZE + 4096, 72, 0, 0};
	post(1, &tx_avail, 1);
	/* 2: huge length */
	d[2] = (struct desc){gpa(0x10000), 0xfffffff0u, 0, 0};
	post(1, &tx_avail, 2);
	/* 3: a loop: 3 -> 4 -> 3 */
	d[3] = (struct desc){gpa(0x11000), 12, 1, 4};
	d[4] = (struct desc){gpa(0x12000), 60, 1, 3};
	post(1, &tx_avail, 3);
	/* head out of range */
	post(1, &tx_avail, 200);
	/* 5: nested indirect: a table whose entry is itself indirect */
	struct desc *ind = (struct desc *)(mem + 0x6000);
	ind[0] = (struct desc){gpa(0x6000), 16, 4, 0};
	d[5] = (struct desc){gpa(0x6000), 16, 4, 0};
	post(1, &tx_avail, 5);
	/* 6: a device-writable buffer on the TX queue */
	d[6] = (struct desc){gpa(0x10000), 72, 2, 0};
	post(1, &tx_avail, 6);
	/* the head out of range has no used entry (it names no chain): 6 */
	if (wait_used(1, 6, 3000) < 0) {
		printf("tx used %u (stuck)\n", used(1)[1]);
		return 1;
	}
	/* 7: good again, through an indirect table of two descriptors */
	good_frame(0x13000);
	struct desc *ind2 = (struct desc *)(mem + 0x7000);
	ind2[0] = (struct desc){gpa(0x13000), 12, 1, 1};
	ind2[1] = (struct desc){gpa(0x13000 + 12), 60, 0, 0};
	d[7] = (struct desc){gpa(0x7000), 32, 4, 0};
	post(1, &tx_avail, 7);
	if (wait_used(1, 7, 3000) < 0) {
		printf("tx used %u (stuck)\n", used(1)[1]);
		return 1;
	}
	printf("tx used %u\n", used(1)[1]);
	fflush(stdout);

	/* RX: one bad chain (outside memory), then a good 2 KiB buffer */
	struct desc *r = D(0);
	uint16_t rx_avail = 0;
	r[0] = (struct desc){GPA0 + MEM_SIZE - 8, 2048, 2, 0};
	post(0, &rx_avail, 0);
	r[1] = (struct desc){gpa(0x20000), 2048, 2, 0};
	post(0, &rx_avail, 1);
	printf("rx posted\n");
	fflush(stdout);
	if (wait_used(0, 2, 20000) < 0) {
		printf("rx used %u (nothing came)\n", used(0)[1]);
		return 1;
	}
	/* used ring: entry 0 the bad one (len 0), entry 1 the frame */
	uint32_t *ue = (uint32_t *)(mem + used_off(0) + 4);
	uint16_t nbuf;
	memcpy(&nbuf, mem + 0x20000 + 10, 2);
	printf("rx len %u id %u bad len %u num_buffers %u\n", ue[3], ue[2], ue[1], nbuf);
	fflush(stdout);

	/* a TX avail index 1000 ahead of the device's */
	tx_avail += 1000;
	avail(1)[1] = tx_avail;
	uint64_t one = 1;
	if (write(kick[1], &one, 8) < 0) die("kick");
	printf("broken\n");
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0) {
	}
	return 0;
}

static void step(const char *what, int64_t r)
{
	printf("%s %lld\n", what, (long long)r);
	fflush(stdout);
}

static int do_garbage(void)
{
	struct hdr h;
	/* a: bad version bits */
	fd = conn();
	h = (struct hdr){1, 0, 0};
	if (send(fd, &h, sizeof h, MSG_NOSIGNAL) < 0) die("send");
	step("badversion", reply_u64());
	close(fd);
	/* b: a payload larger than any message */
	fd = conn();
	h = (struct hdr){5, 1, 100000};
	if (send(fd, &h, sizeof h, MSG_NOSIGNAL) < 0) die("send");
	step("hugesize", reply_u64());
	close(fd);
	/* c: closing in the middle of a message */
	fd = conn();
	h = (struct hdr){2, 1, 8};
	if (send(fd, &h, sizeof h, MSG_NOSIGNAL) < 0) die("send");
	if (send(fd, "abc", 3, MSG_NOSIGNAL) < 0) die("send");
	close(fd);
	step("midmessage", 0);
	/* d: 4 KiB of noise */
	fd = conn();
	uint8_t noise[4096];
	uint64_t s = 42;
	for (size_t i = 0; i < sizeof noise; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		noise[i] = (uint8_t)(s >> 56);
	}
	if (send(fd, noise, sizeof noise, MSG_NOSIGNAL) < 0) die("send");
	step("noise", reply_u64());
	close(fd);
	/* e: refused values on a connection that stays */
	fd = conn();
	sendmsg_fds(15, 1, NULL, 0, NULL, 0);
	reply_u64();
	uint64_t ack = 1ull << 3;
	sendmsg_fds(16, 1, &ack, 8, NULL, 0);
	step("unknown", req_ack(99, NULL, 0, NULL, 0));
	uint64_t bad = 1ull << 63;
	step("badfeatures", req_ack(2, &bad, 8, NULL, 0));
	uint32_t st[2] = {0, 3};
	step("vringnum3", req_ack(8, st, 8, NULL, 0));
	uint32_t st2[2] = {7, 256};
	step("queue7", req_ack(8, st2, 8, NULL, 0));
	int mfd = memfd_create("evil", 0);
	if (ftruncate(mfd, 4096) < 0) die("ftruncate");
	uint8_t mt[8 + 64] = {0};
	uint32_t two = 2;
	memcpy(mt, &two, 4);
	uint64_t rg[4] = {0, 4096, 0x1000, 0};
	memcpy(mt + 8, rg, 32);
	memcpy(mt + 40, rg, 32);
	step("memtable2regions1fd", req_ack(5, mt, sizeof mt, &mfd, 1));
	uint32_t one = 1;
	memcpy(mt, &one, 4);
	uint64_t big[4] = {0, 1ull << 30, 0x1000, 0}; /* larger than the file */
	memcpy(mt + 8, big, 32);
	step("memtablepastfile", req_ack(5, mt, 40, &mfd, 1));
	uint32_t st3[2] = {0, 256};
	step("vringnum256", req_ack(8, st3, 8, NULL, 0));
	uint64_t a[5] = {0, 0xdead0000, 0xdead1000, 0xdead2000, 0};
	step("vringaddroutside", req_ack(9, a, 40, NULL, 0));
	sendmsg_fds(1, 1, NULL, 0, NULL, 0);
	step("stillserved", reply_u64() > 0 ? 1 : 0);
	close(fd);
	return 0;
}

static int do_shrink(void)
{
	negotiate();
	struct desc *d = D(1);
	good_frame(0x10000);
	d[0] = (struct desc){gpa(0x10000), 72, 0, 0};
	post(1, &tx_avail, 0);
	if (wait_used(1, 1, 3000) < 0) {
		printf("tx used %u (stuck)\n", used(1)[1]);
		return 1;
	}
	printf("tx used 1\n");
	/* the rings stay (below 0x8000), the buffer at 0x10000 is cut off */
	if (ftruncate(memfd, 0x8000) < 0) die("ftruncate");
	d[1] = (struct desc){gpa(0x10000), 72, 0, 0};
	post(1, &tx_avail, 1);
	char b;
	for (int i = 0; i < 100; i++) { /* the back-end closes the connection */
		ssize_t r = recv(fd, &b, 1, 0);
		if (r == 0) {
			printf("disconnected\n");
			return 0;
		}
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) break;
	}
	printf("still connected\n");
	return 1;
}

#define RW_FRAMES 20000
static volatile int rw_stop;

/* Rewrite TX descriptors and frame bytes while the back-end reads them. */
static void *rewriter(void *arg)
{
	(void)arg;
	volatile struct desc *d = D(1);
	uint32_t k = 0;
	while (!rw_stop) {
		for (uint32_t i = 0; i < QN; i++) {
			uint64_t good = gpa(0x10000 + i * 0x1000);
			d[i].addr = GPA0 + MEM_SIZE + 4096; /* outside */
			d[i].addr = good;
			d[i].len = 0xfffffff0u; /* huge */
			d[i].len = 72;
			d[i].addr = GPA0 + MEM_SIZE - 40; /* crossing the end */
			d[i].addr = good;
			mem[0x10000 + i * 0x1000 + 12 + 30] = (uint8_t)k++; /* the payload */
		}
	}
	return NULL;
}

static int do_rewrite(void)
{
	negotiate();
	struct desc *d = D(1);
	for (uint32_t i = 0; i < QN; i++) {
		good_frame(0x10000 + i * 0x1000);
		d[i] = (struct desc){gpa(0x10000 + i * 0x1000), 72, 0, 0};
	}
	pthread_t th;
	if (pthread_create(&th, NULL, rewriter, NULL)) die("pthread_create");
	uint16_t posted = 0;
	for (uint32_t n = 0; n < RW_FRAMES; n++) {
		/* at most QN - 1 chains outstanding: a head is reused once returned */
		for (int w = 0; (uint16_t)(posted - __atomic_load_n(&used(1)[1], __ATOMIC_ACQUIRE)) >=
				    QN - 1;
		     w++) {
			if (w > 200000) { /* 10 s */
				printf("tx used %u (stuck)\n", used(1)[1]);
				return 1;
			}
			usleep(50);
		}
		post(1, &tx_avail, (uint16_t)(posted % QN));
		posted++;
	}
	if (wait_used(1, posted, 10000) < 0) {
		printf("tx used %u (stuck)\n", used(1)[1]);
		return 1;
	}
	rw_stop = 1;
	pthread_join(th, NULL);
	printf("tx used %u\n", (unsigned)RW_FRAMES);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: vhost_evil SOCK desc|shrink|rewrite|garbage\n");
		return 2;
	}
	sock_path = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[2], "garbage")) return do_garbage();
	fd = conn();
	if (!strcmp(argv[2], "shrink")) return do_shrink();
	if (!strcmp(argv[2], "rewrite")) return do_rewrite();
	return do_desc();
}
