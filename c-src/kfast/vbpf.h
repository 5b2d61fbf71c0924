/*
 * vale's own eBPF toolbox, with no libbpf: the bpf() system call for the few
 * commands vale uses, and instruction builders in the kernel's notation
 * (samples/bpf's BPF_* macros, written anew). Used by the kernel fast path
 * (kfast.c, prog.c) and the AF_XDP backend (io/af_xdp.c).
 *
 * Every function returns an fd or 0 on success, -errno on failure.
 */
#ifndef VALE_VBPF_H
#define VALE_VBPF_H

#include <stdint.h>
#include <linux/bpf.h>

/* Debian 12's uapi headers predate tcx (Linux 6.6): the values are the kernel's ABI */
#ifndef BPF_TCX_INGRESS
#define VBPF_TCX_INGRESS 46
#else
#define VBPF_TCX_INGRESS BPF_TCX_INGRESS
#endif
#ifndef BPF_F_MMAPABLE
#define BPF_F_MMAPABLE (1U << 10)
#endif

long vbpf_sys(int cmd, union bpf_attr *attr);
int vbpf_map_create(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t entries,
		    uint32_t flags, const char *name);
int vbpf_map_update(int fd, const void *key, const void *value, uint64_t flags);
int vbpf_map_delete(int fd, const void *key);
int vbpf_map_lookup(int fd, const void *key, void *value);
/* Load a program; the verifier's log goes to log (may be NULL). */
int vbpf_prog_load(uint32_t type, uint32_t expected_attach, uint32_t prog_flags,
		   const struct bpf_insn *insn, uint32_t n, const char *name, char *log,
		   uint32_t log_len);
/* A bpf_link of prog at ifindex (XDP, tcx): gone when the last fd closes. */
int vbpf_link_create(int prog_fd, uint32_t ifindex, uint32_t attach_type, uint32_t flags);
/* Is a program named `name` attached at ifindex's attach_type (tcx)? 1 yes, 0 no. */
int vbpf_attached(uint32_t ifindex, uint32_t attach_type, const char *name);

/* ---- instruction builders ---- */
#define VI(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), \
					      .off = (o), .imm = (i)})
#define MOV64_REG(d, s) VI(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i) VI(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD64_IMM(d, i) VI(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define AND64_IMM(d, i) VI(BPF_ALU64 | BPF_AND | BPF_K, d, 0, 0, i)
#define LDX_MEM(sz, d, s, o) VI(BPF_LDX | BPF_MEM | (sz), d, s, o, 0)
#define STX_MEM(sz, d, s, o) VI(BPF_STX | BPF_MEM | (sz), d, s, o, 0)
#define ST_MEM(sz, d, o, i) VI(BPF_ST | BPF_MEM | (sz), d, 0, o, i)
#define ATOMIC_ADD64(d, s, o) VI(BPF_STX | BPF_ATOMIC | BPF_DW, d, s, o, BPF_ADD)
#define JMP_IMM(op, d, i, o) VI(BPF_JMP | (op) | BPF_K, d, 0, o, i)
#define JMP_REG(op, d, s, o) VI(BPF_JMP | (op) | BPF_X, d, s, o, 0)
#define CALL(f) VI(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() VI(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
/* dst = the map whose fd is given: two instructions, this and LD_IMM64_HI() */
#define LD_MAP_FD(d, fd) VI(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd)
#define LD_IMM64_HI(hi) VI(0, 0, 0, 0, hi)

#endif
