/* bench/udp_load.c: the neutral ends of the datagram benchmark (bench/run.py builds it).
 *
 *   udp_load echo-server
 *       bind 127.0.0.1:0 (prints "PORT n"), send every datagram back to where it came from
 *       (recvmmsg/sendmmsg, 64 at a time), until SIGTERM
 *   udp_load sink SIZE IDLE_MS LIMIT_S
 *       bind 127.0.0.1:0 (prints "PORT n"), count datagrams; ends IDLE_MS after the last
 *       one (once one came), LIMIT_S after the start, or on SIGTERM; prints
 *       "RESULT received bytes first_ns last_ns bad" (bad: datagrams not of SIZE bytes)
 *   udp_load window PORT N SIZE WINDOW LIMIT_S
 *       a socket connected to 127.0.0.1:PORT sends up to N datagrams of SIZE bytes (an
 *       8-byte sequence number, then a pattern), with at most WINDOW of them unanswered;
 *       a reply is counted if it has SIZE bytes; when nothing comes back for 50 ms the
 *       window is reopened (what is outstanding is taken as lost). Ends when all N are
 *       sent and answered or 200 ms pass without a reply after the last send, or after
 *       LIMIT_S. Prints "RESULT sent received bytes elapsed_ns stalls bad refused"
 *       (elapsed: first send to last reply)
 *   udp_load flood PORT N SIZE RATE LIMIT_S
 *       the same socket sends N datagrams of SIZE bytes, at full speed (RATE 0) or paced
 *       at RATE datagrams/s (nanosleep until each is due), for at most LIMIT_S; prints "RESULT sent errors t0_ns t1_ns"
 *
 * Every loop is bounded in count and time. CLOCK_MONOTONIC, so the times of two processes
 * compare. The load's own sockets get 4 MiB buffers (SO_RCVBUFFORCE as root), so that the
 * ends are not where datagrams are dropped.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXDG 65536
#define BATCH 64

static volatile sig_atomic_t stop;

static void on_term(int sig) {
    (void)sig;
    stop = 1;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "udp_load: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void big_buffers(int s) {
    int sz = 4 << 20;
    if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0)
        setsockopt(s, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    if (setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) < 0)
        setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
}

static int bound_socket(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) die("socket");
    big_buffers(s);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    printf("PORT %d\n", ntohs(a.sin_port));
    fflush(stdout);
    return s;
}

static int connected_socket(int port) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) die("socket");
    big_buffers(s);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    return s;
}

static int echo_server(void) {
    int s = bound_socket();
    static char bufs[BATCH][MAXDG];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in from[BATCH];
    while (!stop) {
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = MAXDG};
            msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i],
                                              .msg_iov = &iov[i], .msg_iovlen = 1};
        }
        int n = recvmmsg(s, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("recvmmsg");
        }
        for (int i = 0; i < n; i++) iov[i].iov_len = msgs[i].msg_len;
        int off = 0;
        while (off < n) {
            int m = sendmmsg(s, msgs + off, (unsigned)(n - off), 0);
            if (m < 0) {
                if (errno == EINTR) continue;
                break; /* a refused or unreachable peer: drop the rest of the batch */
            }
            off += m;
        }
    }
    return 0;
}

static int sink(int size, int idle_ms, int limit_s) {
    int s = bound_socket();
    static char bufs[BATCH][MAXDG];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    unsigned long long got = 0, bytes = 0, bad = 0;
    long long first = 0, last = 0, end = now_ns() + (long long)limit_s * 1000000000LL;
    while (!stop && now_ns() < end) {
        struct pollfd p = {.fd = s, .events = POLLIN};
        int r = poll(&p, 1, got ? idle_ms : 100);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) {
            if (got) break;
            continue;
        }
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = MAXDG};
            msgs[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
        }
        int n = recvmmsg(s, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) continue;
        long long t = now_ns();
        if (!got) first = t;
        last = t;
        got += (unsigned long long)n;
        for (int i = 0; i < n; i++) {
            bytes += msgs[i].msg_len;
            if ((int)msgs[i].msg_len != size) bad++;
        }
    }
    printf("RESULT %llu %llu %lld %lld %llu\n", got, bytes, first, last, bad);
    fflush(stdout);
    return 0;
}

static void fill(char *buf, int size, unsigned long long seq) {
    memcpy(buf, &seq, sizeof seq);
    for (int i = (int)sizeof seq; i < size; i++) buf[i] = (char)(i * 7 + 1);
}

static int window(int port, long n, int size, int win, int limit_s) {
    int s = connected_socket(port);
    static char out[MAXDG], in[MAXDG];
    long sent = 0, got = 0, stalls = 0, bad = 0, refused = 0, outstanding = 0;
    unsigned long long bytes = 0;
    long long t0 = now_ns(), last = t0, end = t0 + (long long)limit_s * 1000000000LL;
    long long last_send = t0;
    while (!stop && now_ns() < end) {
        while (sent < n && outstanding < win) {
            fill(out, size, (unsigned long long)sent);
            if (send(s, out, (size_t)size, 0) < 0) {
                if (errno == ECONNREFUSED) { refused++; continue; }
                if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) break;
                die("send");
            }
            sent++;
            outstanding++;
            last_send = now_ns();
        }
        if (sent >= n && outstanding == 0) break;
        struct pollfd p = {.fd = s, .events = POLLIN};
        int r = poll(&p, 1, 50);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) {
            if (sent >= n && now_ns() - last_send > 200000000LL) break;
            stalls++;
            outstanding = 0; /* what was in flight is lost: open the window again */
            continue;
        }
        for (int k = 0; k < BATCH; k++) {
            ssize_t m = recv(s, in, sizeof in, MSG_DONTWAIT);
            if (m < 0) {
                if (errno == ECONNREFUSED) { refused++; continue; }
                break;
            }
            if (m != size) bad++;
            else {
                got++;
                bytes += (unsigned long long)m;
            }
            if (outstanding) outstanding--;
            last = now_ns();
        }
    }
    printf("RESULT %ld %ld %llu %lld %ld %ld %ld\n", sent, got, bytes, last - t0, stalls, bad, refused);
    fflush(stdout);
    return 0;
}

static int flood(int port, long n, int size, long rate, int limit_s) {
    int s = connected_socket(port);
    static char out[MAXDG];
    long sent = 0, errors = 0;
    long long t0 = now_ns(), end = t0 + (long long)limit_s * 1000000000LL;
    while (sent < n && !stop) {
        if ((sent & 63) == 0 && now_ns() >= end) break;
        if (rate > 0) {
            /* sleep until this datagram is due; after an oversleep, send back to back until
               the schedule is met again (the average rate is exact, bursts are short) */
            long long due = t0 + (long long)((double)sent * 1e9 / (double)rate), left = due - now_ns();
            if (left > 0) {
                struct timespec ts = {.tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL};
                nanosleep(&ts, NULL);
            }
        }
        fill(out, size, (unsigned long long)sent);
        if (send(s, out, (size_t)size, 0) < 0) {
            errors++;
            if (errors > n) break;
            continue;
        }
        sent++;
    }
    printf("RESULT %ld %ld %lld %lld\n", sent, errors, t0, now_ns());
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (argc == 2 && strcmp(argv[1], "echo-server") == 0) return echo_server();
    if (argc == 5 && strcmp(argv[1], "sink") == 0) return sink(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    if (argc == 7 && strcmp(argv[1], "window") == 0) {
        int size = atoi(argv[4]);
        if (size < 8 || size > MAXDG) size = 8;
        return window(atoi(argv[2]), atol(argv[3]), size, atoi(argv[5]), atoi(argv[6]));
    }
    if (argc == 7 && strcmp(argv[1], "flood") == 0) {
        int size = atoi(argv[4]);
        if (size < 8 || size > MAXDG) size = 8;
        return flood(atoi(argv[2]), atol(argv[3]), size, atol(argv[5]), atoi(argv[6]));
    }
    fprintf(stderr, "usage: udp_load echo-server | sink SIZE IDLE_MS LIMIT_S | "
                    "window PORT N SIZE WINDOW LIMIT_S | flood PORT N SIZE RATE LIMIT_S\n");
    return 2;
}
