// fsiso_peer — the other user's side of tests/isolation_test.ts, built by the
// test against build/libvale.so and run with setpriv as an unprivileged uid
// (root's Deno cache is not readable by other users). Prints one line:
// `ok ...` or `err ERRNO MESSAGE`; exit status 0 on ok, 1 on err.
//
//   open RUN SW PORT [GID]     open a port (VO_GROUP GID: share a new switch)
//   read PATH                  open a file for reading
//   setlookup RUN SW SO        create persistent port SW:u, set the lookup module
//   plant RUN SW SO            write SO as the module name into SW's control
//                              segment directly (a member bypassing libvale)
//   pingpong RUN SW PORT       open a port, send a broadcast frame every 20 ms
//                              until one arrives (5 s at most)
//   hold RUN SW PORT           open a port, print `ok ready`, sleep forever
#define _GNU_SOURCE
#include "../../c-src/include/vale.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail(int rc)
{
	printf("err %d %s\n", -rc, vale_last_error());
	return 1;
}

static int do_open(const char *run, const char *sw, const char *port, const char *gid,
		   vale_port **out)
{
	struct vale_open_req req = {.ring_id = -1};
	if (gid) {
		req.flags |= VO_GROUP;
		req.group = (uint32_t)strtoul(gid, NULL, 10);
	}
	return vale_open(run, sw, port, &req, out);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc < 3)
		return 2;
	const char *mode = argv[1];
	if (!strcmp(mode, "read")) {
		int fd = open(argv[2], O_RDONLY);
		if (fd < 0) {
			printf("err %d %s\n", errno, strerror(errno));
			return 1;
		}
		printf("ok read\n");
		return 0;
	}
	if (argc < 5)
		return 2;
	const char *run = argv[2], *sw = argv[3];
	if (!strcmp(mode, "open")) {
		vale_port *p;
		int r = do_open(run, sw, argv[4], argc > 5 ? argv[5] : NULL, &p);
		if (r < 0)
			return fail(r);
		printf("ok opened\n");
		vale_close(p);
		return 0;
	}
	if (!strcmp(mode, "setlookup")) {
		int r = vale_create_persistent(run, sw, "u", NULL);
		if (r < 0)
			return fail(r);
		r = vale_set_lookup(run, sw, argv[4]);
		if (r < 0)
			return fail(r);
		printf("ok lookup set\n");
		return 0;
	}
	if (!strcmp(mode, "plant")) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s/ctl", run, sw);
		int fd = open(path, O_RDWR);
		struct stat st;
		if (fd < 0 || fstat(fd, &st)) {
			printf("err %d %s: %s\n", errno, path, strerror(errno));
			return 1;
		}
		struct vale_ctl_hdr *h =
		    mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (h == MAP_FAILED) {
			printf("err %d mmap: %s\n", errno, strerror(errno));
			return 1;
		}
		snprintf(h->lookup, sizeof(h->lookup), "%s", argv[4]);
		__atomic_fetch_add(&h->lookup_gen, 1, __ATOMIC_RELEASE);
		printf("ok planted\n");
		return 0;
	}
	if (!strcmp(mode, "hold")) {
		vale_port *p;
		int r = do_open(run, sw, argv[4], NULL, &p);
		if (r < 0)
			return fail(r);
		printf("ok ready\n");
		for (;;)
			pause();
	}
	if (!strcmp(mode, "pingpong")) {
		vale_port *p;
		int r = do_open(run, sw, argv[4], NULL, &p);
		if (r < 0)
			return fail(r);
		struct vale_port_info in;
		vale_info(p, &in);
		uint8_t *base = (uint8_t *)(uintptr_t)in.region_base;
		struct vale_ring *tx = (struct vale_ring *)(base + in.tx_ring_ofs[0]);
		struct vale_ring *rx = (struct vale_ring *)(base + in.rx_ring_ofs[0]);
		uint8_t frame[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x42,
				     0x88, 0xb5};
		for (int i = 0; i < 250; i++) {
			uint32_t h = tx->head;
			memcpy(base + in.buf_ofs + (uint64_t)tx->slot[h].buf_idx * VALE_BUF_SIZE, frame,
			       sizeof(frame));
			tx->slot[h].len = sizeof(frame);
			h = h + 1 == tx->num_slots ? 0 : h + 1;
			tx->head = tx->cur = h;
			if ((r = vale_txsync(p, -1)) < 0)
				return fail(r);
			vale_rxsync(p, -1);
			if (rx->tail != rx->head) {
				printf("ok received\n");
				vale_close(p);
				return 0;
			}
			struct timespec ts = {0, 20000000};
			nanosleep(&ts, NULL);
		}
		printf("err 110 nothing received\n");
		return 1;
	}
	return 2;
}
