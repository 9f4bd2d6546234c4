
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'streamtool' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'streamtool'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'streamtool' {
            [CompletionResult]::new('--events', '--events', [CompletionResultType]::ParameterName, 'Machine-readable events on stderr, one JSON object per line')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'Threads that run connections: 1 (the default) runs everything on one thread, the least CPU and memory per connection and per handshake; 0 means one per CPU core, for a few bulk relays or a server whose many busy TLS connections need more than one core. At most 256')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Listen for connections (TCP or UNIX, plain or TLS) and relay stdio, echo, run a command per connection, or broker between clients')
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Connect to a server (plain or TLS): stdin to the peer, the peer to stdout')
            [CompletionResult]::new('pipe', 'pipe', [CompletionResultType]::ParameterValue, 'Relay between two endpoints: stdio, tcp, tcp-listen, tls, tls-listen, unix, unix-listen, exec, file, udp, udp-listen, unix-dgram, each with its own options')
            [CompletionResult]::new('gen-cert', 'gen-cert', [CompletionResultType]::ParameterValue, 'Make certificates for local and test TLS: a local CA and leaves signed by it, or a self-signed certificate')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (bash, zsh, fish, powershell or elvish) to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'streamtool;serve' {
            [CompletionResult]::new('-e', '-e', [CompletionResultType]::ParameterName, 'Run CMD (no shell; split on spaces) per connection, wired to its stdin/stdout, with the client''s address in STREAMTOOL_PEER (and STREAMTOOL_PEER_ADDR, STREAMTOOL_PEER_PORT); a TLS client''s certificate in STREAMTOOL_CLIENT_SUBJECT, _CN, _SANS (comma-separated), _SPKI (its key pin)')
            [CompletionResult]::new('--exec', '--exec', [CompletionResultType]::ParameterName, 'Run CMD (no shell; split on spaces) per connection, wired to its stdin/stdout, with the client''s address in STREAMTOOL_PEER (and STREAMTOOL_PEER_ADDR, STREAMTOOL_PEER_PORT); a TLS client''s certificate in STREAMTOOL_CLIENT_SUBJECT, _CN, _SANS (comma-separated), _SPKI (its key pin)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Run `sh -c CMD` per connection, wired to its stdin/stdout (environment as --exec)')
            [CompletionResult]::new('--sh-exec', '--sh-exec', [CompletionResultType]::ParameterName, 'Run `sh -c CMD` per connection, wired to its stdin/stdout (environment as --exec)')
            [CompletionResult]::new('--max-conns', '--max-conns', [CompletionResultType]::ParameterName, 'At most N connections at once; more are closed on arrival')
            [CompletionResult]::new('--client-ca', '--client-ca', [CompletionResultType]::ParameterName, 'Ask clients for a certificate and verify it against these CAs (PEM). Needs --tls')
            [CompletionResult]::new('--starttls', '--starttls', [CompletionResultType]::ParameterName, 'Speak SMTP until the client''s STARTTLS, then TLS (smtp only; docs/tls.md, "STARTTLS"). Needs --tls')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Show bytes, rate and elapsed time per direction on stderr: auto (when stderr is a terminal), always or never')
            [CompletionResult]::new('--grace', '--grace', [CompletionResultType]::ParameterName, 'On SIGINT/SIGTERM, let open connections finish for this long (a second signal closes them at once)')
            [CompletionResult]::new('--on-eof', '--on-eof', [CompletionResultType]::ParameterName, 'What the end of stdin (or of a command''s output) does to a client''s connection: half-close (the default: TCP FIN, TLS close_notify), keep-open (send nothing, read until the client ends) or close')
            [CompletionResult]::new('--max-lag', '--max-lag', [CompletionResultType]::ParameterName, 'With -k (stdin to every client) or --broker: how far a client may fall behind the others (bytes queued for it) before it is disconnected, so that one client that does not read never stalls the rest. A single client is never cut: the sender waits for it')
            [CompletionResult]::new('--proxy-from', '--proxy-from', [CompletionResultType]::ParameterName, 'A proxy trusted to send PROXY headers: an address or ADDRESS/PREFIX (10.0.0.0/8). Repeatable; replaces the default (loopback). Needs --accept-proxy')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Certificate chain to present, PEM (for `connect`, a client certificate for mTLS). A server takes several, chosen by SNI: the FIRST is the default (no or unknown SNI). Needs --tls')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Private key for --cert, PEM (PKCS#8, PKCS#1 or SEC1). Default: the --cert file')
            [CompletionResult]::new('--alpn', '--alpn', [CompletionResultType]::ParameterName, 'ALPN protocols, comma-separated, most preferred first (e.g. h2,http/1.1)')
            [CompletionResult]::new('--tls-min', '--tls-min', [CompletionResultType]::ParameterName, 'Oldest TLS version to accept: 1.2 or 1.3')
            [CompletionResult]::new('--tls-max', '--tls-max', [CompletionResultType]::ParameterName, 'Newest TLS version to offer: 1.2 or 1.3')
            [CompletionResult]::new('--ragged-eof', '--ragged-eof', [CompletionResultType]::ParameterName, 'What a close without TLS close_notify means: strict (the default: an error, exit 5), warn, or ignore')
            [CompletionResult]::new('--keylog', '--keylog', [CompletionResultType]::ParameterName, 'Append TLS secrets to FILE for Wireshark (default: $SSLKEYLOGFILE if set)')
            [CompletionResult]::new('--delimiter', '--delimiter', [CompletionResultType]::ParameterName, 'Split incoming data into frames ending in D (escapes: \n, \r\n, \0, \xNN)')
            [CompletionResult]::new('--max-frame', '--max-frame', [CompletionResultType]::ParameterName, 'Longest frame, delimiter excluded (e.g. 64KiB, 1M; default 1 MiB). Needs --delimiter')
            [CompletionResult]::new('--on-oversize', '--on-oversize', [CompletionResultType]::ParameterName, 'What to do with a longer frame: error (exit 7; the default) or skip it. Needs --delimiter')
            [CompletionResult]::new('--encoding', '--encoding', [CompletionResultType]::ParameterName, 'The peer''s text encoding (utf-8, latin1, utf-16le, shift_jis, windows-1252, ...); the terminal side is UTF-8')
            [CompletionResult]::new('--decode-errors', '--decode-errors', [CompletionResultType]::ParameterName, 'Check the peer''s text (UTF-8 unless --encoding says otherwise): strict (invalid text is an error, exit 7; the default with --encoding) or replace (with U+FFFD, and ? for characters the peer''s encoding lacks)')
            [CompletionResult]::new('--dump', '--dump', [CompletionResultType]::ParameterName, 'Show each chunk as it passes, per connection and direction, with its offset and a timestamp: text (non-printable bytes escaped, line ends shown) or hex (as hexdump -C). To stderr, or --dump-file')
            [CompletionResult]::new('--dump-file', '--dump-file', [CompletionResultType]::ParameterName, 'Write the dump to this file (created 0600) instead of stderr')
            [CompletionResult]::new('--dump-layer', '--dump-layer', [CompletionResultType]::ParameterName, 'Which side of TLS the dump shows: plain (the plaintext, default) or tls (the TLS records on the wire, each record''s type, version and length named)')
            [CompletionResult]::new('--dump-max', '--dump-max', [CompletionResultType]::ParameterName, 'Dump at most this much of each connection (e.g. 64KiB); the rest is counted, not shown')
            [CompletionResult]::new('--transcript', '--transcript', [CompletionResultType]::ParameterName, 'Write every chunk and event as a JSON line to FILE (created 0600; docs/events.md, "Transcripts"); pipe''s replay:FILE plays it back')
            [CompletionResult]::new('--pcap', '--pcap', [CompletionResultType]::ParameterName, 'Write the traffic to FILE as pcapng (created 0600): each connection a TCP conversation Wireshark dissects as captured. The file holds what passed, and with --pcap-layer tls the session secrets too')
            [CompletionResult]::new('--pcap-layer', '--pcap-layer', [CompletionResultType]::ParameterName, 'Which side of TLS the capture holds: plain (the plaintext, default) or tls (the TLS records, with the secrets in the file so Wireshark decrypts them with no key log)')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Close a connection after this long with no data in either direction. connect, and serve without -k in every mode, then exit 6 with one line naming the peer and the timeout; serve -k closes only that connection')
            [CompletionResult]::new('--handshake-timeout', '--handshake-timeout', [CompletionResultType]::ParameterName, 'Limit for the TLS handshake (default 30s)')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'connect: connect from this local address (and port): ADDR or ADDR:PORT (IPv6 with a port in brackets)')
            [CompletionResult]::new('--keepalive', '--keepalive', [CompletionResultType]::ParameterName, 'TCP keepalive on each connection: a probe after IDLE without traffic (default 60s), so that a peer that vanished is noticed and a NAT keeps the mapping')
            [CompletionResult]::new('--retry', '--retry', [CompletionResultType]::ParameterName, 'connect: after a failed connect (refused, unreachable, timed out), try N more times (or forever), each failure said')
            [CompletionResult]::new('--retry-delay', '--retry-delay', [CompletionResultType]::ParameterName, 'The wait before the first retry (default 1s); it doubles up to 30s')
            [CompletionResult]::new('--allow', '--allow', [CompletionResultType]::ParameterName, 'serve: only clients from these address blocks (10.0.0.0/8, ::1, 192.0.2.7); repeatable, or comma-separated. Checked before anything is read or sent')
            [CompletionResult]::new('--deny', '--deny', [CompletionResultType]::ParameterName, 'serve: refuse clients from these address blocks (before --allow)')
            [CompletionResult]::new('--allow-file', '--allow-file', [CompletionResultType]::ParameterName, 'serve: --allow''s blocks from a file, one per line (# comments)')
            [CompletionResult]::new('--deny-file', '--deny-file', [CompletionResultType]::ParameterName, 'serve: --deny''s blocks from a file, one per line (# comments)')
            [CompletionResult]::new('--cert-dir', '--cert-dir', [CompletionResultType]::ParameterName, 'Serve every X.pem with its X-key.pem in DIR (gen-cert''s files), after the --cert ones, by file name; chosen by SNI like repeated --cert. Needs --tls')
            [CompletionResult]::new('--allow-cn', '--allow-cn', [CompletionResultType]::ParameterName, 'Admit only client certificates whose subject common name is NAME (exact; repeatable; any --allow-* match admits). With an allow-list, a client without a certificate, or whose certificate matches none, is refused in the handshake (and logged with the identity it presented). Needs --client-ca; kept across reloads')
            [CompletionResult]::new('--allow-san', '--allow-san', [CompletionResultType]::ParameterName, 'Admit client certificates with this subject alternative name: a DNS name or email (any case), a URI (exact) or an IP address. Repeatable. Needs --client-ca')
            [CompletionResult]::new('--allow-spki', '--allow-spki', [CompletionResultType]::ParameterName, 'Admit client certificates whose public key has this pin (sha256:HEX, the "key pin" gen-cert and --show-cert print). Repeatable. Needs --client-ca')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'Threads that run connections: 1 (the default) runs everything on one thread, the least CPU and memory per connection and per handshake; 0 means one per CPU core, for a few bulk relays or a server whose many busy TLS connections need more than one core. At most 256')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'Trust only these CA certificates (PEM bundle) instead of the system store, to verify the server (`connect`; `serve` verifies clients with --client-ca). A self-signed certificate listed here is trusted as itself. Needs --tls')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust only these CA certificates (PEM bundle) instead of the system store, to verify the server (`connect`; `serve` verifies clients with --client-ca). A self-signed certificate listed here is trusted as itself. Needs --tls')
            [CompletionResult]::new('--pin', '--pin', [CompletionResultType]::ParameterName, 'Accept the server only if its certificate (cert pin) or public key (key pin) has this SHA-256 pin: sha256:HEX or sha256//BASE64. Without --ca the pin alone verifies. Repeatable. Needs --tls')
            [CompletionResult]::new('--sni', '--sni', [CompletionResultType]::ParameterName, 'Server name to send (SNI) and to verify; default: the host connected to')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'Give up connecting after this long (e.g. 500ms, 5s, 2m)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up connecting after this long (e.g. 500ms, 5s, 2m)')
            [CompletionResult]::new('--events', '--events', [CompletionResultType]::ParameterName, 'Machine-readable events on stderr, one JSON object per line')
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'Serve many clients at once instead of exiting after the first (stdin goes to all)')
            [CompletionResult]::new('--keep-open', '--keep-open', [CompletionResultType]::ParameterName, 'Serve many clients at once instead of exiting after the first (stdin goes to all)')
            [CompletionResult]::new('--echo', '--echo', [CompletionResultType]::ParameterName, 'Send back what each client sends')
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Pass every client''s data (whole frames with --delimiter) to every other client; serves many clients, as -k does')
            [CompletionResult]::new('--discard', '--discard', [CompletionResultType]::ParameterName, 'Read and drop everything')
            [CompletionResult]::new('--require-client-cert', '--require-client-cert', [CompletionResultType]::ParameterName, 'Refuse clients without a valid certificate. Needs --client-ca')
            [CompletionResult]::new('--accept-proxy', '--accept-proxy', [CompletionResultType]::ParameterName, 'Each connection starts with a PROXY protocol header (v1 or v2, as haproxy''s send-proxy and send-proxy-v2 send it), read before any TLS handshake within --handshake-timeout; its client address is the peer of logs, events and --exec. Only from trusted proxies (--proxy-from; loopback by default); a connection from anywhere else, or with a malformed header, is closed with a line naming it')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Use TLS. The only flag that turns TLS on: every other TLS flag needs it')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Turn LF into CRLF in what is sent to the peer')
            [CompletionResult]::new('--crlf', '--crlf', [CompletionResultType]::ParameterName, 'Turn LF into CRLF in what is sent to the peer')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace an existing --dump-file, --transcript or --pcap file')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'IPv4 only')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'IPv6 only')
            [CompletionResult]::new('--reuse-port', '--reuse-port', [CompletionResultType]::ParameterName, 'serve: SO_REUSEPORT, so that several processes listen on one port (more cores, or a new process started before the old one drains; docs/cli.md, "Rolling restarts")')
            [CompletionResult]::new('--reload-on-change', '--reload-on-change', [CompletionResultType]::ParameterName, 'Reload the certificates, keys and --client-ca when one of their files changes (checked every 2 s), as SIGHUP does. Needs --tls')
            [CompletionResult]::new('--keep-pin', '--keep-pin', [CompletionResultType]::ParameterName, 'Refuse a reload that changes a certificate''s public key (its key pin, which clients may have pinned): the old certificates stay. Needs --tls')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'UDP instead of TCP (unix:PATH: a UNIX datagram socket): a session per peer (--echo, --exec, --sh-exec and --discard per peer; stdio mode serves the first peer, with -k every peer, answering the one heard from last). A session ends after 60s without a datagram (--idle-timeout); -k serves up to 256 at once (--max-conns)')
            [CompletionResult]::new('--udp', '--udp', [CompletionResultType]::ParameterName, 'UDP instead of TCP (unix:PATH: a UNIX datagram socket): a session per peer (--echo, --exec, --sh-exec and --discard per peer; stdio mode serves the first peer, with -k every peer, answering the one heard from last). A session ends after 60s without a datagram (--idle-timeout); -k serves up to 256 at once (--max-conns)')
            [CompletionResult]::new('--length-prefix', '--length-prefix', [CompletionResultType]::ParameterName, 'With -u: a 2-byte big-endian length before each datagram on the byte side (stdio or the command''s), instead of lines')
            [CompletionResult]::new('--no-sni', '--no-sni', [CompletionResultType]::ParameterName, 'Send no SNI (the certificate is still verified against the host)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'streamtool;connect' {
            [CompletionResult]::new('--on-eof', '--on-eof', [CompletionResultType]::ParameterName, 'What the end of stdin does: half-close (TCP FIN; TLS close_notify, which nginx, ncat and OpenSSL servers take as the end of the whole connection), keep-open (send nothing, read until the peer ends, then close) or close (end and close, reading the peer''s last bytes for at most 500ms). Default: half-close for TCP/UNIX, keep-open for TLS')
            [CompletionResult]::new('--require', '--require', [CompletionResultType]::ParameterName, 'Check the handshake before any data, and exit 4 naming each failed clause: tls>=1.3, tls=1.2, cipher=NAME, group=X25519, alpn=h2, expires>30d, key=rsa|ec|ed25519, key-bits>=2048, san=NAME, chain>=2, ocsp (an OCSP response stapled) (docs/tls.md, "Checks for scripts"). Repeatable; all must hold. Needs --tls')
            [CompletionResult]::new('--starttls', '--starttls', [CompletionResultType]::ParameterName, 'Negotiate TLS in the protocol''s plaintext first (STARTTLS): smtp, lmtp, imap, pop3, ftp, xmpp, postgres or ldap; -v shows the exchange (docs/tls.md, "STARTTLS"). A server that does not offer it is exit 4. Needs --tls')
            [CompletionResult]::new('--ehlo', '--ehlo', [CompletionResultType]::ParameterName, 'The name in SMTP''s EHLO (LMTP''s LHLO) [default: streamtool.localhost]. Needs --starttls smtp or lmtp')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Show bytes, rate and elapsed time per direction on stderr: auto (when stderr is a terminal), always or never')
            [CompletionResult]::new('--proxy-protocol', '--proxy-protocol', [CompletionResultType]::ParameterName, 'Send a PROXY protocol header first (v1: the text line, v2: binary), naming this connection''s own source and destination (a UNIX socket: LOCAL, or v1''s UNKNOWN); docs/proxy-protocol.md')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Certificate chain to present, PEM (for `connect`, a client certificate for mTLS). A server takes several, chosen by SNI: the FIRST is the default (no or unknown SNI). Needs --tls')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Private key for --cert, PEM (PKCS#8, PKCS#1 or SEC1). Default: the --cert file')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'Trust only these CA certificates (PEM bundle) instead of the system store, to verify the server (`connect`; `serve` verifies clients with --client-ca). A self-signed certificate listed here is trusted as itself. Needs --tls')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust only these CA certificates (PEM bundle) instead of the system store, to verify the server (`connect`; `serve` verifies clients with --client-ca). A self-signed certificate listed here is trusted as itself. Needs --tls')
            [CompletionResult]::new('--pin', '--pin', [CompletionResultType]::ParameterName, 'Accept the server only if its certificate (cert pin) or public key (key pin) has this SHA-256 pin: sha256:HEX or sha256//BASE64. Without --ca the pin alone verifies. Repeatable. Needs --tls')
            [CompletionResult]::new('--sni', '--sni', [CompletionResultType]::ParameterName, 'Server name to send (SNI) and to verify; default: the host connected to')
            [CompletionResult]::new('--alpn', '--alpn', [CompletionResultType]::ParameterName, 'ALPN protocols, comma-separated, most preferred first (e.g. h2,http/1.1)')
            [CompletionResult]::new('--tls-min', '--tls-min', [CompletionResultType]::ParameterName, 'Oldest TLS version to accept: 1.2 or 1.3')
            [CompletionResult]::new('--tls-max', '--tls-max', [CompletionResultType]::ParameterName, 'Newest TLS version to offer: 1.2 or 1.3')
            [CompletionResult]::new('--ragged-eof', '--ragged-eof', [CompletionResultType]::ParameterName, 'What a close without TLS close_notify means: strict (the default: an error, exit 5), warn, or ignore')
            [CompletionResult]::new('--keylog', '--keylog', [CompletionResultType]::ParameterName, 'Append TLS secrets to FILE for Wireshark (default: $SSLKEYLOGFILE if set)')
            [CompletionResult]::new('--delimiter', '--delimiter', [CompletionResultType]::ParameterName, 'Split incoming data into frames ending in D (escapes: \n, \r\n, \0, \xNN)')
            [CompletionResult]::new('--max-frame', '--max-frame', [CompletionResultType]::ParameterName, 'Longest frame, delimiter excluded (e.g. 64KiB, 1M; default 1 MiB). Needs --delimiter')
            [CompletionResult]::new('--on-oversize', '--on-oversize', [CompletionResultType]::ParameterName, 'What to do with a longer frame: error (exit 7; the default) or skip it. Needs --delimiter')
            [CompletionResult]::new('--encoding', '--encoding', [CompletionResultType]::ParameterName, 'The peer''s text encoding (utf-8, latin1, utf-16le, shift_jis, windows-1252, ...); the terminal side is UTF-8')
            [CompletionResult]::new('--decode-errors', '--decode-errors', [CompletionResultType]::ParameterName, 'Check the peer''s text (UTF-8 unless --encoding says otherwise): strict (invalid text is an error, exit 7; the default with --encoding) or replace (with U+FFFD, and ? for characters the peer''s encoding lacks)')
            [CompletionResult]::new('--dump', '--dump', [CompletionResultType]::ParameterName, 'Show each chunk as it passes, per connection and direction, with its offset and a timestamp: text (non-printable bytes escaped, line ends shown) or hex (as hexdump -C). To stderr, or --dump-file')
            [CompletionResult]::new('--dump-file', '--dump-file', [CompletionResultType]::ParameterName, 'Write the dump to this file (created 0600) instead of stderr')
            [CompletionResult]::new('--dump-layer', '--dump-layer', [CompletionResultType]::ParameterName, 'Which side of TLS the dump shows: plain (the plaintext, default) or tls (the TLS records on the wire, each record''s type, version and length named)')
            [CompletionResult]::new('--dump-max', '--dump-max', [CompletionResultType]::ParameterName, 'Dump at most this much of each connection (e.g. 64KiB); the rest is counted, not shown')
            [CompletionResult]::new('--transcript', '--transcript', [CompletionResultType]::ParameterName, 'Write every chunk and event as a JSON line to FILE (created 0600; docs/events.md, "Transcripts"); pipe''s replay:FILE plays it back')
            [CompletionResult]::new('--pcap', '--pcap', [CompletionResultType]::ParameterName, 'Write the traffic to FILE as pcapng (created 0600): each connection a TCP conversation Wireshark dissects as captured. The file holds what passed, and with --pcap-layer tls the session secrets too')
            [CompletionResult]::new('--pcap-layer', '--pcap-layer', [CompletionResultType]::ParameterName, 'Which side of TLS the capture holds: plain (the plaintext, default) or tls (the TLS records, with the secrets in the file so Wireshark decrypts them with no key log)')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'Give up connecting after this long (e.g. 500ms, 5s, 2m)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up connecting after this long (e.g. 500ms, 5s, 2m)')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Close a connection after this long with no data in either direction. connect, and serve without -k in every mode, then exit 6 with one line naming the peer and the timeout; serve -k closes only that connection')
            [CompletionResult]::new('--handshake-timeout', '--handshake-timeout', [CompletionResultType]::ParameterName, 'Limit for the TLS handshake (default 30s)')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'connect: connect from this local address (and port): ADDR or ADDR:PORT (IPv6 with a port in brackets)')
            [CompletionResult]::new('--keepalive', '--keepalive', [CompletionResultType]::ParameterName, 'TCP keepalive on each connection: a probe after IDLE without traffic (default 60s), so that a peer that vanished is noticed and a NAT keeps the mapping')
            [CompletionResult]::new('--retry', '--retry', [CompletionResultType]::ParameterName, 'connect: after a failed connect (refused, unreachable, timed out), try N more times (or forever), each failure said')
            [CompletionResult]::new('--retry-delay', '--retry-delay', [CompletionResultType]::ParameterName, 'The wait before the first retry (default 1s); it doubles up to 30s')
            [CompletionResult]::new('--allow', '--allow', [CompletionResultType]::ParameterName, 'serve: only clients from these address blocks (10.0.0.0/8, ::1, 192.0.2.7); repeatable, or comma-separated. Checked before anything is read or sent')
            [CompletionResult]::new('--deny', '--deny', [CompletionResultType]::ParameterName, 'serve: refuse clients from these address blocks (before --allow)')
            [CompletionResult]::new('--allow-file', '--allow-file', [CompletionResultType]::ParameterName, 'serve: --allow''s blocks from a file, one per line (# comments)')
            [CompletionResult]::new('--deny-file', '--deny-file', [CompletionResultType]::ParameterName, 'serve: --deny''s blocks from a file, one per line (# comments)')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'Connect through a proxy: http://[USER[:PASS]@]HOST:PORT (CONNECT), socks5h://... (the proxy resolves the name), socks5://... (resolved here) or socks4a://[USER@]... Without :PASS, the password is read from $STREAMTOOL_PROXY_PASSWORD. With --tls the TARGET''s certificate and name are verified, never the proxy''s. Credentials are never shown. The -w limit covers the whole proxy exchange (30s without -w)')
            [CompletionResult]::new('--no-proxy', '--no-proxy', [CompletionResultType]::ParameterName, 'Hosts reached directly, not through the proxy: a comma-separated list of names (each with its subdomains), addresses and CIDR blocks, or * for all')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'Threads that run connections: 1 (the default) runs everything on one thread, the least CPU and memory per connection and per handshake; 0 means one per CPU core, for a few bulk relays or a server whose many busy TLS connections need more than one core. At most 256')
            [CompletionResult]::new('--events', '--events', [CompletionResultType]::ParameterName, 'Machine-readable events on stderr, one JSON object per line')
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'Skip certificate verification (a warning is printed). Needs --tls')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Skip certificate verification (a warning is printed). Needs --tls')
            [CompletionResult]::new('--no-shutdown', '--no-shutdown', [CompletionResultType]::ParameterName, 'Same as --on-eof keep-open')
            [CompletionResult]::new('--keep-sending', '--keep-sending', [CompletionResultType]::ParameterName, 'Keep sending stdin after the peer ended its side also when stdin is a terminal (a pipe or a file is always sent to its end)')
            [CompletionResult]::new('--send-only', '--send-only', [CompletionResultType]::ParameterName, 'Only send: what the peer sends is read and discarded')
            [CompletionResult]::new('--recv-only', '--recv-only', [CompletionResultType]::ParameterName, 'Only receive: stdin is not read, and the sending side is closed at once')
            [CompletionResult]::new('-z', '-z', [CompletionResultType]::ParameterName, 'Connect (and handshake, with TLS), report, and close')
            [CompletionResult]::new('--zero-io', '--zero-io', [CompletionResultType]::ParameterName, 'Connect (and handshake, with TLS), report, and close')
            [CompletionResult]::new('--show-cert', '--show-cert', [CompletionResultType]::ParameterName, 'Print the TLS version, cipher, key-exchange group, ALPN and the peer''s certificates (with their cert and key pins) to stderr. Needs --tls')
            [CompletionResult]::new('--tofu', '--tofu', [CompletionResultType]::ParameterName, 'Trust on first use, as SSH does: record the server''s key pin in the known-hosts file ($XDG_DATA_HOME/streamtool/known_hosts) on first contact, and refuse another key later (exit 4, both pins shown). With --ca the chain is verified too. Needs --tls')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Use TLS. The only flag that turns TLS on: every other TLS flag needs it')
            [CompletionResult]::new('--no-sni', '--no-sni', [CompletionResultType]::ParameterName, 'Send no SNI (the certificate is still verified against the host)')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Turn LF into CRLF in what is sent to the peer')
            [CompletionResult]::new('--crlf', '--crlf', [CompletionResultType]::ParameterName, 'Turn LF into CRLF in what is sent to the peer')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace an existing --dump-file, --transcript or --pcap file')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'IPv4 only')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'IPv6 only')
            [CompletionResult]::new('--reuse-port', '--reuse-port', [CompletionResultType]::ParameterName, 'serve: SO_REUSEPORT, so that several processes listen on one port (more cores, or a new process started before the old one drains; docs/cli.md, "Rolling restarts")')
            [CompletionResult]::new('--proxy-env', '--proxy-env', [CompletionResultType]::ParameterName, 'Take the proxy from the environment when --proxy is not given: $HTTPS_PROXY then $ALL_PROXY with --tls, $ALL_PROXY without (lower-case names too), excluding $NO_PROXY. Without this flag the environment is never read')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'UDP instead of TCP (with a UNIX path: a datagram socket). Each line of stdin is one datagram (with --delimiter, each frame without it), each datagram received goes to stdout; after stdin''s end, replies are awaited until 2s pass without one (--idle-timeout sets the wait). The first address the name resolves to (-4/-6)')
            [CompletionResult]::new('--udp', '--udp', [CompletionResultType]::ParameterName, 'UDP instead of TCP (with a UNIX path: a datagram socket). Each line of stdin is one datagram (with --delimiter, each frame without it), each datagram received goes to stdout; after stdin''s end, replies are awaited until 2s pass without one (--idle-timeout sets the wait). The first address the name resolves to (-4/-6)')
            [CompletionResult]::new('--length-prefix', '--length-prefix', [CompletionResultType]::ParameterName, 'With -u: a 2-byte big-endian length before each datagram on stdin and stdout (DNS over TCP''s framing), instead of lines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'streamtool;pipe' {
            [CompletionResult]::new('--max-conns', '--max-conns', [CompletionResultType]::ParameterName, 'With fork, at most N connections at once; more are closed on arrival')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Close a relay after this long with no data in either direction (exit 6 without fork); `none` for no limit. Default: 1h when an endpoint is tls-listen (a TLS terminator), else none. The idle-timeout= endpoint option sets it too')
            [CompletionResult]::new('--grace', '--grace', [CompletionResultType]::ParameterName, 'On SIGINT/SIGTERM with fork, let open connections finish for this long (a second signal closes them at once); SIGTERM gives a single relay as long')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Show bytes, rate and elapsed time per direction on stderr: auto (when stderr is a terminal), always or never')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'Threads that run connections: 1 (the default) runs everything on one thread, the least CPU and memory per connection and per handshake; 0 means one per CPU core, for a few bulk relays or a server whose many busy TLS connections need more than one core. At most 256')
            [CompletionResult]::new('--events', '--events', [CompletionResultType]::ParameterName, 'Machine-readable events on stderr, one JSON object per line')
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'Fork: serve each connection of the listening endpoint with a fresh instance of the other (the `fork` endpoint option)')
            [CompletionResult]::new('--fork', '--fork', [CompletionResultType]::ParameterName, 'Fork: serve each connection of the listening endpoint with a fresh instance of the other (the `fork` endpoint option)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'streamtool;gen-cert' {
            [CompletionResult]::new('--permit', '--permit', [CompletionResultType]::ParameterName, 'With --ca-only, when the CA is made: the names it may sign for, repeatable (a critical name constraint): a DNS name covers itself and every name under it (localhost, .test, example.com), an IP range its addresses (127.0.0.0/8, ::1/128). Default: localhost, .localhost, .test, .internal, loopback and private addresses')
            [CompletionResult]::new('--trust-stores', '--trust-stores', [CompletionResultType]::ParameterName, 'With --install or --uninstall: the stores to change, comma-separated: system, nss (Firefox and Chromium, with certutil), java (a keystore, with keytool). Default: system, plus nss when an NSS database is found in $HOME (~/.pki/nssdb, Firefox profiles); a found database without certutil is then a note. mkcert''s TRUST_STORES variable is not read')
            [CompletionResult]::new('--java-keystore', '--java-keystore', [CompletionResultType]::ParameterName, 'With --trust-stores naming java: the keystore (password changeit). Default: $JAVA_HOME/lib/security/cacerts if it exists, else Debian''s system keystore (the one ca-certificates-java keeps; docs/gen-cert.md names it)')
            [CompletionResult]::new('--csr', '--csr', [CompletionResultType]::ParameterName, 'Sign this certificate signing request (a PEM CERTIFICATE REQUEST) instead of making a key: its signature and names are checked, the key stays its owner''s')
            [CompletionResult]::new('--ca-dir', '--ca-dir', [CompletionResultType]::ParameterName, 'The local CA''s directory (ca.pem and ca-key.pem). Default: $STREAMTOOL_CA_DIR, else streamtool/ca in the user''s data directory (~/.local/share/streamtool/ca)')
            [CompletionResult]::new('--key-type', '--key-type', [CompletionResultType]::ParameterName, 'Key type: ecdsa-p256 (default), ecdsa-p384, ed25519, rsa-2048, rsa-3072 or rsa-4096. A CA created implicitly is always ecdsa-p256; use --ca-only --key-type for another')
            [CompletionResult]::new('--days', '--days', [CompletionResultType]::ParameterName, 'Days of validity. Default: 90 for certificates, 3650 for a new CA. Clients refuse server certificates valid for more than 398 days (a warning says so)')
            [CompletionResult]::new('--cn', '--cn', [CompletionResultType]::ParameterName, 'Subject common name. Default: the first name (for a new CA with --ca-only: "streamtool local CA USER@HOST")')
            [CompletionResult]::new('--cert-file', '--cert-file', [CompletionResultType]::ParameterName, 'Where to write the certificate. Default: NAME[+N].pem in the current directory (the first name, "*" as "_wildcard", "+N" for N more names)')
            [CompletionResult]::new('--key-file', '--key-file', [CompletionResultType]::ParameterName, 'Where to write the private key (0600). Default: NAME[+N]-key.pem. The same path as --cert-file writes both into one file')
            [CompletionResult]::new('--p12-file', '--p12-file', [CompletionResultType]::ParameterName, 'Where to write the PKCS#12 file. Default: NAME[+N].p12')
            [CompletionResult]::new('--inspect', '--inspect', [CompletionResultType]::ParameterName, 'Show what the certificates in FILE say (subject, names, validity, key type, fingerprint, issuer) instead of making one')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'With --inspect: check instead of showing. Exit 4 with one line per certificate in FILE that expires within PERIOD (30d, 2w, 12h) or has expired, naming it and its not-after; exit 0, silently, when all are valid for longer')
            [CompletionResult]::new('--events', '--events', [CompletionResultType]::ParameterName, 'Machine-readable events on stderr, one JSON object per line')
            [CompletionResult]::new('--self-signed', '--self-signed', [CompletionResultType]::ParameterName, 'Make a lone self-signed certificate instead of one signed by the local CA (clients then trust the certificate itself: connect --tls --ca CERT)')
            [CompletionResult]::new('--ca-only', '--ca-only', [CompletionResultType]::ParameterName, 'Only create the local CA (if there is none yet) and show it')
            [CompletionResult]::new('--any-name', '--any-name', [CompletionResultType]::ParameterName, 'With --ca-only, when the CA is made: no name constraints, so that it may sign for any name (as mkcert''s CA)')
            [CompletionResult]::new('--install', '--install', [CompletionResultType]::ParameterName, 'Put the local CA (made first if there is none) into the trust stores (--trust-stores): the system store, so that curl, OpenSSL, Python and Go trust it with no flag (needs root; Debian/Ubuntu: /usr/local/share/ca-certificates and update-ca-certificates, Fedora/RHEL: /etc/pki/ca-trust/source/anchors and update-ca-trust), and the NSS databases of Firefox and Chromium in $HOME (certutil). Every store is checked first; a failure undoes this run''s changes')
            [CompletionResult]::new('--uninstall', '--uninstall', [CompletionResultType]::ParameterName, 'Take the local CA out of the trust stores again (exactly what --install added)')
            [CompletionResult]::new('--client', '--client', [CompletionResultType]::ParameterName, 'Also for client authentication (mTLS): adds the clientAuth extended key usage')
            [CompletionResult]::new('--bundle', '--bundle', [CompletionResultType]::ParameterName, 'Add a single-root CA''s certificate after the leaf (a two-level CA''s files always have its intermediate)')
            [CompletionResult]::new('--pkcs12', '--pkcs12', [CompletionResultType]::ParameterName, 'Also write a PKCS#12 file (key, certificate and CA) for browsers, Java and Windows; password from $STREAMTOOL_P12_PASSWORD, else "changeit"')
            [CompletionResult]::new('--p12-legacy', '--p12-legacy', [CompletionResultType]::ParameterName, 'Encrypt the PKCS#12 file with 3DES and SHA-1 (for older macOS, Windows and Java) instead of AES-256 and SHA-256')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace existing files (atomically). With --ca-only, make a new CA: certificates signed by the old one stop verifying against it')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the result as one JSON object on stdout')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'streamtool;completions' {
            [CompletionResult]::new('--man-dir', '--man-dir', [CompletionResultType]::ParameterName, 'Write the man pages instead (streamtool.1 and one per subcommand) into DIR, made if missing; a page already there is replaced. `cargo install` installs none')
            [CompletionResult]::new('--events', '--events', [CompletionResultType]::ParameterName, 'Machine-readable events on stderr, one JSON object per line')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace). RUST_LOG overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'streamtool;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Listen for connections (TCP or UNIX, plain or TLS) and relay stdio, echo, run a command per connection, or broker between clients')
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Connect to a server (plain or TLS): stdin to the peer, the peer to stdout')
            [CompletionResult]::new('pipe', 'pipe', [CompletionResultType]::ParameterValue, 'Relay between two endpoints: stdio, tcp, tcp-listen, tls, tls-listen, unix, unix-listen, exec, file, udp, udp-listen, unix-dgram, each with its own options')
            [CompletionResult]::new('gen-cert', 'gen-cert', [CompletionResultType]::ParameterValue, 'Make certificates for local and test TLS: a local CA and leaves signed by it, or a self-signed certificate')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (bash, zsh, fish, powershell or elvish) to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'streamtool;help;serve' {
            break
        }
        'streamtool;help;connect' {
            break
        }
        'streamtool;help;pipe' {
            break
        }
        'streamtool;help;gen-cert' {
            break
        }
        'streamtool;help;completions' {
            break
        }
        'streamtool;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
