//! What a long-running client or listener needs beyond the connection itself (issue 23):
//! the source address a client connects from (`--source`, `source=`), TCP keepalive
//! (`--keepalive`, `keepalive`), several processes on one port (`--reuse-port`,
//! `reuse-port`) and retrying a connect that failed (`--retry`, `--retry-delay`, `retry=`,
//! `retry-delay=`, `retry=forever`), and who may connect to a listener (`--allow`,
//! `--deny`, `--allow-file`, `--deny-file` and their endpoint options).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::proxy_protocol::Cidr;
use crate::streams::Address;

/// TCP keepalive's idle time when none is given.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);

/// The longest wait between two attempts: the delay doubles up to it.
pub const RETRY_DELAY_MAX: Duration = Duration::from_secs(30);

/// Retrying a connect that failed (refused, unreachable, timed out; never a TLS failure:
/// the same server would fail the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts after the first; `None`: for ever.
    pub attempts: Option<u32>,
    /// The wait before the first retry (it doubles, up to [`RETRY_DELAY_MAX`]).
    pub delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: Some(0), delay: Duration::from_secs(1) }
    }
}

impl Retry {
    /// `N` or `forever`, keeping a delay already given.
    ///
    /// # Errors
    /// Not a number or `forever`.
    pub fn parse(value: &str, delay: Option<Duration>) -> Result<Retry, String> {
        let attempts = match value {
            "forever" => None,
            n => Some(n.parse().map_err(|_| format!("retry={n}: a number of attempts, or forever"))?),
        };
        Ok(Retry { attempts, delay: delay.unwrap_or(Retry::default().delay) })
    }

    /// The wait before retry number `n` (from 1), or `None` when no retry is left.
    pub fn wait_before(&self, n: u32) -> Option<Duration> {
        if self.attempts.is_some_and(|max| n > max) {
            return None;
        }
        let doubled = self.delay.saturating_mul(1u32 << (n.saturating_sub(1)).min(16));
        Some(doubled.min(RETRY_DELAY_MAX.max(self.delay)))
    }

    /// "3 of 5" or "3" (for ever).
    pub fn describe(&self, n: u32) -> String {
        match self.attempts {
            Some(max) => format!("retry {n} of {max}"),
            None => format!("retry {n}"),
        }
    }
}

/// `ADDR` or `ADDR:PORT` (`[V6]:PORT`): the address a client connects from.
///
/// # Errors
/// Not an IP address, with an optional port.
pub fn parse_source(value: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip = value.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0)).map_err(|_| {
        format!("{value:?} is not a source address: an IP address, or ADDR:PORT ([::1]:PORT for IPv6)")
    })
}

/// `keepalive` (60 s) or `keepalive=IDLE`.
///
/// # Errors
/// A duration that does not parse, or is under a second.
pub fn parse_keepalive(value: Option<&str>) -> Result<Duration, String> {
    let Some(value) = value.filter(|v| !v.is_empty()) else { return Ok(KEEPALIVE_IDLE) };
    let idle = crate::values::parse_duration(value)?;
    if idle < Duration::from_secs(1) {
        return Err(format!("keepalive={value}: at least 1s (TCP counts in seconds)"));
    }
    Ok(idle)
}

/// Who may connect to a listener, by the client's address: checked for each accepted
/// connection before anything is read or written (before a PROXY header or a TLS
/// handshake). A client in a `deny` block is refused; with `allow` blocks, a client in
/// none of them is refused too. UNIX sockets have no address to check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessList {
    /// `--allow CIDR` (`allow=`).
    pub allow: Vec<Cidr>,
    /// `--deny CIDR` (`deny=`).
    pub deny: Vec<Cidr>,
    /// `--allow-file FILE` (`allow-file=`): one block per line, `#` comments.
    pub allow_files: Vec<PathBuf>,
    /// `--deny-file FILE` (`deny-file=`).
    pub deny_files: Vec<PathBuf>,
}

impl AccessList {
    /// Whether any block or file is given.
    pub fn is_on(&self) -> bool {
        !(self.allow.is_empty()
            && self.deny.is_empty()
            && self.allow_files.is_empty()
            && self.deny_files.is_empty())
    }

    /// The blocks given and those of the files, read now.
    ///
    /// # Errors
    /// A file that cannot be read, or a line that is not an address block, named with its
    /// line number.
    pub fn loaded(&self) -> Result<AccessList, String> {
        let mut list =
            AccessList { allow: self.allow.clone(), deny: self.deny.clone(), ..Default::default() };
        for (files, blocks) in [(&self.allow_files, &mut list.allow), (&self.deny_files, &mut list.deny)] {
            for file in files {
                blocks.extend(read_blocks(file)?);
            }
        }
        Ok(list)
    }
}

/// The address blocks of a file: one per line; blank lines and `#` comments skipped.
fn read_blocks(file: &std::path::Path) -> Result<Vec<Cidr>, String> {
    let name = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {name}: {e}"))?;
    let mut blocks = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if !line.is_empty() {
            blocks.push(line.parse::<Cidr>().map_err(|e| format!("{name} line {}: {e}", n + 1))?);
        }
    }
    Ok(blocks)
}

impl crate::streams::listener::Admission for AccessList {
    fn admit(&self, peer: &Address) -> Result<(), String> {
        let Address::Inet(peer) = peer else { return Ok(()) };
        if let Some(block) = self.deny.iter().find(|b| b.contains(peer.ip())) {
            return Err(format!("denied ({block})"));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|b| b.contains(peer.ip())) {
            return Err("not in an allowed block".to_string());
        }
        Ok(())
    }
}

/// `--source`, `--keepalive`, `--reuse-port`, `--retry`, `--retry-delay`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Running as a service")]
pub struct ServiceArgs {
    /// connect: connect from this local address (and port): ADDR or ADDR:PORT (IPv6 with a
    /// port in brackets).
    #[arg(long, value_name = "ADDR[:PORT]", value_parser = parse_source)]
    pub source: Option<SocketAddr>,

    /// TCP keepalive on each connection: a probe after IDLE without traffic (default 60s),
    /// so that a peer that vanished is noticed and a NAT keeps the mapping.
    #[arg(long, value_name = "IDLE", num_args = 0..=1, require_equals = true, default_missing_value = "60s", value_parser = |v: &str| parse_keepalive(Some(v)))]
    pub keepalive: Option<Duration>,

    /// serve: SO_REUSEPORT, so that several processes listen on one port (more cores, or a
    /// new process started before the old one drains; docs/cli.md, "Rolling restarts").
    #[arg(long)]
    pub reuse_port: bool,

    /// connect: after a failed connect (refused, unreachable, timed out), try N more times
    /// (or forever), each failure said.
    #[arg(long, value_name = "N", value_parser = |v: &str| Retry::parse(v, None))]
    pub retry: Option<Retry>,

    /// The wait before the first retry (default 1s); it doubles up to 30s.
    #[arg(long, value_name = "DURATION", requires = "retry", value_parser = crate::values::parse_duration)]
    pub retry_delay: Option<Duration>,

    /// serve: only clients from these address blocks (10.0.0.0/8, ::1, 192.0.2.7);
    /// repeatable, or comma-separated. Checked before anything is read or sent.
    #[arg(long, value_name = "CIDR", value_delimiter = ',', value_parser = crate::values::from_str::<Cidr>)]
    pub allow: Vec<Cidr>,

    /// serve: refuse clients from these address blocks (before --allow).
    #[arg(long, value_name = "CIDR", value_delimiter = ',', value_parser = crate::values::from_str::<Cidr>)]
    pub deny: Vec<Cidr>,

    /// serve: --allow's blocks from a file, one per line (# comments).
    #[arg(long, value_name = "FILE")]
    pub allow_file: Vec<PathBuf>,

    /// serve: --deny's blocks from a file, one per line (# comments).
    #[arg(long, value_name = "FILE")]
    pub deny_file: Vec<PathBuf>,
}

impl ServiceArgs {
    /// The options these flags set (the others left to their defaults).
    pub fn options(&self) -> crate::endpoint::EndpointOptions {
        crate::endpoint::EndpointOptions {
            source: self.source,
            keepalive: self.keepalive,
            reuse_port: self.reuse_port,
            retry: self.retry.map(|r| Retry { delay: self.retry_delay.unwrap_or(r.delay), ..r }),
            access: AccessList {
                allow: self.allow.clone(),
                deny: self.deny.clone(),
                allow_files: self.allow_file.clone(),
                deny_files: self.deny_file.clone(),
            },
            ..Default::default()
        }
    }

    /// A flag `command` would not use is refused by name (`serve --source`, `connect
    /// --reuse-port`), as every such flag is.
    ///
    /// # Errors
    /// The usage error's words.
    pub fn check(&self, command: &str) -> Result<(), String> {
        if self.reuse_port {
            crate::platform::Feature::ReusePort.check()?;
        }
        let refused = match command {
            "serve" if self.source.is_some() => "--source",
            "serve" if self.retry.is_some() => "--retry",
            "connect" if !(self.allow.is_empty() && self.deny.is_empty()) => "--allow/--deny",
            "connect" if !(self.allow_file.is_empty() && self.deny_file.is_empty()) => {
                "--allow-file/--deny-file"
            }
            "connect" if self.reuse_port => "--reuse-port",
            _ => return Ok(()),
        };
        Err(format!("{refused} does not apply to {command}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_retries_and_keepalive_parse() {
        assert_eq!(parse_source("127.0.0.2").unwrap(), "127.0.0.2:0".parse().unwrap());
        assert_eq!(parse_source("127.0.0.2:4000").unwrap(), "127.0.0.2:4000".parse().unwrap());
        assert_eq!(parse_source("[::1]:4000").unwrap(), "[::1]:4000".parse().unwrap());
        assert_eq!(parse_source("::1").unwrap(), "[::1]:0".parse().unwrap());
        assert!(parse_source("localhost").unwrap_err().contains("not a source address"));
        let r = Retry::parse("3", Some(Duration::from_millis(100))).unwrap();
        let waits: Vec<_> = (1..=4).map(|n| r.wait_before(n)).collect();
        assert_eq!(
            waits,
            [
                Some(Duration::from_millis(100)),
                Some(Duration::from_millis(200)),
                Some(Duration::from_millis(400)),
                None
            ]
        );
        let forever = Retry::parse("forever", Some(Duration::from_secs(10))).unwrap();
        assert_eq!(forever.wait_before(1000), Some(RETRY_DELAY_MAX));
        assert!(Retry::parse("x", None).is_err());
        assert_eq!(parse_keepalive(None).unwrap(), KEEPALIVE_IDLE);
        assert_eq!(parse_keepalive(Some("5s")).unwrap(), Duration::from_secs(5));
        assert!(parse_keepalive(Some("10ms")).is_err());
    }
}
