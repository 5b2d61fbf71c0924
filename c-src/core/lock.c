/*
 * Locks in shared memory that a buggy or hostile client cannot turn into an
 * abort or an endless wait.
 *
 * Why not a robust pthread mutex: every process of a switch maps the lock
 * read-write, and glibc trusts the bytes of a mutex completely. Garbage in
 * them made honest processes abort on glibc's assertions (`__owner == 0`,
 * `e != ESRCH || !robust`) or sleep forever on an owner tid that no longer
 * exists. This lock is one 32-bit word plus an acquisition counter, and
 * nothing in them is trusted:
 *
 *   owner  0 when free, else the pid of the process holding it, with
 *          VL_WAITERS set when someone sleeps on the word (futex);
 *   seq    bumped on every acquisition, so a waiter can tell a lock that is
 *          busy (taken and released again and again) from one that is held.
 *
 * Acquire is one CAS 0 -> pid (no system call, as the mutex was). A waiter
 * spins briefly, then sleeps on the futex in slices of at most 1 ms, and
 * takes the lock over ("steals" it, and tells the caller so it can repair
 * what the lock protects) when:
 *   - the owner value is not a possible pid (garbage), or
 *   - no process with that pid exists (the holder died: robust-mutex duty), or
 *   - (owner, seq) did not change for `stale_ms` (a holder that is alive but
 *     stuck, stopped, or a value scribbled to look like a live pid), or
 *   - it waited 4 x stale_ms in all (a word that a scribbler keeps changing).
 * Critical sections are short (a lease is reserved or published under the
 * kring lock in well under a microsecond; the control lock covers port-table
 * changes), so stale_ms is generous: a holder that is merely preempted is
 * never taken over in practice. If one ever is, both holders run the
 * critical section at once: the state they share is validated by every
 * reader anyway, so the worst outcome is a misrouted or empty frame, which
 * the threat model already allows a buggy client to cause.
 *
 * The owner is a pid, not a tid: threads of one process may then wait on
 * each other (never mistaken for garbage), and a dead process is seen with
 * kill(pid, 0). Processes in different pid namespaces sharing a switch see
 * each other's pids as garbage or as someone else: they fall back on the
 * stale timeout (stated in the README's threat model).
 */
#include "internal.h"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define VL_WAITERS 0x80000000u

uint32_t vale_g_pid; /* ours; refreshed after fork() */
static uint32_t g_pid_max = 4194304; /* /proc/sys/kernel/pid_max, the largest possible */

static void after_fork_child(void) { vale_g_pid = (uint32_t)getpid(); }

__attribute__((constructor)) static void lock_init(void)
{
	vale_g_pid = (uint32_t)getpid();
	FILE *f = fopen("/proc/sys/kernel/pid_max", "re");
	if (f) {
		unsigned v;
		if (fscanf(f, "%u", &v) == 1 && v > 1 && v <= 4194304)
			g_pid_max = v;
		fclose(f);
	}
	pthread_atfork(NULL, NULL, after_fork_child);
}

static long futex(volatile uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

void vale_lock_init(struct vale_lock *l)
{
	STORE_RLX(&l->seq, 0);
	STORE_REL(&l->owner, 0);
}

/* Is `v` (an owner word, waiters bit removed) a process that is alive? */
static bool owner_alive(uint32_t v)
{
	if (v == 0 || v >= g_pid_max)
		return false; /* not a pid: garbage */
	return vale_pid_alive((int32_t)v);
}

int vale_lock_slow(struct vale_lock *l, uint32_t stale_ms, bool *recovered)
{
	const uint32_t me = vale_g_pid;
	uint32_t seen_owner = ~0u, seen_seq = 0;
	uint64_t seen_since = 0, started = 0;
	/* a word that keeps changing to other live-looking pids is a scribbler,
	 * not progress: whatever happens, we wait at most 4 x stale_ms */
	const uint64_t stale_ns = (uint64_t)stale_ms * 1000000ull;
	for (uint32_t spins = 0;; spins++) {
		uint32_t v = LOAD_ACQ(&l->owner);
		if (v == 0) {
			if (__atomic_compare_exchange_n(&l->owner, &v, me, false, __ATOMIC_ACQUIRE,
							__ATOMIC_RELAXED)) {
				ADD_RLX(&l->seq, 1);
				return 0;
			}
			continue;
		}
		if (spins < 128) { /* the holder is usually a few hundred ns from done */
			__builtin_ia32_pause();
			continue;
		}
		uint32_t who = v & ~VL_WAITERS, seq = LOAD_RLX(&l->seq);
		uint64_t now = vale_now_ns();
		if (!started)
			started = now;
		if (now - started > 4 * stale_ns)
			goto steal;
		if (who != seen_owner || seq != seen_seq) { /* progress, or a new holder */
			seen_owner = who;
			seen_seq = seq;
			seen_since = now;
			if (who != me && !owner_alive(who))
				goto steal;
		} else if (now - seen_since > stale_ns) {
			goto steal;
		} else if (who != me && (spins & 63) == 0 && !owner_alive(who)) {
			goto steal; /* it died while we waited */
		}
		/* sleep until the holder releases (it wakes us when VL_WAITERS is set)
		 * or 1 ms passes, whichever comes first */
		if (!(v & VL_WAITERS) &&
		    !__atomic_compare_exchange_n(&l->owner, &v, v | VL_WAITERS, false, __ATOMIC_RELAXED,
						 __ATOMIC_RELAXED))
			continue;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};
		futex(&l->owner, FUTEX_WAIT, v | VL_WAITERS, &ts);
		continue;
	steal:
		if (__atomic_compare_exchange_n(&l->owner, &v, me, false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED)) {
			ADD_RLX(&l->seq, 1);
			*recovered = true;
			if (v & VL_WAITERS) /* others slept on the old value */
				futex(&l->owner, FUTEX_WAKE, INT_MAX, NULL);
			return 0;
		}
		seen_owner = ~0u; /* it changed under us: look again */
	}
}

void vale_unlock_slow(struct vale_lock *l)
{
	const uint32_t me = vale_g_pid;
	uint32_t v = LOAD_RLX(&l->owner);
	while ((v & ~VL_WAITERS) == me) {
		if (__atomic_compare_exchange_n(&l->owner, &v, 0, false, __ATOMIC_RELEASE,
						__ATOMIC_RELAXED)) {
			if (v & VL_WAITERS)
				futex(&l->owner, FUTEX_WAKE, INT_MAX, NULL);
			return;
		}
	}
	/* Not ours any more (taken over, or scribbled on): leave it to its new
	 * owner, or to the next waiter's checks. */
}
