//! `pipe`'s endpoint grammar (`streamtool::endpoint::Endpoint`'s `FromStr`): one table row
//! per accepted spelling, with the kind and options it must parse to, and one per rejected
//! spelling, with a substring the error must contain.

use std::path::PathBuf;
use std::time::Duration;

use streamtool::endpoint::{Endpoint, EndpointKind, EndpointOptions, ListenAddress};
use streamtool::streams::encoding::{ErrorMode, TextEncoding};
use streamtool::streams::file::WriteMode;
use streamtool::streams::framing::Oversize;

/// 32 bytes of 0xab as 64 hex digits, for the `pin=` rows (a macro, for `concat!`).
macro_rules! pin_hex {
    () => {
        "abababababababababababababababababababababababababababababababab"
    };
}

/// An accepted spelling, the kind it parses to, and what it sets in otherwise default
/// options.
type Accepted = (&'static str, fn() -> EndpointKind, fn(&mut EndpointOptions));

fn tcp(host: &str, port: u16) -> EndpointKind {
    EndpointKind::Tcp(host.into(), port)
}
fn tls(host: &str, port: u16) -> EndpointKind {
    EndpointKind::Tls(host.into(), port)
}
fn listen(addr: &str) -> ListenAddress {
    addr.parse().expect("a valid listen address")
}
fn path(p: &str) -> Option<PathBuf> {
    Some(PathBuf::from(p))
}
fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[rustfmt::skip]
const ACCEPTED: &[Accepted] = &[
    // stdio
    ("-", || EndpointKind::Stdio, |_| {}),
    ("stdio", || EndpointKind::Stdio, |_| {}),
    ("STDIO", || EndpointKind::Stdio, |_| {}),
    ("-,crlf", || EndpointKind::Stdio, |o| o.crlf = true),
    ("stdio,delimiter=\\n", || EndpointKind::Stdio, |o| o.delimiter = Some(b"\n".to_vec())),
    // tcp
    ("tcp:example.com:80", || tcp("example.com", 80), |_| {}),
    ("tcp:127.0.0.1:65535", || tcp("127.0.0.1", 65535), |_| {}),
    ("tcp:[::1]:80", || tcp("::1", 80), |_| {}),
    ("TCP:host:1", || tcp("host", 1), |_| {}),
    // tcp-listen
    ("tcp-listen:8080", || EndpointKind::TcpListen(ListenAddress::LoopbackPort(8080)), |_| {}),
    ("tcp-listen:0", || EndpointKind::TcpListen(ListenAddress::LoopbackPort(0)), |_| {}),
    ("tcp-l:127.0.0.1:8080", || EndpointKind::TcpListen(listen("127.0.0.1:8080")), |_| {}),
    ("tcp-listen:[::]:9000,fork", || EndpointKind::TcpListen(listen("[::]:9000")), |o| o.fork = true),
    ("tcp-listen:localhost:80", || EndpointKind::TcpListen(ListenAddress::Host("localhost".into(), 80)), |_| {}),
    ("Tcp-Listen:80,FORK", || EndpointKind::TcpListen(ListenAddress::LoopbackPort(80)), |o| o.fork = true),
    // tls
    ("tls:host:443,ca=ca.pem,sni=example.com,alpn=h2", || tls("host", 443), |o| {
        o.ca = path("ca.pem");
        o.sni = Some("example.com".into());
        o.alpn = strings(&["h2"]);
    }),
    ("tls:h:443,alpn=h2,http/1.1", || tls("h", 443), |o| o.alpn = strings(&["h2", "http/1.1"])),
    ("tls:h:443,alpn=h2,http/1.1,insecure", || tls("h", 443), |o| {
        o.alpn = strings(&["h2", "http/1.1"]);
        o.insecure = true;
    }),
    (concat!("tls:h:1,pin=sha256:", pin_hex!()), || tls("h", 1), |o| {
        o.pins = vec![concat!("sha256:", pin_hex!()).parse().unwrap()];
    }),
    ("tls:h:1,insecure", || tls("h", 1), |o| o.insecure = true),
    ("tls:h:1,cacert=ca.pem,no-sni", || tls("h", 1), |o| {
        o.ca = path("ca.pem");
        o.no_sni = true;
    }),
    ("tls:h:1,tls-min=1.3,tls-max=TLSv1.3", || tls("h", 1), |o| {
        o.tls_min = Some(streamtool::streams::tls::TlsVersion::V1_3);
        o.tls_max = Some(streamtool::streams::tls::TlsVersion::V1_3);
    }),
    ("tls:h:1,ragged-eof=warn,handshake-timeout=2s", || tls("h", 1), |o| {
        o.ragged_eof = Some(streamtool::streams::tls::RaggedEofPolicy::Warn);
        o.handshake_timeout = Some(Duration::from_secs(2));
    }),
    ("tls:h:1,cert=client.pem,key=client-key.pem", || tls("h", 1), |o| {
        o.cert = path("client.pem").into_iter().collect();
        o.key = path("client-key.pem").into_iter().collect();
    }),
    ("ssl:h:1", || tls("h", 1), |_| {}),
    // tls-listen
    ("tls-listen:8443,fork,cert=c.pem,key=k.pem", || EndpointKind::TlsListen(ListenAddress::LoopbackPort(8443)), |o| {
        o.fork = true;
        o.cert = path("c.pem").into_iter().collect();
        o.key = path("k.pem").into_iter().collect();
    }),
    ("tls-l:8443,client-ca=ca.pem,require-client-cert", || EndpointKind::TlsListen(ListenAddress::LoopbackPort(8443)), |o| {
        o.client_ca = path("ca.pem");
        o.require_client_cert = true;
    }),
    ("tls-listen:0", || EndpointKind::TlsListen(ListenAddress::LoopbackPort(0)), |_| {}),
    // unix
    ("unix:/tmp/x.sock", || EndpointKind::Unix("/tmp/x.sock".into()), |_| {}),
    ("unix-listen:/tmp/x.sock,fork", || EndpointKind::UnixListen("/tmp/x.sock".into()), |o| o.fork = true),
    ("unix-l:rel.sock", || EndpointKind::UnixListen("rel.sock".into()), |_| {}),
    // exec
    ("exec:cat", || EndpointKind::Exec("cat".into()), |_| {}),
    ("exec:sort -t, -k2", || EndpointKind::Exec("sort -t, -k2".into()), |_| {}),
    ("exec:tr a-z A-Z,crlf", || EndpointKind::Exec("tr a-z A-Z".into()), |o| o.crlf = true),
    ("exec:grep -c x:y", || EndpointKind::Exec("grep -c x:y".into()), |_| {}),
    // file
    ("file:in.bin", || EndpointKind::File("in.bin".into()), |_| {}),
    ("file:out.bin,create", || EndpointKind::File("out.bin".into()), |o| o.write_mode = Some(WriteMode::CreateNew)),
    ("file:log,append", || EndpointKind::File("log".into()), |o| o.write_mode = Some(WriteMode::Append)),
    ("file:x,truncate", || EndpointKind::File("x".into()), |o| o.write_mode = Some(WriteMode::Truncate)),
    ("file:/tmp/a,b.txt", || EndpointKind::File("/tmp/a,b.txt".into()), |_| {}),
    // framing, text and timeouts
    ("tcp:db:5432,delimiter=\\n,max-frame=64KiB,encoding=latin1", || tcp("db", 5432), |o| {
        o.delimiter = Some(b"\n".to_vec());
        o.max_frame = Some(64 * 1024);
        o.encoding = Some(TextEncoding::Latin1);
    }),
    ("tcp:h:1,on-oversize=skip,delimiter=\\r\\n,decode-errors=replace", || tcp("h", 1), |o| {
        o.on_oversize = Some(Oversize::Skip);
        o.delimiter = Some(b"\r\n".to_vec());
        o.decode_errors = Some(ErrorMode::Replace);
    }),
    ("tcp:h:1,delimiter=\\x00,max-frame=1M", || tcp("h", 1), |o| {
        o.delimiter = Some(vec![0]);
        o.max_frame = Some(1 << 20);
    }),
    ("tcp:h:1,encoding=utf-16le", || tcp("h", 1), |o| o.encoding = "utf-16le".parse().ok()),
    ("tcp:h:1,connect-timeout=500ms", || tcp("h", 1), |o| o.connect_timeout = Some(Duration::from_millis(500))),
    ("unix:/s,connect-timeout=2s", || EndpointKind::Unix("/s".into()), |o| o.connect_timeout = Some(Duration::from_secs(2))),
];

/// A rejected spelling and a substring its error must contain.
#[rustfmt::skip]
const REJECTED: &[(&str, &str)] = &[
    // unknown types, with suggestions
    ("tcpp:h:1", "did you mean tcp?"),
    ("tcp-lsten:80", "did you mean tcp-listen?"),
    ("exce:cat", "did you mean exec?"),
    ("fil:x", "did you mean file?"),
    ("zzzzzz:1", "unknown endpoint type"),
    ("", "unknown endpoint type"),
    // options: unknown, missing value, value on a flag
    ("tcp:h:1,crt=x", "did you mean cert?"),
    ("tcp-listen:80,frok", "did you mean fork?"),
    ("tls:h:1,insecrue", "did you mean insecure?"),
    ("tls:h:1,ca", "needs a value"),
    ("tcp:h:1,crlf=yes", "takes no value"),
    ("tcp-listen:80,fork=1", "takes no value"),
    // options that do not fit the kind
    ("tcp:h:1,fork", "listening"),
    ("exec:cat,fork", "listening"),
    ("file:x,fork", "listening"),
    ("tcp:h:1,cert=c.pem", "TLS options"),
    ("tcp:h:1,alpn=h2", "TLS options"),
    ("tcp-listen:80,ca=x", "tls:"),
    (concat!("tls-listen:80,pin=sha256:", pin_hex!()), "tls:"),
    ("tls-listen:80,insecure", "tls:"),
    ("tls:h:1,client-ca=x", "tls-listen"),
    ("tls:h:1,require-client-cert", "tls-listen"),
    ("tcp:h:1,create", "file:"),
    ("-,append", "file:"),
    ("tcp-listen:80,connect-timeout=1s", "connect-timeout applies"),
    ("tls-l:1,require-client-cert", "needs client-ca"),
    // addresses
    ("tcp:h", "HOST:PORT"),
    ("tcp:h:", "HOST:PORT"),
    ("tcp:h:99999", "99999"),
    ("tcp:h:http", "HOST:PORT"),
    ("tcp:h:0", "port 0"),
    ("tcp:::1:80", "brackets"),
    ("tcp-listen:", "needs [HOST:]PORT"),
    ("tcp-listen:70000", "invalid port"),
    ("tcp-listen:unix:/x", "unix-listen"),
    ("tls:", "HOST:PORT"),
    ("unix:", "needs a path"),
    ("unix-listen:", "needs a path"),
    ("exec:", "needs a command"),
    ("file:", "needs a path"),
    ("stdio:junk", "stdio"),
    // option values
    ("tcp:h:1,max-frame=1K", "needs delimiter"),
    ("tcp:h:1,delimiter=", "needs a value"),
    ("tcp:h:1,delimiter=\\q", "unknown escape"),
    ("tcp:h:1,delimiter=\\n,max-frame=0", "at least one byte"),
    ("tcp:h:1,delimiter=\\n,max-frame=lots", "not a size"),
    ("tcp:h:1,encoding=klingon", "unknown encoding"),
    ("tcp:h:1,decode-errors=ignore", "ignore"),
    ("tcp:h:1,on-oversize=truncate", "expected error or skip"),
    ("tcp:h:1,connect-timeout=soon", "not a duration"),
    ("tls:h:1,tls-min=1.1", "not supported"),
    ("tls:h:1,tls-max=2.0", "2.0"),
    ("tls:h:1,ragged-eof=maybe", "maybe"),
    ("tls:h:1,pin=md5:xx", "sha256:"),
    ("tls:h:1,pin=sha256:abcd", "32 bytes"),
    ("tls:h:1,ca=", "needs a value"),
];

/// Every mismatch of the accepted table, one line each.
fn accepted_failures() -> Vec<String> {
    let mut failures = Vec::new();
    for (spelling, kind, set) in ACCEPTED {
        let mut options = EndpointOptions::default();
        set(&mut options);
        let expected = Endpoint { kind: kind(), options };
        match spelling.parse::<Endpoint>() {
            Ok(parsed) if parsed == expected => {}
            Ok(parsed) => failures.push(format!("{spelling:?}: parsed as {parsed:?}, expected {expected:?}")),
            Err(err) => failures.push(format!("{spelling:?}: rejected: {err}")),
        }
    }
    failures
}

/// Every mismatch of the rejected table among `rows`, one line each.
fn rejected_failures<'a>(rows: impl Iterator<Item = &'a (&'a str, &'a str)>) -> Vec<String> {
    let mut failures = Vec::new();
    for (spelling, needle) in rows {
        match spelling.parse::<Endpoint>() {
            Ok(parsed) => failures.push(format!("{spelling:?}: accepted as {parsed:?}")),
            Err(err) if err.contains(needle) => {}
            Err(err) => failures.push(format!("{spelling:?}: error {err:?} does not contain {needle:?}")),
        }
    }
    failures
}

#[test]
fn accepted_spellings() {
    let failures = accepted_failures();
    assert!(
        failures.is_empty(),
        "{} of {} accepted rows failed:\n{}",
        failures.len(),
        ACCEPTED.len(),
        failures.join("\n")
    );
}

#[test]
fn rejected_spellings() {
    let failures = rejected_failures(REJECTED.iter());
    assert!(failures.is_empty(), "{} rejected rows failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn pin_option_keeps_the_digest() {
    let spelling = concat!("tls:h:1,pin=sha256:", pin_hex!());
    let endpoint: Endpoint = spelling.parse().unwrap();
    let digests: Vec<[u8; 32]> = endpoint.options.pins.iter().map(|p| *p.digest()).collect();
    assert_eq!(digests, [[0xab; 32]]);
    // `openssl x509 -fingerprint` style, with colons: the colons do not end the type.
    let colons: Vec<String> = (0..32).map(|_| "AB".to_string()).collect();
    let endpoint: Endpoint = format!("tls:h:1,pin=sha256:{}", colons.join(":")).parse().unwrap();
    assert_eq!(endpoint.options.pins.iter().map(|p| *p.digest()).collect::<Vec<_>>(), [[0xab; 32]]);
}

#[test]
fn listeners_are_listeners() {
    for (spelling, listening) in [
        ("tcp-listen:1", true),
        ("tls-l:1", true),
        ("unix-listen:/x", true),
        ("tcp:h:1", false),
        ("tls:h:1", false),
        ("unix:/x", false),
        ("exec:cat", false),
        ("file:x", false),
        ("-", false),
    ] {
        assert_eq!(spelling.parse::<Endpoint>().unwrap().is_listener(), listening, "{spelling}");
    }
}

#[test]
fn suggestions_are_only_for_near_misses() {
    let err = "qqqqqqqq:1".parse::<Endpoint>().unwrap_err();
    assert!(!err.contains("did you mean"), "{err}");
    // The list of types is always there.
    assert!(err.contains("tcp-listen") && err.contains("exec"), "{err}");
    let err = "tcp:h:1,qqqqqqqqq=1".parse::<Endpoint>().unwrap_err();
    assert!(err.contains("unknown option") && !err.contains("did you mean"), "{err}");
}
