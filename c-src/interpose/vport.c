/*
 * A switch port as a capture device (vport.h). Ring sizes and buffer counts
 * come from vale_info (the library's validated copy), never from the shared
 * ring header; every head/tail, buffer index, length and chain read from
 * shared memory is checked before use, and a bad chain is skipped and
 * counted (vport.bad), never followed.
 */
#include "vport.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int vport_open(struct vport *v, const struct vname *n, char *err, size_t errlen)
{
	memset(v, 0, sizeof(*v));
	struct vale_open_req req;
	memset(&req, 0, sizeof(req));
	req.ring_id = n->ring;
	req.flags = n->oflags;
	int r = vale_open(NULL, n->sw, n->port, &req, &v->p);
	if (r < 0) {
		snprintf(err, errlen, "%s", vale_last_error());
		v->p = NULL;
		return r;
	}
	vale_info(v->p, &v->info);
	vale_info_rings(&v->info, v->tx, &v->ntx, v->rx, &v->nrx);
	v->frame = malloc(VPORT_MAX_FRAME);
	if (!v->frame) {
		vport_close(v);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < v->nrx; i++) {
		uint32_t h = LOAD_RLX(&v->rx[i]->head);
		v->pos[i] = h < v->info.rx_slots ? h : 0;
	}
	struct vale_counters c;
	if (vale_port_counters(v->p, &c) == 0)
		v->drops0 = c.drops[VD_RING_FULL];
	return 0;
}

void vport_close(struct vport *v)
{
	if (v->p)
		vale_close(v->p);
	v->p = NULL;
	free(v->frame);
	v->frame = NULL;
}

void vport_sync(struct vport *v)
{
	for (uint32_t i = 0; i < v->nrx; i++) {
		STORE_REL(&v->rx[i]->cur, v->pos[i]);
		STORE_REL(&v->rx[i]->head, v->pos[i]);
	}
	if (v->nrx)
		vale_rxsync(v->p, -1);
	/* a ring the library reset (a head it refused) restarts from its head */
	for (uint32_t i = 0; i < v->nrx; i++) {
		uint32_t h = LOAD_RLX(&v->rx[i]->head);
		if (h != v->pos[i])
			v->pos[i] = h < v->info.rx_slots ? h : 0;
	}
}

/* One frame from ring i at v->pos[i]: 1 taken, 0 ring empty. A bad chain
 * is consumed and counted, and the next one is looked at. */
static int take(struct vport *v, uint32_t i, const uint8_t **data, uint32_t *len)
{
	struct vale_ring *r = v->rx[i];
	const uint32_t ns = v->info.rx_slots;
	for (;;) {
		uint32_t j = v->pos[i], t = LOAD_ACQ(&r->tail);
		if (j >= ns || t >= ns || j == t)
			return 0;
		uint32_t avail = vale_ring_dist(j, t, ns), nf = 0, total = 0;
		bool ok = true, whole = false;
		/* the chain: slots up to the first without MOREFRAG */
		uint32_t k = j;
		while (nf < avail && nf < VALE_MAX_FRAGS) {
			const struct vale_slot *s = &r->slot[k];
			uint32_t l = LOAD_RLX(&s->len), f = LOAD_RLX(&s->flags);
			if (l > VALE_BUF_SIZE || !vale_buf_ok(&v->info, LOAD_RLX(&s->buf_idx)))
				ok = false;
			total += l;
			nf++;
			k = vale_ring_next(k, ns);
			if (!(f & VS_MOREFRAG)) {
				whole = true;
				break;
			}
		}
		v->pos[i] = k;
		if (!ok || !whole) { /* garbage, or a chain cut short: skip it */
			v->bad++;
			continue;
		}
		v->taken++;
		if (nf == 1) { /* the common case: the frame in place */
			const struct vale_slot *s = &r->slot[j];
			*data = vale_buf_at(&v->info, LOAD_RLX(&s->buf_idx));
			*len = total;
			/* the index was checked above; read once more, check again */
			if (!vale_buf_ok(&v->info, LOAD_RLX(&s->buf_idx)) ||
			    LOAD_RLX(&s->len) != total) {
				v->taken--;
				v->bad++;
				continue;
			}
			return 1;
		}
		uint32_t off = 0;
		for (uint32_t f = 0, m = j; f < nf; f++, m = vale_ring_next(m, ns)) {
			const struct vale_slot *s = &r->slot[m];
			uint32_t l = LOAD_RLX(&s->len), b = LOAD_RLX(&s->buf_idx);
			if (l > VALE_BUF_SIZE || !vale_buf_ok(&v->info, b) || off + l > VPORT_MAX_FRAME)
				break; /* changed under us: keep what was copied */
			memcpy(v->frame + off, vale_buf_at(&v->info, b), l);
			off += l;
		}
		*data = v->frame;
		*len = off;
		return 1;
	}
}

int vport_next(struct vport *v, const uint8_t **data, uint32_t *len)
{
	for (uint32_t n = 0; n < v->nrx; n++) {
		uint32_t i = (v->cur_ring + n) % v->nrx;
		if (take(v, i, data, len)) {
			v->cur_ring = i; /* stay on this ring while it has frames */
			return 1;
		}
	}
	return 0;
}

int vport_send(struct vport *v, const void *buf, size_t len, char *err, size_t errlen)
{
	if (!v->ntx) {
		snprintf(err, errlen, "this port has no TX ring (opened with /R)");
		return -EOPNOTSUPP;
	}
	if (len < 14 || len > VPORT_MAX_FRAME) {
		snprintf(err, errlen, "frame of %zu bytes: an Ethernet frame here is 14..%u bytes",
			 len, (unsigned)VPORT_MAX_FRAME);
		return -EMSGSIZE;
	}
	struct vale_ring *r = v->tx[0];
	const uint32_t ns = v->info.tx_slots;
	uint32_t nf = (uint32_t)((len + VALE_BUF_SIZE - 1) / VALE_BUF_SIZE);
	if (vale_ring_space(r, ns) < nf)
		vale_txsync(v->p, -1); /* the sender forwards: this empties the ring */
	if (vale_ring_space(r, ns) < nf) {
		snprintf(err, errlen, "no room in the TX ring");
		return -ENOBUFS;
	}
	uint32_t h = LOAD_RLX(&r->head);
	const uint8_t *src = buf;
	for (uint32_t f = 0; f < nf; f++, h = vale_ring_next(h, ns)) {
		struct vale_slot *s = &r->slot[h];
		uint32_t l = f + 1 == nf ? (uint32_t)(len - (size_t)f * VALE_BUF_SIZE) : VALE_BUF_SIZE;
		uint8_t *dst = vale_slot_buf(&v->info, LOAD_RLX(&s->buf_idx));
		if (!dst) { /* our own TX slot scribbled: nothing sane to send */
			snprintf(err, errlen, "TX slot %u has a bad buffer index", h);
			return -EIO;
		}
		memcpy(dst, src + (size_t)f * VALE_BUF_SIZE, l);
		s->len = (uint16_t)l;
		s->flags = f + 1 == nf ? 0 : VS_MOREFRAG;
	}
	STORE_REL(&r->cur, h);
	STORE_REL(&r->head, h);
	int r2 = vale_txsync(v->p, -1);
	if (r2 < 0) {
		snprintf(err, errlen, "%s", vale_last_error());
		return r2;
	}
	return 0;
}

uint64_t vport_drops(struct vport *v)
{
	struct vale_counters c;
	if (vale_port_counters(v->p, &c) != 0)
		return 0;
	uint64_t d = c.drops[VD_RING_FULL];
	return d >= v->drops0 ? d - v->drops0 : 0; /* shared memory: never below the start */
}

void vport_arm(struct vport *v)
{
	if (v->info.bell_fd < 0)
		return;
	vale_bell_clear(v->p);
	if (vale_bell_arm(v->p)) {
		char c = 1;
		if (write(v->info.bell_fd, &c, 1) < 0) { /* full: readable anyway */
		}
	}
}
