
use builtin;
use str;

set edit:completion:arg-completer[streamtool] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'streamtool'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'streamtool'= {
            cand --events 'Machine-readable events on stderr, one JSON object per line'
            cand --threads 'Threads that run connections: 1 (the default) runs everything on one thread, the least CPU and memory per connection and per handshake; 0 means one per CPU core, for a few bulk relays or a server whose many busy TLS connections need more than one core. At most 256'
            cand -v 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
            cand --verbose 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Listen for connections (TCP or UNIX, plain or TLS) and relay stdio, echo, run a command per connection, or broker between clients'
            cand connect 'Connect to a server (plain or TLS): stdin to the peer, the peer to stdout'
            cand pipe 'Relay between two endpoints: stdio, tcp, tcp-listen, tls, tls-listen, unix, unix-listen, exec, file, each with its own TLS, framing and encoding options'
            cand gen-cert 'Make certificates for local and test TLS: a local CA and leaves signed by it, or a self-signed certificate'
            cand completions 'Print a shell completion script (bash, zsh, fish, powershell or elvish) to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'streamtool;serve'= {
            cand -e 'Run CMD (no shell; split on spaces) per connection, wired to its stdin/stdout, with the client''s address in STREAMTOOL_PEER (and STREAMTOOL_PEER_ADDR, STREAMTOOL_PEER_PORT)'
            cand --exec 'Run CMD (no shell; split on spaces) per connection, wired to its stdin/stdout, with the client''s address in STREAMTOOL_PEER (and STREAMTOOL_PEER_ADDR, STREAMTOOL_PEER_PORT)'
            cand -c 'Run `sh -c CMD` per connection, wired to its stdin/stdout (environment as --exec)'
            cand --sh-exec 'Run `sh -c CMD` per connection, wired to its stdin/stdout (environment as --exec)'
            cand --max-conns 'At most N connections at once; more are closed on arrival'
            cand --client-ca 'Ask clients for a certificate and verify it against these CAs (PEM). Needs --tls'
            cand --starttls 'Speak SMTP until the client''s STARTTLS, then TLS (smtp only; docs/tls.md, "STARTTLS"). Needs --tls'
            cand --progress 'Show bytes, rate and elapsed time per direction on stderr: auto (when stderr is a terminal), always or never'
            cand --grace 'On SIGINT/SIGTERM, let open connections finish for this long (a second signal closes them at once)'
            cand --on-eof 'What the end of stdin (or of a command''s output) does to a client''s connection: half-close (the default: TCP FIN, TLS close_notify), keep-open (send nothing, read until the client ends) or close'
            cand --max-lag 'With -k (stdin to every client) or --broker: how far a client may fall behind the others (bytes queued for it) before it is disconnected, so that one client that does not read never stalls the rest. A single client is never cut: the sender waits for it'
            cand --proxy-from 'A proxy trusted to send PROXY headers: an address or ADDRESS/PREFIX (10.0.0.0/8). Repeatable; replaces the default (loopback). Needs --accept-proxy'
            cand --cert 'Certificate chain to present, PEM (the server''s; for `connect`, a client certificate for mTLS). Needs --tls'
            cand --key 'Private key for --cert, PEM (PKCS#8, PKCS#1 or SEC1). Default: the --cert file'
            cand --alpn 'ALPN protocols, comma-separated, most preferred first (e.g. h2,http/1.1)'
            cand --tls-min 'Oldest TLS version to accept: 1.2 or 1.3'
            cand --tls-max 'Newest TLS version to offer: 1.2 or 1.3'
            cand --ragged-eof 'What a close without TLS close_notify means: strict (the default: an error, exit 5), warn, or ignore'
            cand --keylog 'Append TLS secrets to FILE for Wireshark (default: $SSLKEYLOGFILE if set)'
            cand --delimiter 'Split incoming data into frames ending in D (escapes: \n, \r\n, \0, \xNN)'
            cand --max-frame 'Longest frame, delimiter excluded (e.g. 64KiB, 1M; default 1 MiB). Needs --delimiter'
            cand --on-oversize 'What to do with a longer frame: error (exit 7; the default) or skip it. Needs --delimiter'
            cand --encoding 'The peer''s text encoding (utf-8, latin1, utf-16le, shift_jis, windows-1252, ...); the terminal side is UTF-8'
            cand --decode-errors 'Check the peer''s text (UTF-8 unless --encoding says otherwise): strict (invalid text is an error, exit 7; the default with --encoding) or replace (with U+FFFD, and ? for characters the peer''s encoding lacks)'
            cand --idle-timeout 'Close a connection after this long with no data in either direction. connect, and serve without -k in every mode, then exit 6 with one line naming the peer and the timeout; serve -k closes only that connection'
            cand --handshake-timeout 'Limit for the TLS handshake (default 30s)'
            cand --threads 'Threads that run connections: 1 (the default) runs everything on one thread, the least CPU and memory per connection and per handshake; 0 means one per CPU core, for a few bulk relays or a server whose many busy TLS connections need more than one core. At most 256'
            cand --ca 'Trust only these CA certificates (PEM bundle) instead of the system store, to verify the server (`connect`; `serve` verifies clients with --client-ca). A self-signed certificate listed here is trusted as itself. Needs --tls'
            cand --cacert 'Trust only these CA certificates (PEM bundle) instead of the system store, to verify the server (`connect`; `serve` verifies clients with --client-ca). A self-signed certificate listed here is trusted as itself. Needs --tls'
            cand --pin 'Accept the server only if its certificate (cert pin) or public key (key pin) has this SHA-256 pin: sha256:HEX or sha256//BASE64. Without --ca the pin alone verifies. Repeatable. Needs --tls'
            cand --sni 'Server name to send (SNI) and to verify; default: the host connected to'
            cand -w 'Give up connecting after this long (e.g. 500ms, 5s, 2m)'
            cand --connect-timeout 'Give up connecting after this long (e.g. 500ms, 5s, 2m)'
            cand --events 'Machine-readable events on stderr, one JSON object per line'
            cand -k 'Serve many clients at once instead of exiting after the first (stdin goes to all)'
            cand --keep-open 'Serve many clients at once instead of exiting after the first (stdin goes to all)'
            cand --echo 'Send back what each client sends'
            cand --broker 'Pass every client''s data (whole frames with --delimiter) to every other client; serves many clients, as -k does'
            cand --discard 'Read and drop everything'
            cand --require-client-cert 'Refuse clients without a valid certificate. Needs --client-ca'
            cand --accept-proxy 'Each connection starts with a PROXY protocol header (v1 or v2, as haproxy''s send-proxy and send-proxy-v2 send it), read before any TLS handshake within --handshake-timeout; its client address is the peer of logs, events and --exec. Only from trusted proxies (--proxy-from; loopback by default); a connection from anywhere else, or with a malformed header, is closed with a line naming it'
            cand --tls 'Use TLS. The only flag that turns TLS on: every other TLS flag needs it'
            cand -C 'Turn LF into CRLF in what is sent to the peer'
            cand --crlf 'Turn LF into CRLF in what is sent to the peer'
            cand -4 'IPv4 only'
            cand -6 'IPv6 only'
            cand --no-sni 'Send no SNI (the certificate is still verified against the host)'
            cand -v 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
            cand --verbose 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'streamtool;connect'= {
            cand --on-eof 'What the end of stdin does: half-close (TCP FIN; TLS close_notify, which nginx, ncat and OpenSSL servers take as the end of the whole connection), keep-open (send nothing, read until the peer ends, then close) or close (close at once, unread data is dropped). Default: half-close for plain TCP and UNIX, keep-open for TLS'
            cand --require 'Check the handshake before any data, and exit 4 naming each failed clause: tls>=1.3, tls=1.2, cipher=NAME, group=X25519, alpn=h2, expires>30d, key=rsa|ec|ed25519, key-bits>=2048, san=NAME, chain>=2, ocsp (an OCSP response stapled) (docs/tls.md, "Checks for scripts"). Repeatable; all must hold. Needs --tls'
            cand --starttls 'Negotiate TLS in the protocol''s plaintext first (STARTTLS): smtp, lmtp, imap, pop3, ftp, xmpp, postgres or ldap; -v shows the exchange (docs/tls.md, "STARTTLS"). A server that does not offer it is exit 4. Needs --tls'
            cand --ehlo 'The name in SMTP''s EHLO (LMTP''s LHLO) [default: streamtool.localhost]. Needs --starttls smtp or lmtp'
            cand --progress 'Show bytes, rate and elapsed time per direction on stderr: auto (when stderr is a terminal), always or never'
            cand --proxy-protocol 'Send a PROXY protocol header first (v1: the text line, v2: binary), naming this connection''s own source and destination (a UNIX socket: LOCAL, or v1''s UNKNOWN); docs/proxy-protocol.md'
            cand --cert 'Certificate chain to present, PEM (the server''s; for `connect`, a client certificate for mTLS). Needs --tls'
            cand --key 'Private key for --cert, PEM (PKCS#8, PKCS#1 or SEC1). Default: the --cert file'
            cand --ca 'Trust only these CA certificates (PEM bundle) instead of the system store, to verify the server (`connect`; `serve` verifies clients with --client-ca). A self-signed certificate listed here is trusted as itself. Needs --tls'
            cand --cacert 'Trust only these CA certificates (PEM bundle) instead of the system store, to verify the server (`connect`; `serve` verifies clients with --client-ca). A self-signed certificate listed here is trusted as itself. Needs --tls'
            cand --pin 'Accept the server only if its certificate (cert pin) or public key (key pin) has this SHA-256 pin: sha256:HEX or sha256//BASE64. Without --ca the pin alone verifies. Repeatable. Needs --tls'
            cand --sni 'Server name to send (SNI) and to verify; default: the host connected to'
            cand --alpn 'ALPN protocols, comma-separated, most preferred first (e.g. h2,http/1.1)'
            cand --tls-min 'Oldest TLS version to accept: 1.2 or 1.3'
            cand --tls-max 'Newest TLS version to offer: 1.2 or 1.3'
            cand --ragged-eof 'What a close without TLS close_notify means: strict (the default: an error, exit 5), warn, or ignore'
            cand --keylog 'Append TLS secrets to FILE for Wireshark (default: $SSLKEYLOGFILE if set)'
            cand --delimiter 'Split incoming data into frames ending in D (escapes: \n, \r\n, \0, \xNN)'
            cand --max-frame 'Longest frame, delimiter excluded (e.g. 64KiB, 1M; default 1 MiB). Needs --delimiter'
            cand --on-oversize 'What to do with a longer frame: error (exit 7; the default) or skip it. Needs --delimiter'
            cand --encoding 'The peer''s text encoding (utf-8, latin1, utf-16le, shift_jis, windows-1252, ...); the terminal side is UTF-8'
            cand --decode-errors 'Check the peer''s text (UTF-8 unless --encoding says otherwise): strict (invalid text is an error, exit 7; the default with --encoding) or replace (with U+FFFD, and ? for characters the peer''s encoding lacks)'
            cand -w 'Give up connecting after this long (e.g. 500ms, 5s, 2m)'
            cand --connect-timeout 'Give up connecting after this long (e.g. 500ms, 5s, 2m)'
            cand --idle-timeout 'Close a connection after this long with no data in either direction. connect, and serve without -k in every mode, then exit 6 with one line naming the peer and the timeout; serve -k closes only that connection'
            cand --handshake-timeout 'Limit for the TLS handshake (default 30s)'
            cand --proxy 'Connect through a proxy: http://[USER[:PASS]@]HOST:PORT (CONNECT), socks5h://... (the proxy resolves the name), socks5://... (resolved here) or socks4a://[USER@]... Without :PASS, the password is read from $STREAMTOOL_PROXY_PASSWORD. With --tls the TARGET''s certificate and name are verified, never the proxy''s. Credentials are never shown. The -w limit covers the whole proxy exchange (30s without -w)'
            cand --no-proxy 'Hosts reached directly, not through the proxy: a comma-separated list of names (each with its subdomains), addresses and CIDR blocks, or * for all'
            cand --threads 'Threads that run connections: 1 (the default) runs everything on one thread, the least CPU and memory per connection and per handshake; 0 means one per CPU core, for a few bulk relays or a server whose many busy TLS connections need more than one core. At most 256'
            cand --events 'Machine-readable events on stderr, one JSON object per line'
            cand -k 'Skip certificate verification (a warning is printed). Needs --tls'
            cand --insecure 'Skip certificate verification (a warning is printed). Needs --tls'
            cand --no-shutdown 'Same as --on-eof keep-open'
            cand --keep-sending 'Keep sending stdin after the peer ended its side also when stdin is a terminal (a pipe or a file is always sent to its end)'
            cand --send-only 'Only send: what the peer sends is read and discarded'
            cand --recv-only 'Only receive: stdin is not read, and the sending side is closed at once'
            cand -z 'Connect (and handshake, with TLS), report, and close'
            cand --zero-io 'Connect (and handshake, with TLS), report, and close'
            cand --show-cert 'Print the TLS version, cipher, key-exchange group, ALPN and the peer''s certificates (with their cert and key pins) to stderr. Needs --tls'
            cand --tofu 'Trust on first use, as SSH does: record the server''s key pin in the known-hosts file ($XDG_DATA_HOME/streamtool/known_hosts) on first contact, and refuse another key later (exit 4, both pins shown). With --ca the chain is verified too. Needs --tls'
            cand --tls 'Use TLS. The only flag that turns TLS on: every other TLS flag needs it'
            cand --no-sni 'Send no SNI (the certificate is still verified against the host)'
            cand -C 'Turn LF into CRLF in what is sent to the peer'
            cand --crlf 'Turn LF into CRLF in what is sent to the peer'
            cand -4 'IPv4 only'
            cand -6 'IPv6 only'
            cand --proxy-env 'Take the proxy from the environment when --proxy is not given: $HTTPS_PROXY then $ALL_PROXY with --tls, $ALL_PROXY without (lower-case names too), excluding $NO_PROXY. Without this flag the environment is never read'
            cand -v 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
            cand --verbose 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'streamtool;pipe'= {
            cand --max-conns 'With fork, at most N connections at once; more are closed on arrival'
            cand --idle-timeout 'Close a relay after this long with no data in either direction (exit 6 without fork); `none` for no limit. Default: 1h when an endpoint is tls-listen (a TLS terminator), else none. The idle-timeout= endpoint option sets it too'
            cand --grace 'On SIGINT/SIGTERM with fork, let open connections finish for this long (a second signal closes them at once); SIGTERM gives a single relay as long'
            cand --progress 'Show bytes, rate and elapsed time per direction on stderr: auto (when stderr is a terminal), always or never'
            cand --threads 'Threads that run connections: 1 (the default) runs everything on one thread, the least CPU and memory per connection and per handshake; 0 means one per CPU core, for a few bulk relays or a server whose many busy TLS connections need more than one core. At most 256'
            cand --events 'Machine-readable events on stderr, one JSON object per line'
            cand -k 'Fork: serve each connection of the listening endpoint with a fresh instance of the other (the `fork` endpoint option)'
            cand --fork 'Fork: serve each connection of the listening endpoint with a fresh instance of the other (the `fork` endpoint option)'
            cand -v 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
            cand --verbose 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'streamtool;gen-cert'= {
            cand --permit 'With --ca-only, when the CA is made: the names it may sign for, repeatable (a critical name constraint): a DNS name covers itself and every name under it (localhost, .test, example.com), an IP range its addresses (127.0.0.0/8, ::1/128). Default: localhost, .localhost, .test, .internal, loopback and private addresses'
            cand --trust-stores 'With --install or --uninstall: the stores to change, comma-separated: system, nss (Firefox and Chromium, with certutil), java (a keystore, with keytool). Default: system, plus nss when an NSS database is found in $HOME (~/.pki/nssdb, Firefox profiles); a found database without certutil is then a note. mkcert''s TRUST_STORES variable is not read'
            cand --java-keystore 'With --trust-stores naming java: the keystore (password changeit). Default: $JAVA_HOME/lib/security/cacerts if it exists, else Debian''s system keystore (the one ca-certificates-java keeps; docs/gen-cert.md names it)'
            cand --csr 'Sign this certificate signing request (a PEM CERTIFICATE REQUEST) instead of making a key: its signature and names are checked, the key stays its owner''s'
            cand --ca-dir 'The local CA''s directory (ca.pem and ca-key.pem). Default: $STREAMTOOL_CA_DIR, else streamtool/ca in the user''s data directory (~/.local/share/streamtool/ca)'
            cand --key-type 'Key type: ecdsa-p256 (default), ecdsa-p384, ed25519, rsa-2048, rsa-3072 or rsa-4096. A CA created implicitly is always ecdsa-p256; use --ca-only --key-type for another'
            cand --days 'Days of validity. Default: 90 for certificates, 3650 for a new CA. Clients refuse server certificates valid for more than 398 days (a warning says so)'
            cand --cn 'Subject common name. Default: the first name (for a new CA with --ca-only: "streamtool local CA USER@HOST")'
            cand --cert-file 'Where to write the certificate. Default: NAME[+N].pem in the current directory (the first name, "*" as "_wildcard", "+N" for N more names)'
            cand --key-file 'Where to write the private key (0600). Default: NAME[+N]-key.pem. The same path as --cert-file writes both into one file'
            cand --p12-file 'Where to write the PKCS#12 file. Default: NAME[+N].p12'
            cand --inspect 'Show what the certificates in FILE say (subject, names, validity, key type, fingerprint, issuer) instead of making one'
            cand --check 'With --inspect: check instead of showing. Exit 4 with one line per certificate in FILE that expires within PERIOD (30d, 2w, 12h) or has expired, naming it and its not-after; exit 0, silently, when all are valid for longer'
            cand --events 'Machine-readable events on stderr, one JSON object per line'
            cand --self-signed 'Make a lone self-signed certificate instead of one signed by the local CA (clients then trust the certificate itself: connect --tls --ca CERT)'
            cand --ca-only 'Only create the local CA (if there is none yet) and show it'
            cand --any-name 'With --ca-only, when the CA is made: no name constraints, so that it may sign for any name (as mkcert''s CA)'
            cand --install 'Put the local CA (made first if there is none) into the trust stores (--trust-stores): the system store, so that curl, OpenSSL, Python and Go trust it with no flag (Debian and Ubuntu: /usr/local/share/ca-certificates and update-ca-certificates; needs root), and the NSS databases of Firefox and Chromium in the user''s home (certutil). Every store is checked before any is changed; a failure undoes this run''s changes'
            cand --uninstall 'Take the local CA out of the trust stores again (exactly what --install added)'
            cand --client 'Also for client authentication (mTLS): adds the clientAuth extended key usage'
            cand --bundle 'Write the CA certificate after the leaf in the certificate file (a full chain)'
            cand --pkcs12 'Also write a PKCS#12 file (key, certificate and CA) for browsers, Java and Windows; password from $STREAMTOOL_P12_PASSWORD, else "changeit"'
            cand --p12-legacy 'Encrypt the PKCS#12 file with 3DES and SHA-1 (for older macOS, Windows and Java) instead of AES-256 and SHA-256'
            cand --force 'Replace existing files (atomically). With --ca-only, make a new CA: certificates signed by the old one stop verifying against it'
            cand --json 'Print the result as one JSON object on stdout'
            cand -v 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
            cand --verbose 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'streamtool;completions'= {
            cand --man-dir 'Write the man pages instead (streamtool.1 and one per subcommand) into DIR, made if missing; a page already there is replaced. `cargo install` installs none'
            cand --events 'Machine-readable events on stderr, one JSON object per line'
            cand -v 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
            cand --verbose 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
            cand -q 'Only errors on stderr'
            cand --quiet 'Only errors on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'streamtool;help'= {
            cand serve 'Listen for connections (TCP or UNIX, plain or TLS) and relay stdio, echo, run a command per connection, or broker between clients'
            cand connect 'Connect to a server (plain or TLS): stdin to the peer, the peer to stdout'
            cand pipe 'Relay between two endpoints: stdio, tcp, tcp-listen, tls, tls-listen, unix, unix-listen, exec, file, each with its own TLS, framing and encoding options'
            cand gen-cert 'Make certificates for local and test TLS: a local CA and leaves signed by it, or a self-signed certificate'
            cand completions 'Print a shell completion script (bash, zsh, fish, powershell or elvish) to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'streamtool;help;serve'= {
        }
        &'streamtool;help;connect'= {
        }
        &'streamtool;help;pipe'= {
        }
        &'streamtool;help;gen-cert'= {
        }
        &'streamtool;help;completions'= {
        }
        &'streamtool;help;help'= {
        }
    ]
    $completions[$command]
}
