//! The shell-facing surface with the real binary: `streamtool completions` (the scripts are
//! the checked-in ones, and bash completes with them), `--help` that teaches (examples,
//! exit codes, no `--ssl-*` aliases), the `--events json` schema of `docs/events.md`, and
//! every recipe of `docs/cookbook.md`, run as written but on port 0 in a temporary
//! directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::support::cli::{
    BIN, Finished, Input, Proc, STEP, Server, json_events, parse_port, poll_until, streamtool,
};
use crate::support::run;

/// The package root, where `completions/` and `docs/` are.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// How to regenerate the checked-in completions and man pages.
const REGENERATE: &str = "STREAMTOOL_BLESS=1 cargo test --test it generated_files_are_current";

/// Each shell and the file its script is checked in as.
const SHELLS: [(&str, &str); 5] = [
    ("bash", "streamtool.bash"),
    ("zsh", "_streamtool"),
    ("fish", "streamtool.fish"),
    ("powershell", "_streamtool.ps1"),
    ("elvish", "streamtool.elv"),
];

const SUBCOMMANDS: [&str; 5] = ["serve", "connect", "pipe", "gen-cert", "completions"];

// ---- completions ----

#[test]
fn completions_prints_the_checked_in_script_for_each_shell() {
    run(async {
        for (shell, file) in SHELLS {
            let out = streamtool(&["completions", shell], b"").await;
            out.assert_code(0);
            assert!(out.stdout.len() > 1000, "`streamtool completions {shell}` printed almost nothing");
            let checked_in = std::fs::read(root().join("completions").join(file)).unwrap_or_default();
            assert!(
                out.stdout == checked_in,
                "completions/{file} is not what `streamtool completions {shell}` prints; regenerate with: {REGENERATE}"
            );
        }
    });
}

/// Every file the binary generates, by its path relative to the package root: the
/// completion scripts (`completions SHELL`) and the man pages (`completions --man-dir`).
async fn generated_files() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for (shell, file) in SHELLS {
        let out = streamtool(&["completions", shell], b"").await;
        out.assert_code(0);
        files.push((Path::new("completions").join(file), out.stdout));
    }
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man1");
    streamtool(&["completions", "--man-dir", man.to_str().unwrap()], b"").await.assert_code(0);
    let mut pages: Vec<_> = std::fs::read_dir(&man).unwrap().map(|e| e.unwrap().path()).collect();
    pages.sort();
    for page in pages {
        let name = page.file_name().unwrap().to_owned();
        files.push((Path::new("docs/man").join(name), std::fs::read(&page).unwrap()));
    }
    files
}

/// The checked-in completions and man pages are what the binary generates, byte for byte,
/// and none is left over from a removed subcommand; `STREAMTOOL_BLESS=1` rewrites them.
#[test]
fn generated_files_are_current() {
    run(async {
        let bless = std::env::var_os("STREAMTOOL_BLESS").is_some_and(|v| !v.is_empty() && v != "0");
        let generated = generated_files().await;
        let mut stale = Vec::new();
        for (path, contents) in &generated {
            let full = root().join(path);
            if std::fs::read(&full).ok().as_ref() == Some(contents) {
                continue;
            }
            if bless {
                std::fs::write(&full, contents).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
            } else {
                stale.push(path.display().to_string());
            }
        }
        let expected: Vec<&PathBuf> = generated.iter().map(|(path, _)| path).collect();
        for dir in ["completions", "docs/man"] {
            for entry in std::fs::read_dir(root().join(dir)).unwrap() {
                let path = Path::new(dir).join(entry.unwrap().file_name());
                let ours = path.extension().is_some_and(|e| e == "1") || dir == "completions";
                if ours && !expected.contains(&&path) {
                    if bless {
                        std::fs::remove_file(root().join(&path)).unwrap();
                    } else {
                        stale.push(format!("{} (no longer generated)", path.display()));
                    }
                }
            }
        }
        assert!(
            stale.is_empty(),
            "these checked-in files differ from what the binary generates: {}\nregenerate them with: {REGENERATE}",
            stale.join(", ")
        );
    });
}

/// A man page for the tool and each visible subcommand, each with EXAMPLES and EXIT
/// STATUS, and none showing the hidden `--ssl` aliases.
#[test]
fn man_pages_have_examples_and_exit_codes() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let man = dir.path().join("new/man1");
        streamtool(&["completions", "--man-dir", man.to_str().unwrap()], b"").await.assert_code(0);
        let mut names: Vec<String> =
            std::fs::read_dir(&man).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        let mut expected: Vec<String> = SUBCOMMANDS.iter().map(|s| format!("streamtool-{s}.1")).collect();
        expected.push("streamtool.1".to_string());
        expected.sort();
        assert_eq!(names, expected);
        for name in &names {
            let text = std::fs::read_to_string(man.join(name)).unwrap();
            assert!(text.contains(".SH \"EXIT STATUS\""), "{name} has no EXIT STATUS");
            assert!(!text.contains("ssl"), "{name} shows a hidden --ssl alias");
            if name != "streamtool.1" {
                assert!(text.contains(".SH EXAMPLES"), "{name} has no EXAMPLES");
            }
        }
    });
}

/// `--man-dir` names the directory it cannot write, and exits 1.
#[test]
fn man_dir_that_cannot_be_made_is_named() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let target = file.join("man1");
        let out = streamtool(&["completions", "--man-dir", target.to_str().unwrap()], b"").await;
        out.assert_code(1);
        assert!(out.stderr.contains(target.to_str().unwrap()), "{}", out.stderr);
    });
}

#[test]
fn completions_for_an_unknown_shell_is_a_usage_error() {
    run(async {
        let out = streamtool(&["completions", "tcsh"], b"").await;
        out.assert_code(2);
        assert!(out.stderr.contains("possible values"), "{}", out.stderr);
        assert!(out.stdout.is_empty());
    });
}

#[test]
fn completions_into_a_closed_pipe_exits_0() {
    let mut child = std::process::Command::new(BIN)
        .args(["completions", "powershell"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the child writes: its write meets EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
}

/// Sources the bash script `script` in a real bash and asks it to complete `words` (the
/// last one being completed); returns the candidates.
async fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    const DRIVER: &str = r#"
        source "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        _streamtool streamtool "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let mut args = vec!["-c", DRIVER, "bash", script.to_str().unwrap()];
    args.extend_from_slice(words);
    let out = Proc::spawn("bash", &args, Input::Bytes(Vec::new())).finish().await;
    out.assert_code(0);
    out.stdout_text().lines().map(str::to_string).collect()
}

#[test]
fn bash_completion_completes_subcommands_flags_and_values() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("streamtool.bash");
        let printed = streamtool(&["completions", "bash"], b"").await;
        printed.assert_code(0);
        std::fs::write(&script, &printed.stdout).unwrap();

        // Sourcing it registers the completion function for the command.
        let registered = Proc::spawn(
            "bash",
            &["-c", r#"source "$1" && complete -p streamtool"#, "bash", script.to_str().unwrap()],
            Input::Bytes(Vec::new()),
        )
        .finish()
        .await;
        registered.assert_code(0);
        assert!(registered.stdout_text().contains("-F _streamtool"), "{}", registered.stdout_text());

        let subcommands = bash_complete(&script, &["streamtool", ""]).await;
        for sub in SUBCOMMANDS {
            assert!(
                subcommands.iter().any(|c| c == sub),
                "`streamtool <TAB>` does not offer {sub}: {subcommands:?}"
            );
        }

        let flags = bash_complete(&script, &["streamtool", "connect", "--t"]).await;
        for flag in ["--tls", "--tls-min", "--tls-max"] {
            assert!(
                flags.iter().any(|c| c == flag),
                "`streamtool connect --t<TAB>` does not offer {flag}: {flags:?}"
            );
        }
        assert!(flags.iter().all(|c| c.starts_with("--t")), "{flags:?}");

        let all_flags = bash_complete(&script, &["streamtool", "serve", "--"]).await;
        assert!(all_flags.iter().any(|c| c == "--keep-open"), "{all_flags:?}");
        assert!(
            !all_flags.iter().any(|c| c.starts_with("--ssl")),
            "hidden aliases are offered: {all_flags:?}"
        );

        let shells = bash_complete(&script, &["streamtool", "completions", ""]).await;
        for (shell, _) in SHELLS {
            assert!(
                shells.iter().any(|c| c == shell),
                "`streamtool completions <TAB>` does not offer {shell}: {shells:?}"
            );
        }
        let formats = bash_complete(&script, &["streamtool", "--events", ""]).await;
        assert_eq!(formats, ["json"]);
    });
}

// ---- --help ----

#[test]
fn every_subcommand_help_ends_with_examples_and_hides_the_ssl_aliases() {
    run(async {
        for sub in SUBCOMMANDS {
            for flag in ["--help", "-h"] {
                let out = streamtool(&[sub, flag], b"").await;
                out.assert_code(0);
                let help = out.stdout_text();
                let examples = help
                    .split("\n\n")
                    .find_map(|block| block.strip_prefix("Examples:\n"))
                    .unwrap_or_else(|| panic!("`streamtool {sub} {flag}` has no Examples:\n{help}"));
                let lines: Vec<&str> = examples.lines().collect();
                assert!(
                    (3..=5).contains(&lines.len()) && lines.iter().all(|l| l.contains("streamtool ")),
                    "`streamtool {sub} {flag}` should end with 3 to 5 examples:\n{examples}"
                );
                assert!(
                    !help.contains("--ssl"),
                    "`streamtool {sub} {flag}` shows a hidden --ssl alias:\n{help}"
                );
                assert!(
                    help.contains("Exit codes"),
                    "`streamtool {sub} {flag}` does not point to the exit codes"
                );
            }
        }
        let top = streamtool(&["--help"], b"").await;
        top.assert_code(0);
        let help = top.stdout_text();
        let codes = help.split("Exit codes:\n").nth(1).expect("`streamtool --help` lists the exit codes");
        for code in ["0", "1", "2", "3", "4", "5", "6", "7", "130"] {
            assert!(
                codes.lines().any(|l| l.trim_start().starts_with(&format!("{code} "))),
                "exit code {code}:\n{codes}"
            );
        }
        for sub in SUBCOMMANDS {
            assert!(help.contains(&format!("  {sub} ")), "`streamtool --help` does not list {sub}");
        }
        assert!(!help.contains("--ssl"));
    });
}

// ---- --events json ----

/// A table of fields: (name, type, when present), as in the tables of `docs/events.md`;
/// "always" means required.
type Fields = &'static [(&'static str, &'static str, &'static str)];

/// The fields of every event.
const COMMON: Fields =
    &[("event", "string", "always"), ("time", "number", "always"), ("version", "integer", "always")];

/// Every event and its own fields: the schema of `docs/events.md`, version 1.
const EVENTS: &[(&str, Fields)] = &[
    (
        "listen",
        &[
            ("addresses", "array of strings", "always"),
            ("tls", "boolean", "serve only"),
            ("cert_sha256", "string", "serve with --tls"),
            ("key_sha256", "string", "serve with --tls"),
        ],
    ),
    ("accept", &[("peer", "string", "always"), ("proxy", "string", "with an accepted PROXY header")]),
    (
        "connect",
        &[
            ("target", "string", "always"),
            ("peer", "string", "connect only"),
            ("proxy", "string", "through a proxy"),
        ],
    ),
    (
        "handshake",
        &[
            ("peer", "string", "always"),
            ("tls_version", "string", "always"),
            ("cipher", "string", "always"),
            ("alpn", "string or null", "always"),
            ("sni", "string or null", "always"),
            ("peer_certificate", "certificate or null", "always"),
        ],
    ),
    (
        "require",
        &[
            ("clause", "string", "always"),
            ("ok", "boolean", "always"),
            ("expected", "string", "always"),
            ("actual", "string", "always"),
        ],
    ),
    (
        "tofu",
        &[
            ("target", "string", "always"),
            ("result", "string", "always"),
            ("key_sha256", "string", "always"),
            ("known_sha256", "string", "changed"),
            ("file", "string", "always"),
            ("line", "integer", "always"),
        ],
    ),
    (
        "half_close",
        &[
            ("direction", "string", "always"),
            ("peer", "string", "serve and connect"),
            ("bytes_in", "integer", "always"),
            ("bytes_out", "integer", "always"),
            ("frames", "integer", "always"),
            ("frames_skipped", "integer", "always"),
            ("reason", "string", "always"),
        ],
    ),
    (
        "close",
        &[
            ("peer", "string", "serve and connect; pipe for a failed TLS handshake"),
            ("reason", "string", "always"),
            ("bytes_sent", "integer", "connect"),
            ("bytes_received", "integer", "connect"),
            ("duration", "number", "connect and pipe"),
            ("a", "string", "pipe"),
            ("b", "string", "pipe"),
            ("datagrams_sent", "integer", "datagram sessions"),
            ("datagrams_received", "integer", "datagram sessions"),
            ("datagrams_dropped", "integer", "datagram sessions"),
        ],
    ),
    (
        "exec_exit",
        &[
            ("peer", "string", "always"),
            ("command", "string", "always"),
            ("code", "integer or null", "always"),
        ],
    ),
    (
        "stopped",
        &[
            ("accepted", "integer", "always"),
            ("rejected", "integer", "always"),
            ("cut_short", "integer", "always"),
        ],
    ),
    (
        "file_written",
        &[("path", "string", "always"), ("kind", "string", "always"), ("mode", "string", "always")],
    ),
    (
        "reload",
        &[
            ("ok", "boolean", "always"),
            ("error", "string", "when failed"),
            ("changes", "array of objects", "always"),
        ],
    ),
    ("exit", &[("code", "integer", "always")]),
];

/// The certificate object (`handshake.peer_certificate`).
const CERTIFICATE: Fields = &[
    ("sha256", "string", "always"),
    ("key_sha256", "string", "when parsable"),
    ("subject", "string", "when parsable"),
    ("issuer", "string", "when parsable"),
    ("sans", "array of strings", "when parsable"),
    ("not_after", "string", "when parsable"),
];

const FILE_KINDS: [&str; 6] =
    ["ca_key", "ca_certificate", "key", "certificate", "certificate_and_key", "pkcs12"];

/// The field tables of `docs/events.md`, by section: `*` for every event, `certificate`
/// for the certificate object, else the event's name.
fn documented_schema() -> BTreeMap<String, Vec<(String, String, String)>> {
    let text = std::fs::read_to_string(root().join("docs/events.md")).expect("docs/events.md");
    let mut schema: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        if line.starts_with('#') {
            let title = line.trim_start_matches('#').trim();
            section = match title {
                "Every event" => Some("*".into()),
                "The certificate object" => Some("certificate".into()),
                t if t.starts_with('`') => Some(t.trim_matches('`').to_string()),
                _ => None,
            };
        } else if let (Some(section), Some(row)) = (&section, line.strip_prefix("| `")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let field = cells[0].trim_end_matches('`').to_string();
            schema.entry(section.clone()).or_default().push((
                field,
                cells[1].to_string(),
                cells[2].to_string(),
            ));
        }
    }
    schema
}

#[test]
fn events_md_documents_exactly_the_schema_the_tests_check() {
    let owned = |fields: Fields| -> Vec<(String, String, String)> {
        fields.iter().map(|(f, t, p)| (f.to_string(), t.to_string(), p.to_string())).collect()
    };
    let mut expected: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    expected.insert("*".into(), owned(COMMON));
    expected.insert("certificate".into(), owned(CERTIFICATE));
    for (event, fields) in EVENTS {
        expected.insert(event.to_string(), owned(fields));
    }
    let documented = documented_schema();
    for (section, fields) in &expected {
        assert_eq!(documented.get(section), Some(fields), "docs/events.md, section {section}");
    }
    let extra: Vec<&String> = documented.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(extra.is_empty(), "docs/events.md documents events the schema table lacks: {extra:?}");
}

fn has_type(value: &Value, ty: &str) -> bool {
    if let Some(base) = ty.strip_suffix(" or null") {
        return value.is_null() || has_type(value, base);
    }
    match ty {
        "string" => value.is_string(),
        "integer" => value.is_u64() || value.is_i64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array of strings" => value.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        "array of objects" => value.as_array().is_some_and(|a| a.iter().all(Value::is_object)),
        "certificate" => value.is_object(),
        other => panic!("unknown type {other:?} in the schema"),
    }
}

/// What a set of events was checked to contain: event name -> fields seen.
type Seen = BTreeMap<String, BTreeSet<String>>;

/// Checks `object` against `fields`; records what was seen under `name`.
fn check_fields(object: &Value, fields: &[(&str, &str, &str)], name: &str, seen: &mut Seen) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(map) = object.as_object() else {
        return vec![format!("{name}: not an object: {object}")];
    };
    for (key, value) in map {
        match fields.iter().find(|(f, _, _)| f == key) {
            None => errors.push(format!("{name}: undocumented field {key:?} in {object}")),
            Some((_, ty, _)) if !has_type(value, ty) => {
                errors.push(format!("{name}: field {key:?} is not {ty}: {value}"));
            }
            Some(_) => {
                seen.entry(name.to_string()).or_default().insert(key.clone());
            }
        }
    }
    for (field, _, present) in fields {
        if *present == "always" && !map.contains_key(*field) {
            errors.push(format!("{name}: required field {field:?} missing in {object}"));
        }
    }
    errors
}

/// Checks one event against the schema; returns what is wrong with it.
fn check_event(event: &Value, seen: &mut Seen) -> Vec<String> {
    let Some(name) = event.get("event").and_then(Value::as_str) else {
        return vec![format!("no \"event\" name: {event}")];
    };
    let Some((_, fields)) = EVENTS.iter().find(|(e, _)| *e == name) else {
        return vec![format!("undocumented event {name:?}: {event}")];
    };
    let all: Vec<(&str, &str, &str)> = COMMON.iter().chain(fields.iter()).copied().collect();
    let mut errors = check_fields(event, &all, name, seen);
    if event["version"] != 1 {
        errors.push(format!("{name}: version is not 1: {event}"));
    }
    for key in
        ["bytes_in", "bytes_out", "bytes_sent", "bytes_received", "frames", "frames_skipped", "accepted"]
    {
        if event.get(key).is_some_and(|v| !v.is_u64()) {
            errors.push(format!("{name}: {key} is negative: {event}"));
        }
    }
    match name {
        "handshake" => {
            if !event["tls_version"].as_str().is_some_and(|v| v == "TLSv1.3" || v == "TLSv1.2") {
                errors.push(format!("handshake: tls_version {}", event["tls_version"]));
            }
            if event["peer_certificate"].is_object() {
                errors.extend(check_fields(&event["peer_certificate"], CERTIFICATE, "certificate", seen));
            }
        }
        "file_written" => {
            if !event["kind"].as_str().is_some_and(|k| FILE_KINDS.contains(&k)) {
                errors.push(format!("file_written: kind {}", event["kind"]));
            }
            let mode = event["mode"].as_str().unwrap_or_default();
            if !(mode.len() == 4 && mode.starts_with('0') && mode.chars().all(|c| ('0'..='7').contains(&c))) {
                errors.push(format!("file_written: mode {mode:?} is not octal like 0600"));
            }
        }
        _ => {}
    }
    errors
}

/// Runs `serve`, `connect`, `pipe` and `gen-cert` with `--events json` in the ways that
/// produce every documented event and field; returns each command line with its events.
async fn events_of_real_commands() -> Vec<(String, Vec<Value>)> {
    let mut all = Vec::new();
    let mut keep = |out: &Finished| all.push((out.label.clone(), json_events(&out.stderr)));

    // A TLS echo server (listen, accept, handshake, half_close, close, stopped, exit) and
    // its clients: one that relays (connect, handshake, half_close, close with byte counts),
    // one that only handshakes (-z), one that fails verification (the server's close with
    // "handshake: ...").
    let server = Server::start(&["--events", "json", "-k", "--echo", "--tls"]).await;
    let pin = server.printed_pin().await;
    let relayed = streamtool(
        &[
            "--events",
            "json",
            "connect",
            "--tls",
            "--on-eof",
            "half-close",
            "--pin",
            &pin,
            &server.localhost(),
        ],
        b"hello\n",
    )
    .await;
    relayed.assert_code(0);
    assert_eq!(relayed.stdout, b"hello\n");
    keep(&relayed);
    let zero = streamtool(
        &[
            "connect",
            "--events",
            "json",
            "-z",
            "--tls",
            "--pin",
            &pin,
            "--require",
            "tls>=1.2",
            &server.localhost(),
        ],
        b"",
    )
    .await;
    zero.assert_code(0);
    keep(&zero);
    let refused = streamtool(&["connect", "--events", "json", "--tls", &server.localhost()], b"").await;
    refused.assert_code(4);
    keep(&refused);
    // Through a proxy (connect.proxy): one that accepts and closes at once (exit 3; the
    // connect event comes when the proxy is reached).
    let (proxy_port, _proxy) = crate::support::cli::tcp_server(|socket| async move { drop(socket) }).await;
    let proxied = streamtool(
        &[
            "connect",
            "--events",
            "json",
            "--proxy",
            &format!("socks5h://user:pw@127.0.0.1:{proxy_port}"),
            &server.localhost(),
        ],
        b"",
    )
    .await;
    proxied.assert_code(3);
    assert!(proxied.stderr.contains("\"proxy\":\"socks5h://***@127.0.0.1:"), "{}", proxied.stderr);
    keep(&proxied);
    // --tofu (tofu): a known-hosts file with another key for the server (changed, exit
    // 4), then none (recorded).
    let xdg = tempfile::tempdir().unwrap();
    let known_hosts = xdg.path().join("streamtool").join("known_hosts");
    std::fs::create_dir_all(known_hosts.parent().unwrap()).unwrap();
    std::fs::write(&known_hosts, format!("{} sha256:{}\n", server.localhost(), "0".repeat(64))).unwrap();
    for code in [4, 0] {
        let tofu = Proc::streamtool_env(
            &["connect", "--events", "json", "-z", "--tls", "--tofu", &server.localhost()],
            Input::Bytes(Vec::new()),
            &[("XDG_DATA_HOME", xdg.path().as_os_str())],
        )
        .finish()
        .await;
        tofu.assert_code(code);
        keep(&tofu);
        std::fs::remove_file(&known_hosts).unwrap();
    }

    // pipe: a plain listener relayed to the TLS server (listen, accept, connect,
    // handshake, half_close and close with the endpoints' names).
    let mut pipe = Proc::streamtool(
        &[
            "--events",
            "json",
            "pipe",
            "tcp-listen:0",
            &format!("tls:localhost:{},pin={pin},on-eof=half-close", server.port),
        ],
        Input::Open,
    );
    let pipe_port = parse_port(&pipe.wait_stderr("listening on").await).expect("pipe's port");
    pipe.close_stdin();
    let through = streamtool(&["connect", &format!("127.0.0.1:{pipe_port}")], b"through the pipe\n").await;
    through.assert_code(0);
    assert_eq!(through.stdout, b"through the pipe\n");
    let pipe = pipe.finish().await;
    pipe.assert_code(0);
    keep(&pipe);

    // Every connection closed: 3 direct ones and the pipe's.
    let closed = poll_until(STEP, || server.proc.stderr().matches(r#""event":"close""#).count() >= 4).await;
    assert!(closed, "the server did not report every close:\n{}", server.proc.stderr());
    server.proc.signal("TERM");
    let server = server.proc.finish().await;
    server.assert_code(0);
    keep(&server);

    // A command per connection (exec_exit), behind a PROXY header (accept's proxy).
    let exec = Server::start(&["--events", "json", "--sh-exec", "cat", "--accept-proxy"]).await;
    let client = streamtool(&["connect", "--proxy-protocol", "v2", &exec.addr()], b"to cat\n").await;
    client.assert_code(0);
    assert_eq!(client.stdout, b"to cat\n");
    let exec = exec.proc.finish().await;
    exec.assert_code(0);
    keep(&exec);

    // gen-cert (file_written), with a CA made on the way.
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = format!("STREAMTOOL_CA_DIR={}", dir.path().join("ca").display());
    let cwd = dir.path().to_str().unwrap();
    let made = Proc::spawn(
        "env",
        &["-C", cwd, &ca_dir, BIN, "--events", "json", "gen-cert", "localhost"],
        Input::Open,
    )
    .finish()
    .await;
    made.assert_code(0);
    assert!(dir.path().join("localhost.pem").exists());
    keep(&made);

    // A reload refused (reload with error and changes): serve --keep-pin, a new key for
    // its certificate (gen-cert --force), SIGHUP.
    let (cert, key) = (dir.path().join("localhost.pem"), dir.path().join("localhost-key.pem"));
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let reloading = Server::start(&[
        "--events",
        "json",
        "-k",
        "--echo",
        "--tls",
        "--cert",
        cert,
        "--key",
        key,
        "--keep-pin",
    ])
    .await;
    let again =
        Proc::spawn("env", &["-C", cwd, &ca_dir, BIN, "gen-cert", "--force", "localhost"], Input::Open);
    again.finish().await.assert_code(0);
    reloading.proc.signal("HUP");
    reloading.proc.wait_stderr("--keep-pin refused").await;
    reloading.proc.signal("TERM");
    let reloading = reloading.proc.finish().await;
    reloading.assert_code(0);
    keep(&reloading);

    // Datagrams (close with datagrams_sent, _received, _dropped): a UDP echo server and
    // a connect -u client; the server's sessions are reported at SIGTERM.
    let udp = Server::start(&["--events", "json", "-u", "-k", "--echo", "0"]).await;
    let datagrams = streamtool(
        &["--events", "json", "connect", "-u", "--idle-timeout", "500ms", &udp.addr()],
        b"one\ntwo\n",
    )
    .await;
    datagrams.assert_code(0);
    assert_eq!(datagrams.stdout, b"one\ntwo\n");
    keep(&datagrams);
    udp.proc.signal("TERM");
    let udp = udp.proc.finish().await;
    udp.assert_code(0);
    keep(&udp);
    all
}

#[test]
fn events_json_follows_the_schema() {
    run(async {
        let mut seen = Seen::new();
        let mut errors = Vec::new();
        for (command, events) in events_of_real_commands().await {
            assert!(!events.is_empty(), "`{command}` emitted no events");
            assert_eq!(events.last().unwrap()["event"], "exit", "`{command}`: exit is not the last event");
            for event in &events {
                errors.extend(check_event(event, &mut seen).into_iter().map(|e| format!("`{command}`: {e}")));
            }
        }
        assert!(errors.is_empty(), "events that do not follow docs/events.md:\n{}", errors.join("\n"));
        // Nothing documented that the commands never emit.
        let sections = EVENTS.iter().copied().chain([("certificate", CERTIFICATE)]);
        for (name, fields) in sections {
            for (field, _, _) in COMMON.iter().filter(|_| name != "certificate").chain(fields.iter()) {
                assert!(
                    seen.get(name).is_some_and(|s| s.contains(*field)),
                    "docs/events.md documents {name}.{field}, but no test command emitted it"
                );
            }
        }
    });
}

// ---- the cookbook ----

/// Collapses a shell text: continuation lines joined, runs of blanks made one space.
fn normalized(text: &str) -> String {
    text.replace("\\\n", " ")
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text of the cookbook section whose heading contains `title`.
fn cookbook_section(title: &str) -> String {
    let text = std::fs::read_to_string(root().join("docs/cookbook.md")).expect("docs/cookbook.md");
    let start = text
        .match_indices("\n## ")
        .map(|(i, _)| i + 1)
        .find(|&i| text[i..].lines().next().unwrap().contains(title))
        .unwrap_or_else(|| panic!("docs/cookbook.md has no section {title:?}"));
    let end = text[start + 3..].find("\n## ").map_or(text.len(), |i| start + 3 + i);
    normalized(&text[start..end])
}

/// Splits a command line into words as sh does (quotes and backslashes; no expansion).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, ' ') => words.extend(word.take()),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (Some(q), c) if c == q => quote = None,
            (None, '\\') => word.get_or_insert_default().extend(chars.next()),
            (Some('"'), '\\') => {
                let next = chars.next().unwrap_or_default();
                let w = word.get_or_insert_default();
                if !"\"\\$`".contains(next) {
                    w.push('\\');
                }
                w.push(next);
            }
            (_, c) => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}

/// What `printf 'FORMAT'` writes (escapes \n, \\ and octal \NNN).
fn printf_bytes(format: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes = format.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let octal: Vec<u8> =
                bytes[i + 1..].iter().take(3).take_while(|b| (b'0'..=b'7').contains(b)).copied().collect();
            if !octal.is_empty() {
                out.push(octal.iter().fold(0u8, |n, d| n * 8 + (d - b'0')));
                i += 1 + octal.len();
                continue;
            }
            out.push(match bytes[i + 1] {
                b'n' => b'\n',
                other => other,
            });
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Replaces the number `from` in `word` (not part of a longer number) with `to`.
fn replace_number(word: &str, from: &str, to: &str) -> String {
    let mut out = String::new();
    let mut rest = word;
    while let Some(i) = rest.find(from) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + from.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(|c| c.is_ascii_digit()) || after.is_some_and(|c| c.is_ascii_digit()) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = &rest[i + from.len()..];
    }
    out.push_str(rest);
    out
}

/// One cookbook recipe, run as written: each command is checked to be in the recipe's
/// text, then run in a temporary directory with the recipe's fixed ports replaced by the
/// ports actually bound (servers bind port 0).
struct Recipe {
    text: String,
    dir: tempfile::TempDir,
    /// Text of the recipe -> what the test uses (ports, the pin).
    subs: Vec<(String, String)>,
}

impl Recipe {
    fn new(title: &str) -> Recipe {
        Recipe { text: cookbook_section(title), dir: tempfile::tempdir().unwrap(), subs: Vec::new() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Makes the certificates of "Before you start", with its commands.
    async fn before_you_start(&self) {
        let section = cookbook_section("Before you start");
        assert!(section.contains(r#"export STREAMTOOL_CA_DIR="$PWD/ca""#), "{section}");
        let command = r"streamtool gen-cert localhost 127.0.0.1 ::1";
        assert!(section.contains(command), "\"Before you start\" does not say `{command}`");
        self.spawn_words(shell_words(command), Input::Bytes(Vec::new())).finish().await.assert_code(0);
    }

    /// `line` (a `streamtool` command, possibly after `printf '…' |`), checked to be in the
    /// recipe: its stdin and its words, with the substitutions made.
    fn command(&self, line: &str) -> (Vec<u8>, Vec<String>) {
        assert!(self.text.contains(line), "the recipe does not say `{line}`:\n{}", self.text);
        let (input, command) = match line.rsplit_once(" | ") {
            Some((printf, command)) => {
                let format = shell_words(printf);
                assert_eq!(format[0], "printf", "{line}");
                (printf_bytes(&format[1]), command)
            }
            None => (Vec::new(), line),
        };
        let words = shell_words(command)
            .into_iter()
            .map(|word| {
                self.subs.iter().fold(word, |w, (from, to)| {
                    if from.chars().all(|c| c.is_ascii_digit()) {
                        replace_number(&w, from, to)
                    } else {
                        w.replace(from, to)
                    }
                })
            })
            .collect();
        (input, words)
    }

    fn spawn_words(&self, words: Vec<String>, input: Input) -> Proc {
        assert_eq!(words[0], "streamtool");
        let ca_dir = format!("STREAMTOOL_CA_DIR={}", self.path("ca").display());
        let mut args = vec!["-C", self.dir.path().to_str().unwrap(), &ca_dir, BIN];
        args.extend(words[1..].iter().map(String::as_str));
        Proc::spawn("env", &args, input)
    }

    /// Starts `line` with its stdin open.
    fn spawn(&self, line: &str) -> Proc {
        let (_, words) = self.command(line);
        self.spawn_words(words, Input::Open)
    }

    /// Runs `line` to its end, its stdin what the recipe's `printf` writes (else empty).
    async fn run(&self, line: &str) -> Finished {
        let (input, words) = self.command(line);
        self.spawn_words(words, Input::Bytes(input)).finish().await
    }

    /// Starts the server `line`, whose `port` in the recipe is bound as port 0, and waits
    /// until it listens; the recipe's `port` then means the port it got.
    async fn listen(&mut self, line: &str, port: &str) -> Proc {
        self.subs.retain(|(from, _)| from != port);
        self.subs.push((port.to_string(), "0".to_string()));
        let server = self.spawn(line);
        let complete = || server.stderr().lines().any(|l| l.starts_with("streamtool: listening on "));
        assert!(poll_until(STEP, complete).await, "`{line}` did not listen:\n{}", server.stderr());
        let bound = parse_port(&server.stderr()).expect("the listening port");
        self.subs.retain(|(from, _)| from != port);
        self.subs.push((port.to_string(), bound.to_string()));
        server
    }
}

/// The streamtool commands of the cookbook's shell blocks (after any `printf … |`, without
/// comments, redirections or a trailing `&`).
fn cookbook_commands() -> Vec<String> {
    let text = normalized(&std::fs::read_to_string(root().join("docs/cookbook.md")).unwrap());
    let mut commands = Vec::new();
    let mut in_shell = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_shell = line == "```sh" && !in_shell;
            continue;
        }
        if !in_shell {
            continue;
        }
        let line = line.split(" #").next().unwrap().trim_end_matches(" &").trim();
        let segments: Vec<&str> = line.split(" | ").collect();
        if let Some(i) = segments.iter().position(|s| s.starts_with("streamtool ")) {
            let last = segments[i].split(" 2>").next().unwrap().split(" >").next().unwrap();
            let mut command = segments[..i].join(" | ");
            if !command.is_empty() {
                command.push_str(" | ");
            }
            command.push_str(last.trim_end_matches(" &"));
            commands.push(command);
        }
    }
    commands
}

#[test]
fn cookbook_commands_are_all_tested() {
    let source = include_str!("shell.rs");
    let commands = cookbook_commands();
    assert!(commands.len() >= 20, "too few commands found in docs/cookbook.md: {commands:?}");
    let untested: Vec<&String> = commands.iter().filter(|c| !source.contains(c.as_str())).collect();
    assert!(untested.is_empty(), "docs/cookbook.md commands that no test in shell.rs runs: {untested:#?}");
}

#[test]
fn cookbook_tls_terminator() {
    run(async {
        let mut r = Recipe::new("TLS terminator");
        r.before_you_start().await;
        let _service = r.listen(r"streamtool serve -k --echo 8080", "8080").await;
        let _terminator = r
            .listen(
                r"streamtool pipe tls-listen:8443,fork,cert=localhost+2.pem,key=localhost+2-key.pem tcp:127.0.0.1:8080",
                "8443",
            )
            .await;
        for _ in 0..2 {
            let out =
                r.run(r"printf 'hello\n' | streamtool connect --tls --on-eof half-close --ca ca/ca.pem localhost:8443").await;
            out.assert_code(0);
            assert_eq!(out.stdout, b"hello\n");
        }
    });
}

/// docs/cookbook.md, "Through a SOCKS or HTTP proxy": microsocks (a real SOCKS5 proxy) in
/// front of a TLS echo server, reached by `connect --proxy` and by `pipe`'s `proxy=`.
#[test]
fn cookbook_through_a_proxy() {
    if !crate::support::peers::need(&["microsocks"]) {
        return;
    }
    run(async {
        let mut r = Recipe::new("Through a SOCKS or HTTP proxy");
        r.before_you_start().await;
        let recipe_line = "microsocks -i 127.0.0.1 -p 1080 &";
        assert!(r.text.contains(recipe_line), "{}", r.text);
        let port = crate::support::cli::closed_port();
        let mut proxy = std::process::Command::new("microsocks")
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("microsocks");
        struct Kill<'a>(&'a mut std::process::Child);
        impl Drop for Kill<'_> {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let _proxy = Kill(&mut proxy);
        assert!(
            poll_until(STEP, || crate::support::peers::listening(port)).await,
            "microsocks did not listen"
        );
        r.subs.push(("1080".to_string(), port.to_string()));
        let _server = r
            .listen(
                r"streamtool serve -k --tls --cert localhost+2.pem --key localhost+2-key.pem --sh-exec 'echo hello' 8443",
                "8443",
            )
            .await;
        let out = r
            .run(r"streamtool connect --tls --recv-only --ca ca/ca.pem --proxy socks5h://127.0.0.1:1080 localhost:8443")
            .await;
        out.assert_code(0);
        assert_eq!(out.stdout, b"hello\n");
        let _relay = r
            .listen(
                r"streamtool pipe tcp-listen:9000,fork tls:localhost:8443,ca=ca/ca.pem,proxy=socks5h://127.0.0.1:1080",
                "9000",
            )
            .await;
        let out = r.run(r"streamtool connect --recv-only localhost:9000").await;
        out.assert_code(0);
        assert_eq!(out.stdout, b"hello\n");
    });
}

#[test]
fn cookbook_tls_originator() {
    run(async {
        let mut r = Recipe::new("TLS originator");
        r.before_you_start().await;
        let _server = r
            .listen(
                r"streamtool serve -k --echo --tls --cert localhost+2.pem --key localhost+2-key.pem 8443",
                "8443",
            )
            .await;
        let _originator = r
            .listen(
                r"streamtool pipe tcp-listen:9000,fork tls:localhost:8443,ca=ca/ca.pem,on-eof=half-close",
                "9000",
            )
            .await;
        for _ in 0..2 {
            let out = r.run(r"printf 'hello\n' | streamtool connect localhost:9000").await;
            out.assert_code(0);
            assert_eq!(out.stdout, b"hello\n");
        }
    });
}

#[test]
fn cookbook_proxy_protocol() {
    run(async {
        let mut r = Recipe::new("PROXY protocol");
        r.before_you_start().await;
        let service = r
            .listen(
                r#"streamtool serve -k --accept-proxy --events json --sh-exec 'echo "hello $STREAMTOOL_PEER"' 8080"#,
                "8080",
            )
            .await;
        let _terminator = r
            .listen(
                r"streamtool pipe tls-listen:8443,fork,cert=localhost+2.pem,key=localhost+2-key.pem tcp:127.0.0.1:8080,proxy-protocol=v2",
                "8443",
            )
            .await;
        let out = r.run(r"streamtool connect --tls --ca ca/ca.pem localhost:8443").await;
        out.assert_code(0);
        let text = out.stdout_text();
        let client = text
            .strip_prefix("hello ")
            .and_then(|t| t.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("{text:?}"));
        assert!(client.starts_with("127.0.0.1:"), "{text:?}");
        let accepted = poll_until(STEP, || service.stderr().contains(r#""event":"accept""#)).await;
        assert!(accepted, "{}", service.stderr());
        let accept = json_events(&service.stderr()).into_iter().find(|e| e["event"] == "accept").unwrap();
        // The client the header names, not the terminator's own connection.
        assert_eq!(accept["peer"], client, "{accept}");
        assert!(
            accept["proxy"].as_str().is_some_and(|p| p.starts_with("127.0.0.1:") && p != client),
            "{accept}"
        );
    });
}

#[test]
fn cookbook_debugging_a_tls_server() {
    run(async {
        let mut r = Recipe::new("Debugging a TLS server");
        r.before_you_start().await;
        let _server = r
            .listen(
                r"streamtool serve -k --echo --tls --cert localhost+2.pem --key localhost+2-key.pem 8443",
                "8443",
            )
            .await;

        let look = r.run(r"streamtool connect -z --tls -k --show-cert localhost:8443").await;
        look.assert_code(0);
        for expected in
            ["Protocol version: TLSv1.3", "Verification: skipped (--insecure)", "CN=localhost", "key pin:"]
        {
            assert!(look.stderr.contains(expected), "no {expected:?} in:\n{}", look.stderr);
        }
        let pin =
            look.stderr.split("key pin:").nth(1).unwrap().split_whitespace().next().unwrap().to_string();

        let verified = r.run(r"streamtool connect -z --tls --show-cert --ca ca/ca.pem localhost:8443").await;
        verified.assert_code(0);
        assert!(verified.stderr.contains("Verification: OK"), "{}", verified.stderr);

        let system = r.run(r"streamtool connect -z --tls localhost:8443").await;
        system.assert_code(4);
        assert!(system.stderr.contains("streamtool: hint: "), "{}", system.stderr);

        let other_name =
            r.run(r"streamtool connect -z --tls --ca ca/ca.pem --sni example.com localhost:8443").await;
        other_name.assert_code(4);
        assert!(other_name.stderr.contains("example.com"), "{}", other_name.stderr);

        let scripted =
            r.run(r"streamtool connect -z --tls --ca ca/ca.pem --events json localhost:8443").await;
        scripted.assert_code(0);
        let handshake = json_events(&scripted.stderr).into_iter().find(|e| e["event"] == "handshake");
        assert!(handshake.is_some_and(|h| h["tls_version"] == "TLSv1.3"), "{}", scripted.stderr);

        r.subs.push(("sha256:…".into(), pin));
        let pinned =
            r.run(r"printf 'hello\n' | streamtool connect --tls --on-eof half-close --pin sha256:… localhost:8443").await;
        pinned.assert_code(0);
        assert_eq!(pinned.stdout, b"hello\n");

        let logged = r
            .run(r"printf 'hello\n' | streamtool connect --tls --on-eof half-close --ca ca/ca.pem --keylog keys.log localhost:8443")
            .await;
        logged.assert_code(0);
        assert_eq!(logged.stdout, b"hello\n");
        let keys = std::fs::read_to_string(r.path("keys.log")).unwrap();
        assert!(keys.contains("CLIENT_TRAFFIC_SECRET_0 "), "{keys}");
    });
}

/// docs/cookbook.md, "Checks for scripts": a CI check of an endpoint with --require.
#[test]
fn cookbook_checks_for_scripts() {
    run(async {
        let mut r = Recipe::new("Checks for scripts");
        r.before_you_start().await;
        let _server = r
            .listen(
                r"streamtool serve -k --echo --tls --cert localhost+2.pem --key localhost+2-key.pem 8443",
                "8443",
            )
            .await;
        let ok = r
            .run(r"streamtool connect -z --tls --ca ca/ca.pem --require 'tls>=1.3' --require 'expires>30d' --require san=localhost localhost:8443")
            .await;
        ok.assert_code(0);
        assert_eq!(ok.stderr, "");
        let soon = r
            .run(r"streamtool connect -z --tls --ca ca/ca.pem --require 'expires>100d' localhost:8443")
            .await;
        soon.assert_code(4);
        let line = soon.stderr.trim_end();
        assert!(
            line.starts_with(
                "streamtool: --require expires>100d failed: expected a leaf certificate valid for more than 100d, \
                 got one valid until "
            ) && line.ends_with(" UTC (in 90 days)")
                && !line.contains('\n'),
            "{}",
            soon.stderr
        );
        // The cron check of certificate files (gen-cert made a 90-day leaf).
        let fine = r.run(r"streamtool gen-cert --inspect localhost+2.pem --check 30d").await;
        fine.assert_code(0);
        assert_eq!((fine.stdout.as_slice(), fine.stderr.as_str()), (&b""[..], ""));
        let renew = r.run(r"streamtool gen-cert --inspect localhost+2.pem --check 100d").await;
        renew.assert_code(4);
        let line = renew.stderr.trim_end();
        assert!(
            line.starts_with(
                "streamtool: localhost+2.pem: certificate 1 of 2 (O=streamtool development certificate, CN=localhost) \
                 expires within 100 days: not after "
            ) && line.ends_with(" UTC (in 90 days)")
                && !line.contains('\n'),
            "{}",
            renew.stderr
        );
    });
}

#[test]
fn cookbook_line_protocol_server() {
    run(async {
        let mut r = Recipe::new("A line-protocol server");
        let server = r
            .listen(
                r#"streamtool serve -k --delimiter '\n' --max-frame 1KiB --sh-exec 'while read -r line; do echo "you said: $line"; done' 7000"#,
                "7000",
            )
            .await;
        let out = r.run(r"printf 'hello\nworld\n' | streamtool connect localhost:7000").await;
        out.assert_code(0);
        assert_eq!(out.stdout_text(), "you said: hello\nyou said: world\n");

        // A line over 1 KiB: that client is cut off, the next one is served.
        let (_, words) = r.command(r"streamtool connect localhost:7000");
        let long = [vec![b'x'; 2000], b"\nafter\n".to_vec()].concat();
        let cut = r.spawn_words(words, Input::Bytes(long.clone())).finish().await;
        assert!(!cut.stdout_text().contains("you said"), "{}", cut.stdout_text());
        let out = r.run(r"printf 'hello\nworld\n' | streamtool connect localhost:7000").await;
        assert_eq!(out.stdout_text(), "you said: hello\nyou said: world\n");

        // The client's own guard: a 1030-byte reply line is over its 1 KiB.
        let (_, guarded) = r.command(r"streamtool connect --delimiter '\n' --max-frame 1KiB localhost:7000");
        let line = [vec![b'y'; 1020], b"\n".to_vec()].concat();
        let guarded = r.spawn_words(guarded, Input::Bytes(line)).finish().await;
        guarded.assert_code(7);
        drop(server);

        let _skipping = r
            .listen(
                r#"streamtool serve -k --delimiter '\n' --max-frame 1KiB --on-oversize skip --sh-exec 'while read -r line; do echo "you said: $line"; done' 7000"#,
                "7000",
            )
            .await;
        let (_, words) = r.command(r"streamtool connect localhost:7000");
        let kept = r.spawn_words(words, Input::Bytes(long)).finish().await;
        kept.assert_code(0);
        assert_eq!(kept.stdout_text(), "you said: after\n");
    });
}

#[test]
fn cookbook_chat_server_with_broker() {
    run(async {
        let mut r = Recipe::new("A chat server");
        let _server =
            r.listen(r"streamtool serve --broker --delimiter '\n' --max-frame 4KiB 9000", "9000").await;
        let mut alice = r.spawn(r"streamtool connect localhost:9000");
        let mut bob = r.spawn(r"streamtool connect localhost:9000");
        // A line reaches only the clients connected when it is sent: repeat until Bob is.
        let mut reached = false;
        for _ in 0..100 {
            alice.write(b"hello from alice\n").await;
            if poll_until(Duration::from_millis(100), || bob.stdout().ends_with(b"\n")).await {
                reached = true;
                break;
            }
        }
        assert!(reached, "bob never got alice's line");
        let received = String::from_utf8(bob.stdout()).unwrap();
        assert!(received.lines().all(|l| l == "hello from alice"), "{received:?}");

        bob.write(b"hi alice, bob here\n").await;
        alice.wait_stdout(b"hi alice, bob here\n").await;

        alice.close_stdin();
        bob.close_stdin();
        alice.finish().await.assert_code(0);
        bob.finish().await.assert_code(0);
    });
}

#[test]
fn cookbook_file_transfer_with_progress() {
    run(async {
        let mut r = Recipe::new("File transfer");
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(r.path("big.iso"), &big).unwrap();
        assert!(r.text.contains("cmp big.iso received.iso"));

        let receiver = r.listen(r"streamtool pipe tcp-listen:9000 file:received.iso,create", "9000").await;
        let sender = r.run(r"streamtool pipe file:big.iso tcp:127.0.0.1:9000 --progress").await;
        sender.assert_code(0);
        receiver.finish().await.assert_code(0);
        assert!(std::fs::read(r.path("received.iso")).unwrap() == big, "received.iso differs from big.iso");

        r.before_you_start().await;
        let receiver = r
            .listen(
                r"streamtool pipe tls-listen:9000,cert=localhost+2.pem,key=localhost+2-key.pem file:received-tls.iso,create",
                "9000",
            )
            .await;
        let sender = r
            .run(r"streamtool pipe file:big.iso tls:localhost:9000,ca=ca/ca.pem,on-eof=half-close --progress")
            .await;
        sender.assert_code(0);
        receiver.finish().await.assert_code(0);
        assert!(
            std::fs::read(r.path("received-tls.iso")).unwrap() == big,
            "received-tls.iso differs from big.iso"
        );

        // On a terminal (script(1) gives it one), --progress shows each direction.
        let receiver = r.listen(r"streamtool pipe tcp-listen:9000 file:received.iso,create", "9000").await;
        std::fs::remove_file(r.path("received.iso")).unwrap();
        let (_, words) = r.command(r"streamtool pipe file:big.iso tcp:127.0.0.1:9000 --progress");
        let command = format!("env -C {} {BIN} {}", r.dir.path().display(), words[1..].join(" "));
        let shown =
            Proc::spawn("script", &["-qec", &command, "/dev/null"], Input::Bytes(Vec::new())).finish().await;
        shown.assert_code(0);
        receiver.finish().await.assert_code(0);
        let label = format!("file:big.iso -> {}", words[3].trim_start_matches("tcp:"));
        assert!(
            shown.stdout_text().contains(&label),
            "no progress line {label:?}:\n{:?}",
            shown.stdout_text()
        );
    });
}

#[test]
fn cookbook_mtls_with_gen_cert() {
    run(async {
        let mut r = Recipe::new("mTLS with gen-cert");
        r.before_you_start().await;
        r.run(r"streamtool gen-cert --client alice@example.com").await.assert_code(0);
        assert!(
            r.path("alice@example.com-client.pem").exists()
                && r.path("alice@example.com-client-key.pem").exists()
        );
        let _server = r
            .listen(
                r"streamtool serve -k --echo --tls --cert localhost+2.pem --key localhost+2-key.pem --client-ca ca/ca.pem --require-client-cert 8443",
                "8443",
            )
            .await;
        let alice = r
            .run(r"printf 'hello\n' | streamtool connect --tls --on-eof half-close --ca ca/ca.pem --cert alice@example.com-client.pem --key alice@example.com-client-key.pem localhost:8443")
            .await;
        alice.assert_code(0);
        assert_eq!(alice.stdout, b"hello\n");
        let anonymous =
            r.run(r"printf 'hello\n' | streamtool connect --tls --on-eof half-close --ca ca/ca.pem localhost:8443").await;
        anonymous.assert_code(4);
        assert!(anonymous.stdout.is_empty());
    });
}

/// docs/cookbook.md, "A CA for a team's names": the constrained CA signs the team's names,
/// refuses another with exit 2 and writes nothing for it, and its leaf verifies.
#[test]
fn cookbook_a_ca_for_a_teams_names() {
    run(async {
        let mut r = Recipe::new("A CA for a team's names");
        r.run(r"streamtool gen-cert --ca-dir team-ca --ca-only --permit .corp.test --permit 10.20.0.0/16")
            .await
            .assert_code(0);
        r.run(r"streamtool gen-cert --ca-dir team-ca api.corp.test 10.20.0.5").await.assert_code(0);
        assert!(r.path("api.corp.test+1.pem").exists() && r.path("api.corp.test+1-key.pem").exists());
        let refused = r.run(r"streamtool gen-cert --ca-dir team-ca example.com").await;
        refused.assert_code(2);
        assert!(
            refused.stderr.starts_with(
                "streamtool: example.com is outside the names the local CA may sign for (.corp.test, 10.20.0.0/16)"
            ),
            "{}",
            refused.stderr
        );
        assert!(!r.path("example.com.pem").exists() && !r.path("example.com-key.pem").exists());
        let _server = r
            .listen(
                r"streamtool serve -k --echo --tls --cert api.corp.test+1.pem --key api.corp.test+1-key.pem 8443",
                "8443",
            )
            .await;
        let hello = r
            .run(r"printf 'hello\n' | streamtool connect --tls --on-eof half-close --ca team-ca/ca.pem --sni api.corp.test localhost:8443")
            .await;
        hello.assert_code(0);
        assert_eq!(hello.stdout, b"hello\n");
    });
}

#[test]
fn cookbook_reencoding_a_latin1_service() {
    run(async {
        let mut r = Recipe::new("Re-encoding a legacy latin1 service");
        let legacy = r
            .listen(r#"streamtool serve -k --sh-exec "printf 'caf\351 cr\350me\n'; cat" 7000"#, "7000")
            .await;
        // The stand-in really speaks latin1.
        let port = parse_port(&legacy.stderr()).unwrap();
        let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut greeting = vec![0; 11];
        raw.read_exact(&mut greeting).await.unwrap();
        assert_eq!(greeting, b"caf\xe9 cr\xe8me\n");
        drop(raw);

        let out = r.run(r"printf 'naïve\n' | streamtool connect --encoding latin1 localhost:7000").await;
        out.assert_code(0);
        assert_eq!(out.stdout_text(), "café crème\nnaïve\n");

        let _front = r
            .listen(r"streamtool pipe tcp-listen:7001,fork tcp:127.0.0.1:7000,encoding=latin1", "7001")
            .await;
        let out = r.run(r"printf 'naïve\n' | streamtool connect localhost:7001").await;
        out.assert_code(0);
        assert_eq!(out.stdout_text(), "café crème\nnaïve\n");
    });
}

#[test]
fn cookbook_starttls() {
    let Some(python) = crate::support::peers::aiosmtpd_python() else {
        crate::support::precondition(false, "python3-aiosmtpd is not installed (`.ci/run` installs it)");
        return;
    };
    run(async {
        let mut r = Recipe::new("STARTTLS: a mail server");
        r.before_you_start().await;
        let server =
            "python3 -m aiosmtpd -n -l localhost:2525 --tlscert localhost+2.pem --tlskey localhost+2-key.pem";
        assert!(r.text.contains(server), "{}", r.text);
        let port = crate::support::cli::closed_port();
        r.subs.push(("2525".to_string(), port.to_string()));
        let mut args = vec!["-C".to_string(), r.dir.path().display().to_string(), python.to_string()];
        args.extend(
            shell_words(server).into_iter().skip(1).map(|w| replace_number(&w, "2525", &port.to_string())),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let _server = Proc::spawn("env", &args, Input::Open);
        let up = poll_until(STEP, || std::net::TcpStream::connect(("localhost", port)).is_ok()).await;
        assert!(up, "aiosmtpd did not listen on localhost:{port}:\n{}", _server.stderr());

        let look = r
            .run(r"streamtool connect -z --tls --starttls smtp --show-cert --ca ca/ca.pem localhost:2525")
            .await;
        look.assert_code(0);
        assert!(look.stderr.contains("Verification: OK"), "{}", look.stderr);
        assert!(look.stderr.contains("CN=localhost"), "{}", look.stderr);

        let quit = r
            .run(r"printf 'QUIT\n' | streamtool -v connect --tls --crlf --starttls smtp --ca ca/ca.pem localhost:2525")
            .await;
        quit.assert_code(0);
        assert_eq!(quit.stdout_text(), "221 Bye\r\n");
        assert!(
            quit.stderr.contains(r#"STARTTLS (smtp) C: "EHLO streamtool.localhost\r\n""#),
            "{}",
            quit.stderr
        );
    });
}

/// docs/cookbook.md, "Seeing the traffic": a text dump of an SMTP exchange with aiosmtpd,
/// a TLS session captured for Wireshark and decrypted by tshark from the file alone, and a
/// transcript replayed at the echo server.
#[test]
fn cookbook_seeing_the_traffic() {
    let Some(python) = crate::support::peers::aiosmtpd_python() else {
        crate::support::precondition(false, "python3-aiosmtpd is not installed (`.ci/run` installs it)");
        return;
    };
    if !crate::support::peers::need(&["tshark"]) {
        return;
    }
    run(async {
        let mut r = Recipe::new("Seeing the traffic: dumps, transcripts and Wireshark");
        r.before_you_start().await;
        assert!(r.text.contains("python3 -m aiosmtpd -n -l localhost:2526 &"), "{}", r.text);
        let port = crate::support::cli::closed_port();
        r.subs.push(("2526".to_string(), port.to_string()));
        let args = [
            "-C",
            &r.dir.path().display().to_string(),
            python,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("localhost:{port}"),
        ]
        .map(str::to_string);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let _smtp = Proc::spawn("env", &args, Input::Open);
        let up = poll_until(STEP, || std::net::TcpStream::connect(("localhost", port)).is_ok()).await;
        assert!(up, "aiosmtpd did not listen on localhost:{port}:\n{}", _smtp.stderr());
        let smtp =
            r.run(r"printf 'EHLO me\nQUIT\n' | streamtool connect --crlf --dump text localhost:2526").await;
        smtp.assert_code(0);
        let said = &smtp.stderr;
        assert!(
            said.contains(&format!(
                " #1 127.0.0.1:{port} out 15 bytes at 0\n  EHLO me\\r\\n\n  QUIT\\r\\n\n"
            )),
            "{said}"
        );
        assert!(said.contains("  221 Bye\\r\\n"), "{said}");
        assert!(said.lines().any(|l| l.starts_with("< ") && l.contains(" in ")), "{said}");

        let _server = r
            .listen(
                r"streamtool serve -k --echo --tls --cert localhost+2.pem --key localhost+2-key.pem 8443",
                "8443",
            )
            .await;
        let captured = r
            .run(r"printf 'hello\n' | streamtool connect --tls --on-eof half-close --ca ca/ca.pem --pcap session.pcapng --pcap-layer tls localhost:8443")
            .await;
        captured.assert_code(0);
        assert_eq!(captured.stdout, b"hello\n");
        let follow = std::process::Command::new("tshark")
            .args(["-r", &r.path("session.pcapng").display().to_string(), "-q", "-z", "follow,tls,ascii,0"])
            .output()
            .unwrap();
        let follow = String::from_utf8_lossy(&follow.stdout);
        assert_eq!(follow.matches("hello").count(), 2, "decrypted both ways:\n{follow}");

        let _echo = r.listen(r"streamtool serve -k --echo 8080", "8080").await;
        let kept =
            r.run(r"printf 'hello\n' | streamtool connect --transcript hello.jsonl localhost:8080").await;
        kept.assert_code(0);
        let replayed =
            r.run(r"streamtool pipe replay:hello.jsonl,timing=fast tcp:localhost:8080,dump=text").await;
        replayed.assert_code(0);
        assert!(replayed.stderr.contains(" out 6 bytes at 0\n  hello\\n\n"), "{}", replayed.stderr);
        assert!(replayed.stderr.contains(" in 6 bytes at 0\n  hello\\n\n"), "{}", replayed.stderr);
    });
}

/// The namespace script of `cookbook_trusting_the_local_ca`, run by `unshare --mount` as
/// root. As gen_cert_ca's system-store test: private copies bind-mounted over
/// /etc/ssl/certs, /usr/local/share/ca-certificates and /etc/ca-certificates.conf, a tmpfs
/// over /etc/ca-certificates (Debian's update.d hooks, which run dpkg), each checked to be
/// a mount point first; HOME a temporary directory with an NSS database made by certutil.
/// $1 the recipe's directory (its CA in ca/, its certificates made), then the recipe's
/// lines, each shell-quoted for `eval`: $2 the server, $3 the install, $4 curl, $5 Python,
/// $6 the uninstall. `streamtool` is on PATH as a link to the binary under test ($7).
const TRUSTING_SCRIPT: &str = r#"
set -eu
T="$1"
mkdir -p "$T/ns" "$T/bin" "$T/home/.pki/nssdb"; ln -s "$7" "$T/bin/streamtool"
cp -a /etc/ssl/certs "$T/ns/etc-ssl-certs"
cp -a /usr/local/share/ca-certificates "$T/ns/local-cas"
cp -a /etc/ca-certificates.conf "$T/ns/ca-certificates.conf"
mount --bind "$T/ns/etc-ssl-certs" /etc/ssl/certs
mount --bind "$T/ns/local-cas" /usr/local/share/ca-certificates
mount --bind "$T/ns/ca-certificates.conf" /etc/ca-certificates.conf
mount -t tmpfs tmpfs /etc/ca-certificates
for m in /etc/ssl/certs /usr/local/share/ca-certificates /etc/ca-certificates.conf /etc/ca-certificates; do
  mountpoint -q "$m" || { echo "not a private mount: $m"; exit 99; }
done
export STREAMTOOL_CA_DIR="$T/ca" HOME="$T/home" PATH="$T/bin:$PATH"
certutil -N -d "sql:$HOME/.pki/nssdb" --empty-password
cd "$T"
update-ca-certificates >/dev/null 2>&1
snapshot() {
  (cd /etc/ssl/certs && ls -la --time-style=+ | sed 1d; sha256sum ca-certificates.crt; ls /usr/local/share/ca-certificates)
  certutil -L -d "sql:$HOME/.pki/nssdb"
}
snapshot > before
eval "$2" 2> serve.log &
SERVE=$!; trap 'kill $SERVE' EXIT
i=0; until grep -q "listening on" serve.log; do i=$((i+1)); [ $i -lt 100 ] || { echo "serve did not listen"; exit 98; }; sleep 0.1; done
set +e
clients() {
  echo "== $1"
  # curl's first line that says something (its progress meter goes to stderr too).
  out=$(eval "timeout 10 $2" 2>&1); rc=$?; echo "$out" | grep -m1 -e '^hello$' -e '^curl: '; echo "curl=$rc"
  out=$(eval "timeout 10 $3" 2>&1); rc=$?; echo "$out" | tail -1; echo "python=$rc"
}
clients "before install" "$4" "$5"
echo "== install"; eval "$3" 2>&1; echo "rc=$?"
echo "== nss"; certutil -L -d "sql:$HOME/.pki/nssdb" | grep -o 'streamtool local CA [0-9a-f]*'
clients "after install" "$4" "$5"
echo "== uninstall"; eval "$6" 2>&1; echo "rc=$?"
clients "after uninstall" "$4" "$5"
snapshot > after
diff before after && echo "== stores as before"
"#;

/// Shell-quotes `words` for `eval`.
fn shell_quoted(words: &[String]) -> String {
    words.iter().map(|w| format!("'{}'", w.replace('\'', r"'\''"))).collect::<Vec<_>>().join(" ")
}

/// docs/cookbook.md, "Trusting the local CA": the recipe's own lines, as root in a private
/// mount namespace (TRUSTING_SCRIPT; the machine's stores are never touched): before the
/// install, curl without --cacert and Python's urllib refuse the recipe's server; after
/// `gen-cert --install` (the system store and the NSS database in HOME), both get its
/// `hello`, and the NSS database holds our nickname; after `gen-cert --uninstall` both
/// refuse again and the system store and the NSS listing are as before, byte for byte. The
/// browser part is proven by
/// `gen_cert_clients::chromium_trusts_the_installed_ca_and_refuses_a_leaf_forged_outside_its_constraints`
/// (headless Chromium with such a HOME), not run again here.
#[test]
fn cookbook_trusting_the_local_ca() {
    if !crate::support::peers::need(&["curl", "python3", "unshare", "update-ca-certificates", "certutil"]) {
        return;
    }
    let root = nix::unistd::geteuid().is_root();
    if !crate::support::precondition(
        root,
        "the trust-store recipe needs root for its private mount namespace",
    ) {
        return;
    }
    run(async {
        let mut r = Recipe::new("Trusting the local CA: curl, Python and the browser");
        r.before_you_start().await;
        r.subs.push(("8443".to_string(), crate::support::cli::closed_port().to_string()));
        let lines = [
            r#"streamtool serve -k --tls --cert localhost+2.pem --key localhost+2-key.pem --sh-exec 'read -r request; printf "HTTP/1.0 200 OK\r\n\r\nhello\n"' 8443"#,
            r"streamtool gen-cert --install",
            r"curl https://localhost:8443/",
            r#"python3 -c 'import urllib.request; print(urllib.request.urlopen("https://localhost:8443/").read().decode())'"#,
            r"streamtool gen-cert --uninstall",
        ];
        let mut args =
            vec!["120", "unshare", "--mount", "--propagation", "private", "bash", "-c", TRUSTING_SCRIPT];
        args.extend(["trusting", r.dir.path().to_str().unwrap()]);
        let commands: Vec<String> = lines.iter().map(|line| shell_quoted(&r.command(line).1)).collect();
        args.extend(commands.iter().map(String::as_str));
        args.push(BIN);
        let out = Proc::spawn("timeout", &args, Input::Bytes(Vec::new()))
            .finish_within(Duration::from_secs(130))
            .await;
        let log = out.stdout_text();
        assert_eq!(out.code, Some(0), "{log}\n{}", out.stderr);
        let section = |title: &str| -> String {
            let start =
                log.find(&format!("== {title}\n")).unwrap_or_else(|| panic!("no {title:?} in:\n{log}"));
            let body = &log[start + title.len() + 4..];
            body[..body.find("== ").unwrap_or(body.len())].to_string()
        };
        let refused = "curl: (60) SSL certificate problem: unable to get local issuer certificate\ncurl=60\n";
        for title in ["before install", "after uninstall"] {
            let got = section(title);
            assert!(got.starts_with(refused), "{title}:\n{got}");
            assert!(
                got.contains("CERTIFICATE_VERIFY_FAILED") && got.ends_with("\npython=1\n"),
                "{title}:\n{got}"
            );
        }
        assert_eq!(section("after install"), "hello\ncurl=0\nhello\npython=0\n");
        let install = section("install");
        assert!(install.starts_with("Installed the local CA ("), "{install}");
        assert!(install.contains("wrote /usr/local/share/ca-certificates/streamtool-local-ca-"), "{install}");
        assert!(install.contains(") to the NSS database ") && install.ends_with("rc=0\n"), "{install}");
        assert!(section("nss").starts_with("streamtool local CA "), "{log}");
        let uninstall = section("uninstall");
        assert!(
            uninstall.starts_with("Removed the local CA (") && uninstall.ends_with("rc=0\n"),
            "{uninstall}"
        );
        assert!(uninstall.contains(") from the NSS database "), "{uninstall}");
        assert!(log.ends_with("== stores as before\n"), "the stores changed:\n{log}");
    });
}

/// docs/cookbook.md, "A TLS terminator that stays up": the recipe's pipe terminator with
/// `reload-on-change`, `allow=` and `keepalive` serves the client, and a renewal by
/// `gen-cert --force` is picked up without a signal: the next handshake presents the new
/// certificate (its key pin) and the terminator warns about the changed pin.
#[test]
fn cookbook_a_tls_terminator_that_stays_up() {
    run(async {
        let mut r = Recipe::new("A TLS terminator that stays up");
        r.before_you_start().await;
        let _service = r.listen(r"streamtool serve -k --echo 8080", "8080").await;
        let terminator = r
            .listen(
                r"streamtool pipe tls-listen:8443,fork,cert=localhost+2.pem,key=localhost+2-key.pem,reload-on-change,allow=127.0.0.0/8,keepalive tcp:127.0.0.1:8080",
                "8443",
            )
            .await;
        let first = r.run(r"printf 'hello\n' | streamtool connect --tls --on-eof half-close --ca ca/ca.pem localhost:8443").await;
        first.assert_code(0);
        assert_eq!(first.stdout, b"hello\n");
        let pin_of = |text: &str| {
            text.split("key pin:")
                .nth(1)
                .map(|rest| rest.split_whitespace().next().unwrap_or_default().to_string())
        };
        let look = r.run(r"streamtool connect -z --tls --show-cert --ca ca/ca.pem localhost:8443").await;
        let old = pin_of(&look.stderr).expect("a key pin");
        let renewed = r.run(r"streamtool gen-cert --force localhost 127.0.0.1 ::1").await;
        renewed.assert_code(0);
        let said = poll_until(Duration::from_secs(10), || {
            terminator.stderr().contains("reloaded 1 certificate (a file changed)")
        })
        .await;
        assert!(said, "{}", terminator.stderr());
        let again = r.run(r"streamtool connect -z --tls --show-cert --ca ca/ca.pem localhost:8443").await;
        again.assert_code(0);
        let new = pin_of(&again.stderr).expect("a key pin");
        assert_ne!(old, new, "the renewed certificate is served");
        assert!(terminator.stderr().contains(&new), "the pin change is said:\n{}", terminator.stderr());
    });
}

/// docs/cookbook.md, "Socket activation": the recipe's `systemd-socket-activate` line
/// (systemd's launcher, as the socket unit would) passes the port to `serve systemd:echo`,
/// and the recipe's client is echoed; the unit's ExecStart is the same command.
#[test]
fn cookbook_socket_activation() {
    if !crate::support::peers::need(&["systemd-socket-activate"]) {
        return;
    }
    run(async {
        let mut r = Recipe::new("Socket activation");
        let launcher = "systemd-socket-activate -l 127.0.0.1:7000 --fdname=echo streamtool serve -k --echo systemd:echo &";
        assert!(r.text.contains(launcher), "{}", r.text);
        assert!(
            r.text.contains("ExecStart=/usr/local/bin/streamtool serve -k --echo systemd:echo"),
            "{}",
            r.text
        );
        let port = crate::support::cli::closed_port();
        r.subs.push(("7000".to_string(), port.to_string()));
        let bin = crate::support::cli::BIN;
        let address = format!("127.0.0.1:{port}");
        let args = ["-l", address.as_str(), "--fdname=echo", bin, "serve", "-k", "--echo", "systemd:echo"];
        let _launcher = Proc::spawn("systemd-socket-activate", &args, Input::Open);
        let up = poll_until(STEP, || crate::support::peers::listening(port)).await;
        assert!(up, "systemd-socket-activate did not listen on {address}:\n{}", _launcher.stderr());
        let echoed = r.run(r"printf 'hello\n' | streamtool connect localhost:7000").await;
        echoed.assert_code(0);
        assert_eq!(echoed.stdout, b"hello\n");
    });
}

/// A real DNS server for the datagram recipes: dnsmasq on 127.0.0.1 (UDP and TCP on one
/// port), answering example.com with 192.0.2.1 and nothing else; ready when its TCP port
/// accepts.
async fn dnsmasq() -> Option<(Proc, u16)> {
    if !crate::support::peers::need(&["dnsmasq"]) {
        return None;
    }
    let port = crate::support::cli::closed_port();
    let args = [
        "--keep-in-foreground".to_string(),
        "--conf-file=/dev/null".into(),
        format!("--port={port}"),
        "--listen-address=127.0.0.1".into(),
        "--bind-interfaces".into(),
        "--no-resolv".into(),
        "--no-hosts".into(),
        "--address=/example.com/192.0.2.1".into(),
        "--user=root".into(),
        "--pid-file=".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Proc::spawn("dnsmasq", &args, Input::Open);
    let up = poll_until(STEP, || crate::support::peers::listening(port)).await;
    assert!(up, "dnsmasq did not listen on {port}:\n{}", server.stderr());
    Some((server, port))
}

/// The answer of the recipes' query: ID 0x1234, a response, example.com's A record
/// 192.0.2.1 at the end.
fn assert_dns_answer(answer: &[u8]) {
    assert!(answer.len() > 29, "{answer:02x?}");
    assert_eq!(&answer[..2], &[0x12, 0x34], "{answer:02x?}");
    assert!(answer[2] & 0x80 != 0, "not a response: {answer:02x?}");
    assert_eq!(&answer[answer.len() - 4..], &[192, 0, 2, 1], "{answer:02x?}");
}

/// docs/cookbook.md, "A DNS query by hand (UDP)": dnsmasq answers the recipe's query,
/// length-prefixed both ways.
#[test]
fn cookbook_a_dns_query_by_hand() {
    run(async {
        let Some((_dns, port)) = dnsmasq().await else { return };
        let mut r = Recipe::new("A DNS query by hand");
        r.subs.push(("5300".to_string(), port.to_string()));
        let out = r.run(r"printf '\000\035\022\064\001\000\000\001\000\000\000\000\000\000\007example\003com\000\000\001\000\001' | streamtool connect -u --length-prefix 127.0.0.1:5300").await;
        out.assert_code(0);
        let length = usize::from(u16::from_be_bytes([out.stdout[0], out.stdout[1]]));
        assert_eq!(length, out.stdout.len() - 2, "one length-prefixed reply: {:02x?}", out.stdout);
        assert_dns_answer(&out.stdout[2..]);
        // A closed port: ICMP port unreachable is exit 3, named.
        r.subs.push(("5300".to_string(), crate::support::cli::closed_port().to_string()));
        r.subs.remove(0);
        let refused = r.run(r"printf '\000\035\022\064\001\000\000\001\000\000\000\000\000\000\007example\003com\000\000\001\000\001' | streamtool connect -u --length-prefix 127.0.0.1:5300").await;
        refused.assert_code(3);
        let stderr = &refused.stderr;
        assert!(
            stderr.contains("cannot connect to udp:127.0.0.1:") && stderr.contains("refused"),
            "{stderr}"
        );
    });
}

/// docs/cookbook.md, "A syslog listener": util-linux's `logger` sends two messages over
/// UDP from two sockets; both arrive, one per line.
#[test]
fn cookbook_a_syslog_listener() {
    if !crate::support::peers::need(&["logger"]) {
        return;
    }
    run(async {
        let mut r = Recipe::new("A syslog listener");
        let listener = r.listen(r"streamtool serve -u -k --delimiter '\n' 5514", "5514").await;
        let port = parse_port(&listener.stderr()).unwrap().to_string();
        let logger = "logger --server 127.0.0.1 --port 5514 --udp 'disk almost full'";
        assert!(r.text.contains(logger), "{}", r.text);
        for message in ["disk almost full", "second sender"] {
            let args = ["--server", "127.0.0.1", "--port", port.as_str(), "--udp", message];
            Proc::spawn("logger", &args, Input::Bytes(Vec::new())).finish().await.assert_code(0);
        }
        let both = || {
            let out = String::from_utf8_lossy(&listener.stdout()).to_string();
            out.lines().filter(|l| l.starts_with("<13>")).count() == 2
        };
        assert!(poll_until(STEP, both).await, "{:?}", String::from_utf8_lossy(&listener.stdout()));
        let out = String::from_utf8_lossy(&listener.stdout()).to_string();
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].ends_with("disk almost full") && lines[1].ends_with("second sender"), "{out}");
    });
}

/// docs/cookbook.md, "A UDP-to-TCP bridge": a UDP query through the bridge reaches
/// dnsmasq over TCP (DNS over TCP's length prefix added and taken off).
#[test]
fn cookbook_a_udp_to_tcp_bridge() {
    run(async {
        let Some((_dns, port)) = dnsmasq().await else { return };
        let mut r = Recipe::new("A UDP-to-TCP bridge");
        r.subs.push(("5300".to_string(), port.to_string()));
        let bridge =
            r.listen(r"streamtool pipe udp-listen:5353,fork,length-prefix tcp:127.0.0.1:5300", "5353").await;
        for _ in 0..2 {
            let out = r.run(r"printf '\022\064\001\000\000\001\000\000\000\000\000\000\007example\003com\000\000\001\000\001' | streamtool connect -u 127.0.0.1:5353").await;
            out.assert_code(0);
            assert_dns_answer(&out.stdout);
        }
        drop(bridge);
    });
}
