/*
 * vale kernel I/O: the message of the last failure of the calling thread
 * (vale_io_last_error) and the privilege hint every backend appends.
 */
#include "io_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

/* ------------------------------------------------------------------ */
/* errors */

static __thread char vio_msg[512]; /* room for a hint with two interface names */

int vio_err(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(vio_msg, sizeof vio_msg, fmt, ap);
	va_end(ap);
	return err;
}

VALE_API const char *vale_io_last_error(void) { return vio_msg; }

/* " (needs CAP_X)" when err is a permission error. */
const char *vio_priv_hint(int err, const char *need)
{
	static __thread char hint[96];
	if (err != EPERM && err != EACCES) return "";
	snprintf(hint, sizeof hint, " (needs %s: run as root or grant the capability)", need);
	return hint;
}
