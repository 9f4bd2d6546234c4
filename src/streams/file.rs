//! Files as byte streams (`pipe file:PATH`): a file to read from, or a file to write to.

use std::path::Path;

use tokio::fs::{File, OpenOptions};

use super::error::{Result, StreamError};
use super::io::{IoReceiveStream, IoSendStream};

/// How a file sink is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Create the file; an existing file is an error (never overwritten by accident).
    #[default]
    CreateNew,
    /// Create or truncate.
    Truncate,
    /// Create or append.
    Append,
}

fn open_error(path: &Path, source: std::io::Error) -> StreamError {
    StreamError::Open { path: path.display().to_string(), source }
}

/// Opens `path` for reading.
///
/// # Errors
/// [`StreamError::Open`] naming the path.
pub async fn open_read(path: impl AsRef<Path>) -> Result<IoReceiveStream<File>> {
    let path = path.as_ref();
    let file = File::open(path).await.map_err(|e| open_error(path, e))?;
    Ok(IoReceiveStream::new(file))
}

/// Opens `path` for writing. Closing the stream flushes it.
///
/// # Errors
/// [`StreamError::Open`] naming the path.
pub async fn open_write(path: impl AsRef<Path>, mode: WriteMode) -> Result<IoSendStream<File>> {
    let path = path.as_ref();
    let mut options = OpenOptions::new();
    options.write(true);
    match mode {
        WriteMode::CreateNew => options.create_new(true),
        WriteMode::Truncate => options.create(true).truncate(true),
        WriteMode::Append => options.create(true).append(true),
    };
    let file = options.open(path).await.map_err(|e| open_error(path, e))?;
    Ok(IoSendStream::new(file))
}
