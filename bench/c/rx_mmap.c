// rx_mmap — count frames arriving on a Linux interface with a PACKET_MMAP
// TPACKET_V3 ring, the cheapest way the kernel offers to receive them without
// XDP. The measured window opens `-w` seconds after the first frame and lasts
// `-t` seconds; per-second rates go to stderr.
//
//   rx_mmap -i IF [-t SECONDS] [-w WARMUP] [-e ETHERTYPE] [-T IDLE_TIMEOUT] [-k] [-q]
//
// -e: ethertype to bind to, hex (default 88b5, the local-experimental type the
//     senders use, so stray IPv6/ARP frames are not counted); 0 = all.
// stdout (machine-readable): `start` when the window opens, then
//   `result pkts=N bytes=B secs=T cpu=C drops=D` (D = frames the kernel dropped
//   because the ring was full, during the window). Exit 3 if nothing arrived.
// -k: after the result line, stay until SIGINT/SIGTERM (at most a minute), so a
//     harness can still read this process's CPU time from /proc.
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
  fprintf(stderr,
          "usage: rx_mmap -i IF [-t SECONDS] [-w WARMUP] [-e ETHERTYPE] [-T IDLE_TIMEOUT] [-k] [-q]\n");
  exit(2);
}

static uint64_t kernel_drops(int fd) {
  struct tpacket_stats_v3 st;
  socklen_t len = sizeof(st);
  memset(&st, 0, sizeof(st));
  if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0) return 0;
  return st.tp_drops; // reading resets the counters
}

int main(int argc, char **argv) {
  const char *ifname = NULL;
  double seconds = 5, warmup = 1, idle_timeout = 10;
  unsigned ethertype = 0x88b5;
  int quiet = 0, linger = 0, opt;
  while ((opt = getopt(argc, argv, "i:t:w:e:T:kq")) != -1) {
    switch (opt) {
    case 'i': ifname = optarg; break;
    case 't': seconds = atof(optarg); break;
    case 'w': warmup = atof(optarg); break;
    case 'e': ethertype = (unsigned)strtoul(optarg, NULL, 16); break;
    case 'T': idle_timeout = atof(optarg); break;
    case 'k': linger = 1; break;
    case 'q': quiet = 1; break;
    default: usage();
    }
  }
  if (!ifname || seconds <= 0 || warmup < 0) usage();
  unsigned ifindex = if_nametoindex(ifname);
  if (!ifindex) {
    fprintf(stderr, "rx_mmap: %s: %s\n", ifname, strerror(errno));
    return 1;
  }
  uint16_t proto = htons(ethertype ? ethertype : ETH_P_ALL);
  int fd = socket(AF_PACKET, SOCK_RAW, proto);
  if (fd < 0) {
    perror("rx_mmap: socket(AF_PACKET)");
    return 1;
  }
  int v = TPACKET_V3;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0) {
    perror("rx_mmap: PACKET_VERSION");
    return 1;
  }
  struct tpacket_req3 req;
  memset(&req, 0, sizeof(req));
  req.tp_block_size = 1 << 20;
  req.tp_block_nr = 64;
  req.tp_frame_size = 2048;
  req.tp_frame_nr = req.tp_block_size / req.tp_frame_size * req.tp_block_nr;
  req.tp_retire_blk_tov = 10; // ms: hand a partly filled block over after this
  if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0) {
    perror("rx_mmap: PACKET_RX_RING");
    return 1;
  }
  size_t map_len = (size_t)req.tp_block_size * req.tp_block_nr;
  uint8_t *map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED, fd, 0);
  if (map == MAP_FAILED) map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    perror("rx_mmap: mmap");
    return 1;
  }
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof(sll));
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = proto;
  sll.sll_ifindex = (int)ifindex;
  if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
    perror("rx_mmap: bind");
    return 1;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  setvbuf(stdout, NULL, _IOLBF, 0);

  uint64_t pkts = 0, bytes = 0, p0 = 0, b0 = 0, drops = 0;
  double t_start = now(), t_first = 0, t_win = 0, t_end = 0, c_win = 0;
  double t_last = 0;
  uint64_t p_last = 0, b_last = 0;
  unsigned blk = 0;
  int in_window = 0;
  if (!quiet) fprintf(stderr, "rx_mmap: listening on %s\n", ifname);
  while (!stop) {
    struct tpacket_block_desc *bd =
        (struct tpacket_block_desc *)(map + (size_t)blk * req.tp_block_size);
    if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
      struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLERR};
      poll(&pfd, 1, 50);
    } else {
      uint32_t n = bd->hdr.bh1.num_pkts;
      struct tpacket3_hdr *h =
          (struct tpacket3_hdr *)((uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt);
      for (uint32_t i = 0; i < n; i++) {
        bytes += h->tp_len;
        h = (struct tpacket3_hdr *)((uint8_t *)h + h->tp_next_offset);
      }
      pkts += n;
      __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
      blk = (blk + 1) % req.tp_block_nr;
    }
    double t = now();
    if (!t_first) {
      if (pkts) {
        t_first = t;
      } else if (t - t_start > idle_timeout) {
        break;
      }
      continue;
    }
    if (!in_window && t - t_first >= warmup) {
      in_window = 1;
      t_win = t_last = t;
      c_win = cpu_now();
      p0 = p_last = pkts;
      b0 = b_last = bytes;
      kernel_drops(fd);
      printf("start\n");
    }
    if (in_window) {
      if (t - t_last >= 1.0) {
        double dt = t - t_last;
        if (!quiet)
          fprintf(stderr, "rx_mmap: %.3f Mpps %.3f Gbit/s\n", (pkts - p_last) / dt / 1e6,
                  (bytes - b_last) * 8 / dt / 1e9);
        t_last = t;
        p_last = pkts;
        b_last = bytes;
      }
      if (t - t_win >= seconds) break;
    }
  }
  if (!in_window) {
    printf("result pkts=0 bytes=0 secs=0 cpu=0 drops=0\n");
    fprintf(stderr, "rx_mmap: %s on %s\n", pkts ? "stopped during warm-up" : "received nothing",
            ifname);
    return 3;
  }
  t_end = now();
  double c_end = cpu_now();
  drops = kernel_drops(fd);
  uint64_t np = pkts - p0, nb = bytes - b0;
  double secs = t_end - t_win;
  printf("result pkts=%llu bytes=%llu secs=%.6f cpu=%.6f drops=%llu\n", (unsigned long long)np,
         (unsigned long long)nb, secs, c_end - c_win, (unsigned long long)drops);
  if (!quiet)
    fprintf(stderr, "rx_mmap: %s: %.3f Mpps %.3f Gbit/s over %.2f s, %llu kernel drops\n", ifname,
            np / secs / 1e6, nb * 8 / secs / 1e9, secs, (unsigned long long)drops);
  munmap(map, map_len);
  close(fd);
  fflush(stdout);
  if (linger) alarm(60); // never outlive a harness that died: give up after a minute
  while (linger && !stop) pause();
  return 0;
}
