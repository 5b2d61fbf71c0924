/*
 * The pieces of libpcap's public ABI (libpcap 1.x, <pcap/pcap.h>,
 * <pcap/bpf.h>) that the interposer uses, declared here so that building
 * build/libvale-pcap.so needs a C compiler only, not libpcap's headers.
 * These layouts and values are part of libpcap's stable ABI (soname
 * libpcap.so.0.8 on Debian); the real library is found at run time
 * (dlsym(RTLD_NEXT), else dlopen).
 */
#ifndef VALE_PCAP_ABI_H
#define VALE_PCAP_ABI_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>

typedef struct pcap pcap_t; /* opaque: only libpcap looks inside */
typedef unsigned int bpf_u_int32;

struct pcap_pkthdr {
	struct timeval ts; /* tv_usec holds nanoseconds with PCAP_TSTAMP_PRECISION_NANO */
	bpf_u_int32 caplen;
	bpf_u_int32 len;
};

struct pcap_stat {
	unsigned int ps_recv;
	unsigned int ps_drop;
	unsigned int ps_ifdrop;
};

struct bpf_insn {
	unsigned short code;
	unsigned char jt;
	unsigned char jf;
	bpf_u_int32 k;
};

struct bpf_program {
	unsigned int bf_len;
	struct bpf_insn *bf_insns;
};

struct pcap_addr {
	struct pcap_addr *next;
	struct sockaddr *addr, *netmask, *broadaddr, *dstaddr;
};

typedef struct pcap_if {
	struct pcap_if *next;
	char *name;
	char *description;
	struct pcap_addr *addresses;
	bpf_u_int32 flags;
} pcap_if_t;

typedef void (*pcap_handler)(unsigned char *user, const struct pcap_pkthdr *h,
			     const unsigned char *bytes);

typedef enum { PCAP_D_INOUT = 0, PCAP_D_IN, PCAP_D_OUT } pcap_direction_t;

#define PCAP_ERRBUF_SIZE 256
#define DLT_EN10MB 1
#define MAXIMUM_SNAPLEN 262144 /* libpcap's default and largest snapshot length */

#define PCAP_ERROR (-1)
#define PCAP_ERROR_BREAK (-2)
#define PCAP_ERROR_NOT_ACTIVATED (-3)
#define PCAP_ERROR_ACTIVATED (-4)
#define PCAP_ERROR_NO_SUCH_DEVICE (-5)
#define PCAP_ERROR_RFMON_NOTSUP (-6)
#define PCAP_ERROR_PERM_DENIED (-8)
#define PCAP_WARNING_TSTAMP_TYPE_NOTSUP 3

#define PCAP_TSTAMP_PRECISION_MICRO 0
#define PCAP_TSTAMP_PRECISION_NANO 1
#define PCAP_TSTAMP_HOST 0

#define PCAP_IF_UP 0x00000002
#define PCAP_IF_RUNNING 0x00000004
#define PCAP_IF_CONNECTION_STATUS_NOT_APPLICABLE 0x00000030

#endif
