/*
 * vale-ctl's operations on a switch: persistent ports (-n), removing a port
 * (-r) or a switch, reaping, recording a forwarder. Above port.c: uses the
 * port table and the switch handles.
 */
#include "internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------- control operations ---------------- */

VALE_API int vale_create_persistent(const char *run_dir, const char *sw, const char *port,
				    const struct vale_open_req *req)
{
	struct vale_open_req r;
	memset(&r, 0, sizeof(r));
	if (req)
		r = *req;
	r.flags |= VO_CREATE_PERSISTENT;
	r.flags &= ~(uint32_t)VO_NO_CREATE;
	return vale_open(run_dir, sw, port, &r, NULL);
}

VALE_API int vale_remove_port(const char *run_dir, const char *swname, const char *port)
{
	struct vale_sw *sw;
	int r = vale_switch_get(run_dir, swname, false, &sw);
	if (r)
		return r;
	r = vale_ctl_lock(sw);
	if (r)
		goto out;
	int idx = vale_find_port(sw, port);
	if (idx < 0 || sw->ports[idx].state != VP_ACTIVE) {
		r = vale_err(ENXIO, "no port %s:%s", swname, port);
	} else if (vale_port_in_use(sw, (uint32_t)idx) > 0) {
		r = vale_err(EBUSY, "%s:%s is in use (pid %d)", swname, port, sw->ports[idx].owner_pid);
	} else {
		vale_port_remove_locked(sw, (uint32_t)idx);
		if (vale_switch_empty(sw))
			vale_switch_destroy_locked(sw);
		r = 0;
	}
	vale_ctl_unlock(sw);
out:
	vale_switch_put(sw);
	return r;
}

/* Remove a switch whose control segment cannot be trusted any more: its
 * port table is not read at all. Ports still in use are found by their
 * liveness locks on the region files (held while a process has one open). */
static int switch_remove_damaged(const char *run_dir, const char *swname)
{
	if (!run_dir || !*run_dir)
		run_dir = getenv("VALE_RUN_DIR");
	if (!run_dir || !*run_dir)
		run_dir = VALE_DEFAULT_RUN_DIR;
	int rfd, r0 = vale_secure_opendir(run_dir, "run directory", "choose another VALE_RUN_DIR", false,
					     0, &rfd);
	if (r0)
		return r0;
	int dfd = openat(rfd, swname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		int e = errno;
		close(rfd);
		return vale_err(e, "cannot open switch %s in %s: %s", swname, run_dir, strerror(e));
	}
	DIR *d = fdopendir(dup(dfd));
	int r = 0, busy = 0;
	if (!d)
		r = vale_err(errno, "cannot list switch %s: %s", swname, strerror(errno));
	for (int pass = 0; d && !r && pass < 2; pass++) { /* 0: look for users, 1: remove */
		rewinddir(d);
		struct dirent *de;
		while ((de = readdir(d))) {
			const char *n = de->d_name;
			if (n[0] == '.')
				continue;
			if (pass == 1) {
				unlinkat(dfd, n, 0);
				continue;
			}
			if (n[0] != 'p' || strstr(n, ".bell"))
				continue;
			int fd = openat(dfd, n, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
			if (fd < 0)
				continue;
			for (uint32_t end = 0; end < 2; end++)
				if (vale_ofd_lock(fd, end, true, true) == 1) {
					busy++;
					break;
				}
			close(fd);
		}
		if (pass == 0 && busy)
			r = vale_err(EBUSY,
				     "switch %s is damaged and %d of its ports are still open: stop the "
				     "processes using them, then remove it",
				     swname, busy);
	}
	if (d)
		closedir(d);
	if (!r && unlinkat(rfd, swname, AT_REMOVEDIR))
		r = vale_err(errno, "cannot remove switch directory %s/%s: %s", run_dir, swname,
			     strerror(errno));
	close(dfd);
	close(rfd);
	return r;
}

VALE_API int vale_remove_switch(const char *run_dir, const char *swname)
{
	struct vale_sw *sw;
	int r = vale_switch_get(run_dir, swname, false, &sw);
	if (r == -EPROTO) /* damaged: its port table means nothing */
		return switch_remove_damaged(run_dir, swname);
	if (r)
		return r;
	r = vale_ctl_lock(sw);
	if (r == -EPROTO) {
		vale_switch_put(sw);
		return switch_remove_damaged(run_dir, swname);
	}
	if (r)
		goto out;
	vale_reap_locked(sw, true);
	for (uint32_t i = 0; i < sw->max_ports; i++) {
		struct vale_port_ent *e = &sw->ports[i];
		if (e->state == VP_ACTIVE && vale_port_in_use(sw, i) > 0) {
			r = vale_err(EBUSY, "switch %s: port %s is in use (pid %d)", swname, e->name,
				     e->owner_pid);
			break;
		}
	}
	if (!r) {
		for (uint32_t i = 0; i < sw->max_ports; i++)
			if (sw->ports[i].state != VP_FREE)
				vale_port_remove_locked(sw, i);
		vale_switch_destroy_locked(sw);
	}
	vale_ctl_unlock(sw);
out:
	vale_switch_put(sw);
	return r;
}

VALE_API int vale_reap(const char *run_dir, const char *swname)
{
	struct vale_sw *sw;
	int r = vale_switch_get(run_dir, swname, false, &sw);
	if (r)
		return r;
	r = vale_ctl_lock(sw);
	if (!r) {
		vale_reap_locked(sw, true);
		if (vale_switch_empty(sw))
			vale_switch_destroy_locked(sw);
		vale_ctl_unlock(sw);
	}
	vale_graves_sweep(sw, true);
	vale_switch_put(sw);
	return r;
}

/* Record who serves a port and a free-text description (attachments). */
VALE_API int vale_port_set_info(const char *run_dir, const char *swname, const char *port,
				int32_t fwd_pid, const char *info)
{
	struct vale_sw *sw;
	int r = vale_switch_get(run_dir, swname, false, &sw);
	if (r)
		return r;
	r = vale_ctl_lock(sw);
	if (!r) {
		int idx = vale_find_port(sw, port);
		if (idx < 0) {
			r = vale_err(ENXIO, "no port %s:%s", swname, port);
		} else {
			struct vale_port_ent *e = &sw->ports[idx];
			e->fwd_pid = fwd_pid;
			if (fwd_pid)
				e->flags |= VPF_FORWARDER;
			else
				e->flags &= ~(uint32_t)VPF_FORWARDER;
			snprintf(e->info, sizeof(e->info), "%s", info ? info : "");
		}
		vale_ctl_unlock(sw);
	}
	vale_switch_put(sw);
	return r;
}

/* vale-ctl's --vnet-hdr / --mtu on an existing port (open or not). */
VALE_API int vale_port_set_vnet(const char *run_dir, const char *swname, const char *port,
				int32_t hdr_len, int32_t mtu)
{
	int r = vale_vnet_check(hdr_len, mtu);
	if (r)
		return r;
	struct vale_sw *sw;
	r = vale_switch_get(run_dir, swname, false, &sw);
	if (r)
		return r;
	r = vale_ctl_lock(sw);
	if (!r) {
		int idx = vale_find_port(sw, port);
		if (idx < 0 || sw->ports[idx].state != VP_ACTIVE)
			r = vale_err(ENXIO, "no port %s:%s", swname, port);
		else
			vale_vnet_apply(&sw->ports[idx], hdr_len, mtu);
		vale_ctl_unlock(sw);
	}
	vale_switch_put(sw);
	return r;
}
