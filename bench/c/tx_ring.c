// tx_ring — send one frame over and over on a Linux interface through a
// PACKET_MMAP TX ring (TPACKET_V2, PACKET_QDISC_BYPASS), the way trafgen does.
// A fallback for when netsniff-ng's trafgen is not installed.
//
//   tx_ring -i IF [-l LEN] [-t SECONDS] [-D DSTMAC] [-S SRCMAC] [-e ETHERTYPE] [-q]
//
// Frame: DST SRC ETHERTYPE (default 88b5) then 0x55 fill, LEN bytes without FCS.
// -t 0 (default) sends until SIGINT/SIGTERM.
// stdout (machine-readable): `result pkts=N bytes=B secs=T cpu=C`.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void usage(void) {
  fprintf(stderr, "usage: tx_ring -i IF [-l LEN] [-t SECONDS] [-D DSTMAC] [-S SRCMAC] "
                  "[-e ETHERTYPE] [-q]\n");
  exit(2);
}

static int parse_mac(const char *s, uint8_t *mac) {
  unsigned m[6];
  if (sscanf(s, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) return -1;
  for (int i = 0; i < 6; i++) mac[i] = (uint8_t)m[i];
  return 0;
}

int main(int argc, char **argv) {
  const char *ifname = NULL;
  double seconds = 0;
  unsigned len = 60, ethertype = 0x88b5;
  uint8_t dst[6] = {2, 0, 0, 0, 0x0b, 0}, src[6] = {2, 0, 0, 0, 0x0a, 0};
  int quiet = 0, opt;
  while ((opt = getopt(argc, argv, "i:l:t:D:S:e:q")) != -1) {
    switch (opt) {
    case 'i': ifname = optarg; break;
    case 'l': len = (unsigned)atoi(optarg); break;
    case 't': seconds = atof(optarg); break;
    case 'D':
      if (parse_mac(optarg, dst)) usage();
      break;
    case 'S':
      if (parse_mac(optarg, src)) usage();
      break;
    case 'e': ethertype = (unsigned)strtoul(optarg, NULL, 16); break;
    case 'q': quiet = 1; break;
    default: usage();
    }
  }
  if (!ifname || len < 14 || len > 1514 || seconds < 0) usage();
  unsigned ifindex = if_nametoindex(ifname);
  if (!ifindex) {
    fprintf(stderr, "tx_ring: %s: %s\n", ifname, strerror(errno));
    return 1;
  }
  int fd = socket(AF_PACKET, SOCK_RAW, 0); // protocol 0: never receives
  if (fd < 0) {
    perror("tx_ring: socket(AF_PACKET)");
    return 1;
  }
  int v = TPACKET_V2;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0) {
    perror("tx_ring: PACKET_VERSION");
    return 1;
  }
  int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
  struct tpacket_req req;
  memset(&req, 0, sizeof(req));
  req.tp_block_size = 1 << 16;
  req.tp_frame_size = 2048;
  req.tp_block_nr = 64;
  req.tp_frame_nr = req.tp_block_size / req.tp_frame_size * req.tp_block_nr;
  if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0) {
    perror("tx_ring: PACKET_TX_RING");
    return 1;
  }
  size_t map_len = (size_t)req.tp_block_size * req.tp_block_nr;
  uint8_t *map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    perror("tx_ring: mmap");
    return 1;
  }
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof(sll));
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ethertype);
  sll.sll_ifindex = (int)ifindex;
  if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
    perror("tx_ring: bind");
    return 1;
  }

  uint8_t frame[1514];
  memset(frame, 0x55, sizeof(frame));
  memcpy(frame, dst, 6);
  memcpy(frame + 6, src, 6);
  frame[12] = (uint8_t)(ethertype >> 8);
  frame[13] = (uint8_t)ethertype;
  const size_t data_off = TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
  // Fill every slot once: the frame never changes, only the status words do.
  for (unsigned i = 0; i < req.tp_frame_nr; i++) {
    struct tpacket2_hdr *h = (struct tpacket2_hdr *)(map + (size_t)i * req.tp_frame_size);
    memcpy((uint8_t *)h + data_off, frame, len);
  }

  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  uint64_t sent = 0, queued = 0;
  unsigned slot = 0;
  double t0 = now(), c0 = cpu_now(), end = seconds > 0 ? t0 + seconds : 0;
  unsigned k = 0;
  while (!stop) {
    unsigned n = 0;
    for (; n < 256; n++) {
      struct tpacket2_hdr *h = (struct tpacket2_hdr *)(map + (size_t)slot * req.tp_frame_size);
      uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
      if (st == TP_STATUS_WRONG_FORMAT) {
        fprintf(stderr, "tx_ring: kernel rejected the frame format\n");
        return 1;
      }
      if (st != TP_STATUS_AVAILABLE) break;
      h->tp_len = len;
      __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
      slot = (slot + 1) % req.tp_frame_nr;
    }
    queued += n;
    if (send(fd, NULL, 0, n ? MSG_DONTWAIT : 0) < 0 && errno != EAGAIN && errno != ENOBUFS &&
        errno != EINTR) {
      perror("tx_ring: send");
      return 1;
    }
    if (end && (++k & 63) == 0 && now() >= end) break;
  }
  // Let the kernel finish what was queued, then count what it really sent.
  send(fd, NULL, 0, 0);
  sent = queued;
  for (unsigned i = 0; i < req.tp_frame_nr; i++) {
    struct tpacket2_hdr *h = (struct tpacket2_hdr *)(map + (size_t)i * req.tp_frame_size);
    if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE) sent--;
  }
  double secs = now() - t0, cpu = cpu_now() - c0;
  printf("result pkts=%llu bytes=%llu secs=%.6f cpu=%.6f\n", (unsigned long long)sent,
         (unsigned long long)(sent * len), secs, cpu);
  if (!quiet)
    fprintf(stderr, "tx_ring: %s: sent %llu frames of %u B, %.3f Mpps\n", ifname,
            (unsigned long long)sent, len, sent / secs / 1e6);
  munmap(map, map_len);
  close(fd);
  return 0;
}
