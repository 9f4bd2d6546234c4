//! Escaping text a peer or a certificate controls before it reaches a terminal or a log
//! line: a certificate's subject, a host name or a path from the command line.
//!
//! Control characters (C0, DEL, C1) become `\xNN` (below 0x80) or `\u{NN}`; so do the
//! Unicode bidirectional overrides and isolates, which reorder what a terminal shows. A
//! backslash stays as it is. JSON output needs none of this: serde_json escapes control
//! characters itself.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal raw.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character escaped (see the module); borrowed when nothing is.
pub fn escape_control(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    if !needs_escape(c) {
        out.push(c);
    } else if (c as u32) < 0x80 {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

/// A line of log output with its control characters escaped, except the final newline,
/// tabs, and (when `keep_sgr`) the colour sequences `ESC [ digits ; ... m` that the
/// logger itself adds on a terminal.
pub fn escape_log_line(line: &str, keep_sgr: bool) -> Cow<'_, str> {
    let body = line.strip_suffix('\n').unwrap_or(line);
    let plain = |c: char| c == '\t' || !needs_escape(c);
    if body.chars().all(|c| plain(c) || (keep_sgr && c == '\x1b')) && (!keep_sgr || sgr_only(body)) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 16);
    let mut rest = body;
    while let Some(c) = rest.chars().next() {
        if keep_sgr && c == '\x1b' {
            let len = sgr_len(rest);
            if len > 0 {
                out.push_str(&rest[..len]);
                rest = &rest[len..];
                continue;
            }
        }
        if c == '\t' {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
        rest = &rest[c.len_utf8()..];
    }
    if body.len() < line.len() {
        out.push('\n');
    }
    Cow::Owned(out)
}

/// Whether every ESC in `s` starts a colour sequence.
fn sgr_only(s: &str) -> bool {
    s.match_indices('\x1b').all(|(i, _)| sgr_len(&s[i..]) > 0)
}

/// The length of the colour sequence `s` starts with (`ESC [ [0-9;]* m`), or 0.
fn sgr_len(s: &str) -> usize {
    let Some(params) = s.strip_prefix("\x1b[") else { return 0 };
    let digits = params.bytes().take_while(|b| b.is_ascii_digit() || *b == b';').count();
    if params.as_bytes().get(digits) == Some(&b'm') { 2 + digits + 1 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_text_is_not() {
        assert_eq!(escape_control("www.example.com"), "www.example.com");
        assert_eq!(escape_control("a\x1b[2Jb\x07\nc"), "a\\x1b[2Jb\\x07\\x0ac");
        assert_eq!(escape_control("\u{9b}31m \u{202e}"), "\\u{9b}31m \\u{202e}");
        assert_eq!(escape_control("caf\u{e9}"), "caf\u{e9}");
    }

    #[test]
    fn log_lines_keep_their_newline_tabs_and_colours_only() {
        assert_eq!(escape_log_line("x\ty\n", false), "x\ty\n");
        assert_eq!(escape_log_line("a\nstreamtool: b\n", false), "a\\x0astreamtool: b\n");
        assert_eq!(escape_log_line("\x1b[31mred\x1b[0m\n", true), "\x1b[31mred\x1b[0m\n");
        assert_eq!(escape_log_line("\x1b]0;title\x07\n", true), "\\x1b]0;title\\x07\n");
        assert_eq!(escape_log_line("\x1b[31m\n", false), "\\x1b[31m\n");
    }
}
