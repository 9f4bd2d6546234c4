/*
 * A neutral TLS client for bench/run.py's TLS relay scenario, in C over OpenSSL so that the
 * load generator is not what limits the relay under test:
 *
 *   tls_send PORT FILE [--unbuffered]
 *
 * Sends FILE over TLS 1.3 to 127.0.0.1:PORT, ends its side with close_notify, and reads
 * (and drops) until the peer's close_notify or end of stream, so that no byte is lost to a
 * reset. The cipher suite is whatever OpenSSL's configuration allows (bench/run.py pins it
 * with OPENSSL_CONF). Certificates are not verified: this end only measures the peer.
 * Prints "SUITE name version" to stderr. Exits 0 only if every byte was written.
 *
 * Records go out through a 256 KiB buffering BIO, as a client that batches its writes
 * (rustls with vectored writes, a buffered stream) sends them; with --unbuffered, OpenSSL
 * makes one send(2) per 16 KiB record, as bench/tls_send.py does. The peer sees the same
 * records either way; only how many arrive per read differs. The file is mapped with
 * MAP_POPULATE, so that page faults on it are not part of the transfer.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static int fail(const char *what) {
    fprintf(stderr, "tls_send: %s\n", what);
    ERR_print_errors_fp(stderr);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--unbuffered") != 0)) {
        fprintf(stderr, "usage: tls_send PORT FILE [--unbuffered]\n");
        return 2;
    }
    int buffered = argc == 3;
    int fd = open(argv[2], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) return fail("cannot open FILE");
    size_t size = (size_t)st.st_size;
    const unsigned char *data = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0) : NULL;
    if (size && data == MAP_FAILED) return fail("cannot map FILE");

    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 600};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) return fail("cannot connect");

    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return fail("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL *ssl = SSL_new(ctx);
    if (!ssl) return fail("SSL_new");
    BIO *buf = NULL;
    if (buffered) {
        BIO *sock = BIO_new_socket(s, BIO_NOCLOSE);
        buf = BIO_new(BIO_f_buffer());
        if (!sock || !buf || !BIO_set_write_buffer_size(buf, 256 << 10)) return fail("BIO set-up");
        BIO_push(buf, sock);
        SSL_set_bio(ssl, sock, buf); /* reads straight from the socket, writes through buf */
        BIO_up_ref(sock);            /* SSL_free frees sock as the read BIO and in buf's chain */
    } else {
        SSL_set_fd(ssl, s);
    }
    if (SSL_connect(ssl) != 1) return fail("handshake failed");
    fprintf(stderr, "SUITE %s %s\n", SSL_get_cipher_name(ssl), SSL_get_version(ssl));

    size_t off = 0;
    while (off < size) {
        size_t chunk = size - off < (1 << 20) ? size - off : (1 << 20), n = 0;
        if (SSL_write_ex(ssl, data + off, chunk, &n) != 1) return fail("write failed");
        off += n;
    }
    if (buf && BIO_flush(buf) != 1) return fail("flush failed");
    int r = SSL_shutdown(ssl); /* close_notify; flushed through the buffer below */
    if (buf) BIO_flush(buf);
    if (r == 0) {
        char sink[16384];
        size_t n;
        while (SSL_read_ex(ssl, sink, sizeof sink, &n) == 1) {}
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(s);
    return 0;
}
