//! The dependency rule (docs/architecture.md): `streams` imports nothing outside itself.
//!
//! Every file under `src/streams/` is scanned for a path that leaves the layer: a
//! `crate::` path (in code or in a doc comment's link) whose next segment is not
//! `streams` (`use crate::server::…`, an inline `crate::relay::Flow`, `use crate::{…}`,
//! `$crate::…`), and a chain of `super::` long enough to climb out of `streams` (counting
//! the file's place in the module tree and the inline modules around the path). Plain
//! `//` comments and string literals are not code and are skipped.

use std::path::{Path, PathBuf};

/// One path leaving the layer: the file (relative to `src/`), the line and what it says.
#[derive(Debug, PartialEq, Eq)]
struct Escape {
    file: String,
    line: usize,
    what: String,
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// How deep the file's module is below the crate root: `streams/mod.rs` is 1
/// (`streams`), `streams/abc.rs` and `streams/tls/mod.rs` 2, `streams/tls/config.rs` 3.
fn module_depth(file: &str) -> usize {
    let parts: Vec<&str> = file.trim_end_matches(".rs").split('/').collect();
    if parts.last() == Some(&"mod") { parts.len() - 1 } else { parts.len() }
}

/// The source with comments and the contents of string and char literals blanked out
/// (newlines kept, so lines still count), and the doc comments' lines on their own.
fn split_code_and_docs(src: &str) -> (Vec<u8>, Vec<(usize, String)>) {
    let b = src.as_bytes();
    let mut code = b.to_vec();
    let mut docs = Vec::new();
    let blank = |code: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut code[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').map_or(b.len(), |p| i + p);
            if rest.starts_with(b"///") || rest.starts_with(b"//!") {
                let line = b[..i].iter().filter(|&&c| c == b'\n').count() + 1;
                docs.push((line, src[i..end].to_string()));
            }
            blank(&mut code, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let end = src[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
            blank(&mut code, i, end);
            i = end;
        } else if (rest.starts_with(b"r\"") || rest.starts_with(b"r#")) && (i == 0 || !is_ident(b[i - 1])) {
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            if rest.get(1 + hashes) != Some(&b'"') {
                i += 1;
                continue;
            }
            let close = format!("\"{}", "#".repeat(hashes));
            let start = i + 2 + hashes;
            let end = src[start..].find(&close).map_or(b.len(), |p| start + p + close.len());
            blank(&mut code, start, end);
            i = end;
        } else if rest[0] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut code, i + 1, j.min(b.len()));
            i = j + 1;
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{7f}') or a lifetime ('a): only literals close.
            if rest.get(1) == Some(&b'\\') {
                let end = rest[2..].iter().position(|&c| c == b'\'').map_or(b.len(), |p| i + 2 + p + 1);
                blank(&mut code, i, end);
                i = end;
            } else if let Some(c) = src[i + 1..].chars().next()
                && src[i + 1 + c.len_utf8()..].starts_with('\'')
            {
                let end = i + 1 + c.len_utf8() + 1;
                blank(&mut code, i, end);
                i = end;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    (code, docs)
}

/// `crate::` at `at` (or `$crate::`): the segment after it, if it is not `streams`.
fn crate_path_escape(text: &[u8], at: usize) -> Option<String> {
    if at > 0 && is_ident(text[at - 1]) {
        return None;
    }
    let mut j = at + "crate::".len();
    while j < text.len() && text[j].is_ascii_whitespace() {
        j += 1;
    }
    let start = j;
    while j < text.len() && is_ident(text[j]) {
        j += 1;
    }
    let segment = &text[start..j];
    if segment == b"streams" {
        return None;
    }
    let shown = if segment.is_empty() {
        text.get(start).map_or(String::new(), |&c| (c as char).to_string())
    } else {
        String::from_utf8_lossy(segment).into_owned()
    };
    Some(format!("crate::{shown}"))
}

fn find_all(text: &[u8], needle: &[u8]) -> Vec<usize> {
    text.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect()
}

fn line_of(text: &[u8], at: usize) -> usize {
    text[..at].iter().filter(|&&c| c == b'\n').count() + 1
}

/// Every path in `src` (the file `file`, relative to `src/`) that leaves `streams`.
fn escapes(file: &str, src: &str) -> Vec<Escape> {
    let (code, docs) = split_code_and_docs(src);
    let mut found = Vec::new();
    let mut push = |line: usize, what: String| found.push(Escape { file: file.to_string(), line, what });

    for at in find_all(&code, b"crate::") {
        if let Some(what) = crate_path_escape(&code, at) {
            push(line_of(&code, at), what);
        }
    }
    for (line, doc) in &docs {
        for at in find_all(doc.as_bytes(), b"crate::") {
            if let Some(what) = crate_path_escape(doc.as_bytes(), at) {
                push(*line, format!("{what} (in a doc comment)"));
            }
        }
    }

    // `super::` chains, against the depth of the module they are written in: the file's
    // own depth plus the inline `mod name { … }` blocks open around them.
    let depth = module_depth(file);
    let mut braces = 0usize;
    let mut inline_mods: Vec<usize> = Vec::new();
    let mut pending_mod = false;
    let mut i = 0;
    while i < code.len() {
        let c = code[i];
        if is_ident(c) && (i == 0 || !is_ident(code[i - 1])) {
            let start = i;
            while i < code.len() && is_ident(code[i]) {
                i += 1;
            }
            let word = &code[start..i];
            if word == b"mod" {
                pending_mod = true;
            } else if word == b"super" && code[i..].starts_with(b"::") {
                let mut supers = 1;
                let mut j = i;
                while code[j..].starts_with(b"::super") && !code.get(j + 7).is_some_and(|&c| is_ident(c)) {
                    supers += 1;
                    j += 7;
                }
                if supers >= depth + inline_mods.len() {
                    push(
                        line_of(&code, start),
                        format!("{} climbs out of streams", "super::".repeat(supers)),
                    );
                }
                i = j;
            }
            continue;
        }
        match c {
            b'{' => {
                braces += 1;
                if pending_mod {
                    inline_mods.push(braces);
                }
                pending_mod = false;
            }
            b'}' => {
                if inline_mods.last() == Some(&braces) {
                    inline_mods.pop();
                }
                braces = braces.saturating_sub(1);
            }
            b';' => pending_mod = false,
            _ => {}
        }
        i += 1;
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn streams_refers_to_nothing_outside_itself() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src.join("streams"), &mut files);
    files.sort();
    assert!(files.len() > 10, "src/streams/ not found or nearly empty: {files:?}");
    let mut found = Vec::new();
    for path in &files {
        let file = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        found.extend(escapes(&file, &std::fs::read_to_string(path).unwrap()));
    }
    let listed: Vec<String> =
        found.iter().map(|e| format!("src/{}:{}: {}", e.file, e.line, e.what)).collect();
    assert!(
        found.is_empty(),
        "streams must not depend on the rest of the crate (docs/architecture.md, the dependency rule):\n{}",
        listed.join("\n")
    );
}

#[test]
fn the_layering_check_catches_each_way_out_of_streams() {
    let count = |file: &str, src: &str| escapes(file, src).len();
    // Imports and inline paths into the rest of the crate.
    assert_eq!(count("streams/tls/listener.rs", "use crate::server::{serve, ServeOptions};\n"), 1);
    assert_eq!(count("streams/socket.rs", "fn f() -> u8 {\n    crate::relay::Flow::default();\n}\n"), 1);
    assert_eq!(count("streams/socket.rs", "use crate::{server, streams};\n"), 1);
    assert_eq!(count("streams/socket.rs", "macro_rules! m { () => { $crate::relay::x() } }\n"), 1);
    assert_eq!(count("streams/socket.rs", "/// See [`crate::server::serve`].\nfn f() {}\n"), 1);
    assert_eq!(escapes("streams/abc.rs", "\n\nuse crate::certs;\n")[0].line, 3);
    // `super::` chains, by the depth of the module they are written in.
    assert_eq!(count("streams/mod.rs", "use super::relay;\n"), 1);
    assert_eq!(count("streams/abc.rs", "use super::super::relay;\n"), 1);
    assert_eq!(count("streams/tls/verify.rs", "use super::super::super::relay::Flow;\n"), 1);
    assert_eq!(count("streams/tls/mod.rs", "fn f() { super::super::server::serve(); }\n"), 1);
    assert_eq!(
        count("streams/tls/verify.rs", "mod tests {\n    use super::super::super::super::certs;\n}\n"),
        1
    );
    // Paths that stay inside.
    assert_eq!(count("streams/tls/verify.rs", "use super::super::memory;\nuse super::Pin;\n"), 0);
    assert_eq!(count("streams/tls/verify.rs", "mod tests {\n    use super::super::super::memory;\n}\n"), 0);
    assert_eq!(count("streams/abc.rs", "use super::memory;\nuse crate::streams::error::StreamError;\n"), 0);
    assert_eq!(count("streams/abc.rs", "pub(crate) fn f() {}\npub(in crate::streams) fn g() {}\n"), 0);
    assert_eq!(count("streams/mod.rs", "pub(super) fn f() {}\n"), 0);
    // Not code: plain comments, strings, char literals (a '{' does not open a module).
    assert_eq!(count("streams/abc.rs", "// crate::server, super::super::x\nfn f() {}\n"), 0);
    assert_eq!(
        count("streams/abc.rs", "const S: &str = \"crate::relay\";\nconst R: &str = r#\"crate::x\"#;\n"),
        0
    );
    assert_eq!(count("streams/abc.rs", "mod m { const C: char = '{'; }\nuse super::super::x;\n"), 1);
    assert_eq!(count("streams/abc.rs", "fn f<'a>(x: &'a str) {}\nuse crate::values;\n"), 1);
}

/// The layers above `streams`, lowest first: a module may name modules of its own layer
/// and below, never above (docs/architecture.md, the dependency rule). `job` runs
/// connections (it uses `server` and `stack`); `server` accepts them (it uses `stack` to
/// hand over what it accepted); `stack` builds one endpoint from its options.
const LAYERS: &[(&str, &[&str])] = &[
    ("stack", &["job", "server", "shutdown"]),
    ("server.rs", &["job", "shutdown"]),
    ("relay.rs", &["job", "server", "stack", "shutdown"]),
    ("splice.rs", &["job", "server", "stack", "shutdown"]),
    ("event.rs", &["job", "server", "stack", "shutdown"]),
    ("tap", &["job", "server", "stack", "shutdown", "endpoint"]),
];

/// The `crate::` paths of a file's code (comments and strings left out), by first segment.
fn crate_paths(src: &str) -> Vec<(usize, String)> {
    let (code, _) = split_code_and_docs(src);
    find_all(&code, b"crate::")
        .into_iter()
        .filter(|&at| at == 0 || !is_ident(code[at - 1]))
        .map(|at| {
            let rest = &code[at + "crate::".len()..];
            let len = rest.iter().take_while(|&&c| is_ident(c)).count();
            (line_of(&code, at), String::from_utf8_lossy(&rest[..len]).into_owned())
        })
        .collect()
}

#[test]
fn the_layers_above_streams_point_down_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for (module, above) in LAYERS {
        let path = src.join(module);
        let mut files = Vec::new();
        if path.is_dir() {
            rust_files(&path, &mut files);
        } else {
            files.push(path.clone());
        }
        assert!(!files.is_empty() && files.iter().all(|f| f.exists()), "src/{module} not found");
        for file in files {
            for (line, segment) in crate_paths(&std::fs::read_to_string(&file).unwrap()) {
                if above.contains(&segment.as_str()) {
                    found.push(format!("{}:{line}: crate::{segment}", file.display()));
                }
            }
        }
    }
    assert!(found.is_empty(), "a lower layer names a higher one:\n{}", found.join("\n"));
    // The check sees what it looks for.
    assert_eq!(crate_paths("use crate::job::pipe::End;\n// crate::server\n"), vec![(1, "job".to_string())]);
}
