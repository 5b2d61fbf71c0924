/*
 * vale kernel I/O: network interfaces. Entering and leaving a network
 * namespace, link queries and settings (up/down, MTU, MAC, offloads) through
 * ioctls and rtnetlink, and the liveness check of an open handle. Used by
 * io.c at open, by the backends when they set up, and by the public
 * vale_io_link / vale_io_set_* calls.
 */
#include "io_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <net/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>

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

/* The interface's driver ("veth", "tun", "virtio_net", ...) through
 * ETHTOOL_GDRVINFO; out is "" when the driver does not say. */
int vio_link_driver(int ctl_fd, const char *ifname, char *out, size_t size)
{
	struct ifreq ifr;
	int r = ifr_set(&ifr, ifname);
	if (r < 0) return r;
	struct ethtool_drvinfo di = {.cmd = ETHTOOL_GDRVINFO};
	ifr.ifr_data = (void *)&di;
	if (size) out[0] = 0;
	if (ioctl(ctl_fd, SIOCETHTOOL, &ifr) < 0) return -errno;
	di.driver[sizeof di.driver - 1] = 0;
	snprintf(out, size, "%s", di.driver);
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

int vio_ctl_socket(void)
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
	int fd = vio_ctl_socket();
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
	int fd = vio_ctl_socket();
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
	int fd = vio_ctl_socket();
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
	int fd = vio_ctl_socket(), changed = 0;
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
	if (h->ops->check) return h->ops->check(h);
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	if (h->ops->so_error) getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
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
