/*
 * Offloads: one packet converted between ports whose virtio-net headers
 * differ (the contract is in vale.h; the flush calls this, flush.c).
 *
 *   source -> destination    what the destination gets
 *   10 <-> 12                the header rewritten (the first 10 bytes kept,
 *                            num_buffers = 1), the frame as it is
 *   0 -> 10/12               a zero header (the frame is complete; num_buffers
 *                            = 1 in a 12-byte one), the frame
 *   10/12 -> 0               GSO TCP (TSO): segments; GSO_UDP_L4 (USO): UDP
 *                            datagrams; GSO_UDP (UFO): IP fragments; no GSO
 *                            with NEEDS_CSUM: the checksum completed
 *
 * Segments follow the sender's segment size (gso_size, its TCP MSS) and the
 * destination's MTU, whichever is smaller, as Linux's software GSO does for
 * a device with that MTU. Per TCP segment: IP total length (IPv6: payload
 * length), IPv4 ID + index and header checksum, sequence number + bytes
 * before it, FIN and PSH only on the last, CWR only on the first, checksum.
 *
 * Parsing is defensive: the headers are copied once from the snapshot of the
 * source slots (struct vo_src) into the plan, and every offset is checked
 * against the frame; a frame that is not what its header says is dropped
 * (VD_BAD_VNET), never guessed at. The emit writes from the plan and the
 * snapshot's lengths only, so it fills exactly the slots the plan counted.
 */
#include "offload.h"
#include "csum.h"

#include <arpa/inet.h>

/* ---------------- checksums (csum.h) ---------------- */

/* A running sum over bytes that arrive in pieces (odd lengths included). */
struct rsum {
	uint64_t s;
	uint32_t odd; /* the next byte is the second of a word */
};

static void rsum_add(struct rsum *r, const uint8_t *p, uint32_t len)
{
	if (!len)
		return;
	uint16_t part = vale_sum_fold(vale_sum_add(0, p, len));
	if (r->odd) /* this piece starts mid-word: its bytes sit in the other halves */
		part = (uint16_t)(part << 8 | part >> 8);
	r->s += part;
	r->odd ^= len & 1;
}

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

/* The IPv4 header checksum of the header at ip. */
static void ip4_csum(uint8_t *ip, uint32_t ihl)
{
	ip[10] = ip[11] = 0;
	uint16_t c = (uint16_t)~vale_sum_fold(vale_sum_add(0, ip, ihl));
	memcpy(ip + 10, &c, 2);
}

/* Pseudo-header sum: addresses from the IP header at ip, protocol, L4 length. */
static uint64_t pseudo_sum(const uint8_t *ip, bool v6, uint32_t proto, uint32_t l4len)
{
	uint64_t s = v6 ? vale_sum_add(0, ip + 8, 32) : vale_sum_add(0, ip + 12, 8);
	return s + htons((uint16_t)proto) + htons((uint16_t)(l4len & 0xffff)) +
	       (v6 ? htons((uint16_t)(l4len >> 16)) : 0);
}

/* ---------------- reading the source ---------------- */

/* Copy [off, off + len) of the source packet (header included) into out. */
static void src_read(const struct vo_src *s, uint32_t off, uint8_t *out, uint32_t len)
{
	for (uint32_t i = 0; i < s->n && len; i++) {
		if (off >= s->len[i]) {
			off -= s->len[i];
			continue;
		}
		uint32_t k = s->len[i] - off < len ? s->len[i] - off : len;
		memcpy(out, s->p[i] + off, k);
		out += k;
		len -= k;
		off = 0;
	}
}

/* ---------------- writing the destination ---------------- */

/* One frame being written into consecutive destination slots. */
struct wr {
	const struct vo_out *o;
	uint32_t j;          /* slot being filled */
	uint32_t first;      /* its frame's first slot */
	uint32_t nsl;        /* slots of the frame so far */
	uint32_t used;       /* bytes in slot j */
	uint8_t *buf;        /* buffer of slot j (NULL: bad index) */
	uint8_t *bufs[VALE_MAX_FRAGS]; /* buffers of the frame's slots, for patching */
	bool bad;
	struct rsum sum;     /* checksum of the bytes put since sum_from was set */
	bool summing;
};

static void wr_slot(struct wr *w)
{
	const struct vo_out *o = w->o;
	uint32_t idx = LOAD_RLX(&o->slot[w->j].buf_idx);
	w->buf = idx - 2u < o->nbufs - 2u ? o->dbase + (uint64_t)idx * VALE_BUF_SIZE : NULL;
	if (!w->buf)
		w->bad = true;
	if (w->nsl < VALE_MAX_FRAGS)
		w->bufs[w->nsl] = w->buf;
	w->nsl++;
	w->used = 0;
}

static void wr_begin(struct wr *w, uint32_t j)
{
	w->j = w->first = j;
	w->nsl = 0;
	w->bad = false;
	w->summing = false;
	w->sum.s = 0;
	w->sum.odd = 0;
	wr_slot(w);
}

/* Append len bytes (summed when w->summing). The plan sized the frame: this
 * never runs past the frame's slots. */
static void wr_put(struct wr *w, const uint8_t *p, uint32_t len)
{
	while (len) {
		if (w->used == VALE_BUF_SIZE) {
			struct vale_slot *ds = &w->o->slot[w->j];
			ds->len = VALE_BUF_SIZE;
			ds->flags = VS_MOREFRAG;
			w->j = vale_ring_next(w->j, w->o->n);
			wr_slot(w);
		}
		uint32_t k = VALE_BUF_SIZE - w->used < len ? VALE_BUF_SIZE - w->used : len;
		if (w->buf) {
			memcpy(w->buf + w->used, p, k);
			if (w->summing)
				rsum_add(&w->sum, w->buf + w->used, k);
		}
		w->used += k;
		p += k;
		len -= k;
	}
}

/* Append [off, off + len) of the source packet. */
static void wr_src(struct wr *w, const struct vo_src *s, uint32_t off, uint32_t len)
{
	for (uint32_t i = 0; i < s->n && len; i++) {
		if (off >= s->len[i]) {
			off -= s->len[i];
			continue;
		}
		uint32_t k = s->len[i] - off < len ? s->len[i] - off : len;
		wr_put(w, s->p[i] + off, k);
		len -= k;
		off = 0;
	}
}

/* Where byte `off` of the frame is (NULL if its buffer is bad). */
static uint8_t *wr_at(const struct wr *w, uint32_t off)
{
	uint32_t k = off / VALE_BUF_SIZE;
	return k < w->nsl && k < VALE_MAX_FRAGS && w->bufs[k] ? w->bufs[k] + off % VALE_BUF_SIZE
							       : NULL;
}

/* Store a 16-bit value at frame offset off (it may straddle two slots). */
static void wr_patch16(const struct wr *w, uint32_t off, uint16_t v)
{
	uint8_t b[2];
	memcpy(b, &v, 2);
	for (int i = 0; i < 2; i++) {
		uint8_t *q = wr_at(w, off + (uint32_t)i);
		if (q)
			*q = b[i];
	}
}

/* Close the frame: its last slot ends the chain. A frame with a bad buffer
 * is published as empty slots. Returns true if delivered. */
static bool wr_end(struct wr *w, uint32_t flen, uint64_t *bytes)
{
	struct vale_slot *ds = &w->o->slot[w->j];
	ds->len = (uint16_t)w->used;
	ds->flags = 0;
	if (!w->bad) {
		*bytes += flen;
		return true;
	}
	for (uint32_t k = 0, x = w->first; k < w->nsl; k++, x = vale_ring_next(x, w->o->n)) {
		w->o->slot[x].len = 0;
		w->o->slot[x].flags = 0;
	}
	return false;
}

static inline uint32_t slots_for(uint32_t len)
{
	return len ? (len + VALE_BUF_SIZE - 1) / VALE_BUF_SIZE : 1;
}

/* ---------------- planning ---------------- */

/* Parse the headers of a GSO frame into pl (offsets checked against the
 * frame); false when it is not what gso says. */
static bool parse_gso(const struct vo_src *s, struct vo_plan *pl, uint32_t gso)
{
	uint8_t *h = pl->hdrs;
	uint32_t flen = pl->flen;
	uint32_t have = flen < VO_MAX_HDRS - 8 ? flen : VO_MAX_HDRS - 8;
	memset(h, 0, VO_MAX_HDRS);
	src_read(s, pl->sh, h, have);
	if (have < 14)
		return false;
	uint32_t l3 = 14, et = get16(h + 12);
	if (et == 0x8100 || et == 0x88a8) { /* one VLAN tag */
		if (have < 18)
			return false;
		l3 = 18;
		et = get16(h + 16);
	}
	bool tcp = gso == VALE_VNET_GSO_TCPV4 || gso == VALE_VNET_GSO_TCPV6;
	uint32_t iphl, end, proto;
	if (et == 0x0800) {
		if (gso == VALE_VNET_GSO_TCPV6 || l3 + 20 > have)
			return false;
		const uint8_t *ip = h + l3;
		iphl = (ip[0] & 15u) * 4;
		if ((ip[0] >> 4) != 4 || iphl < 20 || l3 + iphl > have)
			return false;
		uint32_t tot = get16(ip + 2);
		if (tot < iphl || l3 + tot > flen)
			return false;
		if (get16(ip + 6) & 0x3fff) /* already a fragment */
			return false;
		end = l3 + tot;
		proto = ip[9];
		pl->v6 = false;
	} else if (et == 0x86dd) {
		if (gso == VALE_VNET_GSO_TCPV4 || l3 + 40 > have)
			return false;
		const uint8_t *ip = h + l3;
		if ((ip[0] >> 4) != 6)
			return false;
		iphl = 40;
		uint32_t plen = get16(ip + 4);
		if (plen == 0 || l3 + 40 + plen > flen) /* 0: a jumbogram, not here */
			return false;
		end = l3 + 40 + plen;
		proto = ip[6]; /* extension headers are not segmented: refused below */
		pl->v6 = true;
	} else {
		return false;
	}
	uint32_t l4 = l3 + iphl, l4hl;
	if (tcp) {
		if (proto != 6 || l4 + 20 > end || l4 + 20 > have)
			return false;
		l4hl = (uint32_t)(h[l4 + 12] >> 4) * 4;
		if (l4hl < 20 || l4 + l4hl > end || l4 + l4hl > have)
			return false;
		/* a CWR the header does not announce (VIRTIO_NET_HDR_GSO_ECN) */
		if ((h[l4 + 13] & 0x80) && !(pl->vh.gso_type & VALE_VNET_GSO_ECN))
			return false;
	} else {
		if (proto != 17 || l4 + 8 > end || l4 + 8 > have)
			return false;
		l4hl = 8;
	}
	/* a partial checksum must be the L4 one */
	if ((pl->vh.flags & VALE_VNET_F_NEEDS_CSUM) &&
	    (pl->vh.csum_start != l4 || pl->vh.csum_offset != (tcp ? 16 : 6)))
		return false;
	pl->l3 = l3;
	pl->iphl = iphl;
	pl->l4 = l4;
	pl->hlen = l4 + l4hl;
	pl->end = end;
	return true;
}

int vale_off_plan(const struct vo_src *s, uint32_t sh, uint32_t dh, uint32_t dmtu,
		  struct vo_plan *pl)
{
	pl->sh = sh;
	pl->dh = dh;
	pl->flen = s->total - sh;
	pl->frames = 1;
	if (s->total < sh)
		return -VD_BAD_VNET;
	memset(&pl->vh, 0, sizeof(pl->vh));
	if (sh) {
		uint8_t raw[12] = {0};
		src_read(s, 0, raw, sh);
		vale_vnet_read(raw, sh, &pl->vh);
		if (!vale_vnet_hdr_ok(&pl->vh, pl->flen))
			return -VD_BAD_VNET;
	}
	uint32_t gso = pl->vh.gso_type & (uint32_t)~VALE_VNET_GSO_ECN;
	if (gso != VALE_VNET_GSO_NONE && !parse_gso(s, pl, gso))
		return -VD_BAD_VNET;
	if (dh || gso == VALE_VNET_GSO_NONE) {
		/* one frame: toward a header port a GSO frame passes whole */
		if (gso == VALE_VNET_GSO_NONE && pl->flen > dmtu)
			return -VD_TOO_BIG;
		pl->kind = !dh && (pl->vh.flags & VALE_VNET_F_NEEDS_CSUM) ? VO_CSUM : VO_COPY;
		pl->slots = slots_for(dh + pl->flen);
		if (pl->slots > VALE_MAX_FRAGS) /* a longer header made the chain too long */
			return -VD_TOO_BIG;
		return (int)pl->slots;
	}
	/* segmentation toward a port without a header */
	uint32_t payload = pl->end - pl->hlen, seg, frames;
	if (gso == VALE_VNET_GSO_UDP) { /* UFO: fragments of the L4 datagram, 8-byte units */
		uint32_t room = dmtu > pl->l4 + (pl->v6 ? 8 : 0) ? dmtu - pl->l4 - (pl->v6 ? 8 : 0) : 0;
		seg = (pl->vh.gso_size < room ? pl->vh.gso_size : room) & ~7u;
		if (seg == 0)
			return -VD_TOO_BIG;
		uint32_t dgram = pl->end - pl->l4;
		frames = (dgram + seg - 1) / seg;
		pl->kind = VO_UFO;
		pl->seg = seg;
		uint32_t per = pl->l4 + (pl->v6 ? 8 : 0);
		uint64_t slots = (uint64_t)(frames - 1) * slots_for(per + seg) +
				 slots_for(per + dgram - (frames - 1) * seg);
		pl->slots = slots > VALE_MAX_SLOTS ? VALE_MAX_SLOTS : (uint32_t)slots;
		pl->frames = frames;
		return (int)pl->slots;
	}
	if (dmtu <= pl->hlen)
		return -VD_TOO_BIG;
	seg = dmtu - pl->hlen;
	if (pl->vh.gso_size < seg)
		seg = pl->vh.gso_size;
	frames = payload ? (payload + seg - 1) / seg : 1;
	pl->kind = gso == VALE_VNET_GSO_UDP_L4 ? VO_USO : VO_TSO;
	pl->seg = seg;
	uint32_t last = payload - (frames - 1) * seg;
	uint64_t slots = (uint64_t)(frames - 1) * slots_for(pl->hlen + seg) + slots_for(pl->hlen + last);
	if (slots > VALE_MAX_SLOTS) /* no ring holds it: the caller drops it (ring_full), */
		slots = VALE_MAX_SLOTS; /* so the emit never runs past the count */
	pl->slots = (uint32_t)slots;
	pl->frames = frames;
	return (int)pl->slots;
}

/* ---------------- emitting ---------------- */

/* One frame with a converted header: dh bytes (the source's first 10, or
 * zero), then the source frame; NEEDS_CSUM toward no header: completed. */
static bool emit_copy(const struct vo_plan *pl, const struct vo_src *s, struct wr *w,
		      uint64_t *bytes)
{
	if (pl->dh) {
		struct vale_vnet_hdr h = pl->vh; /* zero from a port without one */
		h.num_buffers = pl->dh == 12 ? 1 : 0;
		wr_put(w, (const uint8_t *)&h, pl->dh);
	}
	if (pl->kind == VO_CSUM) {
		uint32_t cs = pl->vh.csum_start, field = cs + pl->vh.csum_offset;
		wr_src(w, s, pl->sh, cs);
		w->summing = true; /* the field holds the pseudo-header sum: it is summed too */
		wr_src(w, s, pl->sh + cs, pl->flen - cs);
		/* UDP's checksum field is at 6, TCP's at 16 (Linux's skb_checksum_help
		 * writes a zero as 0xffff for every protocol; vale_l4_csum only for UDP) */
		wr_patch16(w, field, vale_l4_csum(w->sum.s, pl->vh.csum_offset == 6));
	} else {
		wr_src(w, s, pl->sh, pl->flen);
	}
	return wr_end(w, pl->dh + pl->flen, bytes);
}

/* TSO and USO: segment k carries payload [k * seg, ...) after the headers. */
static bool emit_segment(const struct vo_plan *pl, const struct vo_src *s, struct wr *w,
			 uint32_t k, uint64_t *bytes)
{
	uint32_t payload = pl->end - pl->hlen, off = k * pl->seg;
	uint32_t len = payload - off < pl->seg ? payload - off : pl->seg;
	bool last = k + 1 == pl->frames, tcp = pl->kind == VO_TSO;
	uint8_t h[VO_MAX_HDRS];
	memcpy(h, pl->hdrs, pl->hlen);
	uint8_t *ip = h + pl->l3, *l4 = h + pl->l4;
	uint32_t l4len = pl->hlen - pl->l4 + len;
	if (pl->v6) {
		put16(ip + 4, l4len);
	} else {
		put16(ip + 2, pl->iphl + l4len);
		put16(ip + 4, get16(ip + 4) + k); /* IP ID: one per segment */
		ip4_csum(ip, pl->iphl);
	}
	if (tcp) {
		put32(l4 + 4, get32(l4 + 4) + off);
		if (!last)
			l4[13] &= (uint8_t)~0x09; /* FIN, PSH: the last segment only */
		if (k)
			l4[13] &= (uint8_t)~0x80; /* CWR: the first segment only */
		l4[16] = l4[17] = 0;
	} else {
		put16(l4 + 4, l4len);
		l4[6] = l4[7] = 0;
	}
	/* the checksum: pseudo-header, L4 header, payload as written */
	w->sum.s = pseudo_sum(ip, pl->v6, tcp ? 6 : 17, l4len);
	w->sum.odd = 0;
	wr_put(w, h, pl->l4);
	w->summing = true;
	wr_put(w, l4, pl->hlen - pl->l4);
	wr_src(w, s, pl->sh + pl->hlen + off, len);
	wr_patch16(w, pl->l4 + (tcp ? 16 : 6), vale_l4_csum(w->sum.s, !tcp));
	return wr_end(w, pl->hlen + len, bytes);
}

/* UFO: fragment k carries bytes [k * seg, ...) of the L4 datagram (UDP header
 * first). The UDP checksum covers the whole datagram: summed over every
 * fragment and patched into the first when the last is written. */
static uint32_t ident6;

static bool emit_fragment(const struct vo_plan *pl, const struct vo_src *s, struct wr *w,
			  uint32_t k, struct rsum *dsum, uint8_t **ufield, uint32_t id6,
			  uint64_t *bytes)
{
	uint32_t dgram = pl->end - pl->l4, off = k * pl->seg;
	uint32_t len = dgram - off < pl->seg ? dgram - off : pl->seg;
	bool last = k + 1 == pl->frames;
	uint8_t h[VO_MAX_HDRS];
	memcpy(h, pl->hdrs, pl->l4);
	uint8_t *ip = h + pl->l3;
	uint32_t hl = pl->l4;
	if (pl->v6) { /* a fragment header after the fixed header */
		uint8_t *fh = h + pl->l4;
		fh[0] = 17;
		fh[1] = 0;
		put16(fh + 2, off | (last ? 0 : 1));
		put32(fh + 4, id6);
		ip[6] = 44;
		put16(ip + 4, 8 + len);
		hl += 8;
	} else {
		put16(ip + 2, pl->iphl + len);
		put16(ip + 6, (off >> 3) | (last ? 0 : 0x2000)); /* DF cleared: it is fragmented */
		ip4_csum(ip, pl->iphl);
	}
	wr_put(w, h, hl);
	if (k == 0) { /* the UDP header: length of the whole datagram, checksum later */
		uint8_t u[8];
		memcpy(u, pl->hdrs + pl->l4, 8);
		put16(u + 4, dgram);
		u[6] = u[7] = 0;
		*ufield = wr_at(w, hl + 6); /* in the first buffer: hl < 100 */
		rsum_add(dsum, u, 8);
		wr_put(w, u, 8);
		const uint32_t rest = len - 8;
		w->summing = true;
		w->sum = *dsum;
		wr_src(w, s, pl->sh + pl->l4 + 8, rest);
	} else {
		w->summing = true;
		w->sum = *dsum;
		wr_src(w, s, pl->sh + pl->l4 + off, len);
	}
	*dsum = w->sum;
	return wr_end(w, hl + len, bytes);
}

uint32_t vale_off_emit(const struct vo_plan *pl, const struct vo_src *s, const struct vo_out *o,
		       uint64_t *bytes, uint32_t *bad)
{
	struct wr w; /* not zeroed: wr_begin sets what a frame uses (bufs: 512 bytes) */
	w.o = o;
	uint32_t j = o->j, got = 0;
	*bad = 0;
	if (pl->kind == VO_COPY || pl->kind == VO_CSUM) {
		wr_begin(&w, j);
		if (emit_copy(pl, s, &w, bytes))
			got++;
		else
			(*bad)++;
		return got;
	}
	struct rsum dsum = {0, 0};
	uint8_t *ufield = NULL;
	uint32_t id6 = 0;
	if (pl->kind == VO_UFO) {
		const uint8_t *ip = pl->hdrs + pl->l3;
		dsum.s = pseudo_sum(ip, pl->v6, 17, pl->end - pl->l4);
		id6 = __atomic_add_fetch(&ident6, 1, __ATOMIC_RELAXED) ^ (vale_g_pid << 16);
	}
	for (uint32_t k = 0; k < pl->frames; k++) {
		wr_begin(&w, j);
		bool ok = pl->kind == VO_UFO ? emit_fragment(pl, s, &w, k, &dsum, &ufield, id6, bytes)
					     : emit_segment(pl, s, &w, k, bytes);
		if (ok)
			got++;
		else
			(*bad)++;
		j = vale_ring_next(w.j, o->n);
	}
	if (pl->kind == VO_UFO && ufield) {
		uint16_t c = vale_l4_csum(dsum.s, true);
		memcpy(ufield, &c, 2);
	}
	return got;
}
