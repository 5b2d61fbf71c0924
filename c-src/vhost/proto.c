/*
 * vale vhost-user: the socket side. One control thread per device listens
 * on the Unix socket (server: QEMU's `-chardev socket,path=`, DPDK's
 * virtio-user) or connects to it and reconnects (client: QEMU with
 * `server=on`), then serves one front-end at a time: reads each message
 * (header, payload, fds by SCM_RIGHTS), checks it and applies it to the
 * device under the queue locks, and replies (GET_*, REPLY_ACK).
 *
 * A framing error (bad version, a payload larger than any message, a peer
 * that closes or stalls mid-message, truncated fds) ends the connection and
 * is counted (bad_msgs); a message with bad values is refused (counted, a
 * failure ack when one was asked for) and the connection stays. When the
 * front-end goes, its queues and memory are dropped: the port is down
 * (frames to it are counted as drops by the forwarder) until one connects
 * again.
 */
#include "vhost.h"
#include "vale_app.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct vhu_hdr {
	uint32_t request, flags, size;
};
struct vhu_state {
	uint32_t index, num;
};
struct vhu_addr {
	uint32_t index, flags;
	uint64_t desc, used, avail, log;
};

struct msg {
	struct vhu_hdr h;
	uint8_t p[VHU_MAX_PAYLOAD];
	int fds[VHU_MAX_FDS];
	int nfds;
};

static void refuse(struct vh_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(struct vh_dev *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&d->mlock);
	vsnprintf(d->last_err, sizeof d->last_err, fmt, ap);
	pthread_mutex_unlock(&d->mlock);
	va_end(ap);
	VH_ADD(d, bad_msgs, 1);
}

static void lock_all(struct vh_dev *d)
{
	pthread_mutex_lock(&d->vq[0].lock);
	pthread_mutex_lock(&d->vq[1].lock);
	pthread_mutex_lock(&d->mlock);
}
static void unlock_all(struct vh_dev *d)
{
	pthread_mutex_unlock(&d->mlock);
	pthread_mutex_unlock(&d->vq[1].lock);
	pthread_mutex_unlock(&d->vq[0].lock);
}

int vh_dev_ready(struct vh_dev *d)
{
	return d->connected && vh_vq_ready(&d->vq[0]) && vh_vq_ready(&d->vq[1]);
}

/* The handle's mode text: who we are and the front-end's state. */
static void update_mode(struct vh_dev *d)
{
	if (!d->mode) return;
	char t[64];
	if (!d->connected)
		snprintf(t, sizeof t, "vhost-user %s: %s", d->client ? "client" : "server",
			 d->client ? "connecting" : "waiting for a front-end");
	else
		snprintf(t, sizeof t, "vhost-user %s: connected%s%s%s%s%s, %d/2 queues",
			 d->client ? "client" : "server",
			 (d->features & VH_BIT(VIRTIO_F_VERSION_1)) ? " v1" : "",
			 d->port_hdr ? " tso" : "",
			 d->mrg ? " mrg" : "", d->event_idx ? " evidx" : "",
			 d->indirect ? " indir" : "",
			 vh_vq_ready(&d->vq[0]) + vh_vq_ready(&d->vq[1]));
	memcpy(d->mode, t, sizeof t);
}

/* Forget the front-end's queues, memory and features (lock_all held). */
static void reset_locked(struct vh_dev *d)
{
	for (int i = 0; i < 2; i++) {
		struct vh_vq *q = &d->vq[i];
		if (q->kick_fd >= 0) epoll_ctl(q->epfd, EPOLL_CTL_DEL, q->kick_fd, NULL);
		vh_vq_reset(q);
	}
	vh_mem_unmap(&d->mem);
	d->features = d->proto_features = 0;
	d->owner = false;
	d->mrg = d->event_idx = d->indirect = false;
	d->hdr_len = 10;
	d->port_hdr = 0;
}

static void disconnect(struct vh_dev *d)
{
	lock_all(d);
	reset_locked(d);
	d->connected = false;
	update_mode(d);
	unlock_all(d);
	if (d->conn_fd >= 0) close(d->conn_fd);
	d->conn_fd = -1;
	VH_ADD(d, disconnects, 1);
}

/* ---------------- framing ---------------- */

/* Read exactly len bytes (the socket has a receive timeout). 0, or -1 when
 * the peer closed or stalled. */
static int read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = recv(fd, (uint8_t *)buf + got, len - got, 0);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR) continue;
		return -1;
	}
	return 0;
}

/* Returns 1 with a message, 0 when the peer closed cleanly between
 * messages, -1 on a framing error (counted). */
static int recv_msg(struct vh_dev *d, struct msg *m)
{
	m->nfds = 0;
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {.iov_base = &m->h, .iov_len = sizeof m->h};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			    .msg_controllen = sizeof cm.buf};
	ssize_t r;
	do
		r = recvmsg(d->conn_fd, &mh, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r == 0) return 0;
	if (r < 0) {
		refuse(d, "reading a message: %s", strerror(errno));
		return -1;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
		int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
			if (m->nfds < VHU_MAX_FDS)
				m->fds[m->nfds++] = fd;
			else
				close(fd);
		}
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		refuse(d, "message with more fds than any message carries");
		return -1;
	}
	if ((size_t)r < sizeof m->h && read_full(d->conn_fd, (uint8_t *)&m->h + r, sizeof m->h - (size_t)r) < 0) {
		refuse(d, "the front-end closed or stalled in a message header");
		return -1;
	}
	if ((m->h.flags & VHU_FLAG_VERSION_MASK) != VHU_VERSION || (m->h.flags & VHU_FLAG_REPLY)) {
		refuse(d, "message %u with flags 0x%x: not a vhost-user v1 request", m->h.request,
		       m->h.flags);
		return -1;
	}
	if (m->h.size > VHU_MAX_PAYLOAD) {
		refuse(d, "message %u with a payload of %u bytes", m->h.request, m->h.size);
		return -1;
	}
	if (m->h.size && read_full(d->conn_fd, m->p, m->h.size) < 0) {
		refuse(d, "the front-end closed or stalled in message %u", m->h.request);
		return -1;
	}
	return 1;
}

static void close_fds(struct msg *m)
{
	for (int i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0) close(m->fds[i]);
	m->nfds = 0;
}

static int send_reply(struct vh_dev *d, uint32_t req, const void *p, uint32_t size)
{
	uint8_t buf[sizeof(struct vhu_hdr) + 64];
	struct vhu_hdr h = {req, VHU_VERSION | VHU_FLAG_REPLY, size};
	memcpy(buf, &h, sizeof h);
	memcpy(buf + sizeof h, p, size);
	ssize_t r = send(d->conn_fd, buf, sizeof h + size, MSG_NOSIGNAL);
	return r == (ssize_t)(sizeof h + size) ? 0 : -1;
}

static int reply_u64(struct vh_dev *d, uint32_t req, uint64_t v)
{
	return send_reply(d, req, &v, sizeof v);
}

/* ---------------- requests ---------------- */

static int need(struct vh_dev *d, const struct msg *m, uint32_t size, const char *what)
{
	if (m->h.size < size) {
		refuse(d, "%s: payload of %u bytes, expected %u", what, m->h.size, size);
		return -1;
	}
	return 0;
}

static struct vh_vq *queue(struct vh_dev *d, uint32_t index, const char *what)
{
	if (index > 1) {
		refuse(d, "%s: queue %u (this device has queues 0 and 1)", what, index);
		return NULL;
	}
	return &d->vq[index];
}

static uint64_t offered(const struct vh_dev *d)
{
	return VH_FEATURES | (d->offloads ? VH_OFFLOADS : 0);
}

static int set_features(struct vh_dev *d, uint64_t f)
{
	if (f & ~offered(d)) {
		refuse(d, "SET_FEATURES 0x%llx: bits we did not offer", (unsigned long long)f);
		return -1;
	}
	lock_all(d);
	d->features = f;
	d->mrg = f & VH_BIT(VIRTIO_NET_F_MRG_RXBUF);
	d->event_idx = f & VH_BIT(VIRTIO_F_EVENT_IDX);
	d->indirect = f & VH_BIT(VIRTIO_F_INDIRECT_DESC);
	d->hdr_len = (d->mrg || (f & VH_BIT(VIRTIO_F_VERSION_1))) ? 12 : 10;
	/* a guest that takes partial checksums and TSO both ways gets the
	 * switch's frames with their headers, and gives its own */
	d->port_hdr = (d->offloads && (f & VH_GUEST_RX_OFFLOADS) == VH_GUEST_RX_OFFLOADS)
			      ? d->hdr_len : 0;
	unlock_all(d);
	return 0;
}

static int set_mem_table(struct vh_dev *d, struct msg *m)
{
	struct vh_mem nm;
	char why[128];
	if (vh_mem_map(d, &nm, m->p, m->h.size, m->fds, m->nfds, why, sizeof why) < 0) {
		refuse(d, "%s", why);
		return -1;
	}
	close_fds(m); /* the mappings keep the memory */
	lock_all(d);
	vh_mem_unmap(&d->mem);
	d->mem = nm;
	int bad = -1;
	for (int i = 0; i < 2; i++)
		if (vh_vq_map(d, &d->vq[i]) < 0) bad = i;
	unlock_all(d);
	if (bad >= 0) {
		refuse(d, "SET_MEM_TABLE: queue %d's rings are outside the new table", bad);
		return -1;
	}
	return 0;
}

static int set_vring_num(struct vh_dev *d, struct msg *m)
{
	struct vhu_state s;
	if (need(d, m, sizeof s, "SET_VRING_NUM") < 0) return -1;
	memcpy(&s, m->p, sizeof s);
	struct vh_vq *q = queue(d, s.index, "SET_VRING_NUM");
	if (!q) return -1;
	if (s.num == 0 || s.num > VH_MAX_QSIZE || (s.num & (s.num - 1))) {
		refuse(d, "SET_VRING_NUM: size %u (a power of 2 up to %u)", s.num, VH_MAX_QSIZE);
		return -1;
	}
	pthread_mutex_lock(&q->lock);
	q->num = s.num;
	int r = vh_vq_map(d, q);
	pthread_mutex_unlock(&q->lock);
	return r;
}

static int set_vring_addr(struct vh_dev *d, struct msg *m)
{
	struct vhu_addr a;
	if (need(d, m, sizeof a, "SET_VRING_ADDR") < 0) return -1;
	memcpy(&a, m->p, sizeof a);
	struct vh_vq *q = queue(d, a.index, "SET_VRING_ADDR");
	if (!q) return -1;
	pthread_mutex_lock(&q->lock);
	q->desc_uva = a.desc;
	q->avail_uva = a.avail;
	q->used_uva = a.used;
	q->addr_set = true;
	int r = vh_vq_map(d, q);
	pthread_mutex_unlock(&q->lock);
	if (r < 0) {
		refuse(d, "SET_VRING_ADDR: queue %u rings outside the memory table or misaligned",
		       a.index);
		return -1;
	}
	return 0;
}

static int set_vring_base(struct vh_dev *d, struct msg *m)
{
	struct vhu_state s;
	if (need(d, m, sizeof s, "SET_VRING_BASE") < 0) return -1;
	memcpy(&s, m->p, sizeof s);
	struct vh_vq *q = queue(d, s.index, "SET_VRING_BASE");
	if (!q) return -1;
	if (s.num > 0xffff) {
		refuse(d, "SET_VRING_BASE: %u", s.num);
		return -1;
	}
	pthread_mutex_lock(&q->lock);
	q->last_avail = q->last_used = q->signalled = (uint16_t)s.num;
	q->broken = false;
	pthread_mutex_unlock(&q->lock);
	return 0;
}

static int get_vring_base(struct vh_dev *d, struct msg *m)
{
	struct vhu_state s;
	if (need(d, m, sizeof s, "GET_VRING_BASE") < 0) return -1;
	memcpy(&s, m->p, sizeof s);
	struct vh_vq *q = queue(d, s.index, "GET_VRING_BASE");
	if (!q) return -1;
	pthread_mutex_lock(&q->lock);
	/* the ring stops: no more processing until it is started again */
	s.num = q->last_avail;
	if (q->kick_fd >= 0) {
		epoll_ctl(q->epfd, EPOLL_CTL_DEL, q->kick_fd, NULL);
		close(q->kick_fd);
		q->kick_fd = -1;
	}
	q->kicked = false;
	pthread_mutex_unlock(&q->lock);
	return send_reply(d, m->h.request, &s, sizeof s) < 0 ? -2 : 1;
}

/* SET_VRING_KICK / CALL / ERR: a u64 with the queue index and a no-fd bit. */
static int set_vring_fd(struct vh_dev *d, struct msg *m, const char *what)
{
	uint64_t v;
	if (need(d, m, sizeof v, what) < 0) return -1;
	memcpy(&v, m->p, sizeof v);
	struct vh_vq *q = queue(d, (uint32_t)(v & VHU_VRING_IDX_MASK), what);
	if (!q) return -1;
	bool nofd = v & VHU_VRING_NOFD;
	if (nofd != (m->nfds == 0) || m->nfds > 1) {
		refuse(d, "%s: %d fds with the no-fd flag %s", what, m->nfds, nofd ? "set" : "clear");
		return -1;
	}
	int fd = nofd ? -1 : m->fds[0];
	if (fd >= 0) {
		struct stat st;
		/* an eventfd is an anonymous inode: refuse sockets, files, pipes */
		if (fstat(fd, &st) < 0 || S_ISSOCK(st.st_mode) || S_ISREG(st.st_mode) ||
		    S_ISFIFO(st.st_mode) || S_ISDIR(st.st_mode)) {
			refuse(d, "%s: the fd is not an eventfd", what);
			return -1;
		}
	}
	m->nfds = 0; /* ours now (or closed below) */
	pthread_mutex_lock(&q->lock);
	if (m->h.request == VHU_SET_VRING_KICK) {
		if (q->kick_fd >= 0) {
			epoll_ctl(q->epfd, EPOLL_CTL_DEL, q->kick_fd, NULL);
			close(q->kick_fd);
		}
		q->kick_fd = fd;
		if (fd >= 0) {
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
			struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
			epoll_ctl(q->epfd, EPOLL_CTL_ADD, fd, &ev);
		}
		q->kicked = true; /* the ring starts */
		if (!(d->features & VH_BIT(VHOST_USER_F_PROTOCOL_FEATURES))) q->enabled = true;
	} else if (m->h.request == VHU_SET_VRING_CALL) {
		if (q->call_fd >= 0) close(q->call_fd);
		q->call_fd = fd;
	} else if (fd >= 0) {
		close(fd); /* SET_VRING_ERR: we report no errors through it */
	}
	pthread_mutex_unlock(&q->lock);
	return 0;
}

static int set_vring_enable(struct vh_dev *d, struct msg *m)
{
	struct vhu_state s;
	if (need(d, m, sizeof s, "SET_VRING_ENABLE") < 0) return -1;
	memcpy(&s, m->p, sizeof s);
	struct vh_vq *q = queue(d, s.index, "SET_VRING_ENABLE");
	if (!q) return -1;
	pthread_mutex_lock(&q->lock);
	q->enabled = s.num != 0;
	pthread_mutex_unlock(&q->lock);
	return 0;
}

/* Handle one message. Returns 0 (done), 1 (replied), -1 (refused), -2 (the
 * connection must end). */
static int dispatch(struct vh_dev *d, struct msg *m)
{
	uint64_t v;
	switch (m->h.request) {
	case VHU_GET_FEATURES:
		return reply_u64(d, m->h.request, offered(d)) < 0 ? -2 : 1;
	case VHU_SET_FEATURES:
		if (need(d, m, 8, "SET_FEATURES") < 0) return -1;
		memcpy(&v, m->p, 8);
		return set_features(d, v);
	case VHU_GET_PROTOCOL_FEATURES:
		return reply_u64(d, m->h.request, VH_PROTO_FEATURES) < 0 ? -2 : 1;
	case VHU_SET_PROTOCOL_FEATURES:
		if (need(d, m, 8, "SET_PROTOCOL_FEATURES") < 0) return -1;
		memcpy(&v, m->p, 8);
		if (v & ~VH_PROTO_FEATURES) {
			refuse(d, "SET_PROTOCOL_FEATURES 0x%llx: bits we did not offer",
			       (unsigned long long)v);
			return -1;
		}
		d->proto_features = v;
		return 0;
	case VHU_SET_OWNER:
		d->owner = true;
		return 0;
	case VHU_RESET_OWNER:
		lock_all(d);
		reset_locked(d);
		unlock_all(d);
		return 0;
	case VHU_SET_MEM_TABLE:
		return set_mem_table(d, m);
	case VHU_SET_VRING_NUM:
		return set_vring_num(d, m);
	case VHU_SET_VRING_ADDR:
		return set_vring_addr(d, m);
	case VHU_SET_VRING_BASE:
		return set_vring_base(d, m);
	case VHU_GET_VRING_BASE:
		return get_vring_base(d, m);
	case VHU_SET_VRING_KICK:
		return set_vring_fd(d, m, "SET_VRING_KICK");
	case VHU_SET_VRING_CALL:
		return set_vring_fd(d, m, "SET_VRING_CALL");
	case VHU_SET_VRING_ERR:
		return set_vring_fd(d, m, "SET_VRING_ERR");
	case VHU_SET_VRING_ENABLE:
		return set_vring_enable(d, m);
	case VHU_GET_QUEUE_NUM:
		return reply_u64(d, m->h.request, 1) < 0 ? -2 : 1;
	case VHU_SEND_RARP:
	case VHU_NET_SET_MTU:
		return 0; /* nothing to do for a switch port */
	case VHU_SET_LOG_BASE:
	case VHU_SET_LOG_FD:
		refuse(d, "dirty-page logging (migration) is not supported");
		return -1;
	default:
		VH_ADD(d, unknown_msgs, 1);
		pthread_mutex_lock(&d->mlock);
		snprintf(d->last_err, sizeof d->last_err, "unknown request %u ignored",
			 m->h.request);
		pthread_mutex_unlock(&d->mlock);
		return -1;
	}
}

/* One message from the front-end: 0 fine, -1 end the connection. */
static int serve_one(struct vh_dev *d, struct msg *m)
{
	int r = recv_msg(d, m);
	if (r <= 0) {
		close_fds(m);
		return -1;
	}
	VH_ADD(d, msgs, 1);
	r = dispatch(d, m);
	close_fds(m);
	if (r == -2) return -1;
	/* REPLY_ACK: a status for requests that have no reply of their own */
	if (r != 1 && (m->h.flags & VHU_FLAG_NEED_REPLY) &&
	    (d->proto_features & VH_BIT(VHU_PROTO_F_REPLY_ACK))) {
		if (reply_u64(d, m->h.request, r < 0 ? 1 : 0) < 0) return -1;
	}
	pthread_mutex_lock(&d->mlock);
	update_mode(d);
	pthread_mutex_unlock(&d->mlock);
	return 0;
}

/* ---------------- the control thread ---------------- */

static void set_conn(struct vh_dev *d, int fd)
{
	struct timeval tv = {.tv_sec = 2}; /* a front-end stalling mid-message */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	d->conn_fd = fd;
	pthread_mutex_lock(&d->mlock);
	d->connected = true;
	d->hdr_len = 10;
	update_mode(d);
	pthread_mutex_unlock(&d->mlock);
	VH_ADD(d, connects, 1);
}

static int try_connect(struct vh_dev *d)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) return -1;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, d->path, strlen(d->path));
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		return -1;
	}
	set_conn(d, fd);
	return 0;
}

static void *ctl_main(void *arg)
{
	struct vh_dev *d = arg;
	pthread_setname_np(pthread_self(), "vale-vhost-ctl");
	struct msg *m = calloc(1, sizeof *m);
	if (!m) return NULL;
	while (!d->stop) {
		struct pollfd p[3];
		int n = 0, ip = -1, il = -1;
		p[n++] = (struct pollfd){.fd = d->stop_efd, .events = POLLIN};
		if (d->conn_fd >= 0) {
			ip = n;
			p[n++] = (struct pollfd){.fd = d->conn_fd, .events = POLLIN};
		}
		if (d->listen_fd >= 0) {
			il = n;
			p[n++] = (struct pollfd){.fd = d->listen_fd, .events = POLLIN};
		}
		if (d->client && d->conn_fd < 0 && try_connect(d) == 0) continue;
		int r = poll(p, (nfds_t)n, d->client && d->conn_fd < 0 ? 200 : 100);
		if (d->stop) break;
		if (__atomic_load_n(&d->mem_fault, __ATOMIC_ACQUIRE) && d->conn_fd >= 0) {
			/* the front-end shrank memory it gave us: it is broken, drop it */
			__atomic_store_n(&d->mem_fault, 0, __ATOMIC_RELEASE);
			VH_ADD(d, mem_faults, 1);
			pthread_mutex_lock(&d->mlock);
			snprintf(d->last_err, sizeof d->last_err,
				 "the front-end shrank its shared memory under us (SIGBUS caught): "
				 "disconnected");
			pthread_mutex_unlock(&d->mlock);
			disconnect(d);
			continue;
		}
		if (r <= 0) continue;
		if (ip >= 0 && (p[ip].revents & (POLLIN | POLLHUP | POLLERR))) {
			if (serve_one(d, m) < 0) disconnect(d);
		}
		if (il >= 0 && (p[il].revents & POLLIN)) {
			int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0) {
				if (d->conn_fd < 0) {
					set_conn(d, fd);
				} else { /* one front-end at a time */
					close(fd);
					VH_ADD(d, rejected_conns, 1);
				}
			}
		}
	}
	free(m);
	return NULL;
}

/* The listening socket at path: a stale socket file is replaced, anything
 * else at that path (a file, a symlink) is refused. */
static int listen_on(struct vh_dev *d, const char *path)
{
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode) || (st.st_uid != geteuid() && st.st_uid != 0)) {
			snprintf(d->last_err, sizeof d->last_err,
				 "'%s' exists and is not a socket of ours: refusing to replace it", path);
			return -EEXIST;
		}
		/* a socket nobody listens on any more (a stale one) is replaced */
		int t = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		memcpy(a.sun_path, path, strlen(path));
		int live = t >= 0 && connect(t, (struct sockaddr *)&a, sizeof a) == 0;
		if (t >= 0) close(t);
		if (live) {
			snprintf(d->last_err, sizeof d->last_err,
				 "'%s': another process listens on it", path);
			return -EADDRINUSE;
		}
		unlink(path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) return -errno;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, path, strlen(path));
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4) < 0) {
		int e = errno;
		snprintf(d->last_err, sizeof d->last_err, "cannot listen on '%s': %s", path,
			 strerror(e));
		close(fd);
		return -e;
	}
	d->listen_fd = fd;
	return 0;
}

int vh_dev_start(struct vh_dev *d, const char *path, bool client, bool offloads, char *mode)
{
	size_t pl = strlen(path);
	d->listen_fd = d->conn_fd = d->stop_efd = d->in_epfd = d->out_epfd = -1;
	d->mode = mode;
	d->client = client;
	d->offloads = offloads;
	d->hdr_len = 10;
	pthread_mutex_init(&d->mlock, NULL);
	if (vh_vq_init(&d->vq[0]) < 0 || vh_vq_init(&d->vq[1]) < 0) return -ENOMEM;
	if (pl == 0 || pl >= sizeof d->path) {
		snprintf(d->last_err, sizeof d->last_err, "socket path of %zu characters (1..%zu)",
			 pl, sizeof d->path - 1);
		return -EINVAL;
	}
	memcpy(d->path, path, pl + 1);
	/* the socket's directory: no symlink on the way, nobody else's, writable
	 * by nobody else (unless sticky), as vale's own directories (fsafe.c) */
	char dir[sizeof d->path];
	memcpy(dir, path, pl + 1);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = 0;
	else if (slash)
		*slash = 0;
	else
		snprintf(dir, sizeof dir, ".");
	int sr = vale_secure_dir(dir, ".", 0);
	if (sr < 0) {
		/* fsafe.c words it for run directories: keep the reason, not the hint */
		char why[256];
		snprintf(why, sizeof why, "%s", vale_last_error());
		char *hint = strstr(why, " (remove it or choose another VALE_RUN_DIR)");
		if (hint) *hint = 0;
		const char *w = strncmp(why, "run directory ", 14) == 0 ? why + 14 : why;
		snprintf(d->last_err, sizeof d->last_err, "unsafe socket directory %.220s", w);
		return sr;
	}
	d->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->in_epfd = epoll_create1(EPOLL_CLOEXEC);
	d->out_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->stop_efd < 0 || d->in_epfd < 0 || d->out_epfd < 0) return -errno;
	d->vq[0].epfd = d->out_epfd; /* RX: kicked when the guest adds buffers */
	d->vq[1].epfd = d->in_epfd;  /* TX: kicked when the guest sends */
	if (!client) {
		int r = listen_on(d, path);
		if (r < 0) return r;
	}
	update_mode(d);
	int e = pthread_create(&d->th, NULL, ctl_main, d);
	if (e) return -e;
	d->th_started = true;
	return 0;
}

void vh_dev_stop(struct vh_dev *d)
{
	d->stop = 1;
	if (d->stop_efd >= 0) {
		uint64_t one = 1;
		if (write(d->stop_efd, &one, sizeof one) < 0) {
		}
	}
	if (d->th_started) pthread_join(d->th, NULL);
	d->th_started = false;
	if (d->conn_fd >= 0) disconnect(d);
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		unlink(d->path);
	}
	d->mode = NULL;
	vh_vq_fini(&d->vq[0]);
	vh_vq_fini(&d->vq[1]);
	vh_mem_unmap(&d->mem);
	if (d->stop_efd >= 0) close(d->stop_efd);
	if (d->in_epfd >= 0) close(d->in_epfd);
	if (d->out_epfd >= 0) close(d->out_epfd);
	pthread_mutex_destroy(&d->mlock);
}

/* ---------------- status ---------------- */

static int jstr(char *o, size_t len, const char *s)
{
	size_t k = 0;
	if (k < len) o[k] = '"';
	k++;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char t[8];
		int l;
		if (c == '"' || c == '\\')
			l = snprintf(t, sizeof t, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			l = snprintf(t, sizeof t, "\\u%04x", c);
		else
			l = snprintf(t, sizeof t, "%c", c);
		for (int i = 0; i < l; i++, k++)
			if (k < len) o[k] = t[i];
	}
	if (k < len) o[k] = '"';
	k++;
	if (len) o[k < len ? k : len - 1] = 0;
	return (int)k;
}

int vh_dev_json(struct vh_dev *d, char *buf, uint32_t len)
{
	char path[256], err[640];
	jstr(path, sizeof path, d->path);
	pthread_mutex_lock(&d->mlock);
	jstr(err, sizeof err, d->last_err);
	uint64_t f = d->features, pf = d->proto_features;
	bool conn = d->connected;
	pthread_mutex_unlock(&d->mlock);
	char qs[2][384];
	for (int i = 0; i < 2; i++) {
		struct vh_vq *q = &d->vq[i];
		pthread_mutex_lock(&q->lock);
		/* the guest's side of the ring, as it is now (for people: what is pending) */
		int avail_idx = q->avail ? LOAD_ACQ(&q->avail->idx) : -1;
		int avail_flags = q->avail ? LOAD_RLX(&q->avail->flags) : -1;
		snprintf(qs[i], sizeof qs[i],
			 "{\"index\":%d,\"size\":%u,\"ready\":%s,\"enabled\":%s,\"started\":%s,"
			 "\"broken\":%s,\"last_avail\":%u,\"last_used\":%u,\"avail_idx\":%d,"
			 "\"avail_flags\":%d,\"kick_fd\":%s,\"call_fd\":%s}",
			 i, q->num, vh_vq_ready(q) ? "true" : "false", q->enabled ? "true" : "false",
			 q->kicked ? "true" : "false", q->broken ? "true" : "false", q->last_avail,
			 q->last_used, avail_idx, avail_flags, q->kick_fd >= 0 ? "true" : "false",
			 q->call_fd >= 0 ? "true" : "false");
		pthread_mutex_unlock(&q->lock);
	}
	const struct vh_counters *c = &d->c;
	return snprintf(
		buf, len,
		"{\"path\":%s,\"role\":\"%s\",\"connected\":%s,\"ready\":%s,"
		"\"features\":\"0x%llx\",\"protocol_features\":\"0x%llx\",\"version_1\":%s,"
		"\"mrg_rxbuf\":%s,\"event_idx\":%s,\"indirect_desc\":%s,\"queues\":[%s,%s],"
		"\"counters\":{\"connects\":%llu,\"disconnects\":%llu,\"rejected_conns\":%llu,"
		"\"msgs\":%llu,\"bad_msgs\":%llu,\"unknown_msgs\":%llu,\"bad_desc\":%llu,"
		"\"bad_index\":%llu,\"rx_no_bufs\":%llu,\"rx_drops\":%llu,\"kicks_in\":%llu,"
		"\"calls_out\":%llu,\"tx_offload_refused\":%llu,\"mem_faults\":%llu,"
		"\"tx_direct\":%llu,\"tx_copied\":%llu},"
		"\"port_vnet_hdr\":%u,"
		"\"last_error\":%s}",
		path, d->client ? "client" : "server", conn ? "true" : "false",
		vh_dev_ready(d) ? "true" : "false", (unsigned long long)f, (unsigned long long)pf,
		(f & VH_BIT(VIRTIO_F_VERSION_1)) ? "true" : "false",
		(f & VH_BIT(VIRTIO_NET_F_MRG_RXBUF)) ? "true" : "false",
		(f & VH_BIT(VIRTIO_F_EVENT_IDX)) ? "true" : "false",
		(f & VH_BIT(VIRTIO_F_INDIRECT_DESC)) ? "true" : "false", qs[0], qs[1],
		(unsigned long long)LOAD_RLX(&c->connects), (unsigned long long)LOAD_RLX(&c->disconnects),
		(unsigned long long)LOAD_RLX(&c->rejected_conns), (unsigned long long)LOAD_RLX(&c->msgs),
		(unsigned long long)LOAD_RLX(&c->bad_msgs), (unsigned long long)LOAD_RLX(&c->unknown_msgs),
		(unsigned long long)LOAD_RLX(&c->bad_desc), (unsigned long long)LOAD_RLX(&c->bad_index),
		(unsigned long long)LOAD_RLX(&c->rx_no_bufs), (unsigned long long)LOAD_RLX(&c->rx_drops),
		(unsigned long long)LOAD_RLX(&c->kicks_in), (unsigned long long)LOAD_RLX(&c->calls_out),
		(unsigned long long)LOAD_RLX(&c->tx_offload_refused),
		(unsigned long long)LOAD_RLX(&c->mem_faults), (unsigned long long)LOAD_RLX(&c->tx_direct),
		(unsigned long long)LOAD_RLX(&c->tx_copied), d->port_hdr, err);
}
