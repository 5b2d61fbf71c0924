/*
 * fuzz_shm — fuzzes libvale's readers of shared-memory state.
 *
 *   fuzz_shm RUN_DIR SEED SECONDS [--keep-going]
 *   fuzz_shm RUN_DIR --one ITER_SEED        one iteration, in this process (gdb)
 *
 * A real switch (two ports that exchanged traffic, some of it still unread)
 * provides a valid ctl file and two valid region files. Each iteration, in
 * a forked child bounded by alarm(2), mutates copies of them — bit flips,
 * and boundary integers written into ctl header fields, port-table entries,
 * the active list, the MAC table, region header fields, kring fields and
 * ring/slot fields, and sometimes a wrong file size — writes them into a
 * fresh switch directory, holds the two ports' liveness locks as their owner
 * would, and makes the library use them: vale_switch_json, vale_open of a
 * new port and a broadcast + unicast txsync into the damaged regions, opening
 * a damaged port itself and syncing it, vale_reap, vale_remove_switch.
 *
 * Built with -fsanitize=address,undefined (tests/sanitize_test.ts) any
 * out-of-bounds access, misaligned or overflowing arithmetic is a report
 * (exit 99 via ASAN_OPTIONS); a signal death is a crash; SIGALRM is a hang.
 * The first failure stops the run (unless --keep-going) and prints the
 * iteration seed to reproduce it with --one. Children leave with _exit():
 * LeakSanitizer is not the point here.
 */
#include "common.h"
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char *g_run;

struct file {
	char name[64];
	uint8_t *data;
	size_t size;
};
static struct file g_tpl[3]; /* ctl, region of a, region of b */
static uint64_t g_ports_ofs, g_active_ofs, g_mac_ofs;
static uint32_t g_max_ports, g_macs;

/* ---- the template switch ---- */

static int die(const char *what)
{
	fprintf(stderr, "fuzz_shm: %s: %s (%s)\n", what, vale_last_error(), strerror(errno));
	exit(2);
}

static void read_file(const char *dir, const char *name, struct file *f)
{
	char p[1200];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *fp = fopen(p, "rb");
	if (!fp)
		die(p);
	fseek(fp, 0, SEEK_END);
	f->size = (size_t)ftell(fp);
	fseek(fp, 0, SEEK_SET);
	f->data = malloc(f->size);
	if (!f->data || fread(f->data, 1, f->size, fp) != f->size)
		die("read template");
	fclose(fp);
	snprintf(f->name, sizeof(f->name), "%s", name);
}

static void send_some(vale_port *p, uint32_t src, uint32_t dst, uint32_t n)
{
	struct vale_port_info i;
	vale_info(p, &i);
	struct vale_ring *t = (void *)(uintptr_t)(i.region_base + i.tx_ring_ofs[0]);
	uint8_t *bufs = (uint8_t *)(uintptr_t)(i.region_base + i.buf_ofs);
	for (uint32_t k = 0; k < n && t->head != t->tail; k++) {
		struct vale_slot *s = &t->slot[t->head];
		tf_build(bufs + (uint64_t)s->buf_idx * VALE_BUF_SIZE, 64 + k * 10, src, dst, k);
		s->len = (uint16_t)(64 + k * 10);
		s->flags = 0;
		t->head = t->cur = t->head + 1 == i.tx_slots ? 0 : t->head + 1;
	}
	vale_txsync(p, 0);
}

static void make_template(void)
{
	/* a small switch: the files are rewritten every iteration */
	setenv("VALE_MAX_PORTS", "16", 1);
	setenv("VALE_MAC_ENTRIES", "64", 1);
	struct vale_open_req req = {.ring_id = -1, .tx_slots = 64, .rx_slots = 64};
	vale_port *a, *b;
	if (vale_open(g_run, "tpl", "a", &req, &a) < 0 || vale_open(g_run, "tpl", "b", &req, &b) < 0)
		die("template ports");
	send_some(a, 1, ~0u, 1);
	send_some(b, 2, ~0u, 1);
	vale_rxsync(a, 0);
	send_some(a, 1, 2, 10); /* left unread in b's RX ring: non-trivial hwtail/leases */
	struct vale_port_info ia, ib;
	vale_info(a, &ia);
	vale_info(b, &ib);
	char dir[1100], n[64];
	snprintf(dir, sizeof(dir), "%s/tpl", g_run);
	read_file(dir, "ctl", &g_tpl[0]);
	/* the region files, by index.gen, as the library names them */
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d));) {
		unsigned idx, gen;
		char tail;
		if (sscanf(e->d_name, "p%u.%u%c", &idx, &gen, &tail) != 2)
			continue;
		if (idx == ia.port_idx || idx == ib.port_idx) {
			if (snprintf(n, sizeof(n), "%s", e->d_name) >= (int)sizeof(n))
				continue;
			read_file(dir, n, &g_tpl[idx == ia.port_idx ? 1 : 2]);
		}
	}
	if (d)
		closedir(d);
	if (!g_tpl[1].data || !g_tpl[2].data)
		die("template regions");
	const struct vale_ctl_hdr *h = (const void *)g_tpl[0].data;
	g_ports_ofs = h->ports_ofs;
	g_active_ofs = h->active_ofs;
	g_mac_ofs = h->mac_ofs;
	g_max_ports = h->max_ports;
	g_macs = h->mac_entries;
	vale_close(a);
	vale_close(b);
}

/* ---- mutations ---- */

struct field {
	uint32_t ofs, size;
};
#define F(type, member) {offsetof(type, member), sizeof(((type *)0)->member)}
static const struct field ctl_fields[] = {
    F(struct vale_ctl_hdr, magic),      F(struct vale_ctl_hdr, version),
    F(struct vale_ctl_hdr, size),       F(struct vale_ctl_hdr, max_ports),
    F(struct vale_ctl_hdr, mac_entries), F(struct vale_ctl_hdr, age_s),
    F(struct vale_ctl_hdr, dead),       {offsetof(struct vale_ctl_hdr, lock), 4},
    {offsetof(struct vale_ctl_hdr, lock) + 8, 4}, {offsetof(struct vale_ctl_hdr, lock) + 16, 4},
    F(struct vale_ctl_hdr, lookup_gen), F(struct vale_ctl_hdr, nactive),
    F(struct vale_ctl_hdr, active_seq), F(struct vale_ctl_hdr, ports_ofs),
    F(struct vale_ctl_hdr, active_ofs), F(struct vale_ctl_hdr, mac_ofs),
    F(struct vale_ctl_hdr, priv_ofs),
};
static const struct field port_fields[] = {
    F(struct vale_port_ent, state),      F(struct vale_port_ent, gen),
    F(struct vale_port_ent, flags),      F(struct vale_port_ent, owner_pid),
    F(struct vale_port_ent, fwd_pid),    F(struct vale_port_ent, nopen),
    F(struct vale_port_ent, ntx),        F(struct vale_port_ent, nrx),
    F(struct vale_port_ent, tx_slots),   F(struct vale_port_ent, rx_slots),
    F(struct vale_port_ent, nbufs),      F(struct vale_port_ent, region_idx),
    F(struct vale_port_ent, region_gen), F(struct vale_port_ent, end),
    F(struct vale_port_ent, pipe_peer),  F(struct vale_port_ent, region_size),
    F(struct vale_port_ent, last_probe_ns), F(struct vale_port_ent, vnet_hdr_len),
    F(struct vale_port_ent, mtu),
};
static const struct field region_fields[] = {
    F(struct vale_region_hdr, magic),    F(struct vale_region_hdr, version),
    F(struct vale_region_hdr, size),     F(struct vale_region_hdr, ntx),
    F(struct vale_region_hdr, nrx),      F(struct vale_region_hdr, tx_slots),
    F(struct vale_region_hdr, rx_slots), F(struct vale_region_hdr, nbufs),
    F(struct vale_region_hdr, buf_size), F(struct vale_region_hdr, nends),
    F(struct vale_region_hdr, kring_ofs), F(struct vale_region_hdr, buf_ofs),
    {offsetof(struct vale_region_hdr, ring_ofs), 8}, {offsetof(struct vale_region_hdr, ring_ofs) + 128, 8},
    {offsetof(struct vale_region_hdr, wake), 4}, {offsetof(struct vale_region_hdr, wake) + 4, 4},
};
static const struct field kring_fields[] = {
    {offsetof(struct vale_kring, lock), 4},      {offsetof(struct vale_kring, lock) + 8, 4},
    {offsetof(struct vale_kring, lock) + 16, 4}, F(struct vale_kring, hwlease),
    F(struct vale_kring, lease_first),           F(struct vale_kring, lease_next),
    F(struct vale_kring, lease_ops),             F(struct vale_kring, first_since),
    F(struct vale_kring, hwtail),                F(struct vale_kring, hwcur),
    F(struct vale_kring, rtail),                 {offsetof(struct vale_kring, leases), 4},
    {offsetof(struct vale_kring, leases) + 4, 4}, {offsetof(struct vale_kring, leases) + 8, 4},
    {offsetof(struct vale_kring, leases) + 12, 4},
};
static const struct field ring_fields[] = {
    F(struct vale_ring, head), F(struct vale_ring, cur), F(struct vale_ring, tail),
    F(struct vale_ring, num_slots), F(struct vale_ring, buf_ofs),
    {offsetof(struct vale_ring, slot), 4}, {offsetof(struct vale_ring, slot) + 4, 2},
    {offsetof(struct vale_ring, slot) + 6, 2},
};

static void poke(struct file *f, uint64_t ofs, uint32_t size, uint64_t *rs)
{
	if (ofs + size > f->size)
		return;
	uint64_t old = 0;
	memcpy(&old, f->data + ofs, size);
	uint64_t v = size == 8 ? rnd_edge64(rs, old) : rnd_edge32(rs, (uint32_t)old);
	memcpy(f->data + ofs, &v, size);
}

#define PICK(arr, rs) (&(arr)[rndn(rs, sizeof(arr) / sizeof((arr)[0]))])

static void mutate_one(struct file *fs, uint64_t *rs)
{
	uint32_t what = rndn(rs, 10);
	struct file *ctl = &fs[0], *reg = &fs[1 + rndn(rs, 2)];
	const struct vale_region_hdr *rh = (const void *)g_tpl[reg == &fs[1] ? 1 : 2].data;
	const struct field *fl;
	switch (what) {
	case 0: fl = PICK(ctl_fields, rs); poke(ctl, fl->ofs, fl->size, rs); break;
	case 1: case 2:
		fl = PICK(port_fields, rs);
		poke(ctl, g_ports_ofs + rndn(rs, 4) * sizeof(struct vale_port_ent) + fl->ofs, fl->size, rs);
		break;
	case 3: /* active list or MAC table */
		if (rndn(rs, 2))
			poke(ctl, g_active_ofs + 4 * rndn(rs, 4), 4, rs);
		else
			poke(ctl, g_mac_ofs + 16 * rndn(rs, g_macs) + 8 * rndn(rs, 2), rndn(rs, 2) ? 8 : 4, rs);
		break;
	case 4: fl = PICK(region_fields, rs); poke(reg, fl->ofs, fl->size, rs); break;
	case 5: case 6: { /* krings: 2 per region (TX 0, RX 0) */
		fl = PICK(kring_fields, rs);
		uint64_t k = rh->kring_ofs + rndn(rs, 2) * sizeof(struct vale_kring);
		uint64_t extra = fl->ofs >= offsetof(struct vale_kring, leases)
				     ? 16 * rndn(rs, VALE_NLEASES) : 0;
		poke(reg, k + fl->ofs + extra, fl->size, rs);
		break;
	}
	case 7: { /* ring views and slots */
		fl = PICK(ring_fields, rs);
		uint64_t r = rh->ring_ofs[rndn(rs, 2) ? 0 : VALE_MAX_RINGS];
		uint64_t extra = fl->ofs >= offsetof(struct vale_ring, slot)
				     ? sizeof(struct vale_slot) * rndn(rs, 64) : 0;
		poke(reg, r + fl->ofs + extra, fl->size, rs);
		break;
	}
	case 8: { /* bit flips: in the first pages (headers) mostly */
		struct file *f = &fs[rndn(rs, 3)];
		uint64_t lim = rndn(rs, 4) ? (f->size < 16384 ? f->size : 16384) : f->size;
		f->data[rndn(rs, (uint32_t)lim)] ^= (uint8_t)(1u << rndn(rs, 8));
		break;
	}
	default: { /* the wrong size (the data beyond is zero or gone) */
		struct file *f = &fs[rndn(rs, 3)];
		static const uint32_t cut[] = {0, 4, 64, 4096, 8192};
		size_t ns = rndn(rs, 3) ? f->size - rndn(rs, f->size < 8192 ? (uint32_t)f->size : 8192)
					: rndn(rs, 2) ? cut[rndn(rs, 5)] : f->size + 4096;
		if (ns > f->size) {
			uint8_t *d = realloc(f->data, ns);
			if (d) {
				memset(d + f->size, 0, ns - f->size);
				f->data = d;
				f->size = ns;
			}
		} else {
			f->size = ns;
		}
	}
	}
}

/* ---- one iteration ---- */

static void write_file(const char *dir, const struct file *f)
{
	char p[1200];
	if (snprintf(p, sizeof(p), "%s/%s", dir, f->name) >= (int)sizeof(p))
		die("path too long");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0666);
	if (fd < 0 || (f->size && write(fd, f->data, f->size) != (ssize_t)f->size))
		die("write");
	close(fd);
}

static void use_port(vale_port *p)
{
	struct vale_port_info i;
	if (vale_info(p, &i) < 0)
		return;
	/* the application side is ours: only touch what the info says is ours */
	struct vale_ring *t = (void *)(uintptr_t)(i.region_base + i.tx_ring_ofs[0]);
	uint8_t *bufs = (uint8_t *)(uintptr_t)(i.region_base + i.buf_ofs);
	uint32_t n = i.tx_slots;
	for (uint32_t k = 0; k < 8 && t->head < n && t->tail < n && t->head != t->tail; k++) {
		struct vale_slot *s = &t->slot[t->head];
		if (s->buf_idx < 2 || s->buf_idx >= i.nbufs)
			break;
		tf_build(bufs + (uint64_t)s->buf_idx * VALE_BUF_SIZE, 64, 3,
			 k % 2 ? ~0u : 1 + k % 4 / 2, k);
		s->len = 64;
		s->flags = 0;
		t->head = t->cur = t->head + 1 == n ? 0 : t->head + 1;
	}
	vale_txsync(p, 0);
	vale_rxsync(p, 0);
	vale_wait(p, 0);
	vale_bell_arm(p);
	vale_bell_clear(p);
}

static void one_iteration(uint64_t seed, uint32_t iter)
{
	uint64_t rs = seed;
	struct file fs[3];
	for (int i = 0; i < 3; i++) {
		fs[i] = g_tpl[i];
		fs[i].data = malloc(g_tpl[i].size);
		memcpy(fs[i].data, g_tpl[i].data, g_tpl[i].size);
	}
	uint32_t nmut = 1 + rndn(&rs, 8);
	for (uint32_t m = 0; m < nmut; m++)
		mutate_one(fs, &rs);
	char sw[32], dir[1100];
	snprintf(sw, sizeof(sw), "f%u", iter);
	snprintf(dir, sizeof(dir), "%s/%s", g_run, sw);
	mkdir(dir, 0777);
	for (int i = 0; i < 3; i++)
		write_file(dir, &fs[i]);
	/* hold the ports' liveness locks as their owning process would */
	int lk[2];
	for (int i = 0; i < 2; i++) {
		char p[1200];
		snprintf(p, sizeof(p), "%s/%s", dir, fs[1 + i].name);
		lk[i] = open(p, O_RDWR);
		struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
		if (lk[i] >= 0)
			fcntl(lk[i], F_OFD_SETLK, &fl);
	}
	static char json[1 << 20];
	vale_switch_json(g_run, sw, json, sizeof(json));
	struct vale_open_req req = {.ring_id = -1, .tx_slots = 64, .rx_slots = 64};
	vale_port *c = NULL, *a = NULL;
	if (vale_open(g_run, sw, "c", &req, &c) == 0)
		use_port(c);
	struct vale_open_req ex = {.ring_id = -1, .flags = VO_NO_CREATE};
	if (vale_open(g_run, sw, "a", &ex, &a) == 0) /* a damaged region as one's own port */
		use_port(a);
	if (c)
		use_port(c); /* again: now into a's region mapped both ways */
	vale_switch_json(g_run, sw, json, sizeof(json));
	vale_reap(g_run, sw);
	vale_close(a);
	vale_close(c);
	for (int i = 0; i < 2; i++)
		if (lk[i] >= 0)
			close(lk[i]);
	vale_reap(g_run, sw);
	vale_remove_switch(g_run, sw);
	for (int i = 0; i < 3; i++)
		free(fs[i].data);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(p);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 4) {
		fprintf(stderr, "usage: fuzz_shm RUN_DIR SEED SECONDS [--keep-going] | RUN_DIR --one SEED\n");
		return 64;
	}
	g_run = argv[1];
	make_template();
	if (!strcmp(argv[2], "--one")) {
		alarm(10);
		one_iteration(strtoull(argv[3], NULL, 0), 0);
		printf("ok\n");
		return 0;
	}
	uint64_t seed = strtoull(argv[2], NULL, 0), secs = strtoull(argv[3], NULL, 0);
	bool keep = argc > 4 && !strcmp(argv[4], "--keep-going");
	printf("fuzz_shm: seed=%llu seconds=%llu\n", (unsigned long long)seed, (unsigned long long)secs);
	uint64_t t0 = now_ms();
	uint32_t iters = 0, ok = 0, crash = 0, hang = 0, san = 0;
	while (now_ms() - t0 < secs * 1000) {
		uint64_t is = seed * 1000003ull + iters;
		fflush(stdout);
		fflush(stderr);
		pid_t pid = fork();
		if (pid == 0) {
			alarm(2);
			one_iteration(is, iters);
			_exit(0);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		char dir[1100];
		snprintf(dir, sizeof(dir), "%s/f%u", g_run, iters);
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		iters++;
		const char *kind = NULL;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
		else if (WIFEXITED(st) && WEXITSTATUS(st) == 99)
			kind = "sanitizer", san++;
		else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
			kind = "hang", hang++;
		else
			kind = "crash", crash++;
		if (kind) {
			printf("FAIL iter=%u kind=%s status=%s%d reproduce: fuzz_shm DIR --one %llu\n",
			       iters - 1, kind, WIFSIGNALED(st) ? "signal " : "exit ",
			       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), (unsigned long long)is);
			if (!keep)
				break;
		}
	}
	printf("{\"iters\":%u,\"ok\":%u,\"crash\":%u,\"hang\":%u,\"sanitizer\":%u,\"secs\":%.1f}\n", iters,
	       ok, crash, hang, san, (double)(now_ms() - t0) / 1000.0);
	return ok == iters ? 0 : 1;
}
