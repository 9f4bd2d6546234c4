//! What differs between the platforms streamtool builds for (Linux, macOS, FreeBSD,
//! Windows), where it is not in a module of its own: small helpers, and the one line a
//! feature the platform lacks is refused with. docs/platforms.md has the table.

/// This machine's name as `hostname` prints it; empty if unknown.
pub fn host_name() -> String {
    #[cfg(unix)]
    let name = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok());
    #[cfg(not(unix))]
    let name = std::env::var("COMPUTERNAME").ok();
    name.map(|h| h.trim().to_string()).unwrap_or_default()
}

/// The platform's name in messages: `macOS`, `FreeBSD`, `Windows`, `Linux`, or
/// `std::env::consts::OS`.
pub fn name() -> &'static str {
    match std::env::consts::OS {
        "macos" => "macOS",
        "freebsd" => "FreeBSD",
        "windows" => "Windows",
        "linux" => "Linux",
        other => other,
    }
}

/// The error for a feature this platform lacks: `WHAT is not available on PLATFORM`, plus
/// `hint` (what to use instead) when it is not empty.
pub fn unsupported(what: &str, hint: &str) -> std::io::Error {
    let mut message = format!("{what} is not available on {}", name());
    if !hint.is_empty() {
        message.push_str(": ");
        message.push_str(hint);
    }
    std::io::Error::new(std::io::ErrorKind::Unsupported, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_name_is_the_machines() {
        let name = host_name();
        #[cfg(target_os = "linux")]
        {
            let proc = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            assert_eq!(name, proc.trim());
        }
        assert!(!name.contains('\n'));
    }

    #[test]
    fn unsupported_names_the_platform() {
        let err = unsupported("UNIX sockets", "use tcp:");
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
        assert_eq!(err.to_string(), format!("UNIX sockets is not available on {}: use tcp:", name()));
    }
}
