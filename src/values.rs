//! Parsers for option values: sizes (`64KiB`, `1M`), durations (`500ms`, `5s`, `2m`) and
//! delimiters with escapes (`\n`, `\r\n`, `\0`, `\xNN`). Each error names the value and
//! says what was expected; clap shows it as `invalid value '…' for '--flag': …`.

use std::time::Duration;

/// A count that must be 1 or more (`--max-conns 0` would refuse every client).
///
/// # Errors
/// Not a number, or 0.
pub fn at_least_one(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A server name for SNI and verification, checked before anything is connected.
///
/// # Errors
/// Empty, or not a valid DNS name or IP address.
pub fn parse_sni(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("the server name is empty (--no-sni sends none)".to_string());
    }
    crate::streams::tls::server_name(s).map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

/// One ALPN protocol name: 1 to 255 bytes (RFC 7301).
///
/// # Errors
/// Empty or too long.
pub fn parse_alpn(s: &str) -> Result<String, String> {
    match s.len() {
        0 => Err(
            "an ALPN protocol name is empty (a list is names separated by single commas, as in h2,http/1.1)"
                .to_string(),
        ),
        1..=255 => Ok(s.to_string()),
        n => Err(format!("an ALPN protocol name is {n} bytes; at most 255")),
    }
}

/// A value by its type's own parser (its `FromStr`, whose error says what is wrong).
///
/// # Errors
/// The type's own.
pub fn from_str<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
}

/// Parses a byte size: a number with an optional unit, case-insensitive: `B`, `K`/`KB`
/// (1000), `KiB` (1024), `M`/`MB`, `MiB`, `G`/`GB`, `GiB`. A bare `K`, `M`, `G` is the
/// binary unit, as in `dd` and `head -c` (`64K` = 65536).
///
/// # Errors
/// A message naming the value.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '_').unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() {
        return Err(format!("{s:?} is not a size (try 65536, 64KiB, 1M)"));
    }
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is too large"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!("{s:?}: unknown size unit {other:?} (use B, KiB, MiB, GiB, KB, MB, GB)"));
        }
    };
    let bytes = n.checked_mul(multiplier).ok_or_else(|| format!("{s:?} is too large"))?;
    let bytes = usize::try_from(bytes).map_err(|_| format!("{s:?} is too large"))?;
    if bytes == 0 {
        return Err(format!("{s:?}: the size must be at least one byte"));
    }
    Ok(bytes)
}

/// A byte count as people read it: `512 B`, `64 KiB`, `4 MiB`, `1.5 GiB`.
pub fn format_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Parses a duration: a number (decimals allowed) with a unit `ms`, `s`, `m` or `h`; a bare
/// number is seconds (`-w 5` as in nc).
///
/// # Errors
/// A message naming the value.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("{s:?} is not a duration (try 500ms, 5s, 2m)"))?;
    let seconds = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" => value / 1000.0,
        "" | "s" | "sec" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("{s:?}: unknown time unit {other:?} (use ms, s, m or h)")),
    };
    // The lower bound also keeps a tiny value from rounding to a zero Duration.
    if !seconds.is_finite() || !(0.001..=365.0 * 86_400.0).contains(&seconds) {
        return Err(format!("{s:?}: the duration must be at least 1ms and at most a year"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// An idle limit: a duration, or no limit at all (`none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleLimit(pub Option<Duration>);

/// Parses an idle limit: a duration as [`parse_duration`] takes it, or `none` (also `off`
/// or `0`) for no limit.
///
/// # Errors
/// As [`parse_duration`].
pub fn parse_idle_limit(s: &str) -> Result<IdleLimit, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "none" | "off" | "0" => Ok(IdleLimit(None)),
        _ => parse_duration(s).map(|d| IdleLimit(Some(d))),
    }
}

/// Parses a delimiter with C-style escapes: `\n`, `\r`, `\t`, `\0`, `\\`, `\xNN`. Other
/// characters stand for their UTF-8 bytes.
///
/// # Errors
/// A message for an empty delimiter, a bad escape or a bad `\x` byte.
pub fn parse_delimiter(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('0') => out.push(0),
            Some('\\') => out.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                // Both digits checked: from_str_radix alone would take "+1".
                let byte = Some(&hex)
                    .filter(|h| h.len() == 2 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("delimiter {s:?}: \\x needs two hex digits"))?;
                out.push(byte);
            }
            Some(other) => {
                return Err(format!(
                    "delimiter {s:?}: unknown escape, \\ then {other:?} (use \\n, \\r, \\t, \\0, \\\\ or \\xNN)"
                ));
            }
            None => return Err(format!("delimiter {s:?} ends with a lone backslash")),
        }
    }
    if out.is_empty() {
        return Err("the delimiter must not be empty".to_string());
    }
    Ok(out)
}

/// Parses a period for certificate lifetimes: a whole number with a unit `s`, `m`, `h`,
/// `d` (days) or `w` (weeks), at most 100 years (`30d`, `2w`, `12h`; `0d` is now). The
/// unit is required: `30` alone could mean seconds or days.
///
/// # Errors
/// A message naming the value.
pub fn parse_period(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: u64 = number.parse().map_err(|_| format!("{s:?} is not a period (try 30d, 2w, 12h)"))?;
    let unit_seconds: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "" => return Err(format!("{s:?}: the period needs a unit (s, m, h, d or w: 30d)")),
        other => return Err(format!("{s:?}: unknown unit {other:?} (use s, m, h, d or w)")),
    };
    match value.checked_mul(unit_seconds) {
        Some(seconds) if seconds <= 100 * 366 * 86_400 => Ok(Duration::from_secs(seconds)),
        _ => Err(format!("{s:?}: the period must be at most 100 years")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_escapes_need_two_hex_digits() {
        assert_eq!(parse_delimiter("\\x0a"), Ok(vec![b'\n']));
        for bad in ["\\x+1", "\\x-1", "\\x1", "\\x", "\\xg0"] {
            let err = parse_delimiter(bad).unwrap_err();
            assert!(err.contains("two hex digits"), "{bad}: {err}");
        }
        let err = parse_delimiter("a\\\r").unwrap_err();
        assert!(!err.contains('\r') && err.contains("unknown escape"), "{err:?}");
    }

    #[test]
    fn sizes() {
        for (text, bytes) in [
            ("65536", 65536),
            ("64KiB", 65536),
            ("64k", 65536),
            ("1M", 1 << 20),
            ("1MB", 1_000_000),
            ("2 GiB", 2 << 30),
            ("1_000", 1000),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "KiB", "-1", "1.5M", "12XB", "0", "99999999999999999999"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        for (text, ms) in
            [("500ms", 500), ("5s", 5000), ("5", 5000), ("2m", 120_000), ("1.5s", 1500), ("1h", 3_600_000)]
        {
            assert_eq!(parse_duration(text).map(|d| d.as_millis()), Ok(ms), "{text}");
        }
        for bad in ["", "s", "5 days", "-1s", "0", "nan", "1e9s", "0.5ms", "0.0000000000001"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn delimiters() {
        assert_eq!(parse_delimiter(r"\n").unwrap(), b"\n");
        assert_eq!(parse_delimiter(r"\r\n").unwrap(), b"\r\n");
        assert_eq!(parse_delimiter(r"\0").unwrap(), b"\0");
        assert_eq!(parse_delimiter(r"\x1e").unwrap(), b"\x1e");
        assert_eq!(parse_delimiter("END").unwrap(), b"END");
        assert_eq!(parse_delimiter(r"a\\b").unwrap(), b"a\\b");
        for bad in ["", r"\", r"\q", r"\x1", r"\xZZ"] {
            assert!(parse_delimiter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn periods_take_days_and_weeks_and_need_a_unit() {
        assert_eq!(parse_period("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_period("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_period("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_period("0d"), Ok(Duration::ZERO));
        assert_eq!(parse_period("30").unwrap_err(), "\"30\": the period needs a unit (s, m, h, d or w: 30d)");
        assert!(parse_period("3y").unwrap_err().contains("unknown unit \"y\""));
        assert!(parse_period("99999w").unwrap_err().contains("at most 100 years"));
        assert!(parse_period("d").unwrap_err().contains("is not a period"));
    }
}
