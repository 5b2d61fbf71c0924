/*
 * vale vhost-user: a front-end that shrinks the file of a memory region after
 * sending it (ftruncate on its memfd) turns our next access to the cut part
 * into SIGBUS, which would kill the whole forwarder process. This file keeps
 * a table of the mapped regions; a SIGBUS inside one of them is answered by
 * mapping a zero page over the faulting page (mmap is async-signal-safe), so
 * the access completes (it reads zeros, or writes into the void), and the
 * device is marked: its control thread ends the connection (mem_faults). A
 * SIGBUS anywhere else goes to the handler that was there before, or kills
 * the process as it would have.
 */
#include "vhost.h"

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define VH_FAULT_SLOTS 256

struct fault_slot {
	uintptr_t start, end;  /* 0, 0: free */
	struct vh_dev *dev;
};
static struct fault_slot slots[VH_FAULT_SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction old_bus;
static int installed;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	for (int i = 0; i < VH_FAULT_SLOTS; i++) {
		uintptr_t s = __atomic_load_n(&slots[i].start, __ATOMIC_ACQUIRE);
		uintptr_t e = __atomic_load_n(&slots[i].end, __ATOMIC_ACQUIRE);
		if (s && a >= s && a < e) {
			long ps = sysconf(_SC_PAGESIZE);
			void *page = (void *)(a & ~(uintptr_t)(ps - 1));
			if (mmap(page, (size_t)ps, PROT_READ | PROT_WRITE,
				 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) {
				struct vh_dev *d = slots[i].dev;
				if (d) __atomic_store_n(&d->mem_fault, 1, __ATOMIC_RELEASE);
				return;
			}
		}
	}
	/* not ours */
	if (old_bus.sa_flags & SA_SIGINFO) {
		if (old_bus.sa_sigaction) {
			old_bus.sa_sigaction(sig, si, uc);
			return;
		}
	} else if (old_bus.sa_handler != SIG_DFL && old_bus.sa_handler != SIG_IGN) {
		old_bus.sa_handler(sig);
		return;
	}
	signal(SIGBUS, SIG_DFL); /* the fault repeats on return and kills, as it would have */
}

void vh_fault_watch(struct vh_dev *d, void *start, uint64_t len)
{
	pthread_mutex_lock(&slots_lock);
	if (!installed) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = on_sigbus;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGBUS, &sa, &old_bus) == 0) installed = 1;
	}
	for (int i = 0; i < VH_FAULT_SLOTS; i++) {
		if (slots[i].start == 0) {
			slots[i].dev = d;
			__atomic_store_n(&slots[i].end, (uintptr_t)start + len, __ATOMIC_RELEASE);
			__atomic_store_n(&slots[i].start, (uintptr_t)start, __ATOMIC_RELEASE);
			break;
		}
	}
	pthread_mutex_unlock(&slots_lock);
}

void vh_fault_unwatch(void *start)
{
	pthread_mutex_lock(&slots_lock);
	for (int i = 0; i < VH_FAULT_SLOTS; i++) {
		if (slots[i].start == (uintptr_t)start) {
			__atomic_store_n(&slots[i].start, 0, __ATOMIC_RELEASE);
			__atomic_store_n(&slots[i].end, 0, __ATOMIC_RELEASE);
			slots[i].dev = NULL;
		}
	}
	pthread_mutex_unlock(&slots_lock);
}
