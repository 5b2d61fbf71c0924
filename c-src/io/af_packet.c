/*
 * vale kernel I/O: the AF_PACKET backend (TPACKET_V2 or V3 RX ring, TX ring
 * flushed by one sendto per batch). Its state (struct pkt) is private to
 * this file; io.c reaches it only through vale_io_packet_ops.
 *
 * With VIO_F_VNET_HDR (PACKET_VNET_HDR) the rings are not used: the kernel
 * can put a virtio-net header in front of ring frames, but a GSO super-frame
 * needs a 64 KiB ring frame (V2: every frame; TX: every frame), and the ring
 * costs a second copy that such frames feel. recvmmsg()/recvmsg() put each
 * frame straight into the caller's buffers (one copy, as the ring's own copy
 * into the ring), sendmmsg() gathers a batch from them (one system call per
 * batch, as the TX ring's kick): see the "vnet" section below.
 */
#include "io_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

/* ------------------------------------------------------------------ */
/* AF_PACKET backend */

struct pkt {
	uint8_t *map;
	size_t map_len;
	int ver;
	/* RX */
	uint8_t *rx;
	uint32_t rx_block_size, rx_blocks;
	uint32_t rx_frame_size, rx_frames; /* V2 */
	uint32_t rx_cur;                   /* V3 block / V2 frame */
	uint8_t *rx_pkt;                   /* V3: next packet in the current block (NULL: none) */
	uint32_t rx_left;                  /* V3: packets left in it */
	/* TX */
	uint8_t *tx;
	uint32_t tx_frame_size, tx_frames, tx_cur, tx_data_off;
	uint32_t tx_block_size, tx_per_blk;
	uint32_t tx_last; /* last frame queued (to see if the kernel took it) */
	int need_kick;
	int ignore_outgoing;
	/* vnet: recvmsg/sendmmsg (NULL otherwise) */
	struct pkt_vnet *v;
};

#define VNET_KHDR 10         /* the kernel's header (PACKET_VNET_HDR): struct virtio_net_hdr */
#define VNET_MSGS 64         /* frames per sendmmsg() */
#define VNET_IOVS (VNET_MSGS * 4 + VALE_MAX_FRAGS + 2)

#define VNET_RX_MSGS 32      /* frames per recvmmsg() */
#define VNET_SMALL_RUN 64    /* one-buffer frames in a row that switch back to recvmmsg */

/* A received frame waiting, contiguous (header included), for buffers. */
struct vnet_pend {
	uint8_t *p;
	uint32_t len;
};

union vnet_cmsg {
	struct cmsghdr c;
	uint8_t b[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
};

struct pkt_vnet {
	/* per-frame mode: a frame that did not fit in the caller's buffers */
	uint8_t *stage;
	uint32_t stage_size;
	/* batch mode: per message, room for its first buffer then its overflow */
	uint8_t *slots;
	uint32_t slot_size;
	/* frames received but not yet handed over, in order (each in stage or a slot) */
	struct vnet_pend pend[VNET_RX_MSGS + 1];
	uint32_t npend, pend_head;
	int big;             /* 1: super-frames flow: one recvmsg per frame, no second copy */
	uint32_t small_run;  /* one-buffer frames in a row while big */
	struct mmsghdr rmsg[VNET_RX_MSGS];
	struct iovec riov[VNET_RX_MSGS][3];
	union vnet_cmsg rcb[VNET_RX_MSGS];
	/* TX */
	struct mmsghdr msg[VNET_MSGS];
	struct iovec iov[VNET_IOVS];
	uint16_t first_buf[VNET_MSGS]; /* the batch index of each message's first buffer */
	uint16_t nbufs[VNET_MSGS];
};

static uint32_t pow2_ge(uint32_t x)
{
	uint32_t p = 1;
	while (p < x) p <<= 1;
	return p;
}

/* The socket and its options: version, loss, qdisc bypass, outgoing. */
static int pkt_socket(struct vale_io *h, struct pkt *p, const char *ifname)
{
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		int e = errno;
		return vio_err(-e, "AF_PACKET socket for '%s': %s%s", ifname, strerror(e),
			       vio_priv_hint(e, "CAP_NET_RAW"));
	}
	h->fd = fd;
	int one = 1;
	p->ver = (h->flags & VIO_F_RX_V3) ? TPACKET_V3 : TPACKET_V2;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &p->ver, sizeof p->ver) < 0) {
		int e = errno;
		return vio_err(-e, "'%s': PACKET_VERSION %s: %s", ifname,
			       p->ver == TPACKET_V3 ? "v3" : "v2", strerror(e));
	}
	/* A malformed TX frame must not wedge the ring (without PACKET_LOSS the
	 * kernel stops at it): it is skipped. We validate lengths first anyway. */
	setsockopt(fd, SOL_PACKET, PACKET_LOSS, &one, sizeof one);
	if (h->flags & VIO_F_QDISC_BYPASS) {
		if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0) {
			int e = errno;
			return vio_err(-e, "'%s': PACKET_QDISC_BYPASS: %s", ifname, strerror(e));
		}
	}
	if (!(h->flags & VIO_F_SEE_OUTGOING))
		p->ignore_outgoing =
			setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) == 0;
	return 0;
}

/* The RX ring for frames up to maxf bytes: V3 blocks or V2 frames. */
static int pkt_rx_ring(struct vale_io *h, struct pkt *p, const char *ifname,
		       const struct vale_io_opts *o, uint32_t maxf)
{
	int r;
	uint32_t bs = o && o->rx_block_size ? o->rx_block_size : 256u << 10;
	bs = pow2_ge(bs < 4096 ? 4096 : bs);
	if (p->ver == TPACKET_V3) {
		while (bs < maxf + 256) bs <<= 1;
	}
	uint32_t nblk = o && o->rx_blocks ? o->rx_blocks : 16;
	if (nblk < 2) nblk = 2;
	p->rx_block_size = bs;
	p->rx_blocks = nblk;
	if (p->ver == TPACKET_V3) {
		struct tpacket_req3 rq = {
			.tp_block_size = bs,
			.tp_block_nr = nblk,
			.tp_frame_size = 2048,
			.tp_frame_nr = bs / 2048 * nblk,
			.tp_retire_blk_tov = o && o->block_tov_ms ? o->block_tov_ms : 1,
		};
		r = setsockopt(h->fd, SOL_PACKET, PACKET_RX_RING, &rq, sizeof rq);
	} else {
		/* V2: frame = header (mac at offset 66 for Ethernet) + frame */
		uint32_t fs = (80 + maxf + 15) & ~15u;
		fs = fs <= 2048 ? 2048 : (fs + 2047) & ~2047u;
		while (bs < fs) bs <<= 1;
		p->rx_block_size = bs;
		p->rx_frame_size = fs;
		p->rx_frames = bs / fs * nblk;
		struct tpacket_req rq = {
			.tp_block_size = bs,
			.tp_block_nr = nblk,
			.tp_frame_size = fs,
			.tp_frame_nr = p->rx_frames,
		};
		r = setsockopt(h->fd, SOL_PACKET, PACKET_RX_RING, &rq, sizeof rq);
	}
	if (r < 0) {
		int e = errno;
		return vio_err(-e, "'%s': PACKET_RX_RING (%u blocks of %u bytes): %s", ifname, nblk,
			       bs, strerror(e));
	}
	return 0;
}

/* The TX ring: fixed frames, data at hdrlen - sizeof(sockaddr_ll). Returns
 * its block count. */
static int pkt_tx_ring(struct vale_io *h, struct pkt *p, const char *ifname,
		       const struct vale_io_opts *o, uint32_t maxf)
{
	int r;
	p->tx_data_off = (p->ver == TPACKET_V3 ? TPACKET3_HDRLEN : TPACKET2_HDRLEN) -
			 sizeof(struct sockaddr_ll);
	uint32_t tfs = (p->tx_data_off + maxf + 15) & ~15u;
	tfs = tfs <= 2048 ? 2048 : (tfs + 2047) & ~2047u;
	uint32_t tbs = 65536;
	while (tbs < tfs) tbs <<= 1;
	uint32_t tframes = o && o->tx_frames ? o->tx_frames : 1024;
	uint32_t per_blk = tbs / tfs;
	uint32_t tblk = (tframes + per_blk - 1) / per_blk;
	p->tx_frame_size = tfs;
	p->tx_frames = per_blk * tblk;
	p->tx_block_size = tbs;
	p->tx_per_blk = per_blk;
	if (p->ver == TPACKET_V3) {
		struct tpacket_req3 rq = {
			.tp_block_size = tbs,
			.tp_block_nr = tblk,
			.tp_frame_size = tfs,
			.tp_frame_nr = p->tx_frames,
		};
		r = setsockopt(h->fd, SOL_PACKET, PACKET_TX_RING, &rq, sizeof rq);
	} else {
		struct tpacket_req rq = {
			.tp_block_size = tbs,
			.tp_block_nr = tblk,
			.tp_frame_size = tfs,
			.tp_frame_nr = p->tx_frames,
		};
		r = setsockopt(h->fd, SOL_PACKET, PACKET_TX_RING, &rq, sizeof rq);
	}
	if (r < 0) {
		int e = errno;
		return vio_err(-e, "'%s': PACKET_TX_RING (%u frames of %u bytes): %s", ifname,
			       p->tx_frames, tfs, strerror(e));
	}
	return (int)tblk;
}

/* Map both rings (RX first, then TX, as the kernel lays them out). */
static int pkt_map(struct vale_io *h, struct pkt *p, const char *ifname, uint32_t tx_blocks)
{
	size_t rx_len = (size_t)p->rx_block_size * p->rx_blocks;
	size_t tx_len = (size_t)p->tx_block_size * tx_blocks;
	p->map_len = rx_len + tx_len;
	p->map = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, h->fd, 0);
	if (p->map == MAP_FAILED) {
		int e = errno;
		p->map = NULL;
		return vio_err(-e, "'%s': mmap of the packet rings (%zu bytes): %s", ifname,
			       p->map_len, strerror(e));
	}
	p->rx = p->map;
	p->tx = p->map + rx_len;
	p->tx_last = UINT32_MAX;
	return 0;
}

/* Bind to the interface (and join it promiscuously if asked). */
static int pkt_bind(struct vale_io *h, const char *ifname)
{
	int sndbuf = 8 << 20;
	if (setsockopt(h->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
		setsockopt(h->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = (int)h->ifindex,
	};
	if (bind(h->fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
		int e = errno;
		return vio_err(-e, "'%s': bind: %s", ifname, strerror(e));
	}
	if (h->flags & VIO_F_PROMISC) {
		struct packet_mreq mr = {.mr_ifindex = (int)h->ifindex, .mr_type = PACKET_MR_PROMISC};
		if (setsockopt(h->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) {
			int e = errno;
			return vio_err(-e, "'%s': promiscuous mode: %s%s", ifname, strerror(e),
				       vio_priv_hint(e, "CAP_NET_ADMIN"));
		}
	}
	return 0;
}

static int pkt_open_vnet(struct vale_io *h, struct pkt *p, const char *ifname,
			 const struct vale_io_opts *o);

static int pkt_open(struct vale_io *h, const char *ifname, const struct vale_io_opts *o)
{
	struct pkt *p = calloc(1, sizeof *p);
	if (!p) return vio_err(-ENOMEM, "out of memory");
	h->priv = p;
	if (h->flags & VIO_F_VNET_HDR) return pkt_open_vnet(h, p, ifname, o);
	int r = pkt_socket(h, p, ifname);
	if (r < 0) return r;
	/* geometry: a frame as large as the MTU plus Ethernet and one VLAN tag */
	uint32_t maxf = h->mtu + 14 + 4;
	r = pkt_rx_ring(h, p, ifname, o, maxf);
	if (r < 0) return r;
	int tx_blocks = pkt_tx_ring(h, p, ifname, o, maxf);
	if (tx_blocks < 0) return tx_blocks;
	r = pkt_map(h, p, ifname, (uint32_t)tx_blocks);
	if (r < 0) return r;
	r = pkt_bind(h, ifname);
	if (r < 0) return r;
	h->max_frame = maxf;
	if (maxf > p->tx_frame_size - p->tx_data_off) h->max_frame = p->tx_frame_size - p->tx_data_off;
	snprintf(h->mode, sizeof h->mode, "af_packet rx %s tx %s%s%s",
		 p->ver == TPACKET_V3 ? "v3" : "v2", p->ver == TPACKET_V3 ? "v3" : "v2",
		 (h->flags & VIO_F_QDISC_BYPASS) ? " qdisc-bypass" : "",
		 p->ignore_outgoing || (h->flags & VIO_F_SEE_OUTGOING) ? "" : " (sees outgoing)");
	return 0;
}

static void pkt_close(struct vale_io *h)
{
	struct pkt *p = h->priv;
	if (!p) return;
	if (p->map) munmap(p->map, p->map_len);
	if (p->v) {
		free(p->v->stage);
		free(p->v->slots);
	}
	free(p->v);
	free(p);
	h->priv = NULL;
}

/* Hand one received frame to the caller. Returns buffers used, 0 if the
 * frame was dropped (counted), -1 if it needs more than `room` buffers. */
static int deliver(struct vale_io *h, uint32_t status, uint8_t *data, uint32_t snaplen,
		   uint32_t len, uint32_t vlan_tci, uint32_t vlan_tpid, void *const *bufs,
		   uint16_t *lens, uint16_t *flags, uint32_t room)
{
	if (snaplen < len || snaplen < 14) {
		h->st.rx_truncated++;
		return 0;
	}
	uint32_t tag = (status & TP_STATUS_VLAN_VALID) ? 4 : 0;
	uint32_t total = len + tag;
	uint32_t k = vio_frame_bufs(total, h->buf_size);
	if (k > VALE_MAX_FRAGS) {
		h->st.rx_oversize++;
		return 0;
	}
	if (k > room) return -1;
	if ((status & TP_STATUS_CSUMNOTREADY) && !(h->flags & VIO_F_NO_CSUM_FIX))
		h->st.rx_csum_fixed += (uint64_t)vio_csum_complete(&(struct vio_seg){data, len}, 1, 0);
	if (!tag) {
		struct vio_seg s = {data, len};
		vio_scatter_segs(&s, 1, bufs, lens, flags, h->buf_size);
	} else {
		/* the kernel took the 802.1Q tag out: put it back after the MACs */
		uint16_t tpid = (status & TP_STATUS_VLAN_TPID_VALID) && vlan_tpid ? (uint16_t)vlan_tpid
										   : 0x8100;
		uint8_t t[4] = {(uint8_t)(tpid >> 8), (uint8_t)tpid, (uint8_t)(vlan_tci >> 8),
				(uint8_t)vlan_tci};
		struct vio_seg s[3] = {{data, 12}, {t, 4}, {data + 12, len - 12}};
		vio_scatter_segs(s, 3, bufs, lens, flags, h->buf_size);
	}
	h->st.rx_pkts++;
	h->st.rx_bytes += total;
	return (int)k;
}

static int pkt_recv_v3(struct vale_io *h, struct pkt *p, void *const *bufs, uint16_t *lens,
		       uint16_t *flags, uint32_t max)
{
	uint32_t filled = 0;
	while (filled < max) {
		struct tpacket_block_desc *bd =
			(void *)(p->rx + (size_t)p->rx_cur * p->rx_block_size);
		if (!p->rx_pkt) {
			if (!(LOAD_ACQ(&bd->hdr.bh1.block_status) & TP_STATUS_USER)) break;
			p->rx_left = bd->hdr.bh1.num_pkts;
			p->rx_pkt = (uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt;
		}
		uint8_t *end = (uint8_t *)bd + p->rx_block_size;
		while (p->rx_left && filled < max) {
			struct tpacket3_hdr *th = (void *)p->rx_pkt;
			if ((uint8_t *)(th + 1) > end || p->rx_pkt + th->tp_mac + th->tp_snaplen > end) {
				p->rx_left = 0; /* cannot happen with a sane kernel */
				break;
			}
			int k = deliver(h, th->tp_status, p->rx_pkt + th->tp_mac, th->tp_snaplen,
					th->tp_len, th->hv1.tp_vlan_tci, th->hv1.tp_vlan_tpid,
					bufs + filled, lens + filled, flags + filled, max - filled);
			if (k < 0) goto out;
			filled += (uint32_t)k;
			p->rx_pkt += th->tp_next_offset;
			p->rx_left--;
		}
		if (!p->rx_left) {
			STORE_REL(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL);
			p->rx_pkt = NULL;
			p->rx_cur = p->rx_cur + 1 == p->rx_blocks ? 0 : p->rx_cur + 1;
		}
	}
out:
	return (int)filled;
}

static int pkt_recv_v2(struct vale_io *h, struct pkt *p, void *const *bufs, uint16_t *lens,
		       uint16_t *flags, uint32_t max)
{
	uint32_t filled = 0, per_blk = p->rx_block_size / p->rx_frame_size;
	while (filled < max) {
		uint32_t b = p->rx_cur / per_blk, f = p->rx_cur % per_blk;
		uint8_t *fr = p->rx + (size_t)b * p->rx_block_size + (size_t)f * p->rx_frame_size;
		struct tpacket2_hdr *th = (void *)fr;
		uint32_t st = LOAD_ACQ(&th->tp_status);
		if (!(st & TP_STATUS_USER)) break;
		int k = 0;
		if (th->tp_mac + th->tp_snaplen <= p->rx_frame_size)
			k = deliver(h, st, fr + th->tp_mac, th->tp_snaplen, th->tp_len,
				    th->tp_vlan_tci, th->tp_vlan_tpid, bufs + filled, lens + filled,
				    flags + filled, max - filled);
		if (k < 0) break;
		filled += (uint32_t)k;
		STORE_REL(&th->tp_status, TP_STATUS_KERNEL);
		p->rx_cur = p->rx_cur + 1 == p->rx_frames ? 0 : p->rx_cur + 1;
	}
	return (int)filled;
}

static int vnet_recv(struct vale_io *h, struct pkt *p, void *const *bufs, uint16_t *lens,
		     uint16_t *flags, uint32_t max);
static int vnet_send(struct vale_io *h, struct pkt *p, void *const *bufs, const uint16_t *lens,
		     const uint16_t *flags, uint32_t n);

static int pkt_recv(struct vale_io *h, void *const *bufs, uint16_t *lens, uint16_t *flags,
		 uint32_t max)
{
	struct pkt *p = h->priv;
	if (p->v) return vnet_recv(h, p, bufs, lens, flags, max);
	uint64_t before = h->st.rx_pkts;
	int r = p->ver == TPACKET_V3 ? pkt_recv_v3(h, p, bufs, lens, flags, max)
				     : pkt_recv_v2(h, p, bufs, lens, flags, max);
	if (h->st.rx_pkts != before) h->st.rx_batches++;
	if (r == 0 && max > 0) {
		/* is a frame waiting that does not fit in `max` buffers? */
		uint32_t need = 0;
		if (p->ver == TPACKET_V3 && p->rx_pkt && p->rx_left) {
			struct tpacket3_hdr *th = (void *)p->rx_pkt;
			uint32_t tag = (th->tp_status & TP_STATUS_VLAN_VALID) ? 4 : 0;
			need = vio_frame_bufs(th->tp_len + tag, h->buf_size);
		}
		if (p->ver == TPACKET_V2) {
			uint32_t per_blk = p->rx_block_size / p->rx_frame_size;
			uint8_t *fr = p->rx + (size_t)(p->rx_cur / per_blk) * p->rx_block_size +
				      (size_t)(p->rx_cur % per_blk) * p->rx_frame_size;
			struct tpacket2_hdr *th = (void *)fr;
			uint32_t st = LOAD_ACQ(&th->tp_status);
			if (st & TP_STATUS_USER)
				need = vio_frame_bufs(th->tp_len + ((st & TP_STATUS_VLAN_VALID) ? 4 : 0),
						      h->buf_size);
		}
		if (need > max)
			return vio_err(-ENOBUFS, "'%s': the next frame needs %u buffers, %u given",
				       h->ifname, need, max);
	}
	return r;
}

/* Copy the frame in bufs[i..i+nb) to dst (contiguous). */
static void gather(uint8_t *dst, void *const *bufs, const uint16_t *lens, uint32_t nb)
{
	for (uint32_t j = 0; j < nb; j++) {
		memcpy(dst, bufs[j], lens[j]);
		dst += lens[j];
	}
}

static inline uint8_t *tx_frame_at(struct pkt *p, uint32_t i)
{
	return p->tx + (size_t)(i / p->tx_per_blk) * p->tx_block_size +
	       (size_t)(i % p->tx_per_blk) * p->tx_frame_size;
}

static int pkt_kick(struct vale_io *h, struct pkt *p)
{
	for (;;) {
		ssize_t r = sendto(h->fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
		if (r >= 0) break;
		int e = errno;
		if (e == EINTR) continue;
		if (e == EAGAIN || e == ENOBUFS) {
			p->need_kick = 1;
			return 0;
		}
		p->need_kick = 1;
		if (e == ENXIO || e == ENODEV) {
			int c = vio_check_alive(h);
			return c < 0 ? c : vio_err(-e, "'%s': send: %s", h->ifname, strerror(e));
		}
		if (e == ENETDOWN) return vio_err(-ENETDOWN, "interface '%s' is down", h->ifname);
		return vio_err(-e, "'%s': send: %s", h->ifname, strerror(e));
	}
	/* frames the kernel did not get to (socket buffer full) need another kick */
	p->need_kick = 0;
	if (p->tx_last != UINT32_MAX) {
		struct tpacket2_hdr *t2 = (void *)tx_frame_at(p, p->tx_last);
		struct tpacket3_hdr *t3 = (void *)t2;
		uint32_t st = LOAD_ACQ(p->ver == TPACKET_V3 ? &t3->tp_status : &t2->tp_status);
		if (st == TP_STATUS_SEND_REQUEST) p->need_kick = 1;
	}
	return 0;
}

static int pkt_send(struct vale_io *h, void *const *bufs, const uint16_t *lens,
		 const uint16_t *flags, uint32_t n)
{
	struct pkt *p = h->priv;
	if (p->v) return vnet_send(h, p, bufs, lens, flags, n);
	uint32_t i = 0, queued = 0;
	uint64_t bytes = 0;
	while (i < n) {
		uint32_t nb, len = vio_gather_len(lens, flags, i, n, h->buf_size, &nb);
		if (!nb) break; /* incomplete chain: wait for the rest */
		if (len < 14 || len > h->max_frame || nb > VALE_MAX_FRAGS) {
			h->st.tx_drops++;
			i += nb;
			continue;
		}
		uint8_t *fr = tx_frame_at(p, p->tx_cur);
		volatile uint32_t *stp = p->ver == TPACKET_V3 ? &((struct tpacket3_hdr *)fr)->tp_status
							      : &((struct tpacket2_hdr *)fr)->tp_status;
		uint32_t st = LOAD_ACQ(stp);
		if (st & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING)) {
			h->st.tx_ring_full++;
			break;
		}
		if (st & TP_STATUS_WRONG_FORMAT) h->st.tx_errors++;
		gather(fr + p->tx_data_off, bufs + i, lens + i, nb);
		if (p->ver == TPACKET_V3) {
			struct tpacket3_hdr *t = (void *)fr;
			t->tp_next_offset = 0;
			t->tp_len = len;
			t->tp_snaplen = len;
		} else {
			struct tpacket2_hdr *t = (void *)fr;
			t->tp_len = len;
			t->tp_snaplen = len;
		}
		STORE_REL(stp, TP_STATUS_SEND_REQUEST);
		p->tx_last = p->tx_cur;
		p->tx_cur = p->tx_cur + 1 == p->tx_frames ? 0 : p->tx_cur + 1;
		queued++;
		bytes += len;
		i += nb;
	}
	if (queued || p->need_kick) {
		int r = pkt_kick(h, p);
		if (r < 0 && !queued) return r;
	}
	if (queued) {
		h->st.tx_pkts += queued;
		h->st.tx_bytes += bytes;
		h->st.tx_batches++;
	}
	return (int)i;
}

static void pkt_stats(struct vale_io *h)
{
	struct pkt *p = h->priv;
	if (p->v) {
		/* no ring: tp_drops is what the socket buffer could not take */
		struct tpacket_stats s;
		socklen_t l = sizeof s;
		if (getsockopt(h->fd, SOL_PACKET, PACKET_STATISTICS, &s, &l) == 0)
			h->st.rx_kernel_drops += s.tp_drops;
		return;
	}
	/* PACKET_STATISTICS resets the kernel's counters: accumulate */
	if (p->ver == TPACKET_V3) {
		struct tpacket_stats_v3 s;
		socklen_t l = sizeof s;
		if (getsockopt(h->fd, SOL_PACKET, PACKET_STATISTICS, &s, &l) == 0) {
			h->st.rx_kernel_drops += s.tp_drops;
			h->st.kernel_freeze += s.tp_freeze_q_cnt;
		}
	} else {
		struct tpacket_stats s;
		socklen_t l = sizeof s;
		if (getsockopt(h->fd, SOL_PACKET, PACKET_STATISTICS, &s, &l) == 0)
			h->st.rx_kernel_drops += s.tp_drops;
	}
}

static int pkt_tx_pending(struct vale_io *h)
{
	return ((struct pkt *)h->priv)->need_kick ? 1 : 0;
}

/* the sender's poll: push what is queued */
static void pkt_flush(struct vale_io *h)
{
	struct pkt *p = h->priv;
	if (p->need_kick) pkt_kick(h, p);
}

/* ------------------------------------------------------------------ */
/* vnet: PACKET_VNET_HDR, recvmsg/sendmmsg over the caller's buffers */

#ifndef PACKET_AUXDATA
#define PACKET_AUXDATA 8
#endif
#define VNET_F_NEEDS_CSUM 1

static int pkt_open_vnet(struct vale_io *h, struct pkt *p, const char *ifname,
			 const struct vale_io_opts *o)
{
	h->vnet_len = o && o->vnet_hdr_len ? o->vnet_hdr_len : VNET_KHDR;
	if (h->vnet_len != 10 && h->vnet_len != 12)
		return vio_err(-EINVAL, "virtio-net header length %u (10 or 12)", h->vnet_len);
	p->v = calloc(1, sizeof *p->v);
	if (!p->v) return vio_err(-ENOMEM, "out of memory");
	p->v->stage_size = VALE_MAX_FRAGS * h->buf_size + VIO_VNET_MAX_FRAME + 64;
	p->v->stage = malloc(p->v->stage_size);
	p->v->slot_size = h->buf_size + VIO_VNET_MAX_FRAME + 64;
	p->v->slots = malloc((size_t)p->v->slot_size * VNET_RX_MSGS);
	if (!p->v->stage || !p->v->slots) return vio_err(-ENOMEM, "out of memory");
	int r = pkt_socket(h, p, ifname);
	if (r < 0) return r;
	int one = 1;
	/* The kernel's header is always the 10-byte one: a 12-byte header in our
	 * buffers is read and written around its last two bytes (num_buffers),
	 * which works on every kernel (PACKET_VNET_HDR_SZ is 6.2+). */
	if (setsockopt(h->fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) {
		int e = errno;
		return vio_err(-e, "'%s': PACKET_VNET_HDR: %s", ifname, strerror(e));
	}
	/* VLAN tags come as metadata: put back into the frame (auxdata says) */
	setsockopt(h->fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one);
	/* no ring: the socket buffer holds what waits (super-frames are large) */
	int rcvbuf = 16 << 20;
	if (setsockopt(h->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
		setsockopt(h->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	r = pkt_bind(h, ifname);
	if (r < 0) return r;
	h->max_frame = VIO_VNET_MAX_FRAME;
	snprintf(h->mode, sizeof h->mode, "af_packet vnet_hdr %u mmsg%s%s", h->vnet_len,
		 (h->flags & VIO_F_QDISC_BYPASS) ? " qdisc-bypass" : "",
		 p->ignore_outgoing || (h->flags & VIO_F_SEE_OUTGOING) ? "" : " (sees outgoing)");
	return 0;
}

static int vnet_err(struct vale_io *h, int e, const char *what)
{
	if (e == ENETDOWN) return vio_err(-ENETDOWN, "interface '%s' is down", h->ifname);
	if (e == ENXIO || e == ENODEV) {
		int c = vio_check_alive(h);
		if (c < 0) return c;
	}
	return vio_err(-e, "'%s': %s: %s", h->ifname, what, strerror(e));
}

static inline uint16_t rd16(const uint8_t *b) { return (uint16_t)(b[0] | b[1] << 8); }
static inline void wr16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}

/* The slow path of a received frame, contiguous in stage[0..len) (header
 * included): put the 802.1Q tag back (the header's offsets move with the
 * frame). Returns the new length. */
static uint32_t vnet_put_tag(struct vale_io *h, uint8_t *f, uint32_t len,
			     const struct tpacket_auxdata *aux)
{
	uint32_t L = h->vnet_len;
	uint16_t tpid = (aux->tp_status & TP_STATUS_VLAN_TPID_VALID) && aux->tp_vlan_tpid
				? aux->tp_vlan_tpid
				: 0x8100;
	memmove(f + L + 16, f + L + 12, len - L - 12);
	uint8_t *t = f + L + 12;
	t[0] = (uint8_t)(tpid >> 8);
	t[1] = (uint8_t)tpid;
	t[2] = (uint8_t)(aux->tp_vlan_tci >> 8);
	t[3] = (uint8_t)aux->tp_vlan_tci;
	if (f[1] != VIO_VNET_GSO_NONE) wr16(f + 2, (uint16_t)(rd16(f + 2) + 4)); /* hdr_len */
	if (f[0] & VNET_F_NEEDS_CSUM) wr16(f + 6, (uint16_t)(rd16(f + 6) + 4)); /* csum_start */
	return len + 4;
}

/*
 * Receiving with a header. Two modes, so that each kind of traffic is
 * copied once (by the kernel) and MTU-sized frames cost no system call each:
 *
 *  batch (the default)  one recvmmsg() for up to VNET_RX_MSGS frames, each
 *                       message into one caller buffer (its overflow, for a
 *                       larger frame, into a staging slot). One-buffer frames
 *                       are where they belong; at the first larger frame the
 *                       rest of the batch is made contiguous in its slots and
 *                       handed over from there (a second copy, once), and the
 *                       handle turns to per-frame mode.
 *  per-frame            one recvmsg() per frame over all the buffers left,
 *                       so a 64 KiB super-frame lands in its 33 buffers
 *                       directly; VNET_SMALL_RUN one-buffer frames in a row
 *                       turn the handle back to batch mode.
 *
 * Frames received but not handed over yet (no buffers left) wait in
 * v->pend, handed over first by the next call; nothing is received while
 * any waits (their slots and stage are in use).
 */

/* The auxdata of a received message (VLAN tag), or NULL. */
static const struct tpacket_auxdata *vnet_aux(struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm))
		if (cm->cmsg_level == SOL_PACKET && cm->cmsg_type == PACKET_AUXDATA &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(struct tpacket_auxdata)))
			return (const void *)CMSG_DATA(cm);
	return NULL;
}

static inline int vnet_tagged(const struct tpacket_auxdata *aux)
{
	return aux && (aux->tp_status & TP_STATUS_VLAN_VALID);
}

/* Finish a frame made contiguous at f (header included): tag back, header
 * done; queue it. Returns 0, or -1 when it was dropped (counted). */
static int vnet_queue(struct vale_io *h, struct pkt_vnet *v, uint8_t *f, uint32_t len,
		      const struct tpacket_auxdata *aux)
{
	if (vnet_tagged(aux)) len = vnet_put_tag(h, f, len, aux);
	vio_vnet_rx_done(h, f);
	if (vio_frame_bufs(len, h->buf_size) > VALE_MAX_FRAGS) {
		h->st.rx_oversize++;
		return -1;
	}
	uint32_t at = (v->pend_head + v->npend) % (VNET_RX_MSGS + 1);
	v->pend[at] = (struct vnet_pend){f, len};
	v->npend++;
	return 0;
}

/* Hand waiting frames over while they fit. -ENOBUFS: the next one needs
 * more buffers than `max` (and none was handed over). */
static int vnet_give_pending(struct vale_io *h, struct pkt_vnet *v, void *const *bufs,
			     uint16_t *lens, uint16_t *flags, uint32_t max, uint32_t *filled)
{
	uint32_t bs = h->buf_size;
	while (v->npend) {
		struct vnet_pend *e = &v->pend[v->pend_head];
		uint32_t k = vio_frame_bufs(e->len, bs);
		if (k > max - *filled) {
			if (*filled) return 0;
			return vio_err(-ENOBUFS, "'%s': the next frame needs %u buffers, %u given",
				       h->ifname, k, max);
		}
		vio_scatter(e->p, e->len, bufs + *filled, lens + *filled, flags + *filled, bs);
		*filled += k;
		h->st.rx_pkts++;
		h->st.rx_bytes += e->len - h->vnet_len;
		v->pend_head = (v->pend_head + 1) % (VNET_RX_MSGS + 1);
		v->npend--;
	}
	return 0;
}

/* Batch mode: see above. Returns 0 or -errno; *filled advanced. */
static int vnet_recv_batch(struct vale_io *h, struct pkt_vnet *v, void *const *bufs,
			   uint16_t *lens, uint16_t *flags, uint32_t max, uint32_t *filled)
{
	uint32_t bs = h->buf_size, L = h->vnet_len;
	while (*filled < max && !v->npend && !v->big) {
		uint32_t m = max - *filled, f0 = *filled;
		if (m > VNET_RX_MSGS) m = VNET_RX_MSGS;
		for (uint32_t q = 0; q < m; q++) {
			uint8_t *b = bufs[f0 + q], *slot = v->slots + (size_t)q * v->slot_size;
			v->riov[q][0] = (struct iovec){b, VNET_KHDR};
			v->riov[q][1] = (struct iovec){b + L, bs - L};
			v->riov[q][2] = (struct iovec){slot + bs, v->slot_size - bs - 64};
			v->rmsg[q].msg_hdr = (struct msghdr){
				.msg_iov = v->riov[q],
				.msg_iovlen = 3,
				.msg_control = &v->rcb[q],
				.msg_controllen = sizeof v->rcb[q],
			};
		}
		int r = recvmmsg(h->fd, v->rmsg, m, MSG_DONTWAIT, NULL);
		if (r < 0) {
			int e = errno;
			if (e == EAGAIN) return 0;
			if (e == EINTR) continue;
			if (*filled) return 0; /* report it next time */
			return vnet_err(h, e, "recvmmsg");
		}
		uint32_t q = 0, out = f0;
		/* one-buffer, untagged frames: already where they belong */
		for (; q < (uint32_t)r; q++) {
			struct msghdr *mh = &v->rmsg[q].msg_hdr;
			uint32_t got = v->rmsg[q].msg_len, len = got + L - VNET_KHDR;
			if ((mh->msg_flags & MSG_TRUNC) || got < VNET_KHDR + 14 || len > bs ||
			    vnet_tagged(vnet_aux(mh)))
				break;
			vio_vnet_rx_done(h, bufs[out]);
			lens[out] = (uint16_t)len;
			flags[out] = 0;
			out++;
			h->st.rx_pkts++;
			h->st.rx_bytes += len - L;
		}
		/* from the first other one on, every frame goes contiguous into its
		 * slot (its first part from its buffer), to be handed over from there */
		for (; q < (uint32_t)r; q++) {
			struct msghdr *mh = &v->rmsg[q].msg_hdr;
			uint32_t got = v->rmsg[q].msg_len, len = got + L - VNET_KHDR;
			if ((mh->msg_flags & MSG_TRUNC) || got < VNET_KHDR + 14) {
				h->st.rx_truncated++;
				continue;
			}
			uint8_t *slot = v->slots + (size_t)q * v->slot_size;
			memcpy(slot, bufs[f0 + q], len < bs ? len : bs);
			if (len > bs) {
				v->big = 1; /* super-frames: per frame from now on */
				v->small_run = 0;
			}
			vnet_queue(h, v, slot, len, vnet_aux(mh));
		}
		*filled = out;
		int e = vnet_give_pending(h, v, bufs, lens, flags, max, filled);
		if (e < 0) return e;
		if ((uint32_t)r < m) return 0; /* the socket is drained */
	}
	return 0;
}

/* Per-frame mode: see above. Returns 0 or -errno; *filled advanced. */
static int vnet_recv_each(struct vale_io *h, struct pkt_vnet *v, void *const *bufs,
			  uint16_t *lens, uint16_t *flags, uint32_t max, uint32_t *filled)
{
	uint32_t bs = h->buf_size, L = h->vnet_len;
	struct iovec iov[VALE_MAX_FRAGS + 3];
	union vnet_cmsg cb;
	while (*filled < max && !v->npend) {
		uint32_t nb = max - *filled, c = 0, f0 = *filled;
		if (nb > VALE_MAX_FRAGS) nb = VALE_MAX_FRAGS;
		uint8_t *b0 = bufs[f0];
		iov[c++] = (struct iovec){b0, VNET_KHDR};
		iov[c++] = (struct iovec){b0 + L, bs - L};
		for (uint32_t j = 1; j < nb; j++) iov[c++] = (struct iovec){bufs[f0 + j], bs};
		/* the tail goes to staging right after room for the parts above */
		iov[c++] = (struct iovec){v->stage + (size_t)nb * bs, v->stage_size - (size_t)nb * bs - 64};
		struct msghdr mh = {
			.msg_iov = iov,
			.msg_iovlen = c,
			.msg_control = &cb,
			.msg_controllen = sizeof cb,
		};
		ssize_t r = recvmsg(h->fd, &mh, MSG_DONTWAIT);
		if (r < 0) {
			int e = errno;
			if (e == EAGAIN) return 0;
			if (e == EINTR) continue;
			if (*filled) return 0; /* report it next time */
			return vnet_err(h, e, "recvmsg");
		}
		if ((mh.msg_flags & MSG_TRUNC) || (uint32_t)r < VNET_KHDR + 14) {
			h->st.rx_truncated++;
			continue;
		}
		uint32_t len = (uint32_t)r + (L - VNET_KHDR); /* header and frame */
		const struct tpacket_auxdata *aux = vnet_aux(&mh);
		uint32_t k = vio_frame_bufs(len, bs);
		if (k == 1) {
			if (++v->small_run >= VNET_SMALL_RUN) v->big = 0; /* back to batches */
		} else {
			v->small_run = 0;
		}
		if (!vnet_tagged(aux) && k <= nb) { /* the common case: it is where it belongs */
			vio_vnet_rx_done(h, b0);
			for (uint32_t j = 0; j + 1 < k; j++) {
				lens[f0 + j] = (uint16_t)bs;
				flags[f0 + j] = VS_MOREFRAG;
			}
			lens[f0 + k - 1] = (uint16_t)(len - (k - 1) * bs);
			flags[f0 + k - 1] = 0;
			*filled += k;
			h->st.rx_pkts++;
			h->st.rx_bytes += len - L;
			if (!v->big) return 0; /* batches from the next call */
			continue;
		}
		/* spilled into staging, or a tag to put back: contiguous there */
		uint32_t inb = k < nb ? k : nb;
		for (uint32_t j = 0; j < inb; j++) memcpy(v->stage + (size_t)j * bs, bufs[f0 + j], bs);
		if (vnet_queue(h, v, v->stage, len, aux) < 0) continue;
		int e = vnet_give_pending(h, v, bufs, lens, flags, max, filled);
		if (e < 0) return e;
	}
	return 0;
}

static int vnet_recv(struct vale_io *h, struct pkt *p, void *const *bufs, uint16_t *lens,
		     uint16_t *flags, uint32_t max)
{
	struct pkt_vnet *v = p->v;
	uint32_t filled = 0;
	uint64_t before = h->st.rx_pkts;
	int r = vnet_give_pending(h, v, bufs, lens, flags, max, &filled);
	if (r == 0 && !v->npend && filled < max)
		r = v->big ? vnet_recv_each(h, v, bufs, lens, flags, max, &filled)
			   : vnet_recv_batch(h, v, bufs, lens, flags, max, &filled);
	if (h->st.rx_pkts != before) h->st.rx_batches++;
	if (r < 0 && !filled) return r;
	return (int)filled;
}

static int vnet_send(struct vale_io *h, struct pkt *p, void *const *bufs, const uint16_t *lens,
		     const uint16_t *flags, uint32_t n)
{
	struct pkt_vnet *v = p->v;
	uint32_t bs = h->buf_size, L = h->vnet_len, i = 0, sent = 0;
	uint32_t flen[VNET_MSGS];
	uint64_t bytes = 0;
	while (i < n) {
		/* up to VNET_MSGS frames from bufs[i..): one message each, whose
		 * iovecs skip num_buffers of a 12-byte header */
		uint32_t m = 0, c = 0, j = i;
		while (j < n && m < VNET_MSGS) {
			uint32_t nb, len = vio_gather_len(lens, flags, j, n, bs, &nb);
			if (!nb) break; /* incomplete chain: wait for the rest */
			if (len < L + 14 || len > h->max_frame + L || nb > VALE_MAX_FRAGS ||
			    lens[j] < L) {
				if (m) break; /* send what is before it first */
				h->st.tx_drops++;
				j += nb;
				i = j;
				continue;
			}
			if (c + nb + 1 > VNET_IOVS) break;
			uint32_t c0 = c;
			uint8_t *b0 = bufs[j];
			v->iov[c++] = (struct iovec){b0, VNET_KHDR};
			if (lens[j] > L) v->iov[c++] = (struct iovec){b0 + L, (size_t)lens[j] - L};
			for (uint32_t k = 1; k < nb; k++)
				v->iov[c++] = (struct iovec){bufs[j + k], lens[j + k]};
			v->msg[m].msg_hdr = (struct msghdr){.msg_iov = &v->iov[c0], .msg_iovlen = c - c0};
			v->msg[m].msg_len = 0;
			v->first_buf[m] = (uint16_t)(j - i);
			flen[m] = len - L;
			m++;
			j += nb;
		}
		if (!m) break;
		int r = sendmmsg(h->fd, v->msg, m, MSG_DONTWAIT);
		if (r < 0) {
			int e = errno;
			if (e == EINTR) continue;
			if (e == EAGAIN || e == ENOBUFS) {
				h->st.tx_ring_full++;
				break;
			}
			if (e == ENETDOWN || e == ENXIO || e == ENODEV) {
				if (sent) break; /* report it on the next call */
				return vnet_err(h, e, "sendmmsg");
			}
			/* the first frame was refused (EINVAL: a bad header, EMSGSIZE:
			 * larger than the MTU without GSO): count it, go on after it */
			h->st.tx_errors++;
			i = m > 1 ? i + v->first_buf[1] : j;
			continue;
		}
		for (int q = 0; q < r; q++) bytes += flen[q];
		sent += (uint32_t)r;
		i = (uint32_t)r < m ? i + v->first_buf[r] : j;
	}
	if (sent) {
		h->st.tx_pkts += sent;
		h->st.tx_bytes += bytes;
		h->st.tx_batches++;
	}
	return (int)i;
}

const struct vale_io_ops vale_io_packet_ops = {
	.name = "af_packet",
	.kind = VIO_PACKET,
	.needs_link = 1,
	.so_error = 1,
	.open = pkt_open,
	.close = pkt_close,
	.recv_batch = pkt_recv,
	.send_batch = pkt_send,
	.fds = NULL, /* h->fd */
	.stats = pkt_stats,
	.tx_pending = pkt_tx_pending,
	.flush = pkt_flush,
	.persist = NULL,
};
