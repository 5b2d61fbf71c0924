/*
 * vale vhost-user: split virtqueues (virtio 1.x, "Split Virtqueues").
 *
 * Queue 1 is the guest's TX: vh_dequeue() takes available chains, skips the
 * virtio-net header and either describes the frame in place for the switch
 * (a source table: pointers into guest memory; the chains are returned to the
 * used ring by vh_release once the switch has copied them) or copies it into
 * the caller's buffers (the switch port's TX ring buffers) and returns the
 * chain at once.
 * Queue 0 is the guest's RX: vh_enqueue() copies frames from the caller's
 * buffers (the port's RX ring buffers) into the guest's buffers, several
 * chains per frame with mergeable RX buffers (num_buffers in the header).
 *
 * Everything the guest wrote is read once into a local copy and checked:
 * an avail index more than a ring ahead of ours stops the queue (bad_index);
 * a head or next index outside the table, a chain longer than VH_MAX_CHAIN
 * (which also ends loops), a buffer not inside one memory region, the wrong
 * direction, a nested or misaligned indirect table drop that chain
 * (bad_desc), returned to the guest with length 0.
 *
 * Notifications: while a queue has work we ask the guest not to kick
 * (VRING_USED_F_NO_NOTIFY, or with EVENT_IDX by not moving avail_event); a
 * queue found empty turns kicks on, drains its kick eventfd and looks once
 * more before the caller sleeps. We call the guest after a batch only when
 * it asked (VRING_AVAIL_F_NO_INTERRUPT clear, or used_event crossed).
 */
#include "vhost.h"
#include "vale_app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int vh_vq_init(struct vh_vq *q)
{
	memset(q, 0, sizeof *q);
	q->kick_fd = q->call_fd = q->epfd = -1;
	q->seg = calloc(VH_MAX_CHAIN, sizeof *q->seg);
	q->held = calloc(VH_MAX_HELD, sizeof *q->held);
	if (!q->seg || !q->held) return -ENOMEM;
	pthread_mutex_init(&q->lock, NULL);
	return 0;
}

void vh_vq_fini(struct vh_vq *q)
{
	vh_vq_reset(q);
	free(q->seg);
	free(q->held);
	q->seg = NULL;
	q->held = NULL;
	pthread_mutex_destroy(&q->lock);
}

/* Back to the state before negotiation (caller holds q->lock). */
void vh_vq_reset(struct vh_vq *q)
{
	if (q->kick_fd >= 0) close(q->kick_fd);
	if (q->call_fd >= 0) close(q->call_fd);
	q->kick_fd = q->call_fd = -1;
	q->num = 0;
	q->addr_set = q->kicked = q->enabled = q->broken = q->notify_on = false;
	q->desc = NULL;
	q->avail = NULL;
	q->used = NULL;
	q->last_avail = q->last_used = q->signalled = 0;
}

/* Translate the ring addresses through the memory table (after
 * SET_VRING_ADDR, and again after a new table). */
int vh_vq_map(struct vh_dev *d, struct vh_vq *q)
{
	q->desc = NULL;
	q->avail = NULL;
	q->used = NULL;
	if (!q->addr_set || !q->num) return 0;
	if (!d->mem.n) return -EFAULT; /* rings before memory: nothing to find them in */
	uint64_t n = q->num;
	if ((q->desc_uva & 15) || (q->avail_uva & 1) || (q->used_uva & 3)) return -EINVAL;
	q->desc = (struct vring_desc *)vh_uva(&d->mem, q->desc_uva, 16 * n);
	q->avail = (struct vring_avail *)vh_uva(&d->mem, q->avail_uva, 6 + 2 * n);
	q->used = (struct vring_used *)vh_uva(&d->mem, q->used_uva, 6 + 8 * n);
	if (!q->desc || !q->avail || !q->used) {
		q->desc = NULL;
		q->avail = NULL;
		q->used = NULL;
		return -EFAULT;
	}
	return 0;
}

bool vh_vq_ready(const struct vh_vq *q)
{
	return q->num && q->desc && q->kicked && q->enabled && !q->broken;
}

/* ---------------- notifications ---------------- */

static inline volatile uint16_t *avail_event(struct vh_vq *q)
{
	return (volatile uint16_t *)&q->used->ring[q->num];
}
static inline uint16_t used_event(struct vh_vq *q)
{
	return LOAD_ACQ((volatile uint16_t *)&q->avail->ring[q->num]);
}

static void notify_on(struct vh_dev *d, struct vh_vq *q)
{
	if (d->event_idx)
		STORE_REL(avail_event(q), q->last_avail);
	else
		STORE_REL(&q->used->flags, (uint16_t)(LOAD_RLX(&q->used->flags) & ~VRING_USED_F_NO_NOTIFY));
	q->notify_on = true;
	FENCE(); /* our store before the guest's idx: else a kick could be lost */
}

static void notify_off(struct vh_dev *d, struct vh_vq *q)
{
	if (!d->event_idx)
		STORE_RLX(&q->used->flags, (uint16_t)(LOAD_RLX(&q->used->flags) | VRING_USED_F_NO_NOTIFY));
	q->notify_on = false;
}

static void drain_kick(struct vh_dev *d, struct vh_vq *q)
{
	uint64_t v;
	if (q->kick_fd >= 0 && read(q->kick_fd, &v, sizeof v) == sizeof v)
		VH_ADD(d, kicks_in, 1);
}

/* Publish used entries [old, q->last_used) and call the guest if it wants. */
static void publish(struct vh_dev *d, struct vh_vq *q, uint16_t old)
{
	uint16_t neu = q->last_used;
	if (neu == old) return;
	STORE_REL(&q->used->idx, neu);
	FENCE(); /* used idx before reading the guest's interrupt suppression */
	bool call;
	if (d->event_idx)
		call = (uint16_t)(neu - used_event(q) - 1) < (uint16_t)(neu - old);
	else
		call = !(LOAD_ACQ(&q->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	if (call && q->call_fd >= 0) {
		uint64_t one = 1;
		if (write(q->call_fd, &one, sizeof one) == sizeof one)
			VH_ADD(d, calls_out, 1);
	}
}

static void put_used(struct vh_vq *q, uint32_t id, uint32_t len)
{
	volatile struct vring_used_elem *e = &q->used->ring[q->last_used % q->num];
	e->id = id;
	e->len = len;
	q->last_used++;
}

/* Buffers the guest made available since we last looked; > num is a broken
 * ring. Returns -1 then (queue stopped). */
static int pending(struct vh_dev *d, struct vh_vq *q)
{
	uint16_t ai = LOAD_ACQ(&q->avail->idx);
	uint16_t n = (uint16_t)(ai - q->last_avail);
	if (n > q->num) {
		q->broken = true;
		VH_ADD(d, bad_index, 1);
		snprintf(d->last_err, sizeof d->last_err,
			 "queue %d: avail idx %u is %u ahead of ours (ring of %u): queue stopped",
			 (int)(q - d->vq), ai, n, q->num);
		return -1;
	}
	return n;
}

/* ---------------- descriptor chains ---------------- */

/* Walk the chain at `head` into q->seg; *total = its bytes. `write`: the
 * guest's RX buffers (every descriptor device-writable), else TX (none).
 * Returns the number of segments, or -1 for a chain that breaks the rules. */
static int walk_chain(struct vh_dev *d, struct vh_vq *q, uint32_t head, bool write,
		      uint64_t *total)
{
	const struct vring_desc *table = q->desc;
	uint32_t n = q->num, idx = head, count = 0;
	int nseg = 0;
	bool indirect = false;
	*total = 0;
	if (head >= n) return -1;
	for (;;) {
		if (++count > VH_MAX_CHAIN) return -1; /* too long, or a loop */
		struct vring_desc dsc;
		memcpy(&dsc, (const void *)&table[idx], sizeof dsc); /* read once */
		if (dsc.flags & VRING_DESC_F_INDIRECT) {
			if (!d->indirect || indirect || (dsc.flags & VRING_DESC_F_NEXT) ||
			    (dsc.len & 15) || dsc.len == 0 || dsc.len / 16 > VH_MAX_CHAIN ||
			    (dsc.addr & 15))
				return -1;
			table = (const struct vring_desc *)vh_gpa(&d->mem, dsc.addr, dsc.len);
			if (!table) return -1;
			n = dsc.len / 16;
			idx = 0;
			indirect = true;
			continue;
		}
		if (!!(dsc.flags & VRING_DESC_F_WRITE) != write) return -1;
		if (dsc.len) {
			uint8_t *p = vh_gpa(&d->mem, dsc.addr, dsc.len);
			if (!p) return -1;
			q->seg[nseg].p = p;
			q->seg[nseg].len = dsc.len;
			nseg++;
			*total += dsc.len;
		}
		if (!(dsc.flags & VRING_DESC_F_NEXT)) break;
		idx = dsc.next;
		if (idx >= n) return -1;
	}
	return nseg;
}

static void bad_chain(struct vh_dev *d, struct vh_vq *q, uint32_t head, const char *dir)
{
	VH_ADD(d, bad_desc, 1);
	snprintf(d->last_err, sizeof d->last_err,
		 "queue %d: bad %s descriptor chain at head %u (outside memory, loop, too long "
		 "or wrong direction): dropped",
		 (int)(q - d->vq), dir, head);
	if (head < q->num) put_used(q, head, 0);
}

/* ---------------- guest TX -> caller ---------------- */

/* Largest frame either way: 64 KiB of IP, Ethernet with a VLAN tag, a header. */
#define VH_MAX_FRAME (65535 + 64)

/* The guest's header asks for a checksum or segmentation, and the port has
 * no header to carry that (the guest negotiated send offloads without the
 * receive ones): the frame cannot go out as it is. */
static bool strip_refused(struct vh_dev *d, struct vh_vq *q, int nseg)
{
	if (!(d->features & (VH_BIT(VIRTIO_NET_F_CSUM) | VH_BIT(VIRTIO_NET_F_HOST_TSO4) |
			     VH_BIT(VIRTIO_NET_F_HOST_TSO6))))
		return false;
	if (nseg < 1 || q->seg[0].len < 2) return false;
	const volatile uint8_t *h = q->seg[0].p;
	return (h[0] & 1) || h[1] != 0; /* NEEDS_CSUM, a GSO type */
}

/* The bytes of a chain q->seg[0..nseg) from byte `skip`, `len` in all, as
 * consecutive pieces: the one walk both ways of taking a frame share. */
struct chain_cur {
	const struct vh_vq *q;
	int s, nseg;
	uint32_t skip, len;
};

static inline bool chain_next(struct chain_cur *c, const uint8_t **p, uint32_t *l)
{
	while (c->s < c->nseg && c->len) {
		const uint8_t *sp = c->q->seg[c->s].p;
		uint32_t sl = c->q->seg[c->s].len;
		c->s++;
		if (c->skip >= sl) {
			c->skip -= sl;
			continue;
		}
		sp += c->skip;
		sl -= c->skip;
		c->skip = 0;
		if (sl > c->len) sl = c->len;
		c->len -= sl;
		*p = sp;
		*l = sl;
		return true;
	}
	return false;
}

/* Copy `len` bytes of the chain in q->seg[0..nseg) starting at byte `skip`
 * into consecutive caller buffers of buf_size; returns buffers used. */
static uint32_t chain_to_bufs(struct vh_vq *q, int nseg, uint32_t skip, uint32_t len,
			      void *const *bufs, uint16_t *lens, uint16_t *flags, uint32_t bs)
{
	struct chain_cur c = {q, 0, nseg, skip, len};
	const uint8_t *p;
	uint32_t l, b = 0, off = 0;
	while (chain_next(&c, &p, &l)) {
		while (l) {
			if (off == bs) {
				lens[b] = (uint16_t)bs;
				flags[b] = VS_MOREFRAG;
				b++;
				off = 0;
			}
			uint32_t n = bs - off < l ? bs - off : l;
			memcpy((uint8_t *)bufs[b] + off, p, n);
			off += n;
			p += n;
			l -= n;
		}
	}
	lens[b] = (uint16_t)off;
	flags[b] = 0;
	return b + 1;
}

/*
 * A chain the switch can read where it is (vale_set_tx_source): its bytes
 * from `skip`, cut at buffer size, into ents[0..]; returns the pieces; 0
 * when it cannot (more than VALE_MAX_FRAGS pieces, or a first piece too short
 * for the switch's lookup: the Ethernet header, after the port's virtio-net
 * header `ph`, must be in the first piece, or whole in the second when the
 * first is exactly that header, as the copied frame would have it); NO_ROOM
 * when it needs more than `room` entries (it waits for the next batch). The pointers and lengths are the ones walk_chain checked against
 * the memory table: a guest rewriting its descriptors now changes nothing.
 */
#define NO_ROOM UINT32_MAX
static uint32_t chain_to_ents(struct vh_vq *q, int nseg, uint32_t skip, uint32_t len, uint32_t ph,
			      struct vale_src_slot *ents, uint32_t room, uint32_t bs)
{
	struct chain_cur cur = {q, 0, nseg, skip, len};
	const uint8_t *p;
	uint32_t l, k = 0, total = len;
	while (chain_next(&cur, &p, &l)) {
		while (l) {
			if (k == VALE_MAX_FRAGS) return 0;
			if (k == room) return NO_ROOM;
			uint32_t c = l < bs ? l : bs;
			ents[k].p = p;
			ents[k].len = (uint16_t)c;
			ents[k].flags = VS_MOREFRAG;
			ents[k]._pad = 0;
			k++;
			p += c;
			l -= c;
		}
	}
	if (k == 0) return 0; /* an empty frame: the copy path makes its one empty slot */
	ents[k - 1].flags = 0;
	if (total < ph + 14) return 0; /* a runt: copied, dropped by the switch as before */
	if (ents[0].len >= ph + 14) return k;
	if (ph && ents[0].len == ph && k >= 2 && ents[1].len >= 14) return k;
	return 0;
}

void vh_release(struct vh_dev *d)
{
	struct vh_vq *q = &d->vq[1];
	if (!q->holding) return;
	for (uint32_t i = 0; i < q->nheld; i++)
		put_used(q, q->held[i], 0);
	q->nheld = 0;
	q->holding = false;
	publish(d, q, q->held_old_used);
	pthread_mutex_unlock(&q->lock);
}

int vh_dequeue(struct vh_dev *d, void *const *bufs, uint16_t *lens, uint16_t *flags,
	       struct vale_src_slot *ents, uint32_t max, uint32_t bs, uint64_t *frames,
	       uint64_t *bytes)
{
	struct vh_vq *q = &d->vq[1];
	pthread_mutex_lock(&q->lock);
	if (!d->connected || !vh_vq_ready(q)) {
		pthread_mutex_unlock(&q->lock);
		return -ENETDOWN;
	}
	uint32_t port_hdr = d->port_hdr;
	uint16_t old_used = q->last_used;
	uint32_t b = 0;
	int r = 0, looked_again = 0;
	for (;;) {
		int avail = pending(d, q);
		if (avail < 0) {
			r = -ENETDOWN;
			break;
		}
		while (avail > 0 && b < max && (!ents || q->nheld < VH_MAX_HELD)) {
			uint32_t head = LOAD_RLX(&q->avail->ring[q->last_avail % q->num]);
			uint64_t total;
			int nseg = walk_chain(d, q, head, false, &total);
			if (nseg < 0 || total < d->hdr_len) {
				bad_chain(d, q, head, "TX");
				q->last_avail++;
				avail--;
				continue;
			}
			/* with offloads the guest's header travels with the frame */
			uint32_t skip = port_hdr ? 0 : d->hdr_len;
			if (!port_hdr && strip_refused(d, q, nseg)) {
				VH_ADD(d, tx_offload_refused, 1);
				put_used(q, head, 0);
				q->last_avail++;
				avail--;
				continue;
			}
			uint64_t len = total - skip;
			if (len > (uint64_t)VALE_MAX_FRAGS * bs || len > VH_MAX_FRAME) {
				VH_ADD(d, bad_desc, 1); /* larger than any frame we carry */
				put_used(q, head, 0);
				q->last_avail++;
				avail--;
				continue;
			}
			uint32_t need = len ? (uint32_t)((len + bs - 1) / bs) : 1;
			uint32_t direct = ents ? chain_to_ents(q, nseg, skip, (uint32_t)len, port_hdr,
							       ents + b, max - b, bs)
					       : 0;
			if (direct == NO_ROOM) {
				if (b > 0) break; /* the next batch reads it in place */
				direct = 0; /* the whole batch cannot hold its pieces: copied */
			}
			if (direct) { /* the switch reads it in place: one copy */
				for (uint32_t k = b; k < b + direct; k++) {
					lens[k] = ents[k].len;
					flags[k] = ents[k].flags;
				}
				b += direct;
				q->held[q->nheld++] = (uint16_t)head;
				VH_ADD(d, tx_direct, 1);
			} else {
				if (need > max - b) {
					if (b == 0) r = -ENOBUFS;
					break;
				}
				uint32_t nb = chain_to_bufs(q, nseg, skip, (uint32_t)len, bufs + b,
							    lens + b, flags + b, bs);
				for (uint32_t k = b; ents && k < b + nb; k++)
					ents[k] = (struct vale_src_slot){bufs[k], lens[k], flags[k], 0};
				b += nb;
				VH_ADD(d, tx_copied, 1);
				if (ents) /* held too: given back in ring order with the others */
					q->held[q->nheld++] = (uint16_t)head;
				else
					put_used(q, head, 0);
			}
			q->last_avail++;
			avail--;
			(*frames)++;
			*bytes += len - (len >= port_hdr ? port_hdr : 0);
		}
		if (b > 0 || q->last_used != old_used || r < 0 || looked_again) break;
		/* nothing: ask for kicks, then look once more (a frame may have come
		 * before the guest saw our request) */
		drain_kick(d, q);
		notify_on(d, q);
		looked_again = 1;
	}
	if (b > 0 && q->notify_on) notify_off(d, q);
	if (ents && b > 0) { /* the switch reads guest memory until vh_release */
		q->holding = true;
		q->held_old_used = old_used;
		return (int)b;
	}
	publish(d, q, old_used);
	pthread_mutex_unlock(&q->lock);
	return r < 0 ? r : (int)b;
}

/* ---------------- caller -> guest RX ---------------- */

/* Source position in the caller's buffers of one frame. */
struct src {
	void *const *bufs;
	const uint16_t *lens;
	uint32_t k, off;
};

/* Copy up to `room` bytes from the source into dst; returns bytes copied. */
static uint32_t copy_from_src(struct src *s, uint8_t *dst, uint32_t room, uint32_t *left)
{
	uint32_t done = 0;
	while (room && *left) {
		uint32_t avail = s->lens[s->k] - s->off;
		if (avail == 0) {
			s->k++;
			s->off = 0;
			continue;
		}
		uint32_t c = avail < room ? avail : room;
		memcpy(dst + done, (const uint8_t *)s->bufs[s->k] + s->off, c);
		s->off += c;
		done += c;
		room -= c;
		*left -= c;
	}
	return done;
}

int vh_enqueue(struct vh_dev *d, void *const *bufs, const uint16_t *lens, const uint16_t *flags,
	       uint32_t n, uint32_t bs, uint64_t *frames, uint64_t *bytes, uint64_t *drops)
{
	struct vh_vq *q = &d->vq[0];
	pthread_mutex_lock(&q->lock);
	if (!d->connected || !vh_vq_ready(q)) {
		pthread_mutex_unlock(&q->lock);
		return -ENETDOWN;
	}
	uint16_t old_used = q->last_used;
	/* hl: the guest's header; ph: the header the frames carry (0, or hl) */
	uint32_t i = 0, hl = d->hdr_len, ph = d->port_hdr;
	int avail = pending(d, q), looked_again = 0;
	bool starved = false;
	if (avail < 0) {
		pthread_mutex_unlock(&q->lock);
		return -ENETDOWN;
	}
	while (i < n) {
		/* the frame: a MOREFRAG chain of caller buffers */
		uint32_t nb = 0, len = 0, j = i;
		bool bad = false;
		for (;;) {
			if (j >= n) break;
			if (lens[j] > bs) bad = true;
			len += lens[j];
			if (!flags || !(flags[j] & VS_MOREFRAG)) {
				nb = j - i + 1;
				break;
			}
			j++;
		}
		if (nb == 0) break; /* incomplete chain: the caller sends the rest later */
		if (bad || len > VH_MAX_FRAME || len < ph) {
			(*drops)++;
			i += nb;
			continue;
		}
		uint16_t start_avail = q->last_avail, start_used = q->last_used;
		struct src s = {bufs + i, lens + i, 0, 0};
		uint32_t left = len, heads = 0;
		uint8_t *hdr = NULL;
		bool ok = true, retry = false, too_small = false;
		while (left || heads == 0) {
			if (!d->mrg && heads == 1) { /* one chain per frame, and it was short */
				ok = false;
				too_small = true;
				break;
			}
			if (avail == 0) {
				avail = pending(d, q);
				if (avail <= 0) {
					ok = false;
					break;
				}
			}
			uint32_t head = LOAD_RLX(&q->avail->ring[q->last_avail % q->num]);
			uint64_t cap;
			int nseg = walk_chain(d, q, head, true, &cap);
			if (nseg < 0 || (heads == 0 && q->seg[0].len < hl)) {
				/* give back what this frame took with length 0 (the guest
				 * drops those) and the bad chain, then start the frame again */
				for (uint32_t k = 0; k < heads; k++)
					q->used->ring[(uint16_t)(start_used + k) % q->num].len = 0;
				bad_chain(d, q, head, "RX");
				q->last_avail++;
				avail--;
				retry = true;
				break;
			}
			q->last_avail++;
			avail--;
			uint32_t written = 0;
			for (int sg = 0; sg < nseg; sg++) {
				uint8_t *p = q->seg[sg].p;
				uint32_t room = q->seg[sg].len;
				if (heads == 0 && sg == 0) {
					hdr = p;
					if (!ph) { /* a zero header: a complete frame */
						memset(hdr, 0, hl);
						p += hl;
						room -= hl;
						written += hl;
					}
				}
				written += copy_from_src(&s, p, room, &left);
				if (!left) break;
			}
			put_used(q, head, written);
			heads++;
		}
		if (retry) continue;
		if (!ok) {
			q->last_avail = start_avail;
			q->last_used = start_used;
			if (too_small) { /* the guest's buffer is too small: drop */
				(*drops)++;
				VH_ADD(d, rx_drops, 1);
				i += nb;
				continue;
			}
			if (avail < 0) break; /* broken ring */
			if (!looked_again) { /* ask for a kick, look once more */
				drain_kick(d, q);
				notify_on(d, q);
				looked_again = 1;
				avail = pending(d, q);
				if (avail > 0) continue;
			}
			starved = true;
			break;
		}
		if (d->mrg) {
			uint16_t nh = (uint16_t)heads;
			memcpy(hdr + 10, &nh, 2);
		}
		(*frames)++;
		*bytes += len - ph;
		i += nb;
	}
	if (starved)
		VH_ADD(d, rx_no_bufs, 1);
	else if (q->notify_on)
		notify_off(d, q);
	publish(d, q, old_used);
	bool broken = q->broken;
	pthread_mutex_unlock(&q->lock);
	if (broken && i == 0) return -ENETDOWN;
	return (int)i;
}
