//! Typed attributes: AnyIO's `extra()` mechanism.
//!
//! An attribute is a typed key ([`TypedAttribute<T>`]); a stream is a
//! [`TypedAttributeProvider`] that may answer for some keys. Values are computed when they
//! are looked up, not when the stream is made. Wrappers answer for the keys of the stream
//! they wrap and may override them (TLS overrides nothing of the socket but adds its own).
//!
//! An error met while computing a value propagates unchanged; it never turns into
//! [`StreamError::AttributeNotFound`] (AnyIO scenario 78).

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::error::{Result, StreamError};

/// A value computed for a lookup.
pub type AttributeValue = Box<dyn Any + Send>;

/// A typed attribute key. Two keys are the same key when their names are equal.
pub struct TypedAttribute<T: 'static> {
    name: &'static str,
    _type: PhantomData<fn() -> T>,
}

impl<T: 'static> TypedAttribute<T> {
    /// A key with a unique name (by convention `"group.attribute"`).
    pub const fn new(name: &'static str) -> Self {
        TypedAttribute { name, _type: PhantomData }
    }

    /// The key's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Boxes `value` as this key's answer; for use in [`TypedAttributeProvider::provide`].
    pub fn answer(&self, value: T) -> Option<Result<AttributeValue>>
    where
        T: Send,
    {
        Some(Ok(Box::new(value)))
    }
}

impl<T> Clone for TypedAttribute<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for TypedAttribute<T> {}

impl<T> fmt::Debug for TypedAttribute<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TypedAttribute({})", self.name)
    }
}

/// Something that can answer typed attribute lookups (AnyIO's `TypedAttributeProvider`).
pub trait TypedAttributeProvider {
    /// Computes the value for the key called `name`, if this provider has it.
    ///
    /// Implementors match on the names of the keys they provide, answer with
    /// [`TypedAttribute::answer`], and fall back to the wrapped provider's `provide`.
    /// The default provides nothing.
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        let _ = name;
        None
    }

    /// Looks up `attr`.
    ///
    /// # Errors
    /// [`StreamError::AttributeNotFound`] if no layer provides it; any error raised while
    /// computing the value, unchanged.
    fn extra<T: 'static>(&self, attr: TypedAttribute<T>) -> Result<T>
    where
        Self: Sized,
    {
        match self.provide(attr.name) {
            None => Err(StreamError::AttributeNotFound(attr.name)),
            Some(Err(err)) => Err(err),
            Some(Ok(value)) => match value.downcast::<T>() {
                Ok(value) => Ok(*value),
                Err(_) => Err(StreamError::AttributeNotFound(attr.name)),
            },
        }
    }

    /// Looks up `attr`, giving `default` when no layer provides it.
    ///
    /// # Errors
    /// Any error raised while computing the value, unchanged.
    fn extra_or<T: 'static>(&self, attr: TypedAttribute<T>, default: T) -> Result<T>
    where
        Self: Sized,
    {
        match self.extra(attr) {
            Err(StreamError::AttributeNotFound(_)) => Ok(default),
            other => other,
        }
    }
}

/// The family of a socket's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFamily {
    /// IPv4.
    Inet,
    /// IPv6.
    Inet6,
    /// A UNIX domain socket.
    Unix,
}

/// A socket address: IP and port, or a UNIX socket path (`None` when unnamed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// An IPv4 or IPv6 address with its port.
    Inet(SocketAddr),
    /// A UNIX socket path; `None` for an unnamed (client) socket.
    Unix(Option<PathBuf>),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Inet(addr) => write!(f, "{addr}"),
            Address::Unix(Some(path)) => write!(f, "unix:{}", path.display()),
            Address::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

/// Keys of socket streams and listeners (AnyIO's `SocketAttribute`).
pub mod socket {
    use super::{Address, AddressFamily, TypedAttribute};

    /// The address family.
    pub const FAMILY: TypedAttribute<AddressFamily> = TypedAttribute::new("socket.family");
    /// This side's address.
    pub const LOCAL_ADDRESS: TypedAttribute<Address> = TypedAttribute::new("socket.local_address");
    /// This side's port (IP sockets only).
    pub const LOCAL_PORT: TypedAttribute<u16> = TypedAttribute::new("socket.local_port");
    /// The peer's address.
    pub const REMOTE_ADDRESS: TypedAttribute<Address> = TypedAttribute::new("socket.remote_address");
    /// The peer's port (IP sockets only).
    pub const REMOTE_PORT: TypedAttribute<u16> = TypedAttribute::new("socket.remote_port");
}

impl<T: TypedAttributeProvider + ?Sized> TypedAttributeProvider for &mut T {
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        (**self).provide(name)
    }
}
