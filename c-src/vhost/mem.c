/*
 * vale vhost-user: the front-end's memory table. SET_MEM_TABLE sends up to
 * eight regions, each an fd (memfd, hugetlbfs file) with its guest-physical
 * start, size, the front-end's own virtual address of it and the offset of
 * the region in the fd. We map every region shared and translate
 * guest-physical addresses (descriptors) and front-end virtual addresses
 * (SET_VRING_ADDR) through the table; an address range that is not wholly
 * inside one region is refused.
 *
 * A region must lie inside its file (fstat): the front-end cannot make us
 * map past the end of a file. If it shrinks the file afterwards, our access
 * to the cut part faults: fault.c catches that SIGBUS for the mapped regions.
 */
#include "vhost.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct vhu_region_msg {
	uint64_t gpa, size, uva, mmap_offset;
};

uint8_t *vh_uva(const struct vh_mem *m, uint64_t uva, uint64_t len)
{
	for (uint32_t i = 0; i < m->n; i++) {
		const struct vh_region *r = &m->r[i];
		uint64_t off = uva - r->uva;
		if (uva >= r->uva && off < r->size && len <= r->size - off)
			return r->host + off;
	}
	return NULL;
}

void vh_mem_unmap(struct vh_mem *m)
{
	for (uint32_t i = 0; i < m->n; i++)
		if (m->r[i].map && m->r[i].map != MAP_FAILED) {
			vh_fault_unwatch(m->r[i].map);
			munmap(m->r[i].map, m->r[i].map_len);
		}
	memset(m, 0, sizeof *m);
}

int vh_mem_map(struct vh_dev *d, struct vh_mem *out, const uint8_t *payload, uint32_t size,
	       const int *fds, int nfds, char *why, uint32_t why_len)
{
	memset(out, 0, sizeof *out);
	if (size < 8) {
		snprintf(why, why_len, "SET_MEM_TABLE: payload of %u bytes", size);
		return -EINVAL;
	}
	uint32_t n;
	memcpy(&n, payload, 4);
	if (n == 0 || n > VHU_MAX_REGIONS || size < 8 + n * sizeof(struct vhu_region_msg)) {
		snprintf(why, why_len, "SET_MEM_TABLE: %u regions in %u bytes", n, size);
		return -EINVAL;
	}
	if ((int)n != nfds) {
		snprintf(why, why_len, "SET_MEM_TABLE: %u regions but %d fds", n, nfds);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct vhu_region_msg rm;
		memcpy(&rm, payload + 8 + i * sizeof rm, sizeof rm);
		struct stat st;
		uint64_t end;
		if (rm.size == 0 || __builtin_add_overflow(rm.mmap_offset, rm.size, &end) ||
		    rm.gpa + rm.size < rm.gpa || rm.uva + rm.size < rm.uva) {
			snprintf(why, why_len, "SET_MEM_TABLE: region %u: bad size/offset", i);
			goto fail;
		}
		if (fstat(fds[i], &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) ||
		    (S_ISREG(st.st_mode) && (uint64_t)st.st_size < end)) {
			snprintf(why, why_len,
				 "SET_MEM_TABLE: region %u: fd is not a file of %llu bytes", i,
				 (unsigned long long)end);
			goto fail;
		}
		for (uint32_t j = 0; j < i; j++) { /* overlapping guest ranges are ambiguous */
			const struct vh_region *o = &out->r[j];
			if (rm.gpa < o->gpa + o->size && o->gpa < rm.gpa + rm.size) {
				snprintf(why, why_len, "SET_MEM_TABLE: regions %u and %u overlap",
					 j, i);
				goto fail;
			}
		}
		void *p = mmap(NULL, end, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
		if (p == MAP_FAILED) {
			snprintf(why, why_len, "SET_MEM_TABLE: region %u: mmap: %s", i,
				 strerror(errno));
			goto fail;
		}
		struct vh_region *r = &out->r[out->n++];
		r->gpa = rm.gpa;
		r->size = rm.size;
		r->uva = rm.uva;
		r->map = p;
		r->map_len = end;
		r->host = (uint8_t *)p + rm.mmap_offset;
		vh_fault_watch(d, p, end);
	}
	return 0;
fail:
	vh_mem_unmap(out);
	return -EINVAL;
}
