//! A child process as a byte stream: what is sent goes to its stdin, what it writes to
//! stdout is received (`serve --exec`, `pipe exec:CMD`). Its stderr stays the caller's.
//!
//! `send_eof` closes the child's stdin, which is how most programs learn that input
//! ended. Closing the stream closes stdin and stdout and reaps the child; its exit status
//! is kept ([`ChildStream::exit_status`]). A child still running when the stream is
//! dropped is killed, never left behind.

use std::process::{ExitStatus, Stdio};

use bytes::{Bytes, BytesMut};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::abc::{AsyncResource, ByteReceiveStream, ByteSendStream, ByteStream};
use super::attrs::TypedAttributeProvider;
use super::error::{Result, StreamError};
use super::io::{IoReceiveStream, IoSendStream};

/// A running child process, its stdin and stdout as a byte stream.
#[derive(Debug)]
pub struct ChildStream {
    command: String,
    child: Child,
    stdin: IoSendStream<ChildStdin>,
    stdout: IoReceiveStream<ChildStdout>,
    status: Option<ExitStatus>,
}

impl ChildStream {
    /// Starts `program` with `args`, without a shell (`serve --exec`).
    ///
    /// # Errors
    /// [`StreamError::Spawn`] naming the command.
    pub fn spawn(program: &str, args: &[String]) -> Result<Self> {
        Self::spawn_with(program, args, &[])
    }

    /// [`spawn`](Self::spawn) with `env` added to the command's environment (`serve
    /// --exec`'s `STREAMTOOL_PEER`).
    ///
    /// # Errors
    /// [`StreamError::Spawn`] naming the command.
    pub fn spawn_with(program: &str, args: &[String], env: &[(&str, String)]) -> Result<Self> {
        let mut command = Command::new(program);
        command.args(args);
        let line =
            std::iter::once(program.to_string()).chain(args.iter().cloned()).collect::<Vec<_>>().join(" ");
        Self::start(command, line, env)
    }

    /// Starts `sh -c command_line` (`serve --sh-exec`, `pipe exec:`).
    ///
    /// # Errors
    /// [`StreamError::Spawn`] naming the command.
    pub fn shell(command_line: &str) -> Result<Self> {
        Self::shell_with(command_line, &[])
    }

    /// [`shell`](Self::shell) with `env` added to the command's environment.
    ///
    /// # Errors
    /// [`StreamError::Spawn`] naming the command.
    pub fn shell_with(command_line: &str, env: &[(&str, String)]) -> Result<Self> {
        if !crate::streams::platform::Feature::Shell.available() {
            let source = crate::streams::platform::Feature::Shell.refusal();
            return Err(StreamError::Spawn { command: command_line.to_string(), source });
        }
        let mut command = Command::new("sh");
        command.arg("-c").arg(command_line);
        Self::start(command, command_line.to_string(), env)
    }

    fn start(mut command: Command, line: String, env: &[(&str, String)]) -> Result<Self> {
        command.envs(env.iter().map(|(k, v)| (k, v)));
        // A process group of its own: a relay that fails kills the whole command (`sh -c
        // 'a | b'`), not only the shell.
        #[cfg(unix)]
        command.process_group(0);
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
        let mut child =
            command.spawn().map_err(|source| StreamError::Spawn { command: line.clone(), source })?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        Ok(ChildStream {
            command: line,
            child,
            stdin: IoSendStream::new(stdin),
            stdout: IoReceiveStream::new(stdout),
            status: None,
        })
    }

    /// The command line, for messages.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The child's process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the child to exit (after closing its stdin) and returns its status.
    ///
    /// # Errors
    /// [`StreamError::Broken`] if waiting fails.
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        self.stdin.aclose().await.ok();
        let status = self.child.wait().await?;
        self.status = Some(status);
        tracing::debug!(command = %self.command, %status, "child exited");
        Ok(status)
    }

    /// Takes the child apart for a full-duplex relay: the process (to wait for), its stdin
    /// as a send stream (closing it is the child's EOF) and its stdout as a receive stream.
    pub fn into_parts(self) -> (Child, IoSendStream<ChildStdin>, IoReceiveStream<ChildStdout>) {
        (self.child, self.stdin, self.stdout)
    }

    /// The exit status, once the child has been reaped.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.status
    }
}

impl AsyncResource for ChildStream {
    /// Closes stdin and stdout and reaps the child.
    async fn aclose(&mut self) -> Result<()> {
        self.stdout.aclose().await?;
        self.wait().await.map(drop)
    }
}

impl TypedAttributeProvider for ChildStream {}

impl ByteReceiveStream for ChildStream {
    async fn receive(&mut self, max_bytes: usize) -> Result<Bytes> {
        self.stdout.receive(max_bytes).await
    }

    async fn receive_into(&mut self, buf: &mut BytesMut, max_bytes: usize) -> Result<usize> {
        self.stdout.receive_into(buf, max_bytes).await
    }
}

impl ByteSendStream for ChildStream {
    /// A child that exited or closed its stdin makes this fail with
    /// [`StreamError::Broken`] (EPIPE), not with a signal.
    async fn send(&mut self, data: Bytes) -> Result<()> {
        self.stdin.send(data).await
    }
}

impl ByteStream for ChildStream {
    async fn send_eof(&mut self) -> Result<()> {
        self.stdin.aclose().await
    }
}
