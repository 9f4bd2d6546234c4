//! UNIX datagram sockets where the platform has none (Windows): the same names as
//! `unix.rs`, which cannot be made. Binding and connecting fail with
//! [`no_unix_sockets`](crate::streams::platform::no_unix_sockets); every other method is
//! unreachable, since no value exists.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{UnixDatagramPacket, UnixPeer};
use crate::streams::abc::{AsyncResource, UnreliableObjectReceiveStream, UnreliableObjectSendStream};
use crate::streams::attrs::{AttributeValue, TypedAttributeProvider};
use crate::streams::error::{Result, StreamError};

/// No value.
#[derive(Debug, Clone, Copy)]
enum Never {}

fn unavailable() -> StreamError {
    StreamError::from(crate::streams::platform::no_unix_sockets())
}

/// An unconnected UNIX datagram socket: none can exist here.
#[derive(Debug)]
pub struct UnixDatagramSocket(Never);

/// A connected UNIX datagram socket: none can exist here.
#[derive(Debug)]
pub struct ConnectedUnixDatagramSocket(Never);

/// A connected UNIX datagram socket's sending side: none can exist here.
#[derive(Debug, Clone)]
pub struct UnixSender(Never);

/// A UNIX datagram server's replies: none can exist here.
#[derive(Debug, Clone)]
pub struct UnixReplier(Never);

impl UnixDatagramSocket {
    /// Fails: UNIX sockets are not available.
    ///
    /// # Errors
    /// Always.
    pub fn bind(_path: Option<&Path>) -> Result<Self> {
        Err(unavailable())
    }

    /// Fails: UNIX sockets are not available.
    ///
    /// # Errors
    /// Always.
    pub fn bind_listener(_path: &Path) -> Result<Self> {
        Err(unavailable())
    }

    /// Unreachable.
    ///
    /// # Errors
    /// None.
    pub fn local_path(&self) -> Result<Option<PathBuf>> {
        match self.0 {}
    }

    /// Unreachable.
    ///
    /// # Errors
    /// None.
    pub async fn receive_from(&mut self) -> Result<(Bytes, UnixPeer)> {
        match self.0 {}
    }

    /// Unreachable.
    ///
    /// # Errors
    /// None.
    pub fn replier(&self) -> Result<UnixReplier> {
        match self.0 {}
    }
}

impl ConnectedUnixDatagramSocket {
    /// Fails: UNIX sockets are not available.
    ///
    /// # Errors
    /// Always.
    pub fn connect(_peer: &Path, _local: Option<&Path>) -> Result<Self> {
        Err(unavailable())
    }

    /// Unreachable.
    ///
    /// # Errors
    /// None.
    pub fn sender(&self) -> Result<UnixSender> {
        match self.0 {}
    }

    /// Unreachable.
    pub fn peer(&self) -> &Path {
        match self.0 {}
    }
}

impl UnixSender {
    /// Unreachable.
    ///
    /// # Errors
    /// None.
    pub async fn send(&self, _data: &[u8]) -> io::Result<usize> {
        match self.0 {}
    }
}

impl UnixReplier {
    /// Unreachable.
    ///
    /// # Errors
    /// None.
    pub async fn send_to(&self, _data: &[u8], _peer: &UnixPeer) -> Result<()> {
        match self.0 {}
    }
}

macro_rules! never_stream {
    ($type:ty, $item:ty) => {
        impl AsyncResource for $type {
            async fn aclose(&mut self) -> Result<()> {
                match self.0 {}
            }
        }
        impl TypedAttributeProvider for $type {
            fn provide(&self, _name: &'static str) -> Option<Result<AttributeValue>> {
                match self.0 {}
            }
        }
        impl UnreliableObjectReceiveStream<$item> for $type {
            async fn receive(&mut self) -> Result<$item> {
                match self.0 {}
            }
        }
        impl UnreliableObjectSendStream<$item> for $type {
            async fn send(&mut self, _item: $item) -> Result<()> {
                match self.0 {}
            }
        }
    };
}

never_stream!(UnixDatagramSocket, UnixDatagramPacket);
never_stream!(ConnectedUnixDatagramSocket, Bytes);
