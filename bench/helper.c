/* bench/helper.c: the neutral ends of the side-by-side benchmark (bench/run.py builds it).
 *
 *   helper check REF        read stdin, compare it byte for byte with the file REF
 *   helper sink REF         listen on 127.0.0.1:0 (prints "PORT n"), accept one connection,
 *                           compare what arrives with REF, then close
 *   helper send PORT FILE   connect to 127.0.0.1:PORT, sendfile(2) FILE, half-close, read
 *                           until the peer closes
 *   helper conns PORT N     N times: connect, half-close, read until the peer closes, close
 *                           (prints "CONNS ok failed elapsed_ns")
 *   helper idle PORT N      open N plain connections, print "READY n", hold them until stdin
 *                           ends
 *   helper reap REPORT CMD ARGS...
 *                           run CMD as a child subreaper: every descendant, orphaned or not,
 *                           is reaped here, and when the whole tree is gone the tree's CPU
 *                           time and peak RSS (getrusage(RUSAGE_CHILDREN): forks included,
 *                           and none of the RSS of the process that started us) are written
 *                           to the file REPORT as "RUSAGE utime_us stime_us maxrss_kib";
 *                           SIGTERM, SIGINT and SIGHUP are passed on to CMD by PID; exits
 *                           with CMD's status
 *
 * check and sink print "DONE t" (CLOCK_MONOTONIC, ns) when the last expected byte arrives
 * and "END bytes verdict" at end of stream; verdict is ok, short, long or mismatch@OFFSET.
 * They exit 0 only for ok.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BUF (1 << 20)

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "helper: %s: %s\n", what, strerror(errno));
    exit(2);
}

static int verify(int fd, const char *ref_path) {
    int rf = open(ref_path, O_RDONLY);
    if (rf < 0) die("open reference");
    struct stat st;
    if (fstat(rf, &st) < 0) die("fstat");
    size_t size = (size_t)st.st_size;
    const unsigned char *ref = size ? mmap(NULL, size, PROT_READ, MAP_SHARED, rf, 0) : NULL;
    if (size && ref == MAP_FAILED) die("mmap");
    fcntl(fd, F_SETPIPE_SZ, BUF); /* fails harmlessly on sockets and files */
    unsigned char *buf = malloc(BUF);
    if (!buf) die("malloc");
    unsigned long long got = 0;
    long long mismatch = -1;
    int done_printed = 0;
    for (;;) {
        ssize_t n = read(fd, buf, BUF);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ECONNRESET) break; /* counted as short if bytes are missing */
            die("read");
        }
        if (n == 0) break;
        if (mismatch < 0) {
            size_t cmp = got >= size ? 0 : (size - got < (size_t)n ? size - got : (size_t)n);
            if (cmp < (size_t)n) mismatch = (long long)(got + cmp); /* longer than REF */
            if (cmp && memcmp(buf, ref + got, cmp) != 0) {
                size_t i = 0;
                while (buf[i] == ref[got + i]) i++;
                mismatch = (long long)(got + i);
            }
        }
        got += (unsigned long long)n;
        if (!done_printed && got >= size) {
            printf("DONE %lld\n", now_ns());
            fflush(stdout);
            done_printed = 1;
        }
    }
    const char *verdict = "ok";
    char tmp[64];
    if (mismatch >= 0 && (unsigned long long)mismatch < size) {
        snprintf(tmp, sizeof tmp, "mismatch@%lld", mismatch);
        verdict = tmp;
    } else if (got < size) verdict = "short";
    else if (got > size) verdict = "long";
    if (!done_printed) printf("DONE %lld\n", now_ns());
    printf("END %llu %s\n", got, verdict);
    fflush(stdout);
    return strcmp(verdict, "ok") == 0 ? 0 : 1;
}

static int listen_any(int *port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(s, 16) < 0) die("listen");
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return s;
}

static int connect_port(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(s);
        errno = e;
        return -1;
    }
    return s;
}

static void drain(int s) {
    char b[65536];
    for (;;) {
        ssize_t n = read(s, b, sizeof b);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        break;
    }
}

static volatile pid_t reap_child;

static void forward(int sig) {
    if (reap_child > 0) kill(reap_child, sig);
}

static int reap(const char *report, char **cmd) {
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) die("prctl");
    struct sigaction sa = {.sa_handler = forward};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        execvp(cmd[0], cmd);
        fprintf(stderr, "helper: exec %s: %s\n", cmd[0], strerror(errno));
        _exit(127);
    }
    reap_child = pid;
    int code = 1;
    for (;;) {
        int status;
        pid_t w = wait(&status);
        if (w < 0) {
            if (errno == EINTR) continue;
            break; /* ECHILD: the whole tree is gone */
        }
        if (w == pid) {
            code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            reap_child = 0;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    FILE *out = fopen(report, "w");
    if (out) {
        fprintf(out, "RUSAGE %lld %lld %ld\n",
                (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec,
                (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec, ru.ru_maxrss);
        fclose(out);
    }
    return code;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "reap") == 0) return reap(argv[2], argv + 3);
    if (argc >= 3 && strcmp(argv[1], "check") == 0) return verify(0, argv[2]);
    if (argc >= 3 && strcmp(argv[1], "sink") == 0) {
        int port;
        int l = listen_any(&port);
        printf("PORT %d\n", port);
        fflush(stdout);
        int c = accept(l, NULL, NULL);
        if (c < 0) die("accept");
        close(l);
        int rc = verify(c, argv[2]);
        close(c);
        return rc;
    }
    if (argc >= 4 && strcmp(argv[1], "send") == 0) {
        int f = open(argv[3], O_RDONLY);
        if (f < 0) die("open");
        struct stat st;
        fstat(f, &st);
        int s = connect_port(atoi(argv[2]));
        if (s < 0) die("connect");
        off_t off = 0;
        while (off < st.st_size) {
            ssize_t n = sendfile(s, f, &off, (size_t)(st.st_size - off));
            if (n < 0 && errno != EINTR) die("sendfile");
        }
        shutdown(s, SHUT_WR);
        drain(s);
        close(s);
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "conns") == 0) {
        int port = atoi(argv[2]);
        long n = atol(argv[3]), ok = 0, failed = 0;
        long long t0 = now_ns();
        struct timeval tv = {.tv_sec = 5};
        for (long i = 0; i < n; i++) {
            int s = connect_port(port);
            if (s < 0) { failed++; continue; }
            setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            shutdown(s, SHUT_WR);
            char b[4096];
            ssize_t r;
            while ((r = read(s, b, sizeof b)) > 0) {}
            if (r == 0) ok++; else failed++;
            close(s);
        }
        printf("CONNS %ld %ld %lld\n", ok, failed, now_ns() - t0);
        return failed ? 1 : 0;
    }
    if (argc >= 4 && strcmp(argv[1], "idle") == 0) {
        int port = atoi(argv[2]);
        long n = atol(argv[3]), ok = 0;
        for (long i = 0; i < n; i++)
            if (connect_port(port) >= 0) ok++;
        printf("READY %ld\n", ok);
        fflush(stdout);
        drain(0);
        return ok == n ? 0 : 1;
    }
    fprintf(stderr, "usage: see the comment at the top of bench/helper.c\n");
    return 2;
}
