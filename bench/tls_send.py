"""A neutral TLS client for bench/run.py: sends FILE over TLS to 127.0.0.1:PORT, then ends
its side with close_notify and waits for the peer's, so that no byte is lost to a reset.

    python3 bench/tls_send.py PORT FILE

The cipher suite is whatever OpenSSL's configuration allows (bench/run.py pins it with
OPENSSL_CONF). Prints the negotiated suite and protocol to stderr as "SUITE name version".
Certificates are not verified: this end only measures the peer.
"""

import mmap
import socket
import ssl
import sys


def main() -> int:
    port, path = int(sys.argv[1]), sys.argv[2]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    raw = socket.create_connection(("127.0.0.1", port), timeout=600)
    tls = ctx.wrap_socket(raw)
    name, version, _ = tls.cipher()
    print(f"SUITE {name} {version}", file=sys.stderr, flush=True)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mm:
        view = memoryview(mm)
        chunk = 1 << 20
        for off in range(0, len(view), chunk):
            tls.sendall(view[off : off + chunk])
        view.release()
    try:
        tls.unwrap()  # close_notify, then read (and drop) until the peer's close_notify
    except (OSError, ssl.SSLError) as e:
        print(f"tls_send: end: {e}", file=sys.stderr)
    raw.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
