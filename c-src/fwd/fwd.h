/*
 * vale: forwarder between a kernel interface (io.h) and a vale port.
 *
 *   struct vale_fwd *f;
 *   vale_fwd_create(io, port, &conf, &f);   // neither is owned by f
 *   vale_fwd_start(f);                      // two threads, one per direction
 *   vale_fwd_wait(f, -1);                   // until stopped or the interface goes
 *   vale_fwd_stop(f); vale_fwd_destroy(f);  // then close port and io
 *
 * Used by the attach forwarder process (cli/vale-fwd.ts, `vale-ctl -a/-h`)
 * and by kernel ports opened locally (lib/backends.ts: a private pipe whose
 * other end the application gets).
 */
#ifndef VALE_FWD_H
#define VALE_FWD_H

#include <stdint.h>
#include "vale.h"
#include "io.h"

/* vale_fwd_conf.flags */
#define VF_NO_K2V 0x1 /* do not forward kernel -> port */
#define VF_NO_V2K 0x2 /* do not forward port -> kernel */

/* 64 bytes; zeroed fields take the defaults. */
struct vale_fwd_conf {
	uint32_t batch;  /* most slots per recv/send call (default 256, max 1024) */
	uint32_t flags;  /* VF_* */
	int32_t idle_ms; /* sleep slice: link checks and stop latency bound (default 200) */
	uint32_t _pad[13];
};

enum {
	VFS_IDLE = 0,    /* created, not started */
	VFS_RUNNING = 1,
	VFS_DOWN = 2,    /* the interface is down: frames from the port are dropped (counted) */
	VFS_GONE = 3,    /* the interface was removed: the threads ended */
	VFS_STOPPED = 4, /* vale_fwd_stop() */
	VFS_ERROR = 5,   /* a fatal error (see msg) */
};

/* 256 bytes. Packet counts are frames (a MOREFRAG chain is one). */
struct vale_fwd_stats {
	uint64_t k2v_pkts, k2v_bytes, k2v_batches; /* kernel -> port */
	uint64_t v2k_pkts, v2k_bytes, v2k_batches; /* port -> kernel: frames handed to send_batch
						    * (sent, or dropped by it and counted in the
						    * io stats tx_drops/tx_errors) */
	uint64_t k2v_waits;  /* the port's TX ring had no room (pipe back-pressure) */
	uint64_t v2k_drops;  /* frames from the port dropped here: interface down, send error */
	uint64_t v2k_full;   /* waits for room in the kernel's TX ring */
	uint64_t k_sleeps, v_sleeps; /* times each direction went to sleep */
	uint64_t link_downs; /* times the interface was seen going down */
	uint64_t io_errors;  /* transient errors from the kernel side */
	uint32_t state;      /* VFS_* */
	int32_t err;         /* -errno of the last failure, 0 */
	uint64_t _pad[2];
	char msg[128];       /* what happened last, for people */
};
_Static_assert(sizeof(struct vale_fwd_conf) == 64, "vale_fwd_conf layout");
_Static_assert(sizeof(struct vale_fwd_stats) == 256, "vale_fwd_stats layout");

struct vale_fwd;

#ifdef __cplusplus
extern "C" {
#endif

VALE_API const char *vale_fwd_last_error(void);
VALE_API int vale_fwd_create(struct vale_io *io, vale_port *p, const struct vale_fwd_conf *conf,
			     struct vale_fwd **out);
VALE_API int vale_fwd_start(struct vale_fwd *f);
VALE_API int vale_fwd_wait(struct vale_fwd *f, int timeout_ms);
VALE_API void vale_fwd_stop(struct vale_fwd *f);
VALE_API int vale_fwd_stats(struct vale_fwd *f, struct vale_fwd_stats *out);
VALE_API void vale_fwd_destroy(struct vale_fwd *f);

#ifdef __cplusplus
}
#endif
#endif
