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

/// The error for a feature this platform lacks: `WHAT: not available on PLATFORM`, plus
/// `; HINT` (what to use instead) when `hint` is not empty.
pub fn unsupported(what: &str, hint: &str) -> std::io::Error {
    let mut message = format!("{what}: not available on {}", name());
    if !hint.is_empty() {
        message.push_str("; ");
        message.push_str(hint);
    }
    std::io::Error::new(std::io::ErrorKind::Unsupported, message)
}

/// The effective user id, for the ownership checks of private files; Windows has none
/// (files there are checked by nobody's uid: 0, matching [`fs`]'s metadata).
pub fn euid() -> u32 {
    #[cfg(unix)]
    return nix::unistd::geteuid().as_raw();
    #[cfg(not(unix))]
    0
}

/// A socket's descriptor (`AsFd` on POSIX, `AsSocket` on Windows), for socket2's
/// `SockRef` and for [`clone_socket`].
#[cfg(unix)]
pub use std::os::fd::{AsFd as AsSocketHandle, OwnedFd as OwnedSocketHandle};
/// A socket's descriptor (`AsFd` on POSIX, `AsSocket` on Windows), for socket2's
/// `SockRef` and for [`clone_socket`].
#[cfg(windows)]
pub use std::os::windows::io::{AsSocket as AsSocketHandle, OwnedSocket as OwnedSocketHandle};

/// A second descriptor of the same socket (dup(2), or WSADuplicateSocket on Windows).
///
/// # Errors
/// The OS's (out of descriptors).
pub fn clone_socket(socket: &impl AsSocketHandle) -> std::io::Result<OwnedSocketHandle> {
    #[cfg(unix)]
    return socket.as_fd().try_clone_to_owned();
    #[cfg(windows)]
    socket.as_socket().try_clone_to_owned()
}

/// Whether this process may write `path`: access(2) with W_OK; on Windows, whether it
/// exists and is not read-only.
///
/// # Errors
/// Why not, as the OS says it (permission denied, read-only file system).
pub fn writable(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    return nix::unistd::access(path, nix::unistd::AccessFlags::W_OK).map_err(std::io::Error::from);
    #[cfg(not(unix))]
    match std::fs::metadata(path)?.permissions().readonly() {
        true => Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, "read-only")),
        false => Ok(()),
    }
}

/// The refusal of UNIX sockets where tokio has none (Windows).
pub fn no_unix_sockets() -> std::io::Error {
    Feature::UnixSockets.refusal()
}

/// A feature some platform lacks (Windows, all of these); docs/platforms.md has the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `unix:`, `unix-listen:`, `unix-dgram:`, `connect -u unix:`, `serve -u unix:`
    /// (tokio has no UNIX sockets on Windows).
    UnixSockets,
    /// A command line run through `sh -c` (`exec:`, `--sh-exec`).
    Shell,
    /// SO_REUSEPORT (`--reuse-port`, `reuse-port`).
    ReusePort,
    /// Listening sockets passed by a service manager (`systemd`, `systemd:NAME`).
    SocketActivation,
}

impl Feature {
    /// Whether this platform has it: every POSIX platform has all of them.
    pub fn available(self) -> bool {
        cfg!(unix)
    }

    /// The one line that refuses it ([`unsupported`]).
    pub fn refusal(self) -> std::io::Error {
        match self {
            Feature::UnixSockets => unsupported(
                "UNIX sockets (unix:, unix-listen:, unix-dgram:)",
                "use TCP or UDP on 127.0.0.1 instead",
            ),
            Feature::Shell => {
                unsupported("a command through sh (exec:, --sh-exec)", "use --exec PROGRAM [ARGS]")
            }
            Feature::ReusePort => unsupported("--reuse-port (SO_REUSEPORT)", ""),
            Feature::SocketActivation => {
                unsupported("socket activation (systemd, systemd:NAME)", "give an address to listen on")
            }
        }
    }

    /// For usage checks: `Err(the line)` where it is not available.
    ///
    /// # Errors
    /// The refusal's text.
    pub fn check(self) -> Result<(), String> {
        if self.available() { Ok(()) } else { Err(self.refusal().to_string()) }
    }
}

/// `std::os::unix::fs`'s permission and identity extensions, or on Windows stand-ins:
/// modes are not set (a new file gets its directory's ACL, the user profile's private one)
/// and metadata reads as this user's, private, with no inode, no socket files.
pub mod fs {
    #[cfg(unix)]
    pub use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};

    #[cfg(not(unix))]
    pub use self::stand_in::*;

    #[cfg(not(unix))]
    mod stand_in {
        /// `mode` for directories: ignored.
        pub trait DirBuilderExt {
            /// Ignored.
            fn mode(&mut self, mode: u32) -> &mut Self;
        }
        impl DirBuilderExt for std::fs::DirBuilder {
            fn mode(&mut self, _mode: u32) -> &mut Self {
                self
            }
        }
        /// `mode` and `custom_flags` for files: ignored.
        pub trait OpenOptionsExt {
            /// Ignored.
            fn mode(&mut self, mode: u32) -> &mut Self;
            /// Ignored.
            fn custom_flags(&mut self, flags: i32) -> &mut Self;
        }
        impl OpenOptionsExt for std::fs::OpenOptions {
            fn mode(&mut self, _mode: u32) -> &mut Self {
                self
            }
            fn custom_flags(&mut self, _flags: i32) -> &mut Self {
                self
            }
        }
        /// A file's owner and mode: this user's, private (0700 for a directory, 0600
        /// otherwise); no device or inode numbers.
        pub trait MetadataExt {
            /// Always 0 (as `euid`).
            fn uid(&self) -> u32;
            /// 0o700 or 0o600.
            fn mode(&self) -> u32;
            /// 0.
            fn dev(&self) -> u64;
            /// 0.
            fn ino(&self) -> u64;
        }
        impl MetadataExt for std::fs::Metadata {
            fn uid(&self) -> u32 {
                0
            }
            fn mode(&self) -> u32 {
                if self.is_dir() { 0o700 } else { 0o600 }
            }
            fn dev(&self) -> u64 {
                0
            }
            fn ino(&self) -> u64 {
                0
            }
        }
        /// Socket files do not exist.
        pub trait FileTypeExt {
            /// false.
            fn is_socket(&self) -> bool;
        }
        impl FileTypeExt for std::fs::FileType {
            fn is_socket(&self) -> bool {
                false
            }
        }
    }
}

/// `O_NOFOLLOW` for [`fs::OpenOptionsExt::custom_flags`] (0, ignored, on Windows).
#[cfg(unix)]
pub const O_NOFOLLOW: i32 = nix::libc::O_NOFOLLOW;
/// `O_NOFOLLOW` for [`fs::OpenOptionsExt::custom_flags`] (0, ignored, on Windows).
#[cfg(not(unix))]
pub const O_NOFOLLOW: i32 = 0;

/// SIGTERM, or on Windows its stand-in: Ctrl-Break (there are no POSIX signals there).
#[cfg(unix)]
pub type TermSignal = tokio::signal::unix::Signal;
/// SIGTERM, or on Windows its stand-in: Ctrl-Break (there are no POSIX signals there).
#[cfg(windows)]
pub type TermSignal = tokio::signal::windows::CtrlBreak;

/// SIGINT, or on Windows Ctrl-C.
#[cfg(unix)]
pub type IntSignal = tokio::signal::unix::Signal;
/// SIGINT, or on Windows Ctrl-C.
#[cfg(windows)]
pub type IntSignal = tokio::signal::windows::CtrlC;

/// Watches SIGTERM (Ctrl-Break on Windows). Needs a tokio runtime.
///
/// # Errors
/// A handler that cannot be installed.
pub fn term_signal() -> std::io::Result<TermSignal> {
    #[cfg(unix)]
    return tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    #[cfg(windows)]
    tokio::signal::windows::ctrl_break()
}

/// Watches SIGINT (Ctrl-C on Windows). Needs a tokio runtime.
///
/// # Errors
/// A handler that cannot be installed.
pub fn int_signal() -> std::io::Result<IntSignal> {
    #[cfg(unix)]
    return tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    #[cfg(windows)]
    tokio::signal::windows::ctrl_c()
}

/// tokio's UNIX sockets, or on Windows types that cannot exist: connecting and binding
/// fail with [`no_unix_sockets`], so every use of them compiles and none runs.
pub mod net {
    #[cfg(unix)]
    pub use tokio::net::{UnixListener, UnixStream};

    #[cfg(not(unix))]
    pub use self::absent::{UnixListener, UnixStream};

    #[cfg(not(unix))]
    mod absent;
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
    fn posix_platforms_have_every_feature() {
        use Feature::*;
        for feature in [UnixSockets, Shell, ReusePort, SocketActivation] {
            assert_eq!(feature.available(), cfg!(unix), "{feature:?}");
            assert_eq!(feature.check().is_ok(), cfg!(unix), "{feature:?}");
            let line = feature.refusal().to_string();
            assert!(line.contains(": not available on ") && !line.contains('\n'), "{line}");
        }
        assert!(Shell.refusal().to_string().contains("use --exec PROGRAM"));
    }

    #[test]
    fn unsupported_names_the_platform() {
        let err = unsupported("UNIX sockets", "use tcp:");
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
        assert_eq!(err.to_string(), format!("UNIX sockets: not available on {}; use tcp:", name()));
    }
}
