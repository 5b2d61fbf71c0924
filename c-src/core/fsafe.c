/*
 * Paths, owners and permissions: what keeps one user's switches away from
 * another user.
 *
 * - The run directory is walked from / one component at a time with
 *   openat(O_DIRECTORY|O_NOFOLLOW); every directory on the way must belong to
 *   root or to us and be writable by nobody else unless it is sticky (ssh's
 *   secure-path rule). A symlink anywhere is refused (ELOOP).
 * - Everything inside is opened relative to directory fds, O_NOFOLLOW, new
 *   files with O_EXCL, and checked after opening with fstat: type, owner,
 *   mode, one link.
 * - A switch is private to its creator (directory 0700, files 0600) unless it
 *   was created shared with a group (directory 02770, files 0660, that
 *   group). Root never uses a switch directory of another user; another user
 *   joins only a switch shared with a group it is in.
 * - A lookup module is code: it is loaded only when nobody but us or root can
 *   choose it (the switch) or change it (the object and its directories), and
 *   the file checked is the file loaded (dlopen of /proc/self/fd/N).
 *
 * Modes are set with fchmod/fchown after creating, never left to the umask.
 */
#include "internal.h"

#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define PRIV_DIR_MODE 0700
#define PRIV_FILE_MODE 0600
#define SHARED_DIR_MODE 02770
#define SHARED_FILE_MODE 0660

bool vale_in_group(uint32_t gid)
{
	if (getegid() == gid)
		return true;
	int n = getgroups(0, NULL);
	if (n <= 0)
		return false;
	gid_t *v = malloc((size_t)n * sizeof(gid_t));
	if (!v)
		return false;
	n = getgroups(n, v);
	bool in = false;
	for (int i = 0; i < n; i++)
		if (v[i] == gid)
			in = true;
	free(v);
	return in;
}

/* "root" or "root or uid N": who may own what we use */
static const char *owners_str(char *buf, size_t n)
{
	uid_t me = geteuid();
	if (me == 0)
		snprintf(buf, n, "root");
	else
		snprintf(buf, n, "root or uid %u", (unsigned)me);
	return buf;
}

static const char *type_str(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return "a regular file";
	case S_IFDIR: return "a directory";
	case S_IFLNK: return "a symbolic link";
	case S_IFIFO: return "a FIFO";
	case S_IFSOCK: return "a socket";
	default: return "a device";
	}
}

static const char *me_str(char *buf, size_t n)
{
	uid_t me = geteuid();
	if (me == 0)
		snprintf(buf, n, "root");
	else
		snprintf(buf, n, "uid %u", (unsigned)me);
	return buf;
}

/* ssh's rule for a directory on a trusted path */
static int check_path_dir(const char *what, const char *shown, const struct stat *st,
			  const char *hint)
{
	uid_t me = geteuid();
	char who[32], owners[48];
	if (!S_ISDIR(st->st_mode))
		return vale_err(ENOTDIR, "%s: %s is not a directory", what, shown);
	if (st->st_uid != 0 && st->st_uid != me)
		return vale_err(EACCES,
				"%s: %s belongs to uid %u (expected %s); refusing to use it as %s (%s)",
				what, shown, (unsigned)st->st_uid, owners_str(owners, sizeof(owners)),
				me_str(who, sizeof(who)), hint);
	if ((st->st_mode & 022) && !(st->st_mode & S_ISVTX))
		return vale_err(EACCES,
				"%s: %s is writable by %s (mode %04o, not sticky); refusing to use it (%s)",
				what, shown, (st->st_mode & 002) ? "everyone" : "its group",
				(unsigned)(st->st_mode & 07777), hint);
	return 0;
}

int vale_secure_opendir(const char *path, const char *what, const char *hint, bool create,
			mode_t last_mode, int *fd_out)
{
	char abs[PATH_MAX];
	int n;
	if (path[0] == '/') {
		n = snprintf(abs, sizeof(abs), "%s", path);
	} else {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)))
			return vale_err(errno, "%s: cannot resolve a relative path: %s", what,
					strerror(errno));
		n = snprintf(abs, sizeof(abs), "%s/%s", cwd, path);
	}
	if (n < 0 || n >= (int)sizeof(abs))
		return vale_err(ENAMETOOLONG, "%s: path too long", what);
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return vale_err(errno, "%s: cannot open /: %s", what, strerror(errno));
	struct stat st;
	int r;
	if (fstat(fd, &st)) {
		r = vale_err(errno, "%s: cannot stat /: %s", what, strerror(errno));
		goto fail;
	}
	if ((r = check_path_dir(what, "/", &st, hint)))
		goto fail;
	char shown[PATH_MAX] = "";
	size_t sl = 0;
	char *p = abs;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		char *c = p;
		while (*p && *p != '/')
			p++;
		if (*p)
			*p++ = 0;
		const char *rest = p;
		while (*rest == '/')
			rest++;
		bool last = !*rest;
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0) {
			r = vale_err(EINVAL, "%s: '..' in the path is not accepted (give the real path)",
				     what);
			goto fail;
		}
		sl += (size_t)snprintf(shown + sl, sizeof(shown) - sl, "/%s", c);
		if (sl >= sizeof(shown))
			sl = sizeof(shown) - 1;
		int nfd = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT && create) {
			bool made = mkdirat(fd, c, 0700) == 0;
			if (!made && errno != EEXIST) {
				r = vale_err(errno, "%s: cannot create %s: %s", what, shown,
					     strerror(errno));
				goto fail;
			}
			nfd = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (nfd >= 0 && made && fchmod(nfd, last ? last_mode : 0700)) {
				r = vale_err(errno, "%s: cannot set the mode of %s: %s", what, shown,
					     strerror(errno));
				close(nfd);
				goto fail;
			}
		}
		if (nfd < 0) {
			int e = errno;
			struct stat ls;
			if ((e == ELOOP || e == ENOTDIR) && fstatat(fd, c, &ls, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(ls.st_mode))
				r = vale_err(ELOOP,
					     "%s: %s is a symbolic link (owned by uid %u); vale does not "
					     "follow symlinks (use the real path, or remove it)",
					     what, shown, (unsigned)ls.st_uid);
			else if (e == ENOENT)
				r = vale_err(ENOENT, "%s: %s does not exist", what, shown);
			else
				r = vale_err(e, "%s: cannot open %s: %s", what, shown, strerror(e));
			goto fail;
		}
		close(fd);
		fd = nfd;
		if (fstat(fd, &st)) {
			r = vale_err(errno, "%s: cannot stat %s: %s", what, shown, strerror(errno));
			goto fail;
		}
		if ((r = check_path_dir(what, shown, &st, hint)))
			goto fail;
	}
	*fd_out = fd;
	return 0;
fail:
	close(fd);
	return r;
}

/* ---------------- switch directories ---------------- */

static bool shared_shape(mode_t m) { return (m & S_ISGID) && (m & 070) == 070 && !(m & 07); }

static int check_swdir(struct vale_sw *sw, const struct stat *st)
{
	uid_t me = geteuid();
	mode_t m = st->st_mode & 07777;
	char who[32];
	if (S_ISLNK(st->st_mode))
		return vale_err(ELOOP,
				"switch %s (%s) is a symbolic link (owned by uid %u); vale does not "
				"follow symlinks (remove it)",
				sw->name, sw->dir, (unsigned)st->st_uid);
	if (!S_ISDIR(st->st_mode))
		return vale_err(ENOTDIR, "switch %s (%s) is not a directory (remove it)", sw->name,
				sw->dir);
	if (st->st_uid != me) {
		if (me == 0)
			return vale_err(EACCES,
					"switch %s (%s) belongs to uid %u, refusing to use it as root "
					"(remove it or choose another VALE_RUN_DIR)",
					sw->name, sw->dir, (unsigned)st->st_uid);
		if (!shared_shape(m) || !vale_in_group(st->st_gid))
			return vale_err(EACCES,
					"switch %s (%s) belongs to uid %u and is not shared with a group "
					"%s is in (group %u, mode %04o; expected 02770 and a group of "
					"yours); its owner can share it with --group / VALE_GROUP",
					sw->name, sw->dir, (unsigned)st->st_uid,
					me_str(who, sizeof(who)), (unsigned)st->st_gid, (unsigned)m);
	} else if (m & S_IWOTH) {
		return vale_err(EACCES,
				"switch %s (%s) is writable by everyone (mode %04o); refusing to use it "
				"(remove it)",
				sw->name, sw->dir, (unsigned)m);
	} else if ((m & S_IWGRP) && !shared_shape(m)) {
		return vale_err(EACCES,
				"switch %s (%s) is writable by group %u (mode %04o) but not a "
				"group-shared switch (02770); refusing to use it (remove it)",
				sw->name, sw->dir, (unsigned)st->st_gid, (unsigned)m);
	}
	return 0;
}

static int64_t env_group(void)
{
	const char *g = getenv("VALE_GROUP");
	if (!g || !*g)
		return -1;
	char *end;
	unsigned long v = strtoul(g, &end, 10);
	if (!*end && v < 0xffffffffu)
		return (int64_t)v;
	struct group gr, *res = NULL;
	char buf[4096];
	if (getgrnam_r(g, &gr, buf, sizeof(buf), &res) == 0 && res)
		return res->gr_gid;
	return -2;
}

int vale_swdir_open(struct vale_sw *sw, const char *run_dir, bool create, int64_t want_gid,
		    bool strict)
{
	bool is_default = strcmp(run_dir, VALE_DEFAULT_RUN_DIR) == 0;
	char what[PATH_MAX + 32];
	snprintf(what, sizeof(what), "run directory %s", run_dir);
	int r = vale_secure_opendir(run_dir, what, "remove it or choose another VALE_RUN_DIR",
				    create, is_default ? 01777 : 0700, &sw->run_fd);
	if (r == -ENOENT && !create)
		return vale_err(ENOENT, "no switch %s in %s", sw->name, run_dir);
	if (r)
		return r;
	if (want_gid == -1 && create) {
		want_gid = env_group();
		if (want_gid == -2)
			return vale_err(EINVAL, "VALE_GROUP=%s: no such group", getenv("VALE_GROUP"));
	}
	if (want_gid >= 0 && !vale_in_group((uint32_t)want_gid) && geteuid() != 0)
		return vale_err(EPERM, "cannot share switch %s with group %lld: you are not in it",
				sw->name, (long long)want_gid);
	for (int attempt = 0;; attempt++) {
		struct stat st;
		bool made = false;
		if (fstatat(sw->run_fd, sw->name, &st, AT_SYMLINK_NOFOLLOW)) {
			if (errno != ENOENT)
				return vale_err(errno, "switch %s (%s): %s", sw->name, sw->dir,
						strerror(errno));
			if (!create)
				return vale_err(ENOENT, "no switch %s in %s", sw->name, run_dir);
			if (mkdirat(sw->run_fd, sw->name, PRIV_DIR_MODE)) {
				if (errno == EEXIST && attempt < 50)
					continue;
				return vale_err(errno, "cannot create switch %s in %s: %s", sw->name,
						run_dir, strerror(errno));
			}
			made = true;
		} else if ((r = check_swdir(sw, &st))) { /* a clear message before opening */
			return r;
		}
		sw->dir_fd = openat(sw->run_fd, sw->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sw->dir_fd < 0) {
			if (errno == ENOENT && attempt < 50)
				continue; /* removed under us */
			if (errno == ELOOP || errno == ENOTDIR)
				return vale_err(ELOOP, "switch %s (%s) is not a directory or is a symlink; "
						       "refusing it (remove it)", sw->name, sw->dir);
			return vale_err(errno, "cannot open switch %s (%s): %s", sw->name, sw->dir,
					strerror(errno));
		}
		if (made) {
			bool bad = false;
			if (want_gid >= 0)
				bad = fchown(sw->dir_fd, (uid_t)-1, (gid_t)want_gid) ||
				      fchmod(sw->dir_fd, SHARED_DIR_MODE);
			else
				bad = fchmod(sw->dir_fd, PRIV_DIR_MODE);
			if (bad) {
				r = vale_err(errno, "cannot set the mode of switch %s (%s): %s", sw->name,
					     sw->dir, strerror(errno));
				unlinkat(sw->run_fd, sw->name, AT_REMOVEDIR);
				return r;
			}
		}
		if (fstat(sw->dir_fd, &st))
			return vale_err(errno, "switch %s: %s", sw->name, strerror(errno));
		if ((r = check_swdir(sw, &st)))
			return r;
		sw->dir_uid = st.st_uid;
		sw->dir_gid = st.st_gid;
		sw->shared = shared_shape(st.st_mode & 07777);
		if (strict && want_gid >= 0 && (!sw->shared || st.st_gid != (gid_t)want_gid))
			return vale_err(EPERM,
					"switch %s exists and is %s (mode %04o, group %u), not shared "
					"with group %lld as asked",
					sw->name, sw->shared ? "shared with another group" : "private",
					(unsigned)(st.st_mode & 07777), (unsigned)st.st_gid,
					(long long)want_gid);
		return 0;
	}
}

/* ---------------- files of a switch ---------------- */

static int check_file(struct vale_sw *sw, const char *name, const struct stat *st, mode_t type,
		      bool report)
{
	uid_t me = geteuid();
	const char *kind = type == S_IFIFO ? "a FIFO" : "a regular file";
	int e = 0;
	if ((st->st_mode & S_IFMT) != type)
		e = EACCES;
	else if (type == S_IFREG && st->st_nlink != 1)
		e = EACCES;
	else if (st->st_mode & S_IWOTH)
		e = EACCES;
	else if (!(st->st_uid == me || st->st_uid == 0 || st->st_uid == sw->dir_uid ||
		   (sw->shared && st->st_gid == sw->dir_gid)))
		e = EACCES;
	if (!e || !report)
		return -e;
	return vale_err(e,
			"switch %s: %s/%s refused: expected %s with one link, owned by uid %u%s, "
			"not writable by others; found %s, %lu links, uid %u, group %u, mode %04o",
			sw->name, sw->dir, name, kind, (unsigned)sw->dir_uid,
			sw->shared ? " or the switch's group" : "", type_str(st->st_mode),
			(unsigned long)st->st_nlink, (unsigned)st->st_uid, (unsigned)st->st_gid,
			(unsigned)(st->st_mode & 07777));
}

int vale_sw_open(struct vale_sw *sw, const char *name, int flags, mode_t type, bool report)
{
	int fd = openat(sw->dir_fd, name, flags | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			return report ? vale_err(ELOOP,
						 "switch %s: %s/%s is a symbolic link; vale does not "
						 "follow symlinks (remove it)",
						 sw->name, sw->dir, name)
				      : -ELOOP;
		return report ? vale_err(e, "switch %s: cannot open %s/%s: %s", sw->name, sw->dir,
					 name, strerror(e))
			      : -e;
	}
	struct stat st;
	int r = fstat(fd, &st) ? -errno : check_file(sw, name, &st, type, report);
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

static int apply_mode(struct vale_sw *sw, int fd)
{
	if (sw->shared) {
		if (fchown(fd, (uid_t)-1, sw->dir_gid) || fchmod(fd, SHARED_FILE_MODE))
			return -errno;
		return 0;
	}
	return fchmod(fd, PRIV_FILE_MODE) ? -errno : 0;
}

int vale_sw_create(struct vale_sw *sw, const char *name, int flags)
{
	int fd = openat(sw->dir_fd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			PRIV_FILE_MODE);
	if (fd < 0)
		return -errno;
	int r = apply_mode(sw, fd);
	if (r) {
		close(fd);
		unlinkat(sw->dir_fd, name, 0);
		return r;
	}
	return fd;
}

int vale_sw_mkfifo(struct vale_sw *sw, const char *name)
{
	unlinkat(sw->dir_fd, name, 0);
	if (mkfifoat(sw->dir_fd, name, PRIV_FILE_MODE))
		return -errno;
	/* set mode and group through an fd: the name may be replaced meanwhile */
	int fd = openat(sw->dir_fd, name, O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = fstat(fd, &st) ? -errno : !S_ISFIFO(st.st_mode) ? -EACCES : apply_mode(sw, fd);
	close(fd);
	return r;
}

/* ---------------- lookup modules ---------------- */

int vale_module_open(struct vale_sw *sw, const char *path, int *fd_out)
{
	uid_t me = geteuid();
	char who[32];
	me_str(who, sizeof(who));
	struct stat st;
	if (fstat(sw->ctl_fd, &st))
		return vale_err(errno, "lookup module %s: %s", path, strerror(errno));
	/* who can choose the module: whoever can write the switch's control file */
	if (sw->shared || (st.st_mode & 022))
		return vale_err(EPERM,
				"lookup module %s of switch %s refused: the switch is shared with "
				"group %u, whose members can choose its module, and a module is code "
				"run by every process on the switch (only learning, portmap and "
				"ethertype work on a shared switch)",
				path, sw->name, (unsigned)sw->dir_gid);
	if ((st.st_uid != me && st.st_uid != 0) || (sw->dir_uid != me && sw->dir_uid != 0))
		return vale_err(EPERM,
				"lookup module %s of switch %s refused: the switch belongs to uid %u, "
				"and %s runs only modules chosen by itself or root",
				path, sw->name, (unsigned)st.st_uid, who);
	if (path[0] != '/')
		return vale_err(EINVAL, "lookup module %s: give the absolute path of the shared object",
				path);
	char dir[PATH_MAX];
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return vale_err(ENAMETOOLONG, "lookup module %s: path too long", path);
	char *slash = strrchr(dir, '/');
	const char *base = path + (slash - dir) + 1;
	if (slash == dir)
		slash[1] = 0;
	else
		*slash = 0;
	if (!*base)
		return vale_err(EINVAL, "lookup module %s: not a file name", path);
	char what[PATH_MAX + 32];
	snprintf(what, sizeof(what), "lookup module %s refused", path);
	int dfd;
	int r = vale_secure_opendir(dir, what, "a module must be writable only by you or root",
				    false, 0, &dfd);
	if (r == -ENOENT)
		return vale_err(ENOENT, "cannot load lookup module %s: no such file", path);
	if (r)
		return r;
	int fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	int e = errno;
	close(dfd);
	if (fd < 0) {
		if (e == ELOOP)
			return vale_err(ELOOP,
					"lookup module %s refused: it is a symbolic link (vale does not "
					"follow symlinks; use the real path)",
					path);
		return vale_err(e, "cannot load lookup module %s: %s", path, strerror(e));
	}
	if (fstat(fd, &st)) {
		e = errno;
		close(fd);
		return vale_err(e, "lookup module %s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode))
		r = vale_err(EACCES, "lookup module %s refused: not a regular file", path);
	else if (st.st_uid != me && st.st_uid != 0)
		r = vale_err(EPERM,
			     "lookup module %s refused: it belongs to uid %u (expected %s)", path,
			     (unsigned)st.st_uid, owners_str(who, sizeof(who)));
	else if (st.st_mode & 022)
		r = vale_err(EPERM, "lookup module %s refused: it is writable by %s (mode %04o)", path,
			     (st.st_mode & 002) ? "everyone" : "its group",
			     (unsigned)(st.st_mode & 07777));
	if (r) {
		close(fd);
		return r;
	}
	*fd_out = fd;
	return 0;
}

/* Group name or number → gid, for the TS API and tools (--group). */
VALE_API int vale_group_id(const char *name, uint32_t *gid)
{
	if (!name || !*name)
		return vale_err(EINVAL, "empty group name");
	char *end;
	unsigned long v = strtoul(name, &end, 10);
	if (!*end && v < 0xffffffffu) {
		*gid = (uint32_t)v;
		return 0;
	}
	struct group gr, *res = NULL;
	char buf[8192];
	if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) || !res)
		return vale_err(ENOENT, "no group named %s", name);
	*gid = res->gr_gid;
	return 0;
}

/* A private directory below the run directory (RUN/.attach/valeX for kernel
 * attachments, whose state files lib/attach.ts reads and writes by path):
 * walked like the run directory, created 0700 when asked. Once every
 * component belongs to root or us and nobody else can write it, using the
 * path afterwards is safe. */
VALE_API int vale_secure_dir(const char *run_dir, const char *sub, int create)
{
	if (!run_dir || !*run_dir)
		run_dir = getenv("VALE_RUN_DIR");
	if (!run_dir || !*run_dir)
		run_dir = VALE_DEFAULT_RUN_DIR;
	if (!sub || strstr(sub, ".."))
		return vale_err(EINVAL, "bad directory name '%s'", sub ? sub : "");
	char what[PATH_MAX + 32];
	snprintf(what, sizeof(what), "run directory %s", run_dir);
	int fd, r;
	bool is_default = strcmp(run_dir, VALE_DEFAULT_RUN_DIR) == 0;
	r = vale_secure_opendir(run_dir, what, "remove it or choose another VALE_RUN_DIR", create,
				is_default ? 01777 : 0700, &fd);
	if (r)
		return r;
	close(fd);
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", run_dir, sub) >= (int)sizeof(path))
		return vale_err(ENAMETOOLONG, "%s: path too long", what);
	r = vale_secure_opendir(path, what, "remove it or choose another VALE_RUN_DIR", create, 0700,
				&fd);
	if (r)
		return r;
	close(fd);
	return 0;
}
