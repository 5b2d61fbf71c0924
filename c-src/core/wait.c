/*
 * Waiting and waking: vale_wait() sleeps on a futex in the port region's
 * wake word (or the doorbell FIFO, for poll() users: vale_bell_arm), and
 * senders wake it (vale_wake_end in internal.h: one fence and one load when
 * nobody sleeps; the rest is here). Also vale_wake() for another thread.
 */
#include "internal.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static long futex(volatile uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

/* ---------------- waking ---------------- */

static void bell_ring(struct vale_sw *sw, struct vale_map *m, uint32_t region_idx, uint32_t end)
{
	if (m->bell_fd[end] < 0 && sw) {
		/* the bell of the port whose region this is (for a pipe's end 1, the slave's
		 * own port index is not known here: its bell is looked up by the caller) */
		/* O_RDWR, not O_WRONLY: we then count as a reader ourselves, so a
		 * write after the owner closed its end cannot raise SIGPIPE (which
		 * kills). A client can set the bell bit of a port nobody reads. */
		char p[32];
		snprintf(p, sizeof(p), "p%u.bell", region_idx);
		int fd = vale_sw_open(sw, p, O_RDWR | O_NONBLOCK, S_IFIFO, false);
		m->bell_fd[end] = fd < 0 ? -1 : fd;
	}
	if (m->bell_fd[end] >= 0) {
		char c = 1;
		if (write(m->bell_fd[end], &c, 1) < 0) { /* full FIFO: already rung */
		}
	}
}

/* Wake the owner of `end` of region m if it sleeps. One fence and one load
 * when nobody sleeps: the common case costs no system call.
 *
 * Only a waker clears the armed bits, and it wakes every sleeper of the end.
 * (A vale_wait() that returned used to clear VW_FUTEX itself; with two
 * handles on one end, e.g. pkt-gen -p 2 on a two-ring port, that disarmed
 * the other handle while it slept: it then slept through its data until its
 * 1 s timeout.) A VW_FUTEX left armed by a caller that returned on its own
 * costs the next waker one atomic and no system call (no sleeper counted). */
void vale_wake_end_slow(struct vale_map *m, uint32_t end, struct vale_sw *sw, uint32_t bell_idx)
{
	struct vale_wake *w = vale_wakep(m, end);
	uint32_t bits = __atomic_fetch_and(&w->waiting, ~(VW_FUTEX | VW_BELL), __ATOMIC_SEQ_CST);
	if ((bits & VW_FUTEX) && bits >= VW_SLEEPER) {
		__atomic_fetch_add(&w->wake_seq, 1, __ATOMIC_SEQ_CST);
		futex(&w->wake_seq, FUTEX_WAKE, INT_MAX, NULL);
	}
	if (bits & VW_BELL)
		bell_ring(sw, m, bell_idx, end);
}

/* ---------------- waiting ---------------- */

/* Something to do for the owner: data beyond what rxsync last exposed, or
 * (pipes) room for pending TX slots. */
static bool port_ready(vale_port *p, bool *tx_blocked)
{
	struct vale_map *m = &p->m;
	*tx_blocked = false;
	for (uint32_t i = p->first_ring; i < p->last_ring && i < m->nrx; i++) {
		struct vale_kring *k = vale_kring(m, p->end, true, i);
		struct vale_ring *ring = vale_ring(m, p->end, true, i);
		if (LOAD_ACQ(&k->hwtail) != LOAD_RLX(&ring->head))
			return true;
	}
	if (p->flags & VPF_PIPE) {
		uint32_t pend = 1 - p->end;
		for (uint32_t i = p->first_ring; i < p->last_ring && i < m->ntx; i++) {
			struct vale_kring *tk = vale_kring(m, p->end, false, i);
			struct vale_ring *tr = vale_ring(m, p->end, false, i);
			if (tk->hwcur == LOAD_RLX(&tr->head))
				continue; /* nothing pending */
			*tx_blocked = true;
			struct vale_kring *k = vale_kring(m, pend, true, i % m->nrx);
			uint32_t used = vale_ring_dist(LOAD_ACQ(&k->hwcur), LOAD_RLX(&k->hwtail), m->rx_slots);
			if (used + 1 < m->rx_slots)
				return true;
		}
	}
	return false;
}

static void check_stuck_leases(vale_port *p)
{
	struct vale_map *m = &p->m;
	for (uint32_t i = p->first_ring; i < p->last_ring && i < m->nrx; i++) {
		struct vale_kring *k = vale_kring(m, p->end, true, i);
		if (LOAD_RLX(&k->lease_first) != LOAD_RLX(&k->lease_next))
			vale_reclaim_leases(k, vale_ring(m, p->end, true, i), m->rx_slots, false,
					    &p->sw->ports[p->idx].c);
	}
}

/* Dekker with vale_wake_end(): the caller arms VW_FUTEX (a seq_cst RMW),
 * fences and looks at the rings; a producer publishes, fences and loads
 * `waiting`. Either the caller sees the data or the producer sees the armed
 * bit, which it clears before bumping wake_seq, read by the caller before
 * arming: FUTEX_WAIT then returns at once or is woken. The caller is counted
 * (VW_SLEEPER) from entry to return and never disarms: see vale_wake_end(). A
 * pipe end also counts itself in tx_waiting, which the peer's rxsync checks
 * after releasing slots (the same Dekker pair on the peer's hwcur). */
VALE_API int vale_wait(vale_port *p, int timeout_ms)
{
	struct vale_wake *w = vale_wakep(&p->m, p->end);
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : vale_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	const bool pipe = p->flags & VPF_PIPE;
	int ret;
	__atomic_fetch_add(&w->waiting, VW_SLEEPER, __ATOMIC_SEQ_CST);
	if (pipe)
		__atomic_fetch_add(&w->tx_waiting, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		bool txb;
		uint32_t seq = __atomic_load_n(&w->wake_seq, __ATOMIC_SEQ_CST);
		__atomic_or_fetch(&w->waiting, VW_FUTEX, __ATOMIC_SEQ_CST);
		FENCE();
		if (port_ready(p, &txb)) {
			ret = 1;
			break;
		}
		/* vale_wake() before this call started (a close racing with a wait
		 * that was still on its way to this thread): its wake_seq bump came
		 * before our read, so the futex would not return. */
		if (__atomic_exchange_n(&p->woken, 0, __ATOMIC_SEQ_CST)) {
			ret = 0;
			break;
		}
		uint64_t now = vale_now_ns();
		if (now >= deadline) {
			ret = 0;
			break;
		}
		/* sleep in slices of at most 1 s so dead producers' leases get reclaimed */
		uint64_t left = deadline - now;
		if (left > 1000000000ull)
			left = 1000000000ull;
		struct timespec ts = {.tv_sec = (time_t)(left / 1000000000ull),
				      .tv_nsec = (long)(left % 1000000000ull)};
		long r = futex(&w->wake_seq, FUTEX_WAIT, seq, &ts);
		if (r == -1 && errno == ETIMEDOUT)
			check_stuck_leases(p);
		if (LOAD_RLX(&w->wake_seq) != seq) {
			/* woken (and disarmed) by a producer, by vale_wake(), or for another
			 * handle's ring of this end (0: let the caller look) */
			ret = port_ready(p, &txb) ? 1 : 0;
			__atomic_store_n(&p->woken, 0, __ATOMIC_RELAXED); /* seen */
			break;
		}
	}
	if (pipe)
		__atomic_fetch_sub(&w->tx_waiting, 1, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&w->waiting, VW_SLEEPER, __ATOMIC_RELAXED);
	return ret;
}

VALE_API void vale_wake(vale_port *p)
{
	struct vale_wake *w = vale_wakep(&p->m, p->end);
	__atomic_store_n(&p->woken, 1, __ATOMIC_SEQ_CST); /* for a vale_wait() yet to start */
	__atomic_fetch_add(&w->wake_seq, 1, __ATOMIC_SEQ_CST);
	futex(&w->wake_seq, FUTEX_WAKE, INT_MAX, NULL);
	if (p->bell_rd >= 0) {
		char c = 1;
		if (write(p->bell_rd, &c, 1) < 0) {
		}
	}
}

#define TXW_BELL 0x80000000u /* tx_waiting: a doorbell user of a pipe end (count below) */

VALE_API int vale_bell_arm(vale_port *p)
{
	struct vale_wake *w = vale_wakep(&p->m, p->end);
	bool txb;
	__atomic_or_fetch(&w->waiting, VW_BELL, __ATOMIC_SEQ_CST);
	if (p->flags & VPF_PIPE) /* sticky, as before: the poll()er may wait for room any time */
		__atomic_or_fetch(&w->tx_waiting, TXW_BELL, __ATOMIC_SEQ_CST);
	FENCE();
	if (port_ready(p, &txb)) {
		__atomic_and_fetch(&w->waiting, ~VW_BELL, __ATOMIC_RELAXED);
		return 1;
	}
	return 0;
}

VALE_API void vale_bell_clear(vale_port *p)
{
	char buf[256];
	if (p->bell_rd < 0)
		return;
	while (read(p->bell_rd, buf, sizeof(buf)) > 0) {
	}
}
