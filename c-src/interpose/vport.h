/*
 * One switch port as a capture device: open it by a parsed name, take
 * frames from its RX rings (MOREFRAG chains reassembled, every slot
 * checked), send frames into its TX ring, count. Used by the libpcap
 * interposer (pcap.c) and its PF_PACKET emulation (packet_sock.c). No
 * allocation or system call per frame.
 */
#ifndef VALE_VPORT_H
#define VALE_VPORT_H

#include "vale_app.h"
#include "vname.h"

#include <stdint.h>

#define VPORT_MAX_FRAME (VALE_MAX_FRAGS * VALE_BUF_SIZE) /* longest frame a chain holds */

struct vport {
	vale_port *p;
	struct vale_port_info info;
	struct vale_ring *rx[VALE_MAX_RINGS], *tx[VALE_MAX_RINGS];
	uint32_t nrx, ntx;
	uint32_t pos[VALE_MAX_RINGS]; /* next slot to take per RX ring (head: first not released) */
	uint32_t cur_ring;            /* round robin over the RX rings */
	uint8_t *frame;               /* a chain, reassembled (VPORT_MAX_FRAME bytes) */
	uint64_t taken;               /* frames taken from the rings */
	uint64_t bad;                 /* chains refused: bad buffer index or length, cut short */
	uint64_t drops0;              /* the port's ring_full drops when it was opened */
};

/* 0, or -errno with the library's message in err. */
int vport_open(struct vport *v, const struct vname *n, char *err, size_t errlen);
void vport_close(struct vport *v);

/* Release the slots taken so far and look for new ones (an rxsync). */
void vport_sync(struct vport *v);
/* The next frame: 1 with data and len set (valid until the next vport_sync), or 0. */
int vport_next(struct vport *v, const uint8_t **data, uint32_t *len);

/* Send one frame (split into MOREFRAG slots when > 2048 bytes): 0 or -errno. */
int vport_send(struct vport *v, const void *buf, size_t len, char *err, size_t errlen);

/* Frames lost because the port's RX ring was full, since it was opened. */
uint64_t vport_drops(struct vport *v);

/* The doorbell: arm it so that the fd polls readable when frames wait
 * (ringing it ourselves when they already do). */
void vport_arm(struct vport *v);

#endif
