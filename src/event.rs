//! What `--events json` reports: one typed value per event, serialised with serde. The
//! schema (`docs/events.md`) is checked against these types by this module's tests, and
//! against real runs by the integration test `events_json_follows_the_schema`.
//!
//! Each event has one constructor; the `close` event, whose fields depend on the
//! command, is built by [`Close`]'s constructors only.

use serde::Serialize;

use crate::relay::Flow;

/// Where the library's jobs report to: the binary writes events (`--events json`) and
/// notices (lines for a person, unless `--quiet`) to stderr. The library itself never
/// prints.
pub trait Report: Send + Sync {
    /// Whether events are wanted; when not, none is built.
    fn events_on(&self) -> bool;
    /// Writes one event.
    fn event(&self, event: Event);
    /// A line for a person (suppressed by `--quiet`).
    fn notice(&self, line: &str);
    /// A line a person must see, also with `--quiet` (a key trusted on first use).
    fn say(&self, line: &str);
    /// The same report, to keep past the call that received it (a server's reloads
    /// report through it later); `None` (the default) if it cannot be kept.
    fn shared(&self) -> Option<std::sync::Arc<dyn Report>> {
        None
    }
}

impl dyn Report + '_ {
    /// Builds and writes an event, only when events are wanted: a server pays nothing per
    /// connection for them otherwise.
    pub fn emit(&self, event: impl FnOnce() -> Event) {
        if self.events_on() {
            self.event(event());
        }
    }
}

/// Says every line but the last (`Report::say`) and returns the last: the failures of a
/// check, the last one the error (`--require`, `gen-cert --check`).
pub fn say_all_but_last(report: &dyn Report, mut lines: Vec<String>) -> Option<String> {
    let last = lines.pop()?;
    for line in &lines {
        report.say(line);
    }
    Some(last)
}

/// One event. Serialised with its name in `event`; the writer adds `time` and `version`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A listening socket is bound.
    Listen {
        /// Every address listened on.
        addresses: Vec<String>,
        /// Whether connections are TLS (serve only).
        #[serde(skip_serializing_if = "Option::is_none")]
        tls: Option<bool>,
        /// The cert pin of the certificate served (serve with --tls).
        #[serde(skip_serializing_if = "Option::is_none")]
        cert_sha256: Option<String>,
        /// Its key pin, null if the certificate does not parse (serve with --tls).
        #[serde(skip_serializing_if = "Option::is_none")]
        key_sha256: Option<Option<String>>,
    },
    /// A connection was accepted (before any TLS handshake).
    Accept {
        /// The client's address (with a PROXY header, the client it names).
        peer: String,
        /// With `--accept-proxy`: the address of the proxy that sent the PROXY header.
        #[serde(skip_serializing_if = "Option::is_none")]
        proxy: Option<String>,
    },
    /// An outgoing connection was made (before any TLS handshake).
    Connect {
        /// What was asked for.
        target: String,
        /// The address connected to (connect only, and not through a proxy).
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        /// The proxy the connection goes through, credentials redacted (`--proxy`,
        /// `proxy=`).
        #[serde(skip_serializing_if = "Option::is_none")]
        proxy: Option<String>,
    },
    /// A TLS handshake succeeded.
    Handshake {
        /// The peer's address, or in `pipe` the endpoint's name.
        peer: String,
        /// `TLSv1.3` or `TLSv1.2`.
        tls_version: String,
        /// The cipher suite.
        cipher: String,
        /// The ALPN protocol agreed on.
        alpn: Option<String>,
        /// On a server, the name the client asked for.
        sni: Option<String>,
        /// The peer's certificate (see docs/events.md, "The certificate object").
        peer_certificate: Option<serde_json::Value>,
    },
    /// One `connect --require` clause was checked after the handshake.
    Require {
        /// The clause as given (`tls>=1.3`).
        clause: String,
        /// Whether it holds.
        ok: bool,
        /// What it asks for, in words.
        expected: String,
        /// What was found.
        actual: String,
    },
    /// `connect --tofu` checked the server's key pin against the known-hosts file.
    Tofu {
        /// The server as given (`host:port`), the key of its known-hosts line.
        target: String,
        /// `recorded` (first contact), `known` (the recorded key) or `changed` (refused).
        result: String,
        /// The key pin the server presented.
        key_sha256: String,
        /// The recorded key pin, when it differs (`changed`).
        #[serde(skip_serializing_if = "Option::is_none")]
        known_sha256: Option<String>,
        /// The known-hosts file.
        file: String,
        /// The line of its entry, from 1.
        line: u64,
    },
    /// One direction of a connection ended.
    HalfClose {
        /// The peer's address (serve and connect).
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        /// Which way.
        direction: String,
        /// Bytes read from the source.
        bytes_in: u64,
        /// Bytes written to the sink.
        bytes_out: u64,
        /// Frames passed on.
        frames: u64,
        /// Oversized frames dropped.
        frames_skipped: u64,
        /// `eof`, or `read: …` / `write: …`.
        reason: String,
    },
    /// A connection ended.
    Close(Close),
    /// The command of `serve --exec`/`--sh-exec` for one connection exited.
    ExecExit {
        /// The connection's peer.
        peer: String,
        /// The command as given.
        command: String,
        /// Its exit status, null if a signal ended it.
        code: Option<i32>,
    },
    /// `serve -k` stopped.
    Stopped {
        /// Connections accepted in all.
        accepted: u64,
        /// Connections closed on arrival (--max-conns).
        rejected: u64,
        /// Connections still open when the grace period ran out.
        cut_short: u64,
    },
    /// `gen-cert` wrote a file.
    FileWritten {
        /// The file's path.
        path: String,
        /// What it holds.
        kind: String,
        /// Its permissions in octal.
        mode: String,
    },
    /// A TLS server loaded its certificates again (SIGHUP, `--reload-on-change`).
    Reload {
        /// Whether the new certificates are served now.
        ok: bool,
        /// Why not, when not.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The certificates whose key pin changed (refused with `--keep-pin`).
        changes: Vec<PinChange>,
    },
    /// The process is about to exit.
    Exit {
        /// The exit code.
        code: u8,
    },
}

/// A certificate whose public key a reload changed (the `reload` event's `changes`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PinChange {
    /// The certificate, by its file.
    pub name: String,
    /// The key pin served before.
    pub old_key_sha256: String,
    /// The key pin in the file now.
    pub new_key_sha256: String,
}

/// The fields of a `close` event: which depend on the command, so each command has its
/// constructor here and nowhere else.
#[derive(Debug, Clone, Serialize)]
pub struct Close {
    /// The peer's address (serve and connect).
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<String>,
    /// Why.
    reason: String,
    /// Bytes sent to the peer (connect).
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_sent: Option<u64>,
    /// Bytes received from the peer (connect).
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_received: Option<u64>,
    /// Seconds from start to end (connect and pipe).
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<f64>,
    /// The first endpoint's name (pipe).
    #[serde(skip_serializing_if = "Option::is_none")]
    a: Option<String>,
    /// The second endpoint's name (pipe).
    #[serde(skip_serializing_if = "Option::is_none")]
    b: Option<String>,
    /// Datagrams sent to the peer (datagram sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    datagrams_sent: Option<u64>,
    /// Datagrams received from the peer (datagram sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    datagrams_received: Option<u64>,
    /// Datagrams dropped: a full queue (the other side too slow), oversized ones, or
    /// from peers not served (datagram sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    datagrams_dropped: Option<u64>,
}

impl Close {
    fn new(reason: String) -> Self {
        Close {
            peer: None,
            reason,
            bytes_sent: None,
            bytes_received: None,
            duration: None,
            a: None,
            b: None,
            datagrams_sent: None,
            datagrams_received: None,
            datagrams_dropped: None,
        }
    }

    /// A connection of `serve` with `peer` ended: `reason` is the directions' reasons,
    /// `done`, `idle timeout`, `server shutdown` or `handshake: …`.
    pub fn served(peer: impl ToString, reason: impl Into<String>) -> Event {
        Event::Close(Close { peer: Some(peer.to_string()), ..Close::new(reason.into()) })
    }

    /// A datagram session with `peer` ended (`serve -u`, `connect -u`, `pipe`'s datagram
    /// endpoints): datagrams and bytes as `[sent, received]`, and those dropped.
    pub fn datagrams(
        peer: impl ToString,
        reason: impl Into<String>,
        datagrams: [u64; 2],
        bytes: [u64; 2],
        dropped: u64,
    ) -> Event {
        Event::Close(Close {
            peer: Some(peer.to_string()),
            bytes_sent: Some(bytes[0]),
            bytes_received: Some(bytes[1]),
            datagrams_sent: Some(datagrams[0]),
            datagrams_received: Some(datagrams[1]),
            datagrams_dropped: Some(dropped),
            ..Close::new(reason.into())
        })
    }

    /// `connect`'s connection ended, having moved these bytes (`duration`: `None` for
    /// `-z`, which moves none).
    pub fn client(
        peer: impl ToString,
        reason: impl Into<String>,
        sent: u64,
        received: u64,
        duration: Option<f64>,
    ) -> Event {
        Event::Close(Close {
            peer: Some(peer.to_string()),
            bytes_sent: Some(sent),
            bytes_received: Some(received),
            duration,
            ..Close::new(reason.into())
        })
    }

    /// A relay of `pipe` between the endpoints `a` and `b` ended (`duration`: `None`
    /// when the idle limit ended it).
    pub fn relay(
        a: impl ToString,
        b: impl ToString,
        reason: impl Into<String>,
        duration: Option<f64>,
    ) -> Event {
        Event::Close(Close {
            a: Some(a.to_string()),
            b: Some(b.to_string()),
            duration,
            ..Close::new(reason.into())
        })
    }
}

impl Event {
    /// A direction ended, with what it moved and why (`peer`: serve and connect).
    pub fn half_close(peer: Option<String>, direction: impl Into<String>, flow: &Flow) -> Event {
        Event::HalfClose {
            peer,
            direction: direction.into(),
            bytes_in: flow.bytes_in,
            bytes_out: flow.bytes_out,
            frames: flow.frames,
            frames_skipped: flow.frames_skipped,
            reason: flow.reason(),
        }
    }

    /// The event as a JSON object (fields in alphabetical order), without `time` and
    /// `version`.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            // Every variant is a struct or wraps one: always an object.
            _ => serde_json::Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::FlowEnd;

    /// One of each event with every optional field present.
    fn every_event() -> Vec<Event> {
        let flow = Flow { bytes_in: 3, bytes_out: 3, frames: 1, frames_skipped: 0, end: FlowEnd::Eof };
        vec![
            Event::Listen {
                addresses: vec!["127.0.0.1:1".into()],
                tls: Some(true),
                cert_sha256: Some("sha256:00".into()),
                key_sha256: Some(None),
            },
            Event::Accept { peer: "p".into(), proxy: Some("q".into()) },
            Event::Connect {
                target: "t".into(),
                peer: Some("p".into()),
                proxy: Some("socks5h://p:1080".into()),
            },
            Event::Handshake {
                peer: "p".into(),
                tls_version: "TLSv1.3".into(),
                cipher: "c".into(),
                alpn: None,
                sni: None,
                peer_certificate: None,
            },
            Event::Require {
                clause: "tls>=1.3".into(),
                ok: false,
                expected: "TLS 1.3 or newer".into(),
                actual: "TLSv1.2".into(),
            },
            Event::Tofu {
                target: "localhost:8443".into(),
                result: "changed".into(),
                key_sha256: "sha256:01".into(),
                known_sha256: Some("sha256:02".into()),
                file: "known_hosts".into(),
                line: 1,
            },
            Event::half_close(Some("p".into()), "stdin->peer", &flow),
            Close::served("p", "done"),
            Close::client("p", "eof", 1, 2, Some(0.5)),
            Close::relay("a", "b", "eof; eof", Some(0.5)),
            Event::ExecExit { peer: "p".into(), command: "cat".into(), code: Some(0) },
            Event::Stopped { accepted: 1, rejected: 0, cut_short: 0 },
            Event::FileWritten { path: "k.pem".into(), kind: "key".into(), mode: "0600".into() },
            Event::Reload {
                ok: false,
                error: Some("--keep-pin refused".into()),
                changes: vec![PinChange {
                    name: "a.pem".into(),
                    old_key_sha256: "sha256:01".into(),
                    new_key_sha256: "sha256:02".into(),
                }],
            },
            Event::Exit { code: 0 },
        ]
    }

    /// docs/events.md documents every event these types can write, and every field.
    #[test]
    fn the_schema_document_names_every_event_and_field() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/events.md")).unwrap();
        for event in every_event() {
            let json = event.to_json();
            let name = json["event"].as_str().unwrap().to_string();
            let start =
                doc.find(&format!("### `{name}`")).unwrap_or_else(|| panic!("no section for `{name}`"));
            let section = &doc[start..];
            let section = &section[..section[4..]
                .find("\n## ")
                .or(section[4..].find("\n### "))
                .map_or(section.len(), |i| i + 4)];
            for field in json.keys().filter(|k| *k != "event") {
                assert!(
                    section.contains(&format!("| `{field}` |")),
                    "`{name}` has `{field}`, not in docs/events.md"
                );
            }
        }
    }

    #[test]
    fn fields_are_named_as_documented() {
        let json = Close::client("127.0.0.1:1", "zero-io", 0, 0, None).to_json();
        assert_eq!(
            serde_json::Value::Object(json).to_string(),
            r#"{"bytes_received":0,"bytes_sent":0,"event":"close","peer":"127.0.0.1:1","reason":"zero-io"}"#
        );
        let json =
            Event::Listen { addresses: vec![], tls: None, cert_sha256: None, key_sha256: None }.to_json();
        assert_eq!(serde_json::Value::Object(json).to_string(), r#"{"addresses":[],"event":"listen"}"#);
    }
}
