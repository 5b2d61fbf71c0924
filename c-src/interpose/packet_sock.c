/*
 * Sending through a PF_PACKET socket to a switch port: what tcpreplay does
 * on Linux (it injects with socket(PF_PACKET) + SIOCGIFINDEX + bind + send,
 * not with pcap_inject). With the interposer loaded:
 *
 *   ioctl(SIOCGIFINDEX / SIOCGIFHWADDR / SIOCGIFMTU / SIOCGIFFLAGS) on a
 *     switch-port name answers for the port (a private ifindex from
 *     VSOCK_IFINDEX up, a locally administered MAC, flags up and running);
 *   bind() of a PF_PACKET socket to such an ifindex opens the port, and
 *     binds the real socket to nothing that receives (protocol 0 on lo);
 *   send() / sendto() / write() on that socket put the frame into the
 *     port's TX ring (the switch forwards it at once);
 *   close() closes the port.
 *
 * Every other call goes to libc untouched; when no socket is bound to a
 * port, each interposed call costs one load and a compare.
 */
#include "real.h"
#include "vport.h"

#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define VSOCK_IFINDEX 0x56000000 /* "V": far above any kernel ifindex */
#define MAX_NAMES 64
#define MAX_SOCKS 64

EXPORT int ioctl(int fd, unsigned long req, ...);
EXPORT int bind(int fd, const struct sockaddr *sa, socklen_t len);
EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags);
EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
		      socklen_t tolen);
EXPORT ssize_t write(int fd, const void *buf, size_t len);
EXPORT int close(int fd);

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_names[MAX_NAMES][IFNAMSIZ]; /* ifindex VSOCK_IFINDEX + i names g_names[i] */
static unsigned g_nnames;

struct vsock {
	int fd; /* -1: free */
	struct vport vp;
};
static struct vsock g_socks[MAX_SOCKS];
static unsigned g_nsocks; /* sockets bound to a port: 0 keeps every call on the fast path */

/* The private ifindex of a switch-port name (assigned on first use), or 0. */
static int name_index(const char *name)
{
	char n[IFNAMSIZ];
	snprintf(n, sizeof(n), "%s", name);
	struct vname vn;
	char err[256];
	if (!vname_is_vale(n) || !strchr(n, ':') || vname_parse(n, &vn, err, sizeof(err)))
		return 0;
	int idx = 0;
	pthread_mutex_lock(&g_lock);
	for (unsigned i = 0; i < g_nnames && !idx; i++)
		if (strcmp(g_names[i], n) == 0)
			idx = VSOCK_IFINDEX + (int)i;
	if (!idx && g_nnames < MAX_NAMES) {
		snprintf(g_names[g_nnames], IFNAMSIZ, "%s", n);
		idx = VSOCK_IFINDEX + (int)g_nnames++;
	}
	pthread_mutex_unlock(&g_lock);
	return idx;
}

static struct vsock *sock_of(int fd)
{
	if (fd < 0 || !__atomic_load_n(&g_nsocks, __ATOMIC_ACQUIRE))
		return NULL;
	for (unsigned i = 0; i < MAX_SOCKS; i++)
		if (__atomic_load_n(&g_socks[i].fd, __ATOMIC_ACQUIRE) == fd + 1)
			return &g_socks[i];
	return NULL;
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if ((req == SIOCGIFINDEX || req == SIOCGIFHWADDR || req == SIOCGIFMTU ||
	     req == SIOCGIFFLAGS) && arg) {
		struct ifreq *ifr = arg;
		int idx = name_index(ifr->ifr_name);
		if (idx) {
			switch (req) {
			case SIOCGIFINDEX:
				ifr->ifr_ifindex = idx;
				break;
			case SIOCGIFHWADDR: /* 02:76:61:6c:xx:xx: local, "val" and the index */
				memset(&ifr->ifr_hwaddr, 0, sizeof(ifr->ifr_hwaddr));
				ifr->ifr_hwaddr.sa_family = ARPHRD_ETHER;
				memcpy(ifr->ifr_hwaddr.sa_data, "\x02\x76\x61\x6c", 4);
				ifr->ifr_hwaddr.sa_data[4] = (char)((idx >> 8) & 0xff);
				ifr->ifr_hwaddr.sa_data[5] = (char)(idx & 0xff);
				break;
			case SIOCGIFMTU:
				ifr->ifr_mtu = VPORT_MAX_FRAME - 14;
				break;
			case SIOCGIFFLAGS:
				ifr->ifr_flags = IFF_UP | IFF_RUNNING | IFF_BROADCAST;
				break;
			}
			return 0;
		}
	}
	if (!REAL(ioctl)) {
		errno = ENOSYS;
		return -1;
	}
	return REAL(ioctl)(fd, req, arg);
}

EXPORT int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	if (!REAL(bind)) {
		errno = ENOSYS;
		return -1;
	}
	if (!sa || len < sizeof(struct sockaddr_ll) || sa->sa_family != AF_PACKET)
		return REAL(bind)(fd, sa, len);
	const struct sockaddr_ll *ll = (const struct sockaddr_ll *)sa;
	int i = ll->sll_ifindex - VSOCK_IFINDEX;
	if (i < 0 || i >= MAX_NAMES)
		return REAL(bind)(fd, sa, len);
	char name[IFNAMSIZ] = "";
	pthread_mutex_lock(&g_lock);
	if ((unsigned)i < g_nnames)
		memcpy(name, g_names[i], IFNAMSIZ);
	pthread_mutex_unlock(&g_lock);
	struct vname vn;
	char err[256];
	if (!name[0] || vname_parse(name, &vn, err, sizeof(err))) {
		errno = ENODEV;
		return -1;
	}
	/* the socket itself receives nothing: protocol 0 on the loopback device */
	struct sockaddr_ll none;
	memset(&none, 0, sizeof(none));
	none.sll_family = AF_PACKET;
	none.sll_protocol = 0;
	none.sll_ifindex = 1;
	REAL(bind)(fd, (struct sockaddr *)&none, sizeof(none));
	pthread_mutex_lock(&g_lock);
	struct vsock *s = NULL;
	for (unsigned k = 0; k < MAX_SOCKS && !s; k++)
		if (!g_socks[k].fd)
			s = &g_socks[k];
	if (!s) {
		pthread_mutex_unlock(&g_lock);
		errno = EMFILE;
		return -1;
	}
	int r = vport_open(&s->vp, &vn, err, sizeof(err));
	if (r < 0) {
		pthread_mutex_unlock(&g_lock);
		fprintf(stderr, "libvale-pcap: %s\n", err);
		errno = -r;
		return -1;
	}
	__atomic_store_n(&s->fd, fd + 1, __ATOMIC_RELEASE);
	__atomic_add_fetch(&g_nsocks, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&g_lock);
	return 0;
}

static ssize_t vsend(struct vsock *s, const void *buf, size_t len)
{
	char err[256];
	int r = vport_send(&s->vp, buf, len, err, sizeof(err));
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return (ssize_t)len;
}

EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	struct vsock *s = sock_of(fd);
	if (s)
		return vsend(s, buf, len);
	if (!REAL(send)) {
		errno = ENOSYS;
		return -1;
	}
	return REAL(send)(fd, buf, len, flags);
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
		      socklen_t tolen)
{
	struct vsock *s = sock_of(fd);
	if (s)
		return vsend(s, buf, len);
	if (!REAL(sendto)) {
		errno = ENOSYS;
		return -1;
	}
	return REAL(sendto)(fd, buf, len, flags, to, tolen);
}

EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
	struct vsock *s = sock_of(fd);
	if (s)
		return vsend(s, buf, len);
	if (!REAL(write)) {
		errno = ENOSYS;
		return -1;
	}
	return REAL(write)(fd, buf, len);
}

EXPORT int close(int fd)
{
	struct vsock *s = sock_of(fd);
	if (s) {
		pthread_mutex_lock(&g_lock);
		vport_close(&s->vp);
		__atomic_store_n(&s->fd, 0, __ATOMIC_RELEASE);
		__atomic_sub_fetch(&g_nsocks, 1, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&g_lock);
	}
	if (!REAL(close)) {
		errno = ENOSYS;
		return -1;
	}
	return REAL(close)(fd);
}
