/*
 * The bottom of the switch: the calling thread's last error message
 * (vale_last_error), the layout version, the clock and the pid probe that
 * every other file of core/ uses. Calls nothing of core/.
 */
#include "internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static __thread char g_errmsg[512];

VALE_API const char *vale_last_error(void) { return g_errmsg; }
VALE_API uint32_t vale_abi_version(void) { return VALE_LAYOUT_VERSION; }

int vale_err(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g_errmsg, sizeof(g_errmsg), fmt, ap);
	va_end(ap);
	return -err;
}

uint64_t vale_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool vale_pid_alive(int32_t pid)
{
	if (pid <= 0)
		return false;
	return !(kill(pid, 0) == -1 && errno == ESRCH);
}
