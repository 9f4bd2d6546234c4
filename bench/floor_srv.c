/* bench/floor_srv.c: the smallest C servers that do what `serve -k --discard` does with a
 * connection (read to the end, half-close, close), for bench/conn_floor.py.
 *
 *   floor_srv PORT select   blocking accept after select(2), as ncat's loop does
 *   floor_srv PORT epoll    tokio's system calls: an edge-triggered epoll, every connection
 *                           registered and deregistered, accept4 until EAGAIN
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

static void finish(int ep, int c) {
    shutdown(c, SHUT_WR);
    if (ep >= 0) epoll_ctl(ep, EPOLL_CTL_DEL, c, NULL);
    close(c);
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int et = strcmp(argv[2], "epoll") == 0;
    int l = socket(AF_INET, SOCK_STREAM | (et ? SOCK_NONBLOCK : 0), 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (void *)&a, sizeof a) < 0 || listen(l, 1024) < 0) return 1;
    char buf[512];
    if (!et) {
        for (;;) {
            fd_set r;
            FD_ZERO(&r);
            FD_SET(l, &r);
            if (select(l + 1, &r, NULL, NULL, NULL) < 0) continue;
            int c = accept(l, NULL, NULL);
            if (c < 0) continue;
            while (read(c, buf, sizeof buf) > 0) {}
            finish(-1, c);
        }
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = l};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l) {
                int c;
                while ((c = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                             .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                    ssize_t r;
                    while ((r = recv(c, buf, sizeof buf, 0)) > 0) {}
                    if (r == 0 || errno != EAGAIN) finish(ep, c);
                }
            } else {
                ssize_t r;
                while ((r = recv(fd, buf, sizeof buf, 0)) > 0) {}
                if (r == 0 || errno != EAGAIN) finish(ep, fd);
            }
        }
    }
}
