/*
 * Shared files that shrink under us.
 *
 * Every process on a switch maps the control segment and port regions
 * MAP_SHARED. If any of them truncates one of those files (ftruncate, or a
 * `: > file`), every access beyond the new end raises SIGBUS in everyone who
 * maps it, and SIGBUS kills. tmpfs files cannot be sealed against shrinking
 * (only memfds can), so instead each mapping is registered here, and a
 * SIGBUS handler that finds the faulting address inside a registered
 * mapping replaces that whole mapping with private zero pages (mmap
 * MAP_FIXED over it) and raises the mapping's flag. The faulting access then
 * completes on the zero pages, the process lives on, and the flag makes the
 * library report the port or switch as damaged from then on. Faults outside
 * our mappings go to the handler that was there before (or kill as usual).
 *
 * The registry is a fixed array scanned by the handler: no locks and no
 * allocation in signal context. Nothing on the data path touches it.
 */
#include "internal.h"

#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define NGUARDS 16384 /* mappings per process: switches x ports it forwards to */

struct guard {
	uintptr_t base; /* 0: free slot; published last (release) */
	uintptr_t size;
	volatile uint32_t *flag; /* raised when the mapping was replaced; may be NULL */
};

static struct guard g_guards[NGUARDS];
static struct sigaction g_old;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static bool g_installed;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	for (uint32_t i = 0; i < NGUARDS; i++) {
		uintptr_t b = LOAD_ACQ(&g_guards[i].base);
		if (!b || a < b || a - b >= g_guards[i].size)
			continue;
		void *m = mmap((void *)b, g_guards[i].size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (m != MAP_FAILED) {
			volatile uint32_t *f = g_guards[i].flag;
			if (f)
				*f = 1;
			return; /* the access is retried on the zero pages */
		}
		break;
	}
	/* not ours (or the replacement failed): whoever handled SIGBUS before us */
	if ((g_old.sa_flags & SA_SIGINFO) && g_old.sa_sigaction) {
		g_old.sa_sigaction(sig, si, uc);
		return;
	}
	if (g_old.sa_handler != SIG_DFL && g_old.sa_handler != SIG_IGN && g_old.sa_handler) {
		g_old.sa_handler(sig);
		return;
	}
	/* default action: put it back and return; the access faults again and kills */
	sigaction(SIGBUS, &g_old, NULL);
}

static void install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	g_installed = sigaction(SIGBUS, &sa, &g_old) == 0;
}

/* Protect [base, base + size) from a shrinking file; `flag` is raised if it
 * ever had to be replaced. */
void vale_guard_add(void *base, uint64_t size, volatile uint32_t *flag)
{
	pthread_once(&g_once, install);
	if (!g_installed)
		return;
	for (uint32_t i = 0; i < NGUARDS; i++) {
		uintptr_t z = 0;
		if (LOAD_RLX(&g_guards[i].base))
			continue;
		/* claim the slot with a marker that matches no address, fill it, publish */
		if (!__atomic_compare_exchange_n(&g_guards[i].base, &z, (uintptr_t)1, false,
						 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			continue;
		g_guards[i].size = 0;
		g_guards[i].flag = flag;
		g_guards[i].size = (uintptr_t)size;
		STORE_REL(&g_guards[i].base, (uintptr_t)base);
		return;
	}
	/* full: this mapping is unprotected (a truncation would kill us, as before) */
}

/* Point the flag of a registered mapping elsewhere (NULL: nobody's). */
void vale_guard_flag(void *base, volatile uint32_t *flag)
{
	for (uint32_t i = 0; i < NGUARDS; i++)
		if (LOAD_RLX(&g_guards[i].base) == (uintptr_t)base)
			g_guards[i].flag = flag;
}

/* Forget a mapping before it is unmapped. */
void vale_guard_del(void *base)
{
	if (!base)
		return;
	for (uint32_t i = 0; i < NGUARDS; i++)
		if (LOAD_RLX(&g_guards[i].base) == (uintptr_t)base) {
			STORE_REL(&g_guards[i].base, 0);
			return;
		}
}
