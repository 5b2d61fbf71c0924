/*
 * The kernel fast path's tc program (tcx ingress of an attachment's
 * interface), written as instructions (vbpf.h): no compiler for BPF needed.
 *
 * Taps (AF_PACKET sockets) see a received frame before tc ingress does, so
 * the forwarder's socket cannot tell by itself whether the program will
 * redirect a frame. Each frame is therefore decided exactly once, here:
 *
 *   first pass (mark != KF_MARK):
 *     unicast destination on another fast-path port of the switch, and the
 *     source MAC learned on our own port  -> count it, redirect it to that
 *                                            port's interface (its transmit,
 *                                            as a bridge hands it over)
 *     anything else                        -> mark it KF_MARK and send it
 *                                            through our ingress again
 *   second pass (mark == KF_MARK): clear the mark, let it go on (TC_ACT_OK).
 *
 * The forwarder's AF_PACKET socket has a filter that takes only marked frames
 * (af_packet.c, vale_io_mark_filter), so it sees every frame of the slow path
 * once, on its second pass, and none of the fast path.
 *
 * bpf_redirect_peer (to a veth peer's ingress, skipping one queue) was tried
 * and measured: no faster on TCP here, with five times the retransmissions
 * (more reordering), and it marks every frame as addressed to the peer; the
 * transmit path keeps the receiver's own MAC check.
 *
 * The MAC map is filled by the forwarder from the switch's learning table
 * (kfast.c); the program never learns: a source the switch has not learned
 * on our port goes the slow way, so the switch learns it.
 */
#include "kfast_impl.h"
#include "vbpf.h"

#include <errno.h>
#include <linux/pkt_cls.h>
#include <stddef.h>

#define R0 BPF_REG_0
#define R1 BPF_REG_1
#define R2 BPF_REG_2
#define R3 BPF_REG_3
#define R6 BPF_REG_6
#define R7 BPF_REG_7
#define R8 BPF_REG_8
#define R9 BPF_REG_9
#define R10 BPF_REG_10
#define SKB(f) ((int16_t)offsetof(struct __sk_buff, f))

enum { L_SLOW, L_PASS2, L_REDIR, L_N };

struct asm_ {
	struct bpf_insn in[96];
	uint32_t n;
	int32_t label[L_N];
	struct { uint32_t at; int lab; } fix[16];
	uint32_t nfix;
};

static void emit(struct asm_ *a, struct bpf_insn i)
{
	if (a->n < sizeof a->in / sizeof a->in[0])
		a->in[a->n] = i;
	a->n++;
}
/* a jump to a label, patched at the end */
static void jmp(struct asm_ *a, struct bpf_insn i, int lab)
{
	if (a->nfix < sizeof a->fix / sizeof a->fix[0])
		a->fix[a->nfix++] = (typeof(a->fix[0])){a->n, lab};
	emit(a, i);
}
static void here(struct asm_ *a, int lab) { a->label[lab] = (int32_t)a->n; }

/* The 6-byte MAC at packet offset `at` (r7: packet start, checked long enough)
 * as an 8-byte key at fp+`key`: two zero bytes after it. */
static void mac_key(struct asm_ *a, int16_t at, int16_t key)
{
	emit(a, LDX_MEM(BPF_W, R2, R7, at));
	emit(a, STX_MEM(BPF_W, R10, R2, key));
	emit(a, LDX_MEM(BPF_H, R2, R7, at + 4));
	emit(a, STX_MEM(BPF_H, R10, R2, key + 4));
	emit(a, ST_MEM(BPF_H, R10, key + 6, 0));
}

/* r0 = the value of map `fd` at the key at fp+`key`; on a miss, jump to `miss`. */
static void lookup(struct asm_ *a, int fd, int16_t key, int miss)
{
	emit(a, LD_MAP_FD(R1, fd));
	emit(a, LD_IMM64_HI(0));
	emit(a, MOV64_REG(R2, R10));
	emit(a, ADD64_IMM(R2, key));
	emit(a, CALL(BPF_FUNC_map_lookup_elem));
	jmp(a, JMP_IMM(BPF_JEQ, R0, 0, 0), miss);
}

int kf_prog_load(int mac_fd, int cnt_fd, uint32_t own_port, uint32_t own_ifindex, char *log,
		 uint32_t log_len)
{
	struct asm_ a = {.n = 0};
	for (int i = 0; i < L_N; i++)
		a.label[i] = -1;
	emit(&a, MOV64_REG(R6, R1));
	emit(&a, LDX_MEM(BPF_W, R2, R6, SKB(mark)));
	jmp(&a, JMP_IMM(BPF_JEQ, R2, (int32_t)KF_MARK, 0), L_PASS2);
	emit(&a, LDX_MEM(BPF_W, R7, R6, SKB(data)));
	emit(&a, LDX_MEM(BPF_W, R8, R6, SKB(data_end)));
	emit(&a, MOV64_REG(R3, R7));
	emit(&a, ADD64_IMM(R3, 14));
	jmp(&a, JMP_REG(BPF_JGT, R3, R8, 0), L_SLOW); /* shorter than an Ethernet header */
	emit(&a, LDX_MEM(BPF_B, R2, R7, 0));
	emit(&a, AND64_IMM(R2, 1));
	jmp(&a, JMP_IMM(BPF_JNE, R2, 0, 0), L_SLOW); /* broadcast, multicast: the switch floods */
	/* keys on the stack: destination at fp-8, source at fp-16 */
	mac_key(&a, 0, -8);
	mac_key(&a, 6, -16);
	/* the source must be learned on our port */
	lookup(&a, mac_fd, -16, L_SLOW);
	emit(&a, LDX_MEM(BPF_H, R2, R0, offsetof(struct kf_mac_val, port)));
	jmp(&a, JMP_IMM(BPF_JNE, R2, (int32_t)own_port, 0), L_SLOW);
	emit(&a, MOV64_REG(R9, R0));
	/* the destination on another fast-path port */
	lookup(&a, mac_fd, -8, L_SLOW);
	emit(&a, LDX_MEM(BPF_W, R7, R0, offsetof(struct kf_mac_val, ifindex)));
	jmp(&a, JMP_IMM(BPF_JEQ, R7, 0, 0), L_SLOW);
	emit(&a, LDX_MEM(BPF_H, R2, R0, offsetof(struct kf_mac_val, port)));
	jmp(&a, JMP_IMM(BPF_JEQ, R2, (int32_t)own_port, 0), L_SLOW);
	emit(&a, STX_MEM(BPF_W, R10, R2, -20));
	/* count: the source's hits (keeps its MAC alive in the switch), the destination's frames */
	emit(&a, MOV64_IMM(R1, 1));
	emit(&a, ATOMIC_ADD64(R9, R1, offsetof(struct kf_mac_val, hits)));
	lookup(&a, cnt_fd, -20, L_REDIR);
	emit(&a, MOV64_IMM(R1, 1));
	emit(&a, ATOMIC_ADD64(R0, R1, offsetof(struct kf_cnt, pkts)));
	emit(&a, LDX_MEM(BPF_W, R1, R6, SKB(len)));
	emit(&a, ATOMIC_ADD64(R0, R1, offsetof(struct kf_cnt, bytes)));
	here(&a, L_REDIR);
	emit(&a, MOV64_REG(R1, R7));
	emit(&a, MOV64_IMM(R2, 0));
	emit(&a, CALL(BPF_FUNC_redirect));
	emit(&a, EXIT());
	/* the slow path: once more through our ingress, marked, for the forwarder's socket */
	here(&a, L_SLOW);
	emit(&a, MOV64_IMM(R1, (int32_t)KF_MARK));
	emit(&a, STX_MEM(BPF_W, R6, R1, SKB(mark)));
	emit(&a, MOV64_IMM(R1, (int32_t)own_ifindex));
	emit(&a, MOV64_IMM(R2, BPF_F_INGRESS));
	emit(&a, CALL(BPF_FUNC_redirect));
	emit(&a, EXIT());
	/* second pass: the socket has its copy; the host stack sees the frame as before */
	here(&a, L_PASS2);
	emit(&a, MOV64_IMM(R1, 0));
	emit(&a, STX_MEM(BPF_W, R6, R1, SKB(mark)));
	emit(&a, MOV64_IMM(R0, TC_ACT_OK));
	emit(&a, EXIT());

	if (a.n > sizeof a.in / sizeof a.in[0] || a.nfix > sizeof a.fix / sizeof a.fix[0])
		return -E2BIG;
	for (uint32_t i = 0; i < a.nfix; i++)
		a.in[a.fix[i].at].off = (int16_t)(a.label[a.fix[i].lab] - (int32_t)a.fix[i].at - 1);
	return vbpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, VBPF_TCX_INGRESS, 0, a.in, a.n,
			      KF_PROG_NAME, log, log_len);
}
