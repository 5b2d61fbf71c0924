/*
 * libvale-pcap.so: libpcap programs (tcpdump, tshark's dumpcap, tcpreplay)
 * on vale switch ports, unmodified, as netmap's pcap support made them run
 * on VALE ports:
 *
 *   LD_PRELOAD=build/libvale-pcap.so tcpdump -ni vale0:a      (or bin/vale-pcap tcpdump ...)
 *
 * A device named `vale...` (vname.h) is served here; every other name goes
 * to the system's libpcap unchanged. For a vale device the program gets a
 * real libpcap handle made by pcap_open_dead_with_tstamp_precision (link
 * type Ethernet), so every call not interposed here (pcap_datalink,
 * pcap_compile, pcap_dump_open, pcap_geterr, ...) works on it as on any
 * handle; a table maps that handle to the port. Interposed: the life cycle
 * (pcap_create, the setters, pcap_activate, pcap_open_live, pcap_close),
 * reading (pcap_loop, pcap_dispatch, pcap_next, pcap_next_ex,
 * pcap_breakloop), pcap_setfilter (BPF run here, on the whole frame),
 * pcap_get_selectable_fd / pcap_fileno (the port's doorbell FIFO: readable
 * while frames wait), pcap_setnonblock / pcap_getnonblock, pcap_stats,
 * pcap_inject / pcap_sendpacket, pcap_setdirection, pcap_findalldevs (the
 * switches' ports are added) and pcap_lookupnet. Timestamps are the time
 * the frames were taken from the ring (one per batch), in the handle's
 * precision. Limits: docs/pcap.md.
 */
#include "pcap_abi.h"
#include "real.h"
#include "vport.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXPORT __attribute__((visibility("default")))

/* ---------------- the real libpcap ---------------- */

void *vale_real_sym(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);
	if (f)
		return f;
	/* a program that does not link libpcap itself (it may dlopen it later) */
	static void *lib;
	static const char *const sonames[] = {"libpcap.so.0.8", "libpcap.so.1", "libpcap.so"};
	for (size_t i = 0; !__atomic_load_n(&lib, __ATOMIC_ACQUIRE) && i < 3; i++)
		__atomic_store_n(&lib, dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL), __ATOMIC_RELEASE);
	void *l = __atomic_load_n(&lib, __ATOMIC_ACQUIRE);
	return l ? dlsym(l, name) : NULL;
}

/* The prototypes of what we define (and reach with REAL). */
EXPORT pcap_t *pcap_create(const char *source, char *errbuf);
EXPORT int pcap_activate(pcap_t *p);
EXPORT pcap_t *pcap_open_live(const char *device, int snaplen, int promisc, int to_ms,
			      char *errbuf);
EXPORT void pcap_close(pcap_t *p);
EXPORT int pcap_set_snaplen(pcap_t *p, int snaplen);
EXPORT int pcap_set_promisc(pcap_t *p, int promisc);
EXPORT int pcap_set_timeout(pcap_t *p, int to_ms);
EXPORT int pcap_set_buffer_size(pcap_t *p, int size);
EXPORT int pcap_set_immediate_mode(pcap_t *p, int on);
EXPORT int pcap_set_rfmon(pcap_t *p, int rfmon);
EXPORT int pcap_can_set_rfmon(pcap_t *p);
EXPORT int pcap_set_tstamp_type(pcap_t *p, int type);
EXPORT int pcap_set_tstamp_precision(pcap_t *p, int precision);
EXPORT int pcap_set_protocol_linux(pcap_t *p, int protocol);
EXPORT int pcap_loop(pcap_t *p, int cnt, pcap_handler cb, unsigned char *user);
EXPORT int pcap_dispatch(pcap_t *p, int cnt, pcap_handler cb, unsigned char *user);
EXPORT const unsigned char *pcap_next(pcap_t *p, struct pcap_pkthdr *h);
EXPORT int pcap_next_ex(pcap_t *p, struct pcap_pkthdr **h, const unsigned char **data);
EXPORT void pcap_breakloop(pcap_t *p);
EXPORT int pcap_setfilter(pcap_t *p, struct bpf_program *fp);
EXPORT int pcap_get_selectable_fd(pcap_t *p);
EXPORT int pcap_fileno(pcap_t *p);
EXPORT int pcap_setnonblock(pcap_t *p, int nonblock, char *errbuf);
EXPORT int pcap_getnonblock(pcap_t *p, char *errbuf);
EXPORT int pcap_stats(pcap_t *p, struct pcap_stat *ps);
EXPORT int pcap_inject(pcap_t *p, const void *buf, size_t size);
EXPORT int pcap_sendpacket(pcap_t *p, const unsigned char *buf, int size);
EXPORT int pcap_setdirection(pcap_t *p, pcap_direction_t d);
EXPORT int pcap_findalldevs(pcap_if_t **alldevsp, char *errbuf);
EXPORT int pcap_lookupnet(const char *device, bpf_u_int32 *netp, bpf_u_int32 *maskp,
			  char *errbuf);
/* called, not interposed */
pcap_t *pcap_open_dead_with_tstamp_precision(int linktype, int snaplen, unsigned int precision);
char *pcap_geterr(pcap_t *p);
int pcap_snapshot(pcap_t *p);
int pcap_get_tstamp_precision(pcap_t *p);
unsigned int bpf_filter(const struct bpf_insn *pc, const unsigned char *pkt, unsigned int wirelen,
			unsigned int buflen);
int bpf_validate(const struct bpf_insn *f, int len);

#define NO_LIBPCAP "libvale-pcap: the system's libpcap (libpcap.so.0.8) was not found"

/* ---------------- vale handles ---------------- */

struct vh {
	pcap_t *pc;         /* the dead handle the program holds */
	struct vname name;
	char dev[64];
	int active;
	int snaplen, timeout_ms, nonblock, precision, rfmon;
	pcap_direction_t dir;
	volatile int brk;   /* pcap_breakloop (may come from a signal handler) */
	struct vport vp;
	struct bpf_insn *filter;
	unsigned int nfilter;
	struct pcap_pkthdr hdr; /* pcap_next_ex's */
};

/* Handle -> state. Lookups are lock-free (pcap_breakloop runs in signal
 * handlers); changes take the mutex. */
#define MAX_HANDLES 256
static pcap_t *g_key[MAX_HANDLES];
static struct vh *g_val[MAX_HANDLES];
static unsigned g_count;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static struct vh *find(pcap_t *p)
{
	if (!p || !__atomic_load_n(&g_count, __ATOMIC_ACQUIRE))
		return NULL;
	for (unsigned i = 0; i < MAX_HANDLES; i++)
		if (__atomic_load_n(&g_key[i], __ATOMIC_ACQUIRE) == p)
			return __atomic_load_n(&g_val[i], __ATOMIC_ACQUIRE);
	return NULL;
}

static int add(struct vh *h)
{
	int ok = -1;
	pthread_mutex_lock(&g_lock);
	for (unsigned i = 0; i < MAX_HANDLES; i++)
		if (!g_key[i]) {
			__atomic_store_n(&g_val[i], h, __ATOMIC_RELEASE);
			__atomic_store_n(&g_key[i], h->pc, __ATOMIC_RELEASE);
			__atomic_add_fetch(&g_count, 1, __ATOMIC_RELEASE);
			ok = 0;
			break;
		}
	pthread_mutex_unlock(&g_lock);
	return ok;
}

static void del(struct vh *h)
{
	pthread_mutex_lock(&g_lock);
	for (unsigned i = 0; i < MAX_HANDLES; i++)
		if (g_key[i] == h->pc) {
			__atomic_store_n(&g_key[i], NULL, __ATOMIC_RELEASE);
			__atomic_store_n(&g_val[i], NULL, __ATOMIC_RELEASE);
			__atomic_sub_fetch(&g_count, 1, __ATOMIC_RELEASE);
		}
	pthread_mutex_unlock(&g_lock);
}

__attribute__((format(printf, 2, 3))) static void seterr(pcap_t *p, const char *fmt, ...)
{
	char *e = REAL(pcap_geterr) ? REAL(pcap_geterr)(p) : NULL;
	if (!e)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e, PCAP_ERRBUF_SIZE, fmt, ap);
	va_end(ap);
}

/* Is `dev` ours? A `vale...` name, unless it has no ':' and names a kernel
 * interface (an interface name never holds ':'). */
static int is_ours(const char *dev)
{
	if (!vname_is_vale(dev))
		return 0;
	if (!strchr(dev, ':') && if_nametoindex(dev) != 0)
		return 0;
	return 1;
}

/* ---------------- snapshot length and time stamp precision ----------------
 *
 * pcap_open_dead_with_tstamp_precision() fixes both when the handle is made,
 * but a program sets them (pcap_set_snaplen, pcap_set_tstamp_precision)
 * after pcap_create and before pcap_activate. libpcap itself reads them from
 * the handle (pcap_dump_open writes them into the file header), so they are
 * put into the handle at activation: their offsets are found once by
 * comparing two dead handles that differ in exactly these two fields, and
 * every write is checked through pcap_snapshot / pcap_get_tstamp_precision
 * (undone if either disagrees). If that fails, the handle keeps 262144 and
 * microseconds, which the captured data then follows (docs/pcap.md).
 */
static long g_off_snap = -1, g_off_prec = -1;
static pthread_once_t g_probe_once = PTHREAD_ONCE_INIT;

static void probe(void)
{
	pcap_t *a = REAL(pcap_open_dead_with_tstamp_precision)(DLT_EN10MB, 0x3a5c1,
							       PCAP_TSTAMP_PRECISION_MICRO);
	pcap_t *b = REAL(pcap_open_dead_with_tstamp_precision)(DLT_EN10MB, 0x2b7d3,
							       PCAP_TSTAMP_PRECISION_NANO);
	if (a && b) {
		size_t n = malloc_usable_size(a) < malloc_usable_size(b) ? malloc_usable_size(a)
									 : malloc_usable_size(b);
		long snap = -1, prec = -1;
		int other = 0;
		for (size_t o = 0; o + sizeof(int) <= n; o += sizeof(int)) {
			int x, y;
			memcpy(&x, (char *)a + o, sizeof(int));
			memcpy(&y, (char *)b + o, sizeof(int));
			if (x == y)
				continue;
			if (x == 0x3a5c1 && y == 0x2b7d3 && snap < 0)
				snap = (long)o;
			else if (x == PCAP_TSTAMP_PRECISION_MICRO && y == PCAP_TSTAMP_PRECISION_NANO &&
				 prec < 0)
				prec = (long)o;
			else
				other++;
		}
		if (!other && snap >= 0 && prec >= 0) {
			g_off_snap = snap;
			g_off_prec = prec;
		}
	}
	if (a)
		REAL(pcap_close)(a);
	if (b)
		REAL(pcap_close)(b);
}

/* Put snaplen and precision into the handle; 0 done, -1 left as it was. */
static int set_snap_prec(pcap_t *p, int snaplen, int prec)
{
	pthread_once(&g_probe_once, probe);
	if (g_off_snap < 0 || g_off_prec < 0)
		return -1;
	int old_s, old_p;
	memcpy(&old_s, (char *)p + g_off_snap, sizeof(int));
	memcpy(&old_p, (char *)p + g_off_prec, sizeof(int));
	memcpy((char *)p + g_off_snap, &snaplen, sizeof(int));
	memcpy((char *)p + g_off_prec, &prec, sizeof(int));
	if (REAL(pcap_snapshot)(p) == snaplen && REAL(pcap_get_tstamp_precision)(p) == prec)
		return 0;
	memcpy((char *)p + g_off_snap, &old_s, sizeof(int));
	memcpy((char *)p + g_off_prec, &old_p, sizeof(int));
	return -1;
}

/* ---------------- life cycle ---------------- */

EXPORT pcap_t *pcap_create(const char *source, char *errbuf)
{
	if (!is_ours(source)) {
		if (!REAL(pcap_create)) {
			snprintf(errbuf, PCAP_ERRBUF_SIZE, NO_LIBPCAP);
			return NULL;
		}
		return REAL(pcap_create)(source, errbuf);
	}
	if (!REAL(pcap_open_dead_with_tstamp_precision) || !REAL(pcap_close) ||
	    !REAL(pcap_geterr)) {
		snprintf(errbuf, PCAP_ERRBUF_SIZE, NO_LIBPCAP);
		return NULL;
	}
	struct vh *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(errbuf, PCAP_ERRBUF_SIZE, "out of memory");
		return NULL;
	}
	if (vname_parse(source, &h->name, errbuf, PCAP_ERRBUF_SIZE)) {
		free(h);
		return NULL;
	}
	snprintf(h->dev, sizeof(h->dev), "%s", source);
	h->snaplen = MAXIMUM_SNAPLEN;
	h->precision = PCAP_TSTAMP_PRECISION_MICRO;
	h->dir = PCAP_D_INOUT;
	h->pc = REAL(pcap_open_dead_with_tstamp_precision)(DLT_EN10MB, MAXIMUM_SNAPLEN,
							   PCAP_TSTAMP_PRECISION_MICRO);
	if (!h->pc || add(h)) {
		snprintf(errbuf, PCAP_ERRBUF_SIZE, h->pc ? "too many vale capture handles (%d)"
							 : "out of memory",
			 MAX_HANDLES);
		if (h->pc)
			REAL(pcap_close)(h->pc);
		free(h);
		return NULL;
	}
	return h->pc;
}

/* The setters: before activation they are recorded for pcap_activate. */
#define SETTER(fn, T, body)                                                                       \
	EXPORT int fn(pcap_t *p, T v)                                                             \
	{                                                                                         \
		struct vh *h = find(p);                                                           \
		if (!h)                                                                           \
			return REAL(fn) ? REAL(fn)(p, v) : PCAP_ERROR;                            \
		if (h->active)                                                                    \
			return PCAP_ERROR_ACTIVATED;                                              \
		body;                                                                             \
		return 0;                                                                         \
	}
SETTER(pcap_set_snaplen, int, h->snaplen = v <= 0 || v > MAXIMUM_SNAPLEN ? MAXIMUM_SNAPLEN : v)
SETTER(pcap_set_promisc, int, (void)v) /* a port gets what the switch sends it either way */
SETTER(pcap_set_timeout, int, h->timeout_ms = v < 0 ? 0 : v)
SETTER(pcap_set_buffer_size, int, (void)v) /* the port's rings are the buffer */
SETTER(pcap_set_immediate_mode, int, (void)v) /* frames are handed over as they arrive */
SETTER(pcap_set_rfmon, int, h->rfmon = v)
SETTER(pcap_set_protocol_linux, int, (void)v)
SETTER(pcap_set_tstamp_type, int,
       if (v != PCAP_TSTAMP_HOST) return PCAP_WARNING_TSTAMP_TYPE_NOTSUP)
SETTER(pcap_set_tstamp_precision, int,
       if (v != PCAP_TSTAMP_PRECISION_MICRO && v != PCAP_TSTAMP_PRECISION_NANO) return -12;
       h->precision = v) /* -12: PCAP_ERROR_TSTAMP_PRECISION_NOTSUP */

EXPORT int pcap_can_set_rfmon(pcap_t *p)
{
	if (!find(p))
		return REAL(pcap_can_set_rfmon) ? REAL(pcap_can_set_rfmon)(p) : PCAP_ERROR;
	return 0;
}

EXPORT int pcap_activate(pcap_t *p)
{
	struct vh *h = find(p);
	if (!h)
		return REAL(pcap_activate) ? REAL(pcap_activate)(p) : PCAP_ERROR;
	if (h->active)
		return PCAP_ERROR_ACTIVATED;
	if (h->rfmon) {
		seterr(p, "%s: a switch port has no monitor mode", h->dev);
		return PCAP_ERROR_RFMON_NOTSUP;
	}
	char err[PCAP_ERRBUF_SIZE];
	int r = vport_open(&h->vp, &h->name, err, sizeof(err));
	if (r < 0) {
		seterr(p, "%s", err);
		return r == -ENOENT ? PCAP_ERROR_NO_SUCH_DEVICE
		       : r == -EACCES || r == -EPERM ? PCAP_ERROR_PERM_DENIED
						     : PCAP_ERROR;
	}
	if (set_snap_prec(p, h->snaplen, h->precision)) {
		/* the handle keeps what it was made with; deliver what it says */
		h->snaplen = REAL(pcap_snapshot)(p);
		h->precision = REAL(pcap_get_tstamp_precision)(p);
	}
	h->active = 1;
	vport_arm(&h->vp);
	return 0;
}

EXPORT pcap_t *pcap_open_live(const char *device, int snaplen, int promisc, int to_ms,
			      char *errbuf)
{
	if (!is_ours(device)) {
		if (!REAL(pcap_open_live)) {
			snprintf(errbuf, PCAP_ERRBUF_SIZE, NO_LIBPCAP);
			return NULL;
		}
		return REAL(pcap_open_live)(device, snaplen, promisc, to_ms, errbuf);
	}
	pcap_t *p = pcap_create(device, errbuf);
	if (!p)
		return NULL;
	pcap_set_snaplen(p, snaplen);
	pcap_set_timeout(p, to_ms);
	if (pcap_activate(p) < 0) {
		snprintf(errbuf, PCAP_ERRBUF_SIZE, "%s: %s", device, REAL(pcap_geterr)(p));
		pcap_close(p);
		return NULL;
	}
	return p;
}

EXPORT void pcap_close(pcap_t *p)
{
	struct vh *h = find(p);
	if (!h) {
		if (REAL(pcap_close))
			REAL(pcap_close)(p);
		return;
	}
	del(h);
	if (h->active)
		vport_close(&h->vp);
	free(h->filter);
	free(h);
	REAL(pcap_close)(p);
}

/* ---------------- reading ---------------- */

static int not_active(struct vh *h)
{
	if (h->active)
		return 0;
	seterr(h->pc, "%s: not activated", h->dev);
	return 1;
}

/* The directions a monitor handle sees (monitor.c's rule: /t TX, /r RX,
 * /rt and /z alone both), 0 for a plain port. */
static uint32_t mon_dirs(const struct vh *h)
{
	uint32_t of = h->name.oflags;
	if (!(of & (VO_MONITOR_TX | VO_MONITOR_RX | VO_MONITOR_ZCOPY)))
		return 0;
	uint32_t d = of & (VO_MONITOR_TX | VO_MONITOR_RX);
	return d ? d : VO_MONITOR_TX | VO_MONITOR_RX;
}

/* Does the handle deliver the frames it reads? A plain port's frames are
 * all inbound (received by the capturing port); a /r monitor's are what
 * the port received (in), a /t monitor's what it sent (out). */
static int direction_ok(const struct vh *h)
{
	if (h->dir == PCAP_D_INOUT)
		return 1;
	return h->dir == (mon_dirs(h) == VO_MONITOR_TX ? PCAP_D_OUT : PCAP_D_IN);
}

/* Frames waiting now, up to cnt (<= 0: what the rings hold): the count
 * handed to cb, or PCAP_ERROR_BREAK. */
static int read_now(struct vh *h, int cnt, pcap_handler cb, unsigned char *user)
{
	if (h->brk) {
		h->brk = 0;
		return PCAP_ERROR_BREAK;
	}
	vport_sync(&h->vp);
	/* at most one ring's worth of frames looked at per call, so that a fast
	 * sender cannot keep us here; at most cnt of them handed over */
	const int room = (int)(h->vp.nrx * h->vp.info.rx_slots);
	const int max = cnt > 0 && cnt < room ? cnt : room;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct pcap_pkthdr hdr;
	hdr.ts.tv_sec = now.tv_sec;
	hdr.ts.tv_usec = h->precision == PCAP_TSTAMP_PRECISION_NANO ? now.tv_nsec : now.tv_nsec / 1000;
	int n = 0;
	const uint8_t *d;
	uint32_t len;
	const int deliver = direction_ok(h);
	for (int seen = 0; n < max && seen < room && vport_next(&h->vp, &d, &len); seen++) {
		if (!deliver)
			continue;
		if (h->filter && !REAL(bpf_filter)(h->filter, d, len, len))
			continue;
		hdr.len = len;
		hdr.caplen = len < (uint32_t)h->snaplen ? len : (uint32_t)h->snaplen;
		cb(user, &hdr, d);
		n++;
		if (h->brk) {
			h->brk = 0;
			n = PCAP_ERROR_BREAK;
			break;
		}
	}
	vport_sync(&h->vp); /* release what was read, at once: the ring is the buffer */
	return n;
}

/* Wait for frames: 1 maybe some, 0 timed out, PCAP_ERROR_BREAK. */
static int wait_frames(struct vh *h, int timeout_ms)
{
	vport_arm(&h->vp);
	if (h->brk) {
		h->brk = 0;
		return PCAP_ERROR_BREAK;
	}
	int fd = h->vp.info.bell_fd;
	if (fd < 0) /* no doorbell: sleep on the futex */
		return vale_wait(h->vp.p, timeout_ms);
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	int r = poll(&pfd, 1, timeout_ms);
	if (h->brk) {
		h->brk = 0;
		return PCAP_ERROR_BREAK;
	}
	return r > 0 || (r < 0 && errno == EINTR);
}

/* pcap_dispatch's contract: frames now; else, unless non-blocking, wait up
 * to the timeout (forever with none) and return what came, 0 if nothing. */
static int dispatch(struct vh *h, int cnt, pcap_handler cb, unsigned char *user)
{
	int n = read_now(h, cnt, cb, user);
	if (n != 0 || h->nonblock) {
		vport_arm(&h->vp);
		return n;
	}
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int left = -1;
		if (h->timeout_ms > 0) {
			struct timespec t;
			clock_gettime(CLOCK_MONOTONIC, &t);
			long el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
			if (el >= h->timeout_ms)
				break;
			left = h->timeout_ms - (int)el;
		}
		int w = wait_frames(h, left);
		if (w < 0)
			return w;
		n = read_now(h, cnt, cb, user);
		if (n != 0)
			break;
	}
	vport_arm(&h->vp);
	return n;
}

EXPORT int pcap_dispatch(pcap_t *p, int cnt, pcap_handler cb, unsigned char *user)
{
	struct vh *h = find(p);
	if (!h)
		return REAL(pcap_dispatch) ? REAL(pcap_dispatch)(p, cnt, cb, user) : PCAP_ERROR;
	if (not_active(h))
		return PCAP_ERROR_NOT_ACTIVATED;
	return dispatch(h, cnt, cb, user);
}

EXPORT int pcap_loop(pcap_t *p, int cnt, pcap_handler cb, unsigned char *user)
{
	struct vh *h = find(p);
	if (!h)
		return REAL(pcap_loop) ? REAL(pcap_loop)(p, cnt, cb, user) : PCAP_ERROR;
	if (not_active(h))
		return PCAP_ERROR_NOT_ACTIVATED;
	for (;;) {
		int n = dispatch(h, cnt, cb, user);
		if (n < 0)
			return n;
		if (n == 0 && h->nonblock) /* as libpcap: a non-blocking loop would spin */
			wait_frames(h, 100);
		if (cnt > 0 && (cnt -= n) <= 0)
			return 0;
	}
}

static void keep_one(unsigned char *user, const struct pcap_pkthdr *hdr, const unsigned char *d)
{
	struct vh *h = (struct vh *)user;
	h->hdr = *hdr;
	if (d != h->vp.frame) /* in the ring: released after this call, so keep a copy */
		memcpy(h->vp.frame, d, hdr->caplen);
}

EXPORT int pcap_next_ex(pcap_t *p, struct pcap_pkthdr **hdr, const unsigned char **data)
{
	struct vh *h = find(p);
	if (!h)
		return REAL(pcap_next_ex) ? REAL(pcap_next_ex)(p, hdr, data) : PCAP_ERROR;
	if (not_active(h))
		return PCAP_ERROR_NOT_ACTIVATED;
	int n = dispatch(h, 1, keep_one, (unsigned char *)h);
	if (n > 0) {
		*hdr = &h->hdr;
		*data = h->vp.frame;
		return 1;
	}
	return n;
}

EXPORT const unsigned char *pcap_next(pcap_t *p, struct pcap_pkthdr *hdr)
{
	struct vh *h = find(p);
	if (!h)
		return REAL(pcap_next) ? REAL(pcap_next)(p, hdr) : NULL;
	struct pcap_pkthdr *ph;
	const unsigned char *d;
	if (pcap_next_ex(p, &ph, &d) != 1)
		return NULL;
	*hdr = *ph;
	return d;
}

/* Async-signal-safe: a store and vale_wake (atomics, futex, write). */
EXPORT void pcap_breakloop(pcap_t *p)
{
	struct vh *h = find(p);
	if (!h) {
		if (REAL(pcap_breakloop))
			REAL(pcap_breakloop)(p);
		return;
	}
	h->brk = 1;
	if (h->active)
		vale_wake(h->vp.p);
}

EXPORT int pcap_setfilter(pcap_t *p, struct bpf_program *fp)
{
	struct vh *h = find(p);
	if (!h)
		return REAL(pcap_setfilter) ? REAL(pcap_setfilter)(p, fp) : PCAP_ERROR;
	if (!fp || !fp->bf_insns || fp->bf_len == 0 || fp->bf_len > 1000000 ||
	    (REAL(bpf_validate) && !REAL(bpf_validate)(fp->bf_insns, (int)fp->bf_len))) {
		seterr(p, "%s: the BPF program is not valid", h->dev);
		return PCAP_ERROR;
	}
	if (!REAL(bpf_filter)) {
		seterr(p, "%s: libpcap has no bpf_filter", h->dev);
		return PCAP_ERROR;
	}
	struct bpf_insn *copy = malloc(fp->bf_len * sizeof(*copy));
	if (!copy) {
		seterr(p, "out of memory");
		return PCAP_ERROR;
	}
	memcpy(copy, fp->bf_insns, fp->bf_len * sizeof(*copy));
	free(h->filter);
	h->filter = copy;
	h->nfilter = fp->bf_len;
	return 0;
}

EXPORT int pcap_get_selectable_fd(pcap_t *p)
{
	struct vh *h = find(p);
	if (!h)
		return REAL(pcap_get_selectable_fd) ? REAL(pcap_get_selectable_fd)(p) : -1;
	return h->active ? h->vp.info.bell_fd : -1;
}

EXPORT int pcap_fileno(pcap_t *p)
{
	struct vh *h = find(p);
	if (!h)
		return REAL(pcap_fileno) ? REAL(pcap_fileno)(p) : -1;
	return h->active ? h->vp.info.bell_fd : -1;
}

EXPORT int pcap_setnonblock(pcap_t *p, int nonblock, char *errbuf)
{
	struct vh *h = find(p);
	if (!h)
		return REAL(pcap_setnonblock) ? REAL(pcap_setnonblock)(p, nonblock, errbuf)
					      : PCAP_ERROR;
	h->nonblock = nonblock != 0;
	return 0;
}

EXPORT int pcap_getnonblock(pcap_t *p, char *errbuf)
{
	struct vh *h = find(p);
	if (!h)
		return REAL(pcap_getnonblock) ? REAL(pcap_getnonblock)(p, errbuf) : PCAP_ERROR;
	return h->nonblock;
}

/* As Linux counts: ps_recv every frame that reached the port (read, or lost
 * because the ring was full), ps_drop those lost, ps_ifdrop chains refused
 * as damaged. */
EXPORT int pcap_stats(pcap_t *p, struct pcap_stat *ps)
{
	struct vh *h = find(p);
	if (!h)
		return REAL(pcap_stats) ? REAL(pcap_stats)(p, ps) : PCAP_ERROR;
	if (not_active(h))
		return PCAP_ERROR_NOT_ACTIVATED;
	uint64_t drops = vport_drops(&h->vp);
	ps->ps_recv = (unsigned int)(h->vp.taken + drops);
	ps->ps_drop = (unsigned int)drops;
	ps->ps_ifdrop = (unsigned int)h->vp.bad;
	return 0;
}

EXPORT int pcap_inject(pcap_t *p, const void *buf, size_t size)
{
	struct vh *h = find(p);
	if (!h)
		return REAL(pcap_inject) ? REAL(pcap_inject)(p, buf, size) : PCAP_ERROR;
	if (not_active(h))
		return PCAP_ERROR_NOT_ACTIVATED;
	if (mon_dirs(h)) {
		seterr(p, "%s: a monitor port cannot send", h->dev);
		return PCAP_ERROR;
	}
	char err[PCAP_ERRBUF_SIZE];
	if (vport_send(&h->vp, buf, size, err, sizeof(err)) < 0) {
		seterr(p, "%s: send: %s", h->dev, err);
		return PCAP_ERROR;
	}
	return (int)size;
}

EXPORT int pcap_sendpacket(pcap_t *p, const unsigned char *buf, int size)
{
	if (!find(p))
		return REAL(pcap_sendpacket) ? REAL(pcap_sendpacket)(p, buf, size) : PCAP_ERROR;
	if (size <= 0) {
		seterr(p, "the packet size must be positive");
		return PCAP_ERROR;
	}
	return pcap_inject(p, buf, (size_t)size) == size ? 0 : PCAP_ERROR;
}

EXPORT int pcap_setdirection(pcap_t *p, pcap_direction_t d)
{
	struct vh *h = find(p);
	if (!h)
		return REAL(pcap_setdirection) ? REAL(pcap_setdirection)(p, d) : PCAP_ERROR;
	if (d != PCAP_D_INOUT && d != PCAP_D_IN && d != PCAP_D_OUT) {
		seterr(p, "invalid direction %d", (int)d);
		return PCAP_ERROR;
	}
	/* a monitor of both directions gets both in one ring, unmarked */
	if (d != PCAP_D_INOUT && mon_dirs(h) == (VO_MONITOR_TX | VO_MONITOR_RX)) {
		seterr(p,
		       "%s: a monitor of both directions cannot tell them apart; capture on "
		       "PORT/r (in) or PORT/t (out)",
		       h->dev);
		return PCAP_ERROR;
	}
	h->dir = d;
	return 0;
}


EXPORT int pcap_lookupnet(const char *device, bpf_u_int32 *netp, bpf_u_int32 *maskp,
			  char *errbuf)
{
	if (!is_ours(device))
		return REAL(pcap_lookupnet) ? REAL(pcap_lookupnet)(device, netp, maskp, errbuf)
					    : PCAP_ERROR;
	*netp = *maskp = 0; /* as libpcap answers for "any": no address of its own */
	return 0;
}

/* ---------------- device list ---------------- */

static int listed(pcap_if_t *l, const char *name)
{
	for (; l; l = l->next)
		if (l->name && strcmp(l->name, name) == 0)
			return 1;
	return 0;
}

static void append(pcap_if_t **head, const char *name, const char *desc)
{
	if (listed(*head, name))
		return;
	pcap_if_t *d = calloc(1, sizeof(*d));
	if (!d)
		return;
	d->name = strdup(name);
	d->description = strdup(desc);
	if (!d->name || !d->description) {
		free(d->name);
		free(d->description);
		free(d);
		return;
	}
	d->flags = PCAP_IF_UP | PCAP_IF_RUNNING | PCAP_IF_CONNECTION_STATUS_NOT_APPLICABLE;
	pcap_if_t **t = head;
	while (*t)
		t = &(*t)->next;
	*t = d; /* freed by pcap_freealldevs like libpcap's own entries */
}

/* A switch directory name as lib/switch/control.ts lists them (names.ts
 * isSwitchName): "vale" and at most 11 name characters. */
static int switch_dir(const char *s)
{
	if (strncmp(s, "vale", 4) != 0 || strlen(s) > 15)
		return 0;
	for (const char *c = s + 4; *c; c++)
		if (!vname_char(*c))
			return 0;
	return 1;
}

static void add_switch_ports(pcap_if_t **head)
{
	const char *run = getenv("VALE_RUN_DIR");
	if (!run || !*run)
		run = "/dev/shm/vale";
	DIR *d = opendir(run); /* names only: every switch is opened by the library's checks */
	if (!d)
		return;
	char (*sws)[VALE_SW_NAME_MAX] = NULL;
	size_t nsw = 0;
	struct dirent *e;
	while ((e = readdir(d)) && nsw < 4096) {
		if (!switch_dir(e->d_name))
			continue;
		void *m = realloc(sws, (nsw + 1) * sizeof(*sws));
		if (!m)
			break;
		sws = m;
		snprintf(sws[nsw++], VALE_SW_NAME_MAX, "%s", e->d_name);
	}
	closedir(d);
	if (nsw)
		qsort(sws, nsw, sizeof(*sws), (int (*)(const void *, const void *))strcmp);
	char *buf = NULL;
	for (size_t i = 0; i < nsw; i++) {
		int need = 4096;
		for (int tries = 0; tries < 4; tries++) {
			char *b = realloc(buf, (size_t)need);
			if (!b)
				break;
			buf = b;
			int n = vale_port_names(run, sws[i], buf, (uint32_t)need);
			if (n < 0 || n > 16 * 1024 * 1024)
				break;
			if (n > need) {
				need = n;
				continue;
			}
			for (int k = 0; k < n; k += (int)strlen(buf + k) + 1) {
				char name[VALE_SW_NAME_MAX + VALE_NAME_MAX + 2];
				snprintf(name, sizeof(name), "%s:%s", sws[i], buf + k);
				append(head, name, "vale switch port");
			}
			break;
		}
	}
	free(buf);
	free(sws);
}

/* Switch ports named on our own command line (`-i vale0:a`, `--intf1=vale0:a`):
 * a port is created when it is opened, but programs such as tcpreplay look a
 * name up in this list first and refuse one they do not find. */
static void add_cmdline_ports(pcap_if_t **head)
{
	FILE *f = fopen("/proc/self/cmdline", "re");
	if (!f)
		return;
	char arg[4096];
	size_t n = 0;
	int c;
	for (int count = 0; count < 10000; count++) {
		c = fgetc(f);
		if (c != EOF && c != 0) {
			if (n + 1 < sizeof(arg))
				arg[n++] = (char)c;
			continue;
		}
		arg[n] = 0;
		const char *cand[3] = {arg, NULL, NULL};
		if (arg[0] == '-') {
			const char *eq = strchr(arg, '=');
			cand[1] = eq ? eq + 1 : NULL;
			cand[2] = arg[1] && arg[1] != '-' ? arg + 2 : NULL;
		}
		for (int k = 0; k < 3; k++) {
			struct vname vn;
			char err[PCAP_ERRBUF_SIZE];
			if (cand[k] && is_ours(cand[k]) && vname_parse(cand[k], &vn, err, sizeof(err)) == 0)
				append(head, cand[k], "vale switch port (created when opened)");
		}
		n = 0;
		if (c == EOF)
			break;
	}
	fclose(f);
}

EXPORT int pcap_findalldevs(pcap_if_t **alldevsp, char *errbuf)
{
	if (!REAL(pcap_findalldevs)) {
		snprintf(errbuf, PCAP_ERRBUF_SIZE, NO_LIBPCAP);
		return PCAP_ERROR;
	}
	int r = REAL(pcap_findalldevs)(alldevsp, errbuf);
	if (r != 0)
		return r;
	add_switch_ports(alldevsp);
	add_cmdline_ports(alldevsp);
	return 0;
}

/* ---------------- a hook for tests/pcap_interposer_test.ts ----------------
 * The C grammar against lib/names.ts: "sw\tport\tring\tflags", or the error. */
EXPORT int vale_pcap_parse_name(const char *s, char *out, uint32_t outlen)
{
	struct vname n;
	char err[PCAP_ERRBUF_SIZE];
	if (vname_parse(s, &n, err, sizeof(err))) {
		snprintf(out, outlen, "%s", err);
		return -1;
	}
	snprintf(out, outlen, "%s\t%s\t%d\t%u", n.sw, n.port, n.ring, n.oflags);
	return 0;
}
