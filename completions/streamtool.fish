# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_streamtool_global_optspecs
    string join \n v/verbose q/quiet events= threads= h/help V/version
end

function __fish_streamtool_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_streamtool_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_streamtool_using_subcommand
    set -l cmd (__fish_streamtool_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c streamtool -n "__fish_streamtool_needs_command" -l events -d 'Machine-readable events on stderr, one JSON object per line' -r -f -a "json\t'One JSON object per line'"
complete -c streamtool -n "__fish_streamtool_needs_command" -l threads -d 'Threads that run connections: 1 (the default) runs everything on one thread, the least CPU and memory per connection and per handshake; 0 means one per CPU core, for a few bulk relays or a server whose many busy TLS connections need more than one core. At most 256' -r
complete -c streamtool -n "__fish_streamtool_needs_command" -s v -l verbose -d 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
complete -c streamtool -n "__fish_streamtool_needs_command" -s q -l quiet -d 'Only errors on stderr'
complete -c streamtool -n "__fish_streamtool_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c streamtool -n "__fish_streamtool_needs_command" -s V -l version -d 'Print version'
complete -c streamtool -n "__fish_streamtool_needs_command" -f -a "serve" -d 'Listen for connections (TCP or UNIX, plain or TLS) and relay stdio, echo, run a command per connection, or broker between clients'
complete -c streamtool -n "__fish_streamtool_needs_command" -f -a "connect" -d 'Connect to a server (plain or TLS): stdin to the peer, the peer to stdout'
complete -c streamtool -n "__fish_streamtool_needs_command" -f -a "pipe" -d 'Relay between two endpoints: stdio, tcp, tcp-listen, tls, tls-listen, unix, unix-listen, exec, file, udp, udp-listen, unix-dgram, each with its own options'
complete -c streamtool -n "__fish_streamtool_needs_command" -f -a "gen-cert" -d 'Make certificates for local and test TLS: a local CA and leaves signed by it, or a self-signed certificate'
complete -c streamtool -n "__fish_streamtool_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, powershell or elvish) to stdout'
complete -c streamtool -n "__fish_streamtool_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -s e -l exec -d 'Run CMD (no shell; split on spaces) per connection, wired to its stdin/stdout, with the client\'s address in STREAMTOOL_PEER (and STREAMTOOL_PEER_ADDR, STREAMTOOL_PEER_PORT); a TLS client\'s certificate in STREAMTOOL_CLIENT_SUBJECT, _CN, _SANS (comma-separated), _SPKI (its key pin)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -s c -l sh-exec -d 'Run `sh -c CMD` per connection, wired to its stdin/stdout (environment as --exec)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l max-conns -d 'At most N connections at once; more are closed on arrival' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l client-ca -d 'Ask clients for a certificate and verify it against these CAs (PEM). Needs --tls' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l starttls -d 'Speak SMTP until the client\'s STARTTLS, then TLS (smtp only; docs/tls.md, "STARTTLS"). Needs --tls' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l progress -d 'Show bytes, rate and elapsed time per direction on stderr: auto (when stderr is a terminal), always or never' -r -f -a "auto\t'When stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l grace -d 'On SIGINT/SIGTERM, let open connections finish for this long (a second signal closes them at once)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l on-eof -d 'What the end of stdin (or of a command\'s output) does to a client\'s connection: half-close (the default: TCP FIN, TLS close_notify), keep-open (send nothing, read until the client ends) or close' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l max-lag -d 'With -k (stdin to every client) or --broker: how far a client may fall behind the others (bytes queued for it) before it is disconnected, so that one client that does not read never stalls the rest. A single client is never cut: the sender waits for it' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l proxy-from -d 'A proxy trusted to send PROXY headers: an address or ADDRESS/PREFIX (10.0.0.0/8). Repeatable; replaces the default (loopback). Needs --accept-proxy' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l cert -d 'Certificate chain to present, PEM (for `connect`, a client certificate for mTLS). A server takes several, chosen by SNI: the FIRST is the default (no or unknown SNI). Needs --tls' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l key -d 'Private key for --cert, PEM (PKCS#8, PKCS#1 or SEC1). Default: the --cert file' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l alpn -d 'ALPN protocols, comma-separated, most preferred first (e.g. h2,http/1.1)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l tls-min -d 'Oldest TLS version to accept: 1.2 or 1.3' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l tls-max -d 'Newest TLS version to offer: 1.2 or 1.3' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l ragged-eof -d 'What a close without TLS close_notify means: strict (the default: an error, exit 5), warn, or ignore' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l keylog -d 'Append TLS secrets to FILE for Wireshark (default: $SSLKEYLOGFILE if set)' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l delimiter -d 'Split incoming data into frames ending in D (escapes: \\n, \\r\\n, \\0, \\xNN)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l max-frame -d 'Longest frame, delimiter excluded (e.g. 64KiB, 1M; default 1 MiB). Needs --delimiter' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l on-oversize -d 'What to do with a longer frame: error (exit 7; the default) or skip it. Needs --delimiter' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l encoding -d 'The peer\'s text encoding (utf-8, latin1, utf-16le, shift_jis, windows-1252, ...); the terminal side is UTF-8' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l decode-errors -d 'Check the peer\'s text (UTF-8 unless --encoding says otherwise): strict (invalid text is an error, exit 7; the default with --encoding) or replace (with U+FFFD, and ? for characters the peer\'s encoding lacks)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l dump -d 'Show each chunk as it passes, per connection and direction, with its offset and a timestamp: text (non-printable bytes escaped, line ends shown) or hex (as hexdump -C). To stderr, or --dump-file' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l dump-file -d 'Write the dump to this file (created 0600) instead of stderr' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l dump-layer -d 'Which side of TLS the dump shows: plain (the plaintext, default) or tls (the TLS records on the wire, each record\'s type, version and length named)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l dump-max -d 'Dump at most this much of each connection (e.g. 64KiB); the rest is counted, not shown' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l transcript -d 'Write every chunk and event as a JSON line to FILE (created 0600; docs/events.md, "Transcripts"); pipe\'s replay:FILE plays it back' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l pcap -d 'Write the traffic to FILE as pcapng (created 0600): each connection a TCP conversation Wireshark dissects as captured. The file holds what passed, and with --pcap-layer tls the session secrets too' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l pcap-layer -d 'Which side of TLS the capture holds: plain (the plaintext, default) or tls (the TLS records, with the secrets in the file so Wireshark decrypts them with no key log)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l idle-timeout -d 'Close a connection after this long with no data in either direction. connect, and serve without -k in every mode, then exit 6 with one line naming the peer and the timeout; serve -k closes only that connection' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l handshake-timeout -d 'Limit for the TLS handshake (default 30s)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l source -d 'connect: connect from this local address (and port): ADDR or ADDR:PORT (IPv6 with a port in brackets)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l keepalive -d 'TCP keepalive on each connection: a probe after IDLE without traffic (default 60s), so that a peer that vanished is noticed and a NAT keeps the mapping' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l retry -d 'connect: after a failed connect (refused, unreachable, timed out), try N more times (or forever), each failure said' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l retry-delay -d 'The wait before the first retry (default 1s); it doubles up to 30s' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l allow -d 'serve: only clients from these address blocks (10.0.0.0/8, ::1, 192.0.2.7); repeatable, or comma-separated. Checked before anything is read or sent' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l deny -d 'serve: refuse clients from these address blocks (before --allow)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l allow-file -d 'serve: --allow\'s blocks from a file, one per line (# comments)' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l deny-file -d 'serve: --deny\'s blocks from a file, one per line (# comments)' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l cert-dir -d 'Serve every X.pem with its X-key.pem in DIR (gen-cert\'s files), after the --cert ones, by file name; chosen by SNI like repeated --cert. Needs --tls' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l allow-cn -d 'Admit only client certificates whose subject common name is NAME (exact; repeatable; any --allow-* match admits). With an allow-list, a client without a certificate, or whose certificate matches none, is refused in the handshake (and logged with the identity it presented). Needs --client-ca; kept across reloads' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l allow-san -d 'Admit client certificates with this subject alternative name: a DNS name or email (any case), a URI (exact) or an IP address. Repeatable. Needs --client-ca' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l allow-spki -d 'Admit client certificates whose public key has this pin (sha256:HEX, the "key pin" gen-cert and --show-cert print). Repeatable. Needs --client-ca' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l threads -d 'Threads that run connections: 1 (the default) runs everything on one thread, the least CPU and memory per connection and per handshake; 0 means one per CPU core, for a few bulk relays or a server whose many busy TLS connections need more than one core. At most 256' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l ca -l cacert -d 'Trust only these CA certificates (PEM bundle) instead of the system store, to verify the server (`connect`; `serve` verifies clients with --client-ca). A self-signed certificate listed here is trusted as itself. Needs --tls' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l pin -d 'Accept the server only if its certificate (cert pin) or public key (key pin) has this SHA-256 pin: sha256:HEX or sha256//BASE64. Without --ca the pin alone verifies. Repeatable. Needs --tls' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l sni -d 'Server name to send (SNI) and to verify; default: the host connected to' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -s w -l connect-timeout -d 'Give up connecting after this long (e.g. 500ms, 5s, 2m)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l events -d 'Machine-readable events on stderr, one JSON object per line' -r -f -a "json\t'One JSON object per line'"
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -s k -l keep-open -d 'Serve many clients at once instead of exiting after the first (stdin goes to all)'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l echo -d 'Send back what each client sends'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l broker -d 'Pass every client\'s data (whole frames with --delimiter) to every other client; serves many clients, as -k does'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l discard -d 'Read and drop everything'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l require-client-cert -d 'Refuse clients without a valid certificate. Needs --client-ca'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l accept-proxy -d 'Each connection starts with a PROXY protocol header (v1 or v2, as haproxy\'s send-proxy and send-proxy-v2 send it), read before any TLS handshake within --handshake-timeout; its client address is the peer of logs, events and --exec. Only from trusted proxies (--proxy-from; loopback by default); a connection from anywhere else, or with a malformed header, is closed with a line naming it'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l tls -d 'Use TLS. The only flag that turns TLS on: every other TLS flag needs it'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -s C -l crlf -d 'Turn LF into CRLF in what is sent to the peer'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l force -d 'Replace an existing --dump-file, --transcript or --pcap file'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -s 4 -d 'IPv4 only'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -s 6 -d 'IPv6 only'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l reuse-port -d 'serve: SO_REUSEPORT, so that several processes listen on one port (more cores, or a new process started before the old one drains; docs/cli.md, "Rolling restarts")'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l reload-on-change -d 'Reload the certificates, keys and --client-ca when one of their files changes (checked every 2 s), as SIGHUP does. Needs --tls'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l keep-pin -d 'Refuse a reload that changes a certificate\'s public key (its key pin, which clients may have pinned): the old certificates stay. Needs --tls'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -s u -l udp -d 'UDP instead of TCP (unix:PATH: a UNIX datagram socket): a session per peer (--echo, --exec, --sh-exec and --discard per peer; stdio mode serves the first peer, with -k every peer, answering the one heard from last). A session ends after 60s without a datagram (--idle-timeout); -k serves up to 256 at once (--max-conns)'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l length-prefix -d 'With -u: a 2-byte big-endian length before each datagram on the byte side (stdio or the command\'s), instead of lines'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -l no-sni -d 'Send no SNI (the certificate is still verified against the host)'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -s v -l verbose -d 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -s q -l quiet -d 'Only errors on stderr'
complete -c streamtool -n "__fish_streamtool_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l on-eof -d 'What the end of stdin does: half-close (TCP FIN; TLS close_notify, which nginx, ncat and OpenSSL servers take as the end of the whole connection), keep-open (send nothing, read until the peer ends, then close) or close (end and close, reading the peer\'s last bytes for at most 500ms). Default: half-close for TCP/UNIX, keep-open for TLS' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l require -d 'Check the handshake before any data, and exit 4 naming each failed clause: tls>=1.3, tls=1.2, cipher=NAME, group=X25519, alpn=h2, expires>30d, key=rsa|ec|ed25519, key-bits>=2048, san=NAME, chain>=2, ocsp (an OCSP response stapled) (docs/tls.md, "Checks for scripts"). Repeatable; all must hold. Needs --tls' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l starttls -d 'Negotiate TLS in the protocol\'s plaintext first (STARTTLS): smtp, lmtp, imap, pop3, ftp, xmpp, postgres or ldap; -v shows the exchange (docs/tls.md, "STARTTLS"). A server that does not offer it is exit 4. Needs --tls' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l ehlo -d 'The name in SMTP\'s EHLO (LMTP\'s LHLO) [default: streamtool.localhost]. Needs --starttls smtp or lmtp' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l progress -d 'Show bytes, rate and elapsed time per direction on stderr: auto (when stderr is a terminal), always or never' -r -f -a "auto\t'When stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l proxy-protocol -d 'Send a PROXY protocol header first (v1: the text line, v2: binary), naming this connection\'s own source and destination (a UNIX socket: LOCAL, or v1\'s UNKNOWN); docs/proxy-protocol.md' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l cert -d 'Certificate chain to present, PEM (for `connect`, a client certificate for mTLS). A server takes several, chosen by SNI: the FIRST is the default (no or unknown SNI). Needs --tls' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l key -d 'Private key for --cert, PEM (PKCS#8, PKCS#1 or SEC1). Default: the --cert file' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l ca -l cacert -d 'Trust only these CA certificates (PEM bundle) instead of the system store, to verify the server (`connect`; `serve` verifies clients with --client-ca). A self-signed certificate listed here is trusted as itself. Needs --tls' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l pin -d 'Accept the server only if its certificate (cert pin) or public key (key pin) has this SHA-256 pin: sha256:HEX or sha256//BASE64. Without --ca the pin alone verifies. Repeatable. Needs --tls' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l sni -d 'Server name to send (SNI) and to verify; default: the host connected to' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l alpn -d 'ALPN protocols, comma-separated, most preferred first (e.g. h2,http/1.1)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l tls-min -d 'Oldest TLS version to accept: 1.2 or 1.3' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l tls-max -d 'Newest TLS version to offer: 1.2 or 1.3' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l ragged-eof -d 'What a close without TLS close_notify means: strict (the default: an error, exit 5), warn, or ignore' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l keylog -d 'Append TLS secrets to FILE for Wireshark (default: $SSLKEYLOGFILE if set)' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l delimiter -d 'Split incoming data into frames ending in D (escapes: \\n, \\r\\n, \\0, \\xNN)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l max-frame -d 'Longest frame, delimiter excluded (e.g. 64KiB, 1M; default 1 MiB). Needs --delimiter' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l on-oversize -d 'What to do with a longer frame: error (exit 7; the default) or skip it. Needs --delimiter' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l encoding -d 'The peer\'s text encoding (utf-8, latin1, utf-16le, shift_jis, windows-1252, ...); the terminal side is UTF-8' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l decode-errors -d 'Check the peer\'s text (UTF-8 unless --encoding says otherwise): strict (invalid text is an error, exit 7; the default with --encoding) or replace (with U+FFFD, and ? for characters the peer\'s encoding lacks)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l dump -d 'Show each chunk as it passes, per connection and direction, with its offset and a timestamp: text (non-printable bytes escaped, line ends shown) or hex (as hexdump -C). To stderr, or --dump-file' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l dump-file -d 'Write the dump to this file (created 0600) instead of stderr' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l dump-layer -d 'Which side of TLS the dump shows: plain (the plaintext, default) or tls (the TLS records on the wire, each record\'s type, version and length named)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l dump-max -d 'Dump at most this much of each connection (e.g. 64KiB); the rest is counted, not shown' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l transcript -d 'Write every chunk and event as a JSON line to FILE (created 0600; docs/events.md, "Transcripts"); pipe\'s replay:FILE plays it back' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l pcap -d 'Write the traffic to FILE as pcapng (created 0600): each connection a TCP conversation Wireshark dissects as captured. The file holds what passed, and with --pcap-layer tls the session secrets too' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l pcap-layer -d 'Which side of TLS the capture holds: plain (the plaintext, default) or tls (the TLS records, with the secrets in the file so Wireshark decrypts them with no key log)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -s w -l connect-timeout -d 'Give up connecting after this long (e.g. 500ms, 5s, 2m)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l idle-timeout -d 'Close a connection after this long with no data in either direction. connect, and serve without -k in every mode, then exit 6 with one line naming the peer and the timeout; serve -k closes only that connection' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l handshake-timeout -d 'Limit for the TLS handshake (default 30s)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l source -d 'connect: connect from this local address (and port): ADDR or ADDR:PORT (IPv6 with a port in brackets)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l keepalive -d 'TCP keepalive on each connection: a probe after IDLE without traffic (default 60s), so that a peer that vanished is noticed and a NAT keeps the mapping' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l retry -d 'connect: after a failed connect (refused, unreachable, timed out), try N more times (or forever), each failure said' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l retry-delay -d 'The wait before the first retry (default 1s); it doubles up to 30s' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l allow -d 'serve: only clients from these address blocks (10.0.0.0/8, ::1, 192.0.2.7); repeatable, or comma-separated. Checked before anything is read or sent' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l deny -d 'serve: refuse clients from these address blocks (before --allow)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l allow-file -d 'serve: --allow\'s blocks from a file, one per line (# comments)' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l deny-file -d 'serve: --deny\'s blocks from a file, one per line (# comments)' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l proxy -d 'Connect through a proxy: http://[USER[:PASS]@]HOST:PORT (CONNECT), socks5h://... (the proxy resolves the name), socks5://... (resolved here) or socks4a://[USER@]... Without :PASS, the password is read from $STREAMTOOL_PROXY_PASSWORD. With --tls the TARGET\'s certificate and name are verified, never the proxy\'s. Credentials are never shown. The -w limit covers the whole proxy exchange (30s without -w)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l no-proxy -d 'Hosts reached directly, not through the proxy: a comma-separated list of names (each with its subdomains), addresses and CIDR blocks, or * for all' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l threads -d 'Threads that run connections: 1 (the default) runs everything on one thread, the least CPU and memory per connection and per handshake; 0 means one per CPU core, for a few bulk relays or a server whose many busy TLS connections need more than one core. At most 256' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l events -d 'Machine-readable events on stderr, one JSON object per line' -r -f -a "json\t'One JSON object per line'"
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -s k -l insecure -d 'Skip certificate verification (a warning is printed). Needs --tls'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l no-shutdown -d 'Same as --on-eof keep-open'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l keep-sending -d 'Keep sending stdin after the peer ended its side also when stdin is a terminal (a pipe or a file is always sent to its end)'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l send-only -d 'Only send: what the peer sends is read and discarded'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l recv-only -d 'Only receive: stdin is not read, and the sending side is closed at once'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -s z -l zero-io -d 'Connect (and handshake, with TLS), report, and close'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l show-cert -d 'Print the TLS version, cipher, key-exchange group, ALPN and the peer\'s certificates (with their cert and key pins) to stderr. Needs --tls'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l tofu -d 'Trust on first use, as SSH does: record the server\'s key pin in the known-hosts file ($XDG_DATA_HOME/streamtool/known_hosts) on first contact, and refuse another key later (exit 4, both pins shown). With --ca the chain is verified too. Needs --tls'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l tls -d 'Use TLS. The only flag that turns TLS on: every other TLS flag needs it'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l no-sni -d 'Send no SNI (the certificate is still verified against the host)'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -s C -l crlf -d 'Turn LF into CRLF in what is sent to the peer'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l force -d 'Replace an existing --dump-file, --transcript or --pcap file'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -s 4 -d 'IPv4 only'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -s 6 -d 'IPv6 only'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l reuse-port -d 'serve: SO_REUSEPORT, so that several processes listen on one port (more cores, or a new process started before the old one drains; docs/cli.md, "Rolling restarts")'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l proxy-env -d 'Take the proxy from the environment when --proxy is not given: $HTTPS_PROXY then $ALL_PROXY with --tls, $ALL_PROXY without (lower-case names too), excluding $NO_PROXY. Without this flag the environment is never read'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -s u -l udp -d 'UDP instead of TCP (with a UNIX path: a datagram socket). Each line of stdin is one datagram (with --delimiter, each frame without it), each datagram received goes to stdout; after stdin\'s end, replies are awaited until 2s pass without one (--idle-timeout sets the wait). The first address the name resolves to (-4/-6)'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -l length-prefix -d 'With -u: a 2-byte big-endian length before each datagram on stdin and stdout (DNS over TCP\'s framing), instead of lines'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -s v -l verbose -d 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -s q -l quiet -d 'Only errors on stderr'
complete -c streamtool -n "__fish_streamtool_using_subcommand connect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c streamtool -n "__fish_streamtool_using_subcommand pipe" -l max-conns -d 'With fork, at most N connections at once; more are closed on arrival' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand pipe" -l idle-timeout -d 'Close a relay after this long with no data in either direction (exit 6 without fork); `none` for no limit. Default: 1h when an endpoint is tls-listen (a TLS terminator), else none. The idle-timeout= endpoint option sets it too' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand pipe" -l grace -d 'On SIGINT/SIGTERM with fork, let open connections finish for this long (a second signal closes them at once); SIGTERM gives a single relay as long' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand pipe" -l progress -d 'Show bytes, rate and elapsed time per direction on stderr: auto (when stderr is a terminal), always or never' -r -f -a "auto\t'When stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c streamtool -n "__fish_streamtool_using_subcommand pipe" -l threads -d 'Threads that run connections: 1 (the default) runs everything on one thread, the least CPU and memory per connection and per handshake; 0 means one per CPU core, for a few bulk relays or a server whose many busy TLS connections need more than one core. At most 256' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand pipe" -l events -d 'Machine-readable events on stderr, one JSON object per line' -r -f -a "json\t'One JSON object per line'"
complete -c streamtool -n "__fish_streamtool_using_subcommand pipe" -s k -l fork -d 'Fork: serve each connection of the listening endpoint with a fresh instance of the other (the `fork` endpoint option)'
complete -c streamtool -n "__fish_streamtool_using_subcommand pipe" -s v -l verbose -d 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
complete -c streamtool -n "__fish_streamtool_using_subcommand pipe" -s q -l quiet -d 'Only errors on stderr'
complete -c streamtool -n "__fish_streamtool_using_subcommand pipe" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l permit -d 'With --ca-only, when the CA is made: the names it may sign for, repeatable (a critical name constraint): a DNS name covers itself and every name under it (localhost, .test, example.com), an IP range its addresses (127.0.0.0/8, ::1/128). Default: localhost, .localhost, .test, .internal, loopback and private addresses' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l trust-stores -d 'With --install or --uninstall: the stores to change, comma-separated: system, nss (Firefox and Chromium, with certutil), java (a keystore, with keytool). Default: system, plus nss when an NSS database is found in $HOME (~/.pki/nssdb, Firefox profiles); a found database without certutil is then a note. mkcert\'s TRUST_STORES variable is not read' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l java-keystore -d 'With --trust-stores naming java: the keystore (password changeit). Default: $JAVA_HOME/lib/security/cacerts if it exists, else Debian\'s system keystore (the one ca-certificates-java keeps; docs/gen-cert.md names it)' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l csr -d 'Sign this certificate signing request (a PEM CERTIFICATE REQUEST) instead of making a key: its signature and names are checked, the key stays its owner\'s' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l ca-dir -d 'The local CA\'s directory (ca.pem and ca-key.pem). Default: $STREAMTOOL_CA_DIR, else streamtool/ca in the user\'s data directory (~/.local/share/streamtool/ca)' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l key-type -d 'Key type: ecdsa-p256 (default), ecdsa-p384, ed25519, rsa-2048, rsa-3072 or rsa-4096. A CA created implicitly is always ecdsa-p256; use --ca-only --key-type for another' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l days -d 'Days of validity. Default: 90 for certificates, 3650 for a new CA. Clients refuse server certificates valid for more than 398 days (a warning says so)' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l cn -d 'Subject common name. Default: the first name (for a new CA with --ca-only: "streamtool local CA USER@HOST")' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l cert-file -d 'Where to write the certificate. Default: NAME[+N].pem in the current directory (the first name, "*" as "_wildcard", "+N" for N more names)' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l key-file -d 'Where to write the private key (0600). Default: NAME[+N]-key.pem. The same path as --cert-file writes both into one file' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l p12-file -d 'Where to write the PKCS#12 file. Default: NAME[+N].p12' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l inspect -d 'Show what the certificates in FILE say (subject, names, validity, key type, fingerprint, issuer) instead of making one' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l check -d 'With --inspect: check instead of showing. Exit 4 with one line per certificate in FILE that expires within PERIOD (30d, 2w, 12h) or has expired, naming it and its not-after; exit 0, silently, when all are valid for longer' -r
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l events -d 'Machine-readable events on stderr, one JSON object per line' -r -f -a "json\t'One JSON object per line'"
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l self-signed -d 'Make a lone self-signed certificate instead of one signed by the local CA (clients then trust the certificate itself: connect --tls --ca CERT)'
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l ca-only -d 'Only create the local CA (if there is none yet) and show it'
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l any-name -d 'With --ca-only, when the CA is made: no name constraints, so that it may sign for any name (as mkcert\'s CA)'
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l install -d 'Put the local CA (made first if there is none) into the trust stores (--trust-stores): the system store, so that curl, OpenSSL, Python and Go trust it with no flag (needs root; Debian/Ubuntu: /usr/local/share/ca-certificates and update-ca-certificates, Fedora/RHEL: /etc/pki/ca-trust/source/anchors and update-ca-trust), and the NSS databases of Firefox and Chromium in $HOME (certutil). Every store is checked first; a failure undoes this run\'s changes'
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l uninstall -d 'Take the local CA out of the trust stores again (exactly what --install added)'
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l client -d 'Also for client authentication (mTLS): adds the clientAuth extended key usage'
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l bundle -d 'Add a single-root CA\'s certificate after the leaf (a two-level CA\'s files always have its intermediate)'
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l pkcs12 -d 'Also write a PKCS#12 file (key, certificate and CA) for browsers, Java and Windows; password from $STREAMTOOL_P12_PASSWORD, else "changeit"'
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l p12-legacy -d 'Encrypt the PKCS#12 file with 3DES and SHA-1 (for older macOS, Windows and Java) instead of AES-256 and SHA-256'
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l force -d 'Replace existing files (atomically). With --ca-only, make a new CA: certificates signed by the old one stop verifying against it'
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -l json -d 'Print the result as one JSON object on stdout'
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -s v -l verbose -d 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -s q -l quiet -d 'Only errors on stderr'
complete -c streamtool -n "__fish_streamtool_using_subcommand gen-cert" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c streamtool -n "__fish_streamtool_using_subcommand completions" -l man-dir -d 'Write the man pages instead (streamtool.1 and one per subcommand) into DIR, made if missing; a page already there is replaced. `cargo install` installs none' -r -F
complete -c streamtool -n "__fish_streamtool_using_subcommand completions" -l events -d 'Machine-readable events on stderr, one JSON object per line' -r -f -a "json\t'One JSON object per line'"
complete -c streamtool -n "__fish_streamtool_using_subcommand completions" -s v -l verbose -d 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides'
complete -c streamtool -n "__fish_streamtool_using_subcommand completions" -s q -l quiet -d 'Only errors on stderr'
complete -c streamtool -n "__fish_streamtool_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c streamtool -n "__fish_streamtool_using_subcommand help; and not __fish_seen_subcommand_from serve connect pipe gen-cert completions help" -f -a "serve" -d 'Listen for connections (TCP or UNIX, plain or TLS) and relay stdio, echo, run a command per connection, or broker between clients'
complete -c streamtool -n "__fish_streamtool_using_subcommand help; and not __fish_seen_subcommand_from serve connect pipe gen-cert completions help" -f -a "connect" -d 'Connect to a server (plain or TLS): stdin to the peer, the peer to stdout'
complete -c streamtool -n "__fish_streamtool_using_subcommand help; and not __fish_seen_subcommand_from serve connect pipe gen-cert completions help" -f -a "pipe" -d 'Relay between two endpoints: stdio, tcp, tcp-listen, tls, tls-listen, unix, unix-listen, exec, file, udp, udp-listen, unix-dgram, each with its own options'
complete -c streamtool -n "__fish_streamtool_using_subcommand help; and not __fish_seen_subcommand_from serve connect pipe gen-cert completions help" -f -a "gen-cert" -d 'Make certificates for local and test TLS: a local CA and leaves signed by it, or a self-signed certificate'
complete -c streamtool -n "__fish_streamtool_using_subcommand help; and not __fish_seen_subcommand_from serve connect pipe gen-cert completions help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, powershell or elvish) to stdout'
complete -c streamtool -n "__fish_streamtool_using_subcommand help; and not __fish_seen_subcommand_from serve connect pipe gen-cert completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
