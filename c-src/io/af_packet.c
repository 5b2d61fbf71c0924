/*
 * vale kernel I/O, part 1: what every backend shares (dispatch, errors,
 * network namespaces, link queries, fragment helpers, checksum completion)
 * and the AF_PACKET backend (TPACKET_V2 or V3 RX ring, TX ring flushed by
 * one sendto per batch). See io.h for the API.
 */
#define VALE_IO_INTERNAL
#include "io.h"
#include "vale_app.h" /* LOAD_ACQ, STORE_REL */

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

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

VALE_API const char *vale_io_kind_name(uint32_t kind)
{
	switch (kind) {
	case VIO_AUTO: return "auto";
	case VIO_TAP: return "tap";
	case VIO_PACKET: return "af_packet";
	case VIO_XDP: return "af_xdp";
	}
	return "?";
}

/* ------------------------------------------------------------------ */
/* network namespaces: only the calling thread moves, and only for the
 * duration of an open/query; sockets keep the namespace they were made in. */

int vio_ns_enter(const char *netns, int *saved)
{
	char path[VIO_NETNS_MAX + 16];
	*saved = -1;
	if (!netns || !netns[0]) return 0;
	if (strchr(netns, '/'))
		snprintf(path, sizeof path, "%s", netns);
	else
		snprintf(path, sizeof path, "/run/netns/%s", netns);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return vio_err(-e, "network namespace '%s': cannot open %s: %s", netns, path,
			       strerror(e));
	}
	int cur = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (cur < 0) {
		int e = errno;
		close(fd);
		return vio_err(-e, "cannot open /proc/thread-self/ns/net: %s", strerror(e));
	}
	if (setns(fd, CLONE_NEWNET) < 0) {
		int e = errno;
		close(fd);
		close(cur);
		return vio_err(-e, "cannot enter network namespace '%s': %s%s", netns, strerror(e),
			       vio_priv_hint(e, "CAP_SYS_ADMIN"));
	}
	close(fd);
	*saved = cur;
	return 0;
}

int vio_ns_leave(int saved)
{
	if (saved < 0) return 0;
	int r = setns(saved, CLONE_NEWNET);
	int e = errno;
	close(saved);
	if (r < 0) {
		/* Should never happen (we could enter): say it loudly. */
		fprintf(stderr, "vale_io: FATAL: cannot return to our network namespace: %s\n",
			strerror(e));
		return -e;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* link queries (ioctl on a socket of the right namespace + rtnetlink) */

static int ifr_set(struct ifreq *ifr, const char *ifname)
{
	memset(ifr, 0, sizeof *ifr);
	if (!ifname || !ifname[0] || strlen(ifname) >= IFNAMSIZ)
		return vio_err(-EINVAL, "bad interface name '%s' (1..%d characters)",
			       ifname ? ifname : "", IFNAMSIZ - 1);
	memcpy(ifr->ifr_name, ifname, strlen(ifname));
	return 0;
}

/* RTM_GETLINK for the number of RX queues and an attached XDP program. */
static void nl_link_extra(uint32_t ifindex, struct vale_io_link *out)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0) return;
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
		char attrs[16];
	} req;
	memset(&req, 0, sizeof req);
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	req.nh.nlmsg_type = RTM_GETLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.nh.nlmsg_seq = 1;
	req.ifi.ifi_family = AF_UNSPEC;
	req.ifi.ifi_index = (int)ifindex;
	/* IFLA_EXT_MASK = RTEXT_FILTER_SKIP_STATS keeps the answer small */
	struct rtattr *rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
	rta->rta_type = IFLA_EXT_MASK;
	rta->rta_len = RTA_LENGTH(sizeof(uint32_t));
	*(uint32_t *)RTA_DATA(rta) = 1u << 3; /* RTEXT_FILTER_SKIP_STATS */
	req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
	struct timeval tv = {.tv_sec = 1};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (send(fd, &req, req.nh.nlmsg_len, 0) < 0) goto out;
	static __thread char buf[32768];
	ssize_t n = recv(fd, buf, sizeof buf, 0);
	if (n <= 0) goto out;
	for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (uint32_t)n);
	     nh = NLMSG_NEXT(nh, n)) {
		if (nh->nlmsg_type != RTM_NEWLINK) continue;
		struct ifinfomsg *ifi = NLMSG_DATA(nh);
		int len = (int)IFLA_PAYLOAD(nh);
		for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
			if (a->rta_type == IFLA_NUM_RX_QUEUES && RTA_PAYLOAD(a) >= 4)
				out->rx_queues = *(uint32_t *)RTA_DATA(a);
			if (a->rta_type == IFLA_XDP) {
				int l2 = (int)RTA_PAYLOAD(a);
				for (struct rtattr *b = RTA_DATA(a); RTA_OK(b, l2); b = RTA_NEXT(b, l2))
					if (b->rta_type == IFLA_XDP_PROG_ID && RTA_PAYLOAD(b) >= 4)
						out->xdp_prog_id = *(uint32_t *)RTA_DATA(b);
			}
		}
	}
out:
	close(fd);
}

int vio_link_query(int ctl_fd, const char *ifname, struct vale_io_link *out)
{
	struct ifreq ifr;
	int r = ifr_set(&ifr, ifname);
	if (r < 0) return r;
	memset(out, 0, sizeof *out);
	if (ioctl(ctl_fd, SIOCGIFINDEX, &ifr) < 0) {
		int e = errno;
		if (e == ENODEV) return vio_err(-ENODEV, "no network interface '%s'", ifname);
		return vio_err(-e, "interface '%s': SIOCGIFINDEX: %s", ifname, strerror(e));
	}
	out->ifindex = (uint32_t)ifr.ifr_ifindex;
	if (ioctl(ctl_fd, SIOCGIFFLAGS, &ifr) == 0) out->flags = (uint16_t)ifr.ifr_flags;
	out->up = !!(out->flags & IFF_UP);
	out->running = !!(out->flags & IFF_RUNNING);
	if (ioctl(ctl_fd, SIOCGIFMTU, &ifr) == 0) out->mtu = (uint32_t)ifr.ifr_mtu;
	if (ioctl(ctl_fd, SIOCGIFHWADDR, &ifr) == 0) memcpy(out->mac, ifr.ifr_hwaddr.sa_data, 6);
	nl_link_extra(out->ifindex, out);
	/* netlink tells how many RX queues were allocated; the driver (ethtool
	 * channels) how many are in use, e.g. 1 of 2 on a default veth */
	struct ethtool_channels ch = {.cmd = ETHTOOL_GCHANNELS};
	ifr.ifr_data = (void *)&ch;
	if (ioctl(ctl_fd, SIOCETHTOOL, &ifr) == 0 && ch.rx_count + ch.combined_count > 0)
		out->rx_queues = ch.rx_count + ch.combined_count;
	return 0;
}

int vio_link_set(int ctl_fd, const char *ifname, int32_t up, uint32_t mtu)
{
	struct ifreq ifr;
	int r = ifr_set(&ifr, ifname);
	if (r < 0) return r;
	if (mtu) {
		ifr.ifr_mtu = (int)mtu;
		if (ioctl(ctl_fd, SIOCSIFMTU, &ifr) < 0) {
			int e = errno;
			return vio_err(-e, "cannot set the MTU of '%s' to %u: %s%s", ifname, mtu,
				       strerror(e), vio_priv_hint(e, "CAP_NET_ADMIN"));
		}
	}
	if (up >= 0) {
		if (ioctl(ctl_fd, SIOCGIFFLAGS, &ifr) < 0) {
			int e = errno;
			if (e == ENODEV) return vio_err(-ENODEV, "no network interface '%s'", ifname);
			return vio_err(-e, "interface '%s': SIOCGIFFLAGS: %s", ifname, strerror(e));
		}
		short want = up ? (short)(ifr.ifr_flags | IFF_UP) : (short)(ifr.ifr_flags & ~IFF_UP);
		if (want != ifr.ifr_flags) {
			ifr.ifr_flags = want;
			if (ioctl(ctl_fd, SIOCSIFFLAGS, &ifr) < 0) {
				int e = errno;
				return vio_err(-e, "cannot set '%s' %s: %s%s", ifname,
					       up ? "up" : "down", strerror(e),
					       vio_priv_hint(e, "CAP_NET_ADMIN"));
			}
		}
	}
	return 0;
}

static int ctl_socket(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		return vio_err(-e, "cannot create a control socket: %s", strerror(e));
	}
	return fd;
}

VALE_API int vale_io_link(const char *ifname, const char *netns, struct vale_io_link *out)
{
	int saved, r = vio_ns_enter(netns, &saved);
	if (r < 0) return r;
	int fd = ctl_socket();
	if (fd >= 0) {
		r = vio_link_query(fd, ifname, out);
		close(fd);
	} else {
		r = fd;
	}
	vio_ns_leave(saved);
	return r;
}

VALE_API int vale_io_set_link(const char *ifname, const char *netns, int32_t up, uint32_t mtu)
{
	int saved, r = vio_ns_enter(netns, &saved);
	if (r < 0) return r;
	int fd = ctl_socket();
	if (fd >= 0) {
		r = vio_link_set(fd, ifname, up, mtu);
		close(fd);
	} else {
		r = fd;
	}
	vio_ns_leave(saved);
	return r;
}

VALE_API int vale_io_set_mac(const char *ifname, const char *netns, const uint8_t *mac)
{
	struct ifreq ifr;
	int r = ifr_set(&ifr, ifname);
	if (r < 0) return r;
	if (!mac || (mac[0] & 1))
		return vio_err(-EINVAL, "'%s': not a unicast MAC address", ifname);
	int saved;
	r = vio_ns_enter(netns, &saved);
	if (r < 0) return r;
	int fd = ctl_socket();
	if (fd >= 0) {
		ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
		memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
		if (ioctl(fd, SIOCSIFHWADDR, &ifr) < 0) {
			int e = errno;
			r = vio_err(-e, "cannot set the MAC address of '%s': %s%s", ifname, strerror(e),
				    vio_priv_hint(e, "CAP_NET_ADMIN"));
		} else {
			r = 0;
		}
		close(fd);
	} else {
		r = fd;
	}
	vio_ns_leave(saved);
	return r;
}

VALE_API int vale_io_set_offloads(const char *ifname, const char *netns, int32_t on)
{
	static const struct {
		uint32_t get, set;
	} feats[] = {
		{ETHTOOL_GTSO, ETHTOOL_STSO},       {ETHTOOL_GGSO, ETHTOOL_SGSO},
		{ETHTOOL_GGRO, ETHTOOL_SGRO},       {ETHTOOL_GTXCSUM, ETHTOOL_STXCSUM},
		{ETHTOOL_GRXCSUM, ETHTOOL_SRXCSUM}, {ETHTOOL_GSG, ETHTOOL_SSG},
	};
	struct ifreq ifr;
	int r = ifr_set(&ifr, ifname);
	if (r < 0) return r;
	int saved;
	r = vio_ns_enter(netns, &saved);
	if (r < 0) return r;
	int fd = ctl_socket(), changed = 0;
	if (fd < 0) {
		vio_ns_leave(saved);
		return fd;
	}
	r = 0;
	for (size_t i = 0; i < sizeof feats / sizeof feats[0]; i++) {
		struct ethtool_value ev = {.cmd = feats[i].get};
		ifr.ifr_data = (void *)&ev;
		if (ioctl(fd, SIOCETHTOOL, &ifr) < 0) {
			if (errno == ENODEV) {
				r = vio_err(-ENODEV, "no network interface '%s'", ifname);
				break;
			}
			continue; /* not supported by this driver */
		}
		if (!!ev.data == !!on) continue;
		ev.cmd = feats[i].set;
		ev.data = on ? 1 : 0;
		if (ioctl(fd, SIOCETHTOOL, &ifr) == 0) {
			changed++;
		} else if (errno == EPERM) {
			r = vio_err(-EPERM, "cannot change offloads of '%s': %s%s", ifname,
				    strerror(EPERM), vio_priv_hint(EPERM, "CAP_NET_ADMIN"));
			break;
		}
	}
	/* LRO lives in the flags word */
	if (r == 0) {
		struct ethtool_value ev = {.cmd = ETHTOOL_GFLAGS};
		ifr.ifr_data = (void *)&ev;
		if (ioctl(fd, SIOCETHTOOL, &ifr) == 0 && !!(ev.data & ETH_FLAG_LRO) != !!on) {
			ev.cmd = ETHTOOL_SFLAGS;
			ev.data = on ? (ev.data | ETH_FLAG_LRO) : (ev.data & ~(uint32_t)ETH_FLAG_LRO);
			if (ioctl(fd, SIOCETHTOOL, &ifr) == 0) changed++;
		}
	}
	close(fd);
	vio_ns_leave(saved);
	return r < 0 ? r : changed;
}

/* Is the interface of h still there and up? 0, -ENODEV or -ENETDOWN. */
int vio_check_alive(struct vale_io *h)
{
	if (h->dead) return vio_err(h->dead, "interface '%s' was removed", h->ifname);
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	if (h->kind != VIO_TAP) getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	struct ifreq ifr;
	ifr_set(&ifr, h->ifname);
	if (ioctl(h->ctl_fd, SIOCGIFINDEX, &ifr) < 0 || (uint32_t)ifr.ifr_ifindex != h->ifindex) {
		h->dead = -ENODEV;
		return vio_err(-ENODEV, "interface '%s' was removed", h->ifname);
	}
	if (ioctl(h->ctl_fd, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP))
		return vio_err(-ENETDOWN, "interface '%s' is down", h->ifname);
	if (soerr == ENXIO || soerr == ENODEV) {
		h->dead = -ENODEV;
		return vio_err(-ENODEV, "interface '%s' was removed", h->ifname);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* fragments */

uint32_t vio_frame_bufs(uint32_t len, uint32_t buf_size)
{
	return len ? (len + buf_size - 1) / buf_size : 1;
}

/* Length of the frame starting at bufs[i] (a MOREFRAG chain); *nbufs = its
 * buffer count, or 0 when the chain runs past n (incomplete). A fragment
 * longer than a buffer makes the length UINT32_MAX (dropped as too long). */
uint32_t vio_gather_len(const uint16_t *lens, const uint16_t *flags, uint32_t i, uint32_t n,
			uint32_t buf_size, uint32_t *nbufs)
{
	uint32_t len = 0, j = i;
	int bad = 0;
	for (;;) {
		if (j >= n) {
			*nbufs = 0;
			return len;
		}
		if (lens[j] > buf_size) bad = 1;
		len += lens[j];
		if (!flags || !(flags[j] & VS_MOREFRAG)) break;
		j++;
	}
	*nbufs = j - i + 1;
	return bad ? UINT32_MAX : len;
}

/* Copy segments into consecutive caller buffers; returns buffers used. */
uint32_t vio_scatter_segs(const struct vio_seg *seg, int nseg, void *const *bufs,
			     uint16_t *lens, uint16_t *flags, uint32_t bs)
{
	uint32_t b = 0, off = 0;
	for (int s = 0; s < nseg; s++) {
		const uint8_t *p = seg[s].p;
		uint32_t left = seg[s].len;
		while (left) {
			if (off == bs) {
				lens[b] = (uint16_t)bs;
				flags[b] = VS_MOREFRAG;
				b++;
				off = 0;
			}
			uint32_t c = bs - off < left ? bs - off : left;
			memcpy((uint8_t *)bufs[b] + off, p, c);
			off += c;
			p += c;
			left -= c;
		}
	}
	lens[b] = (uint16_t)off;
	flags[b] = 0;
	return b + 1;
}

void vio_scatter(const uint8_t *src, uint32_t len, void *const *bufs, uint16_t *lens,
		 uint16_t *flags, uint32_t buf_size)
{
	struct vio_seg s = {src, len};
	vio_scatter_segs(&s, 1, bufs, lens, flags, buf_size);
}

/* Copy the frame in bufs[i..i+nb) to dst (contiguous). */
static void gather(uint8_t *dst, void *const *bufs, const uint16_t *lens, uint32_t nb)
{
	for (uint32_t j = 0; j < nb; j++) {
		memcpy(dst, bufs[j], lens[j]);
		dst += lens[j];
	}
}

/* ------------------------------------------------------------------ */
/* checksum completion for CHECKSUM_PARTIAL frames: a sending stack that
 * counts on checksum offload (veth, local sockets) leaves the pseudo-header
 * sum in the TCP/UDP checksum field and expects the device to finish it.
 * AF_PACKET says so (TP_STATUS_CSUMNOTREADY); AF_XDP does not, so there we
 * finish a checksum only when the field holds exactly the pseudo-header sum
 * and the checksum is wrong (a complete, valid checksum is left alone). */

static uint32_t csum_add(uint32_t sum, const uint8_t *p, uint32_t len)
{
	uint64_t s = sum;
	while (len >= 4) {
		uint32_t w;
		memcpy(&w, p, 4);
		s += w;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t w;
		memcpy(&w, p, 2);
		s += w;
		p += 2;
		len -= 2;
	}
	if (len) s += *p; /* little endian: the odd byte is the low half of its word */
	while (s >> 32) s = (s & 0xffffffffu) + (s >> 32);
	return (uint32_t)s;
}

static uint16_t fold16(uint32_t s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static uint16_t csum_fold(uint32_t s) { return (uint16_t)~fold16(s); }

/* Complete the TCP/UDP checksum of the frame in seg[0..nseg) (headers in
 * seg[0]). heuristic: the kernel did not say the checksum is partial.
 * Returns 1 if the checksum was completed. */
int vio_csum_complete(const struct vio_seg *seg, int nseg, int heuristic)
{
	uint8_t *f = (uint8_t *)seg[0].p;
	uint32_t len = seg[0].len, total = 0, off = 12;
	for (int i = 0; i < nseg; i++) total += seg[i].len;
	if (len < 14) return 0;
	uint16_t et = (uint16_t)(f[off] << 8 | f[off + 1]);
	while ((et == 0x8100 || et == 0x88a8) && off + 6 <= len) {
		off += 4;
		et = (uint16_t)(f[off] << 8 | f[off + 1]);
	}
	off += 2;
	uint8_t proto;
	uint32_t l4, end, pseudo;
	if (et == 0x0800) {
		if (off + 20 > len) return 0;
		const uint8_t *ip = f + off;
		uint32_t ihl = (ip[0] & 15u) * 4, tot = (uint32_t)(ip[2] << 8 | ip[3]);
		if ((ip[6] & 0x3f) || ip[7] || ihl < 20) return 0; /* a fragment */
		proto = ip[9];
		l4 = off + ihl;
		end = off + tot;
		pseudo = csum_add(0, ip + 12, 8);
	} else if (et == 0x86dd) {
		if (off + 40 > len) return 0;
		const uint8_t *ip = f + off;
		proto = ip[6];
		l4 = off + 40;
		end = l4 + (uint32_t)(ip[4] << 8 | ip[5]);
		/* skip hop-by-hop, routing, destination options */
		while ((proto == 0 || proto == 43 || proto == 60) && l4 + 8 <= len) {
			proto = f[l4];
			l4 += 8 + f[l4 + 1] * 8u;
		}
		pseudo = csum_add(0, ip + 8, 32);
	} else {
		return 0;
	}
	uint32_t coff;
	if (proto == 6)
		coff = 16;
	else if (proto == 17)
		coff = 6;
	else
		return 0;
	if (end > total || end < l4 || l4 + coff + 2 > len || l4 + coff + 2 > end) return 0;
	uint32_t l4len = end - l4;
	pseudo = fold16(pseudo) + htons((uint16_t)proto) + htons((uint16_t)l4len);
	uint16_t field;
	memcpy(&field, f + l4 + coff, 2);
	if (heuristic && field != fold16(pseudo)) return 0;
	/* sum [l4, end) across the segments */
	uint32_t sum = 0, pos = 0;
	for (int i = 0; i < nseg && pos < end; i++) {
		uint32_t a = pos > l4 ? pos : l4, b = pos + seg[i].len < end ? pos + seg[i].len : end;
		if (a < b) {
			uint16_t part = fold16(csum_add(0, seg[i].p + (a - pos), b - a));
			if ((a - l4) & 1) part = (uint16_t)(part << 8 | part >> 8);
			sum = fold16(sum + part);
		}
		pos += seg[i].len;
	}
	if (heuristic && csum_fold(sum + pseudo) == 0) return 0; /* already valid */
	uint16_t c = csum_fold(sum);
	if (proto == 17 && c == 0) c = 0xffff;
	memcpy(f + l4 + coff, &c, 2);
	return 1;
}

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
};

static uint32_t pow2_ge(uint32_t x)
{
	uint32_t p = 1;
	while (p < x) p <<= 1;
	return p;
}

int vio_pkt_open(struct vale_io *h, const char *ifname, const struct vale_io_opts *o)
{
	struct pkt *p = calloc(1, sizeof *p);
	if (!p) return vio_err(-ENOMEM, "out of memory");
	h->priv = p;
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		int e = errno;
		return vio_err(-e, "AF_PACKET socket for '%s': %s%s", ifname, strerror(e),
			       vio_priv_hint(e, "CAP_NET_RAW"));
	}
	h->fd = fd;
	int one = 1, r;
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

	/* geometry: a frame as large as the MTU plus Ethernet and one VLAN tag */
	uint32_t maxf = h->mtu + 14 + 4;
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
		r = setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &rq, sizeof rq);
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
		r = setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &rq, sizeof rq);
	}
	if (r < 0) {
		int e = errno;
		return vio_err(-e, "'%s': PACKET_RX_RING (%u blocks of %u bytes): %s", ifname, nblk,
			       bs, strerror(e));
	}
	/* TX ring: fixed frames, data at hdrlen - sizeof(sockaddr_ll) */
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
		r = setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &rq, sizeof rq);
	} else {
		struct tpacket_req rq = {
			.tp_block_size = tbs,
			.tp_block_nr = tblk,
			.tp_frame_size = tfs,
			.tp_frame_nr = p->tx_frames,
		};
		r = setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &rq, sizeof rq);
	}
	if (r < 0) {
		int e = errno;
		return vio_err(-e, "'%s': PACKET_TX_RING (%u frames of %u bytes): %s", ifname,
			       p->tx_frames, tfs, strerror(e));
	}
	size_t rx_len = (size_t)p->rx_block_size * p->rx_blocks;
	size_t tx_len = (size_t)tbs * tblk;
	p->map_len = rx_len + tx_len;
	p->map = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (p->map == MAP_FAILED) {
		int e = errno;
		p->map = NULL;
		return vio_err(-e, "'%s': mmap of the packet rings (%zu bytes): %s", ifname,
			       p->map_len, strerror(e));
	}
	p->rx = p->map;
	p->tx = p->map + rx_len;
	p->tx_last = UINT32_MAX;

	int sndbuf = 8 << 20;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = (int)h->ifindex,
	};
	if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
		int e = errno;
		return vio_err(-e, "'%s': bind: %s", ifname, strerror(e));
	}
	if (h->flags & VIO_F_PROMISC) {
		struct packet_mreq mr = {.mr_ifindex = (int)h->ifindex, .mr_type = PACKET_MR_PROMISC};
		if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) {
			int e = errno;
			return vio_err(-e, "'%s': promiscuous mode: %s%s", ifname, strerror(e),
				       vio_priv_hint(e, "CAP_NET_ADMIN"));
		}
	}
	h->max_frame = maxf;
	if (maxf > p->tx_frame_size - p->tx_data_off) h->max_frame = p->tx_frame_size - p->tx_data_off;
	snprintf(h->mode, sizeof h->mode, "af_packet rx %s tx %s%s%s",
		 p->ver == TPACKET_V3 ? "v3" : "v2", p->ver == TPACKET_V3 ? "v3" : "v2",
		 (h->flags & VIO_F_QDISC_BYPASS) ? " qdisc-bypass" : "",
		 p->ignore_outgoing || (h->flags & VIO_F_SEE_OUTGOING) ? "" : " (sees outgoing)");
	return 0;
}

void vio_pkt_close(struct vale_io *h)
{
	struct pkt *p = h->priv;
	if (!p) return;
	if (p->map) munmap(p->map, p->map_len);
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

int vio_pkt_recv(struct vale_io *h, void *const *bufs, uint16_t *lens, uint16_t *flags,
		 uint32_t max)
{
	struct pkt *p = h->priv;
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

int vio_pkt_send(struct vale_io *h, void *const *bufs, const uint16_t *lens,
		 const uint16_t *flags, uint32_t n)
{
	struct pkt *p = h->priv;
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

void vio_pkt_stats(struct vale_io *h)
{
	struct pkt *p = h->priv;
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

/* ------------------------------------------------------------------ */
/* dispatch */

static int open_kind(struct vale_io *h, uint32_t kind, const char *ifname,
		     const struct vale_io_opts *o)
{
	h->kind = kind;
	switch (kind) {
	case VIO_TAP: return vio_tap_open(h, ifname, o);
	case VIO_PACKET: return vio_pkt_open(h, ifname, o);
	case VIO_XDP: return vio_xdp_open(h, ifname, o);
	}
	return vio_err(-EINVAL, "unknown kernel I/O kind %u", kind);
}

static void close_kind(struct vale_io *h)
{
	switch (h->kind) {
	case VIO_TAP: vio_tap_close(h); break;
	case VIO_PACKET: vio_pkt_close(h); break;
	case VIO_XDP: vio_xdp_close(h); break;
	}
	if (h->fd >= 0) close(h->fd);
	h->fd = -1;
	h->poll_fd = -1;
}

VALE_API int vale_io_open(uint32_t kind, const char *ifname, const struct vale_io_opts *opts,
			  struct vale_io **out)
{
	struct vale_io_opts def;
	*out = NULL;
	if (!opts) {
		memset(&def, 0, sizeof def);
		opts = &def;
	}
	if (kind > VIO_XDP) return vio_err(-EINVAL, "unknown kernel I/O kind %u", kind);
	if (!ifname || !ifname[0] || strlen(ifname) >= IFNAMSIZ)
		return vio_err(-EINVAL, "bad interface name '%s' (1..%d characters)",
			       ifname ? ifname : "", IFNAMSIZ - 1);
	if (opts->netns[VIO_NETNS_MAX - 1]) return vio_err(-EINVAL, "netns name too long");
	uint32_t bs = opts->buf_size ? opts->buf_size : VALE_BUF_SIZE;
	if (bs < 64 || bs > 65535) return vio_err(-EINVAL, "buf_size %u out of 64..65535", bs);

	struct vale_io *h = calloc(1, sizeof *h);
	if (!h) return vio_err(-ENOMEM, "out of memory");
	h->fd = -1;
	h->poll_fd = -1;
	h->flags = opts->flags;
	h->buf_size = bs;
	snprintf(h->ifname, sizeof h->ifname, "%s", ifname);

	int saved, r = vio_ns_enter(opts->netns, &saved);
	if (r < 0) {
		free(h);
		return r;
	}
	h->ctl_fd = ctl_socket();
	if (h->ctl_fd < 0) {
		r = h->ctl_fd;
		goto fail;
	}
	if (kind != VIO_TAP) {
		struct vale_io_link l;
		r = vio_link_query(h->ctl_fd, ifname, &l);
		if (r < 0) {
			if (opts->netns[0])
				vio_err(r, "no network interface '%s' in namespace '%s'", ifname,
					opts->netns);
			goto fail;
		}
		if (opts->mtu && opts->mtu != l.mtu) {
			r = vio_link_set(h->ctl_fd, ifname, -1, opts->mtu);
			if (r < 0) goto fail;
			l.mtu = opts->mtu;
		}
		if (!l.up && (h->flags & VIO_F_UP)) {
			r = vio_link_set(h->ctl_fd, ifname, 1, 0);
			if (r < 0) goto fail;
			l.up = 1;
		}
		if (!l.up && !(h->flags & VIO_F_ALLOW_DOWN)) {
			r = vio_err(-ENETDOWN,
				    "interface '%s' is down (ip link set %s up, or open with 'up')",
				    ifname, ifname);
			goto fail;
		}
		h->ifindex = l.ifindex;
		h->mtu = l.mtu;
		if (kind == VIO_AUTO) {
			char why[128];
			if (l.xdp_prog_id) {
				snprintf(why, sizeof why, "'%s' already has XDP program id %u",
					 ifname, l.xdp_prog_id);
				r = -EBUSY;
			} else {
				r = open_kind(h, VIO_XDP, ifname, opts);
				snprintf(why, sizeof why, "%.127s", r < 0 ? vio_msg : "");
			}
			if (r == 0) {
				snprintf(h->why, sizeof h->why, "af_xdp available");
			} else {
				close_kind(h);
				snprintf(h->why, sizeof h->why, "af_packet: %.116s", why);
				r = open_kind(h, VIO_PACKET, ifname, opts);
			}
		} else {
			r = open_kind(h, kind, ifname, opts);
			snprintf(h->why, sizeof h->why, "requested");
		}
	} else {
		r = open_kind(h, kind, ifname, opts);
		snprintf(h->why, sizeof h->why, "requested");
	}
	if (r < 0) goto fail;
	vio_ns_leave(saved);
	*out = h;
	return 0;
fail:
	close_kind(h);
	if (h->ctl_fd >= 0) close(h->ctl_fd);
	vio_ns_leave(saved);
	free(h);
	return r;
}

VALE_API void vale_io_close(struct vale_io *h)
{
	if (!h) return;
	close_kind(h);
	if (h->ctl_fd >= 0) close(h->ctl_fd);
	free(h);
}

VALE_API int vale_io_recv_batch(struct vale_io *h, void *const *bufs, uint16_t *lens,
				uint16_t *flags, uint32_t max)
{
	if (h->dead) return vio_err(h->dead, "interface '%s' was removed", h->ifname);
	switch (h->kind) {
	case VIO_TAP: return vio_tap_recv(h, bufs, lens, flags, max);
	case VIO_PACKET: return vio_pkt_recv(h, bufs, lens, flags, max);
	case VIO_XDP: return vio_xdp_recv(h, bufs, lens, flags, max);
	}
	return -EINVAL;
}

VALE_API int vale_io_send_batch(struct vale_io *h, void *const *bufs, const uint16_t *lens,
				const uint16_t *flags, uint32_t n)
{
	if (h->dead) return vio_err(h->dead, "interface '%s' was removed", h->ifname);
	switch (h->kind) {
	case VIO_TAP: return vio_tap_send(h, bufs, lens, flags, n);
	case VIO_PACKET: return vio_pkt_send(h, bufs, lens, flags, n);
	case VIO_XDP: return vio_xdp_send(h, bufs, lens, flags, n);
	}
	return -EINVAL;
}

VALE_API int vale_io_tx_pending(struct vale_io *h)
{
	if (h->dead) return 0;
	if (h->kind == VIO_PACKET) return ((struct pkt *)h->priv)->need_kick ? 1 : 0;
	if (h->kind == VIO_XDP) return vio_xdp_tx_pending(h);
	return 0;
}

VALE_API int vale_io_tap_persist(struct vale_io *h, int32_t on)
{
	if (h->kind != VIO_TAP) return vio_err(-EINVAL, "'%s' is not a TAP handle", h->ifname);
	if (ioctl(h->fd, TUNSETPERSIST, on ? 1 : 0) < 0) {
		int e = errno;
		return vio_err(-e, "TAP '%s': TUNSETPERSIST: %s%s", h->ifname, strerror(e),
			       vio_priv_hint(e, "CAP_NET_ADMIN"));
	}
	if (on) h->flags |= VIO_F_TAP_PERSIST;
	else h->flags &= ~(uint32_t)VIO_F_TAP_PERSIST;
	return 0;
}

VALE_API int vale_io_fd(struct vale_io *h) { return h->poll_fd >= 0 ? h->poll_fd : h->fd; }

VALE_API int vale_io_check(struct vale_io *h) { return vio_check_alive(h); }

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

VALE_API int vale_io_poll(struct vale_io *h, uint32_t events, int timeout_ms)
{
	if (h->dead) return vio_err(h->dead, "interface '%s' was removed", h->ifname);
	short in = (events & VIO_POLL_IN) ? POLLIN : 0, out = (events & VIO_POLL_OUT) ? POLLOUT : 0;
	struct pollfd pfd[257];
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	/* Wait in slices so that a removed interface is noticed even by a
	 * backend whose fd does not report it (AF_XDP). */
	for (;;) {
		int slice = 200;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			if (left < 0) left = 0;
			if (left < slice) slice = (int)left;
		}
		int n = 1;
		if (h->kind == VIO_XDP)
			n = vio_xdp_pollfds(h, pfd, 257, in, out);
		else
			pfd[0] = (struct pollfd){.fd = h->fd, .events = (short)(in | out)};
		int r = poll(pfd, (nfds_t)n, slice);
		if (r < 0) {
			if (errno == EINTR) return 0;
			int e = errno;
			return vio_err(-e, "'%s': poll: %s", h->ifname, strerror(e));
		}
		if (r > 0) {
			int m = 0, err = 0;
			for (int i = 0; i < n; i++) {
				if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL)) err = 1;
				if (pfd[i].revents & POLLIN) m |= VIO_POLL_IN;
				if (pfd[i].revents & POLLOUT) m |= VIO_POLL_OUT;
			}
			if (err) {
				int c = vio_check_alive(h);
				if (c < 0) return c;
				/* transient error (the link flapped): report what is ready */
			}
			if (m) return m;
		}
		if (h->kind == VIO_PACKET && out) { /* the sender's poll: push what is queued */
			struct pkt *p = h->priv;
			if (p->need_kick) pkt_kick(h, p);
		}
		/* nothing ready: is the interface still there? (rate limited, so
		 * busy polling with timeout 0 stays cheap) */
		int64_t now = now_ms();
		if (timeout_ms != 0 || now - h->last_check_ms >= 100) {
			h->last_check_ms = now;
			int c = vio_check_alive(h);
			if (c < 0) return c;
		}
		if (deadline >= 0 && now >= deadline) return 0;
	}
}

VALE_API int vale_io_stats(struct vale_io *h, struct vale_io_stats *out)
{
	if (h->kind == VIO_PACKET) vio_pkt_stats(h);
	if (h->kind == VIO_XDP) vio_xdp_stats(h);
	*out = h->st;
	return 0;
}

VALE_API int vale_io_info(struct vale_io *h, struct vale_io_info *out)
{
	memset(out, 0, sizeof *out);
	out->kind = h->kind;
	out->ifindex = h->ifindex;
	out->mtu = h->mtu;
	out->max_frame = h->max_frame;
	out->buf_size = h->buf_size;
	out->fd = vale_io_fd(h);
	out->flags = h->flags;
	snprintf(out->ifname, sizeof out->ifname, "%s", h->ifname);
	snprintf(out->mode, sizeof out->mode, "%s", h->mode);
	snprintf(out->why, sizeof out->why, "%s", h->why);
	return 0;
}
