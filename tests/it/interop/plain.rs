//! The end-of-stream interop matrix (issue 17), plain part: streamtool against itself
//! (`connect` <-> `serve`, 50 MiB each way, plain and TLS) and against ncat, socat and
//! OpenBSD nc over plain TCP, as server and as client.
//!
//! The expected behaviour is the end-of-stream rules of issue 17 (`docs/cli.md`): input
//! from a pipe or a file is sent to its end whatever the peer did; plain TCP half-closes
//! with FIN and reads on; a TLS client keeps its side open after its input ends (no early
//! close_notify) and reads until the server ends; a TLS server half-closes with
//! close_notify. `--on-eof half-close|keep-open|close` (an endpoint option `on-eof=` for
//! pipe) chooses explicitly. The harness is `support::peers`.

use crate::support::peers::*;

// ---------------------------------------------------------------------------------------
// streamtool connect <-> streamtool serve: 50 MiB each way, the other side's stdin a
// pipe, a file or /dev/null, plain and TLS

/// How the side that does not send the payload gets its stdin.
#[derive(Clone, Copy)]
enum Other {
    Pipe,
    File,
    DevNull,
}

impl Other {
    /// A shell prefix/redirect: the idle side's stdin. A pipe sends a line then ends; a
    /// file holds a line; /dev/null is empty.
    fn stdin(self) -> (&'static str, &'static str, &'static [u8]) {
        match self {
            Other::Pipe => ("printf 'hello from a pipe\\n' | ", "", b"hello from a pipe\n"),
            Other::File => ("", " < \"$D/small.txt\"", b"hello from a file\n"),
            Other::DevNull => ("", " < /dev/null", b""),
        }
    }
}

/// Direction of the 50 MiB.
#[derive(Clone, Copy, PartialEq)]
enum Dir {
    /// connect's stdin to serve's stdout.
    Upload,
    /// serve's stdin to connect's stdout.
    Download,
}

fn own_cell(name: &str, dir: Dir, other: Other, big_from_pipe: bool, tls: bool) {
    let mut lab = Lab::new(name);
    let big = lab.big(50 * MIB);
    std::fs::write(lab.path("small.txt"), b"hello from a file\n").unwrap();
    let (prefix, redirect, small) = other.stdin();
    let (serve_tls, connect_tls, host) = if tls {
        (" --tls --cert \"$CERT\" --key \"$KEY\"", " --tls --ca \"$CA\"", "localhost")
    } else {
        ("", "", "127.0.0.1")
    };
    let feed = |cmd: String| {
        if big_from_pipe { format!("cat \"$BIG\" | {cmd}") } else { format!("{cmd} < \"$BIG\"") }
    };
    let (server, client, server_gets, client_gets): (String, String, &[u8], &[u8]) = match dir {
        Dir::Upload => (
            format!("{prefix}exec \"$ST\" serve{serve_tls} 127.0.0.1:$P{redirect}"),
            feed(format!("\"$ST\" connect{connect_tls} {host}:$P")),
            &big,
            small,
        ),
        Dir::Download => (
            feed(format!("\"$ST\" serve{serve_tls} 127.0.0.1:$P")),
            format!("{prefix}\"$ST\" connect{connect_tls} {host}:$P{redirect}"),
            small,
            &big,
        ),
    };
    lab.exchange(
        &[Srv { script: &server, port: lab.p, code: Some(0), gets: Want::Bytes(server_gets) }],
        &client,
        Want::Bytes(client_gets),
        0,
    );
}

macro_rules! own_cells {
    ($($name:ident: $dir:ident, $other:ident, $pipe:expr, $tls:expr;)*) => {$(
        #[test]
        fn $name() {
            own_cell(stringify!($name), Dir::$dir, Other::$other, $pipe, $tls);
        }
    )*};
}

own_cells! {
    own_plain_upload_from_pipe_serve_stdin_pipe: Upload, Pipe, true, false;
    own_plain_upload_from_file_serve_stdin_file: Upload, File, false, false;
    own_plain_upload_from_pipe_serve_stdin_devnull: Upload, DevNull, true, false;
    own_plain_download_to_connect_stdin_pipe: Download, Pipe, true, false;
    own_plain_download_to_connect_stdin_file: Download, File, false, false;
    own_plain_download_to_connect_stdin_devnull: Download, DevNull, true, false;
    own_tls_upload_from_pipe_serve_stdin_pipe: Upload, Pipe, true, true;
    own_tls_upload_from_file_serve_stdin_file: Upload, File, false, true;
    own_tls_upload_from_pipe_serve_stdin_devnull: Upload, DevNull, true, true;
    own_tls_download_to_connect_stdin_pipe: Download, Pipe, true, true;
    own_tls_download_to_connect_stdin_file: Download, File, false, true;
    own_tls_download_to_connect_stdin_devnull: Download, DevNull, true, true;
}

// ---------------------------------------------------------------------------------------
// ncat, socat and OpenBSD nc over plain TCP, as server and as client

/// `ncat -l --recv-only` receives an upload from `cat file | connect` (issue 17 case 1).
#[test]
fn ncat_server_recv_only_plain_upload_from_pipe() {
    if !need(&["ncat"]) {
        return;
    }
    let mut lab = Lab::new("ncat server --recv-only / connect, plain, upload from a pipe");
    let big = lab.big(PEER_BIG);
    lab.exchange(
        &[Srv {
            script: "exec ncat -l 127.0.0.1 $P --recv-only",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(&big),
        }],
        "cat \"$BIG\" | \"$ST\" connect 127.0.0.1:$P",
        Want::Bytes(b""),
        0,
    );
}

/// `ncat -l --send-only` (FIN right after its file) to `connect </dev/null`.
#[test]
fn ncat_server_send_only_plain_download() {
    if !need(&["ncat"]) {
        return;
    }
    let mut lab = Lab::new("ncat server --send-only / connect, plain, download");
    let big = lab.big(PEER_BIG);
    lab.exchange(
        &[Srv {
            script: "exec ncat -l 127.0.0.1 $P --send-only < \"$BIG\"",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(b""),
        }],
        "\"$ST\" connect 127.0.0.1:$P < /dev/null",
        Want::Bytes(&big),
        0,
    );
}

/// `ncat -l -c cat` echoes 16 KiB sent by connect from a pipe that ends a second later:
/// the echo comes back whole, then connect's FIN ends cat and ncat closes; both exit 0.
/// (ncat 7.93's `-c` is fragile on its own: a client that half-closes before the echo is
/// back gets nothing, `nc -N` and socat included, and more than about 56 KiB is lost
/// whatever the client does; so the echo is small and the FIN comes late.)
#[test]
fn ncat_server_exec_cat_plain_echo_then_half_close() {
    if !need(&["ncat"]) {
        return;
    }
    let mut lab = Lab::new("ncat -l -c cat / (cat file; sleep 1) | connect, plain, echo");
    let big = lab.big(16 * 1024);
    lab.exchange(
        &[Srv {
            script: "exec ncat -l 127.0.0.1 $P -c cat",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(b""),
        }],
        "(cat \"$BIG\"; sleep 1) | \"$ST\" connect 127.0.0.1:$P",
        Want::Bytes(&big),
        0,
    );
}

/// `nc -N -l` with stdin /dev/null half-closes at once; the upload from a pipe must still
/// arrive whole (issue 17 case 1).
#[test]
fn nc_server_half_closing_first_plain_upload_from_pipe() {
    if !need(&["nc"]) {
        return;
    }
    let mut lab = Lab::new("nc -N -l </dev/null / connect, plain, upload from a pipe");
    let big = lab.big(PEER_BIG);
    lab.exchange(
        &[Srv {
            script: "exec nc -N -l 127.0.0.1 $P < /dev/null",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(&big),
        }],
        "cat \"$BIG\" | \"$ST\" connect 127.0.0.1:$P",
        Want::Bytes(b""),
        0,
    );
}

/// `nc -N -l < file` to `connect` with stdin a pipe that ends after nc's file: both
/// directions whole. (OpenBSD nc stops sending its own stdin when the network side ends
/// first, so the client's pipe stays open a second.)
#[test]
fn nc_server_plain_both_directions() {
    if !need(&["nc"]) {
        return;
    }
    let mut lab = Lab::new("nc -N -l <file / connect <pipe, plain, both directions");
    let big = lab.big(PEER_BIG);
    lab.exchange(
        &[Srv {
            script: "exec nc -N -l 127.0.0.1 $P < \"$BIG\"",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(b"up\n"),
        }],
        "(printf 'up\\n'; sleep 1) | \"$ST\" connect 127.0.0.1:$P",
        Want::Bytes(&big),
        0,
    );
}

/// socat as a receiving server (`-u TCP-LISTEN CREATE:`), upload from a pipe.
#[test]
fn socat_server_plain_upload_from_pipe() {
    if !need(&["socat"]) {
        return;
    }
    let mut lab = Lab::new("socat -u TCP-LISTEN / connect, plain, upload from a pipe");
    let big = lab.big(PEER_BIG);
    lab.exchange(
        &[Srv {
            script: "exec socat -u TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr STDOUT",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(&big),
        }],
        "cat \"$BIG\" | \"$ST\" connect 127.0.0.1:$P",
        Want::Bytes(b""),
        0,
    );
}

/// socat as an echo server (`EXEC:cat`): connect sends a file, gets it back whole.
#[test]
fn socat_server_exec_cat_plain_echo_with_half_close() {
    if !need(&["socat"]) {
        return;
    }
    let mut lab = Lab::new("socat TCP-LISTEN EXEC:cat / connect, plain, echo");
    let big = lab.big(PEER_BIG);
    lab.exchange(
        &[Srv {
            script: "exec socat -t 5 TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr EXEC:cat",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(b""),
        }],
        "\"$ST\" connect 127.0.0.1:$P < \"$BIG\"",
        Want::Bytes(&big),
        0,
    );
}

/// socat as a sending server (`-u FILE TCP-LISTEN`), connect with stdin /dev/null.
#[test]
fn socat_server_plain_download() {
    if !need(&["socat"]) {
        return;
    }
    let mut lab = Lab::new("socat -u FILE TCP-LISTEN / connect </dev/null, plain, download");
    let big = lab.big(PEER_BIG);
    lab.exchange(
        &[Srv {
            script: "exec socat -u FILE:\"$BIG\" TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(b""),
        }],
        "\"$ST\" connect 127.0.0.1:$P < /dev/null",
        Want::Bytes(&big),
        0,
    );
}

/// `nc -N` as a client uploading into `serve </dev/null`.
#[test]
fn nc_client_half_close_plain_upload() {
    if !need(&["nc"]) {
        return;
    }
    let mut lab = Lab::new("serve </dev/null / nc -N <file, plain, upload");
    let big = lab.big(PEER_BIG);
    lab.exchange(
        &[Srv {
            script: "exec \"$ST\" serve 127.0.0.1:$P < /dev/null",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(&big),
        }],
        "nc -N 127.0.0.1 $P < \"$BIG\"",
        Want::Bytes(b""),
        0,
    );
}

/// `nc -N` as a client: it sends a line and half-closes; serve sends a file back.
#[test]
fn nc_client_half_close_plain_both_directions() {
    if !need(&["nc"]) {
        return;
    }
    let mut lab = Lab::new("serve <file / printf | nc -N, plain, both directions");
    let big = lab.big(PEER_BIG);
    lab.exchange(
        &[Srv {
            script: "exec \"$ST\" serve 127.0.0.1:$P < \"$BIG\"",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(b"q\n"),
        }],
        "printf 'q\\n' | nc -N 127.0.0.1 $P",
        Want::Bytes(&big),
        0,
    );
}

/// `nc` without -N (no half-close: it keeps its side open) downloading from `serve <file`:
/// serve half-closes after the file, nc ends on the FIN.
#[test]
fn nc_client_without_half_close_plain_download() {
    if !need(&["nc"]) {
        return;
    }
    let mut lab = Lab::new("serve <file / nc (no -N) </dev/null, plain, download");
    let big = lab.big(PEER_BIG);
    lab.exchange(
        &[Srv {
            script: "exec \"$ST\" serve 127.0.0.1:$P < \"$BIG\"",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(b""),
        }],
        "nc 127.0.0.1 $P < /dev/null",
        Want::Bytes(&big),
        0,
    );
}

/// `ncat --send-only` as a client uploading into `serve </dev/null`.
#[test]
fn ncat_client_send_only_plain_upload() {
    if !need(&["ncat"]) {
        return;
    }
    let mut lab = Lab::new("serve </dev/null / ncat --send-only <file, plain, upload");
    let big = lab.big(PEER_BIG);
    lab.exchange(
        &[Srv {
            script: "exec \"$ST\" serve 127.0.0.1:$P < /dev/null",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(&big),
        }],
        "ncat --send-only 127.0.0.1 $P < \"$BIG\"",
        Want::Bytes(b""),
        0,
    );
}

/// `ncat --recv-only` as a client downloading from `serve <file`.
#[test]
fn ncat_client_recv_only_plain_download() {
    if !need(&["ncat"]) {
        return;
    }
    let mut lab = Lab::new("serve <file / ncat --recv-only, plain, download");
    let big = lab.big(PEER_BIG);
    lab.exchange(
        &[Srv {
            script: "exec \"$ST\" serve 127.0.0.1:$P < \"$BIG\"",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(b""),
        }],
        "ncat --recv-only 127.0.0.1 $P",
        Want::Bytes(&big),
        0,
    );
}

/// `ncat` (half-closes on stdin EOF) against `serve --echo`: the echo comes back whole.
#[test]
fn ncat_client_plain_against_serve_echo() {
    if !need(&["ncat"]) {
        return;
    }
    let mut lab = Lab::new("serve --echo / ncat <file, plain, echo");
    let big = lab.big(PEER_BIG);
    lab.exchange(
        &[Srv {
            script: "exec \"$ST\" serve --echo 127.0.0.1:$P",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(b""),
        }],
        "ncat 127.0.0.1 $P < \"$BIG\"",
        Want::Bytes(&big),
        0,
    );
}

/// socat as a client (`-t 5`: socat's own 0.5 s linger would drop a slow reply) against
/// `serve --echo`: the echo comes back whole.
#[test]
fn socat_client_plain_against_serve_echo() {
    if !need(&["socat"]) {
        return;
    }
    let mut lab = Lab::new("serve --echo / socat -t 5 <file, plain, echo");
    let big = lab.big(PEER_BIG);
    lab.exchange(
        &[Srv {
            script: "exec \"$ST\" serve --echo 127.0.0.1:$P",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(b""),
        }],
        "socat -t 5 - TCP:127.0.0.1:$P < \"$BIG\"",
        Want::Bytes(&big),
        0,
    );
}

/// socat as a one-way client (`-u`) uploading into `serve </dev/null`.
#[test]
fn socat_client_plain_upload() {
    if !need(&["socat"]) {
        return;
    }
    let mut lab = Lab::new("serve </dev/null / socat -u FILE TCP, plain, upload");
    let big = lab.big(PEER_BIG);
    lab.exchange(
        &[Srv {
            script: "exec \"$ST\" serve 127.0.0.1:$P < /dev/null",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(&big),
        }],
        "socat -u FILE:\"$BIG\" TCP:127.0.0.1:$P",
        Want::Bytes(b""),
        0,
    );
}
