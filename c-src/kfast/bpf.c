/* The bpf() commands vale uses (see vbpf.h). */
#include "vbpf.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

long vbpf_sys(int cmd, union bpf_attr *attr)
{
	long r = syscall(__NR_bpf, cmd, attr, sizeof *attr);
	return r < 0 ? -errno : r;
}

static void set_name(char out[BPF_OBJ_NAME_LEN], const char *name)
{
	size_t n = strlen(name);
	memcpy(out, name, n < BPF_OBJ_NAME_LEN - 1 ? n : BPF_OBJ_NAME_LEN - 1);
}

int vbpf_map_create(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t entries,
		    uint32_t flags, const char *name)
{
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.map_type = type;
	a.key_size = key_size;
	a.value_size = value_size;
	a.max_entries = entries;
	a.map_flags = flags;
	set_name(a.map_name, name);
	return (int)vbpf_sys(BPF_MAP_CREATE, &a);
}

static int elem(int cmd, int fd, const void *key, const void *value, uint64_t flags)
{
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.map_fd = (uint32_t)fd;
	a.key = (uint64_t)(uintptr_t)key;
	a.value = (uint64_t)(uintptr_t)value;
	a.flags = flags;
	return (int)vbpf_sys(cmd, &a);
}

int vbpf_map_update(int fd, const void *key, const void *value, uint64_t flags)
{
	return elem(BPF_MAP_UPDATE_ELEM, fd, key, value, flags);
}

int vbpf_map_delete(int fd, const void *key) { return elem(BPF_MAP_DELETE_ELEM, fd, key, NULL, 0); }

int vbpf_map_lookup(int fd, const void *key, void *value)
{
	return elem(BPF_MAP_LOOKUP_ELEM, fd, key, value, 0);
}

int vbpf_prog_load(uint32_t type, uint32_t expected_attach, uint32_t prog_flags,
		   const struct bpf_insn *insn, uint32_t n, const char *name, char *log,
		   uint32_t log_len)
{
	static const char license[] = "Dual BSD/GPL";
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.prog_type = type;
	a.insns = (uint64_t)(uintptr_t)insn;
	a.insn_cnt = n;
	a.license = (uint64_t)(uintptr_t)license;
	a.expected_attach_type = expected_attach;
	a.prog_flags = prog_flags;
	set_name(a.prog_name, name);
	if (log && log_len) {
		log[0] = 0;
		a.log_buf = (uint64_t)(uintptr_t)log;
		a.log_size = log_len;
		a.log_level = 1;
	}
	return (int)vbpf_sys(BPF_PROG_LOAD, &a);
}

int vbpf_link_create(int prog_fd, uint32_t ifindex, uint32_t attach_type, uint32_t flags)
{
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.link_create.prog_fd = (uint32_t)prog_fd;
	a.link_create.target_ifindex = ifindex;
	a.link_create.attach_type = attach_type;
	a.link_create.flags = flags;
	return (int)vbpf_sys(BPF_LINK_CREATE, &a);
}

int vbpf_attached(uint32_t ifindex, uint32_t attach_type, const char *name)
{
	uint32_t ids[16];
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.query.target_fd = ifindex; /* tcx: the ifindex (target_ifindex shares the field) */
	a.query.attach_type = attach_type;
	a.query.prog_ids = (uint64_t)(uintptr_t)ids;
	a.query.prog_cnt = 16;
	int r = (int)vbpf_sys(BPF_PROG_QUERY, &a);
	if (r < 0)
		return r;
	uint32_t n = a.query.prog_cnt < 16 ? a.query.prog_cnt : 16;
	for (uint32_t i = 0; i < n; i++) {
		union bpf_attr g;
		memset(&g, 0, sizeof g);
		g.prog_id = ids[i];
		int fd = (int)vbpf_sys(BPF_PROG_GET_FD_BY_ID, &g);
		if (fd < 0)
			continue; /* gone meanwhile */
		struct bpf_prog_info info;
		memset(&info, 0, sizeof info);
		union bpf_attr q;
		memset(&q, 0, sizeof q);
		q.info.bpf_fd = (uint32_t)fd;
		q.info.info_len = sizeof info;
		q.info.info = (uint64_t)(uintptr_t)&info;
		int ok = vbpf_sys(BPF_OBJ_GET_INFO_BY_FD, &q) == 0 &&
			 strncmp(info.name, name, BPF_OBJ_NAME_LEN) == 0;
		close(fd);
		if (ok)
			return 1;
	}
	return 0;
}
