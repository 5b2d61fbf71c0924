/* The layout of every struct the TypeScript side encodes or decodes, as the
 * compiler sees it: vale_abi_layout() writes a JSON object
 *
 *   {"structs": {"vale_open_req": {"size": 32, "fields": {"ntx": 0, ...}}, ...},
 *    "constants": {"VO_EXCLUSIVE": 1, ...}}
 *
 * so that tests/abi_test.ts can check each codec of ffi/structs/ field by
 * field against offsetof/sizeof instead of trusting comments. Nothing at run
 * time depends on it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "vale.h"
#include "io.h"
#include "../fwd/fwd.h"
#include "kfast.h"
#include "../apps/pktgen.h"
#include "../apps/bridge.h"

/* The codecs in ffi/structs/ assume these sizes; a change here is an ABI
 * change (bump VALE_ABI_VERSION and the codecs with it). */
_Static_assert(sizeof(struct vale_port_info) == 336, "vale_port_info layout");
_Static_assert(sizeof(struct vale_io_stats) == 128, "vale_io_stats layout");
_Static_assert(sizeof(struct vale_io_info) == 240, "vale_io_info layout");
_Static_assert(sizeof(struct vale_io_link) == 64, "vale_io_link layout");
_Static_assert(sizeof(struct vale_slot) == 16, "vale_slot layout");
_Static_assert(offsetof(struct vale_ring, slot) == 64, "vale_ring layout");

struct out {
	char *buf;
	size_t len, used;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = o->used < o->len ? o->len - o->used : 0;
	int n = vsnprintf(room ? o->buf + o->used : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n;
}

#define STRUCT(s) put(o, "%s\"" #s "\":{\"size\":%zu,\"fields\":{", first_s ? "" : ",", \
		      sizeof(struct s)), first_s = 0, first_f = 1
#define FIELD(s, f) put(o, "%s\"" #f "\":%zu", first_f ? "" : ",", offsetof(struct s, f)), \
		    first_f = 0
#define END() put(o, "}}")
#define CONST(c) put(o, "%s\"" #c "\":%lld", first_c ? "" : ",", (long long)(c)), first_c = 0

static void structs(struct out *o)
{
	int first_s = 1, first_f;
	STRUCT(vale_open_req);
	FIELD(vale_open_req, ntx); FIELD(vale_open_req, nrx);
	FIELD(vale_open_req, tx_slots); FIELD(vale_open_req, rx_slots);
	FIELD(vale_open_req, flags); FIELD(vale_open_req, ring_id);
	FIELD(vale_open_req, group); FIELD(vale_open_req, vnet_hdr_len); FIELD(vale_open_req, mtu);
	END();
	STRUCT(vale_port_info);
	FIELD(vale_port_info, region_base); FIELD(vale_port_info, region_size);
	FIELD(vale_port_info, ntx); FIELD(vale_port_info, nrx);
	FIELD(vale_port_info, tx_slots); FIELD(vale_port_info, rx_slots);
	FIELD(vale_port_info, nbufs); FIELD(vale_port_info, buf_size);
	FIELD(vale_port_info, port_idx); FIELD(vale_port_info, port_gen);
	FIELD(vale_port_info, first_ring); FIELD(vale_port_info, last_ring);
	FIELD(vale_port_info, bell_fd); FIELD(vale_port_info, flags);
	FIELD(vale_port_info, tx_ring_ofs); FIELD(vale_port_info, rx_ring_ofs);
	FIELD(vale_port_info, buf_ofs); FIELD(vale_port_info, vnet_hdr_len);
	FIELD(vale_port_info, mtu);
	END();
	STRUCT(vale_ring);
	FIELD(vale_ring, buf_ofs); FIELD(vale_ring, num_slots); FIELD(vale_ring, nr_buf_size);
	FIELD(vale_ring, head); FIELD(vale_ring, cur); FIELD(vale_ring, tail);
	FIELD(vale_ring, slot);
	END();
	STRUCT(vale_slot);
	FIELD(vale_slot, buf_idx); FIELD(vale_slot, len); FIELD(vale_slot, flags);
	END();
	STRUCT(vale_io_opts);
	FIELD(vale_io_opts, flags); FIELD(vale_io_opts, buf_size);
	FIELD(vale_io_opts, rx_block_size); FIELD(vale_io_opts, rx_blocks);
	FIELD(vale_io_opts, block_tov_ms); FIELD(vale_io_opts, tx_frames);
	FIELD(vale_io_opts, xdp_frames); FIELD(vale_io_opts, queue); FIELD(vale_io_opts, mtu);
	FIELD(vale_io_opts, netns);
	FIELD(vale_io_opts, vnet_hdr_len); FIELD(vale_io_opts, offloads);
	END();
	STRUCT(vale_io_stats);
	FIELD(vale_io_stats, rx_pkts); FIELD(vale_io_stats, rx_bytes);
	FIELD(vale_io_stats, tx_pkts); FIELD(vale_io_stats, tx_bytes);
	FIELD(vale_io_stats, rx_batches); FIELD(vale_io_stats, tx_batches);
	FIELD(vale_io_stats, rx_kernel_drops); FIELD(vale_io_stats, rx_truncated);
	FIELD(vale_io_stats, rx_oversize); FIELD(vale_io_stats, rx_csum_fixed);
	FIELD(vale_io_stats, tx_drops); FIELD(vale_io_stats, tx_errors);
	FIELD(vale_io_stats, tx_ring_full); FIELD(vale_io_stats, kernel_freeze);
	FIELD(vale_io_stats, xdp_tx_invalid);
	FIELD(vale_io_stats, rx_gso);
	END();
	STRUCT(vale_io_info);
	FIELD(vale_io_info, kind); FIELD(vale_io_info, ifindex); FIELD(vale_io_info, mtu);
	FIELD(vale_io_info, max_frame); FIELD(vale_io_info, buf_size); FIELD(vale_io_info, fd);
	FIELD(vale_io_info, flags); FIELD(vale_io_info, ifname); FIELD(vale_io_info, mode);
	FIELD(vale_io_info, why);
	FIELD(vale_io_info, vnet_hdr_len); FIELD(vale_io_info, offloads);
	END();
	STRUCT(vale_io_link);
	FIELD(vale_io_link, ifindex); FIELD(vale_io_link, flags); FIELD(vale_io_link, mtu);
	FIELD(vale_io_link, rx_queues); FIELD(vale_io_link, mac); FIELD(vale_io_link, up);
	FIELD(vale_io_link, running); FIELD(vale_io_link, xdp_prog_id);
	END();
	STRUCT(vale_fwd_conf);
	FIELD(vale_fwd_conf, batch); FIELD(vale_fwd_conf, flags); FIELD(vale_fwd_conf, idle_ms);
	END();
	STRUCT(vale_fwd_stats);
	FIELD(vale_fwd_stats, k2v_pkts); FIELD(vale_fwd_stats, k2v_bytes);
	FIELD(vale_fwd_stats, k2v_batches); FIELD(vale_fwd_stats, v2k_pkts);
	FIELD(vale_fwd_stats, v2k_bytes); FIELD(vale_fwd_stats, v2k_batches);
	FIELD(vale_fwd_stats, k2v_waits); FIELD(vale_fwd_stats, v2k_drops);
	FIELD(vale_fwd_stats, v2k_full); FIELD(vale_fwd_stats, k_sleeps);
	FIELD(vale_fwd_stats, v_sleeps); FIELD(vale_fwd_stats, link_downs);
	FIELD(vale_fwd_stats, io_errors); FIELD(vale_fwd_stats, state);
	FIELD(vale_fwd_stats, err); FIELD(vale_fwd_stats, msg);
	END();
	STRUCT(vale_kfast_stats);
	FIELD(vale_kfast_stats, fast_pkts); FIELD(vale_kfast_stats, fast_bytes);
	FIELD(vale_kfast_stats, macs); FIELD(vale_kfast_stats, dests);
	FIELD(vale_kfast_stats, syncs); FIELD(vale_kfast_stats, map_errors);
	FIELD(vale_kfast_stats, active); FIELD(vale_kfast_stats, why_off);
	FIELD(vale_kfast_stats, refreshed);
	END();
	STRUCT(vale_pg_conf);
	FIELD(vale_pg_conf, version); FIELD(vale_pg_conf, func); FIELD(vale_pg_conf, nthreads);
	FIELD(vale_pg_conf, burst); FIELD(vale_pg_conf, npackets); FIELD(vale_pg_conf, size);
	FIELD(vale_pg_conf, min_size); FIELD(vale_pg_conf, frags); FIELD(vale_pg_conf, frag_size);
	FIELD(vale_pg_conf, rate); FIELD(vale_pg_conf, affinity); FIELD(vale_pg_conf, cpus);
	FIELD(vale_pg_conf, forever); FIELD(vale_pg_conf, dump); FIELD(vale_pg_conf, hdr_len);
	FIELD(vale_pg_conf, spin_us); FIELD(vale_pg_conf, flags); FIELD(vale_pg_conf, frame_len);
	FIELD(vale_pg_conf, seed); FIELD(vale_pg_conf, cycle);
	END();
	STRUCT(vale_pg_stats);
	FIELD(vale_pg_stats, pkts); FIELD(vale_pg_stats, bytes); FIELD(vale_pg_stats, events);
	FIELD(vale_pg_stats, min_space); FIELD(vale_pg_stats, stop); FIELD(vale_pg_stats, done);
	FIELD(vale_pg_stats, error); FIELD(vale_pg_stats, timeouts); FIELD(vale_pg_stats, tic_ns);
	FIELD(vale_pg_stats, toc_ns); FIELD(vale_pg_stats, rep_seq); FIELD(vale_pg_stats, rep_count);
	FIELD(vale_pg_stats, rep_min); FIELD(vale_pg_stats, rep_sum);
	FIELD(vale_pg_stats, rep_buckets); FIELD(vale_pg_stats, rtt_count);
	FIELD(vale_pg_stats, rtt_min); FIELD(vale_pg_stats, rtt_sum); FIELD(vale_pg_stats, seq_gaps);
	FIELD(vale_pg_stats, seq_lost); FIELD(vale_pg_stats, seq_ooo);
	FIELD(vale_pg_stats, seq_events); FIELD(vale_pg_stats, seq_last_exp);
	FIELD(vale_pg_stats, seq_last_found); FIELD(vale_pg_stats, seq_last_kind);
	FIELD(vale_pg_stats, frag_mismatch); FIELD(vale_pg_stats, unparsed);
	FIELD(vale_pg_stats, seq_log); FIELD(vale_pg_stats, sleeps);
	END();
	STRUCT(vale_br_conf);
	FIELD(vale_br_conf, version); FIELD(vale_br_conf, burst); FIELD(vale_br_conf, zerocopy);
	FIELD(vale_br_conf, spin_us);
	END();
	STRUCT(vale_br_stats);
	FIELD(vale_br_stats, pkts); FIELD(vale_br_stats, bytes); FIELD(vale_br_stats, bad_len);
	FIELD(vale_br_stats, empty); FIELD(vale_br_stats, stop); FIELD(vale_br_stats, done);
	FIELD(vale_br_stats, error); FIELD(vale_br_stats, sleeps);
	END();
}

static void constants(struct out *o)
{
	int first_c = 1;
	CONST(VALE_MAX_RINGS);
	CONST(VO_EXCLUSIVE); CONST(VO_CREATE_PERSISTENT); CONST(VO_PIPE_MASTER);
	CONST(VO_PIPE_SLAVE); CONST(VO_NO_CREATE); CONST(VO_RX_ONLY); CONST(VO_TX_ONLY);
	CONST(VO_GROUP); CONST(VO_VNET_HDR);
	CONST(VALE_DEF_MTU); CONST(VALE_MIN_MTU); CONST(VALE_MAX_MTU); CONST(VALE_LAYOUT_VERSION);
	CONST(VD_RING_FULL); CONST(VD_BAD_SLOT); CONST(VD_NO_DEST); CONST(VD_LOOKUP);
	CONST(VD_BAD_VNET); CONST(VD_TOO_BIG); CONST(VD_NREASONS);
	CONST(VO_MONITOR_TX); CONST(VO_MONITOR_RX); CONST(VO_MONITOR_ZCOPY);
	CONST(VIO_AUTO); CONST(VIO_TAP); CONST(VIO_PACKET); CONST(VIO_XDP);
	CONST(VIO_F_UP); CONST(VIO_F_ALLOW_DOWN); CONST(VIO_F_PROMISC);
	CONST(VIO_F_QDISC_BYPASS); CONST(VIO_F_SEE_OUTGOING); CONST(VIO_F_RX_V3);
	CONST(VIO_F_NO_CSUM_FIX); CONST(VIO_F_TAP_EXCL); CONST(VIO_F_TAP_NO_CREATE);
	CONST(VIO_F_TAP_PERSIST); CONST(VIO_F_TAP_VNET_HDR); CONST(VIO_F_XDP_SKB);
	CONST(VIO_F_XDP_DRV); CONST(VIO_F_XDP_ZEROCOPY); CONST(VIO_F_XDP_NO_SG);
	CONST(VIO_F_XDP_QUEUE);
	CONST(VIO_F_VNET_HDR);
	CONST(VIO_F_VHOST_OFFLOADS); CONST(VIO_VHOST); CONST(VIO_VHOST_CLIENT);
	CONST(VF_NO_K2V); CONST(VF_NO_V2K);
	CONST(VFS_IDLE); CONST(VFS_RUNNING); CONST(VFS_DOWN); CONST(VFS_GONE);
	CONST(VFS_STOPPED); CONST(VFS_ERROR);
	CONST(PG_VERSION); CONST(PG_TX); CONST(PG_RX); CONST(PG_PING); CONST(PG_PONG);
	CONST(PG_TXSEQ); CONST(PG_RXSEQ); CONST(PGF_RAW); CONST(BR_VERSION);
}

/* Writes the JSON (NUL-terminated, cut to len) and returns the bytes it
 * needs, NUL included: call again with a larger buffer when that is > len. */
VALE_API int vale_abi_layout(char *buf, uint32_t len)
{
	struct out o = { buf, len, 0 };
	put(&o, "{\"structs\":{");
	structs(&o);
	put(&o, "},\"constants\":{");
	constants(&o);
	put(&o, "}}");
	if (len)
		buf[o.used < len ? o.used : len - 1] = 0;
	return (int)(o.used + 1);
}
