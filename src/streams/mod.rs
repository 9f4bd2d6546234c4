//! The stream layer, modelled on AnyIO's streams.
//!
//! In-memory building blocks (no sockets, no TLS): the interfaces ([`abc`]), the error
//! type ([`error`]), typed attributes ([`attrs`]), memory object streams ([`memory`]),
//! stapled streams ([`stapled`]), object streams of chunks as byte streams ([`chunks`]),
//! buffered receive ([`buffered`]), text codecs and streams ([`encoding`], [`text`]),
//! delimiter framing ([`framing`]) and tokio interoperation ([`io`]).
//!
//! `docs/streams.md` maps every AnyIO name to its Rust type and lists where this layer
//! deliberately differs.

pub mod abc;
pub mod attrs;
pub mod buffered;
pub mod chunks;
pub mod datagram;
pub mod encoding;
pub mod error;
pub mod file;
pub mod framing;
pub mod io;
pub mod listener;
pub mod memory;
pub mod observe;
pub mod platform;
pub mod process;
pub mod socket;
pub mod stapled;
pub mod stdio;
pub mod text;
pub mod tls;

pub use abc::{
    AsyncResource, ByteReceiveStream, ByteSendStream, ByteStream, ByteStreamConnectable, DEFAULT_MAX_BYTES,
    ObjectReceiveStream, ObjectSendStream, ObjectStream, ObjectStreamConnectable,
    UnreliableObjectReceiveStream, UnreliableObjectSendStream, UnreliableObjectStream,
};
pub use attrs::{Address, AddressFamily, TypedAttribute, TypedAttributeProvider};
pub use buffered::{BufferedByteReceiveStream, BufferedByteStream, BufferedConnectable};
pub use chunks::{MemoryByteStream, ObjectByteReceiveStream, ObjectByteSendStream, memory_byte_stream_pair};
pub use encoding::{ErrorMode, TextDecoder, TextEncoder, TextEncoding};
pub use error::{BusyAction, Phase, Result, SendError, StreamError};
pub use framing::{FrameConfig, FramedStream, Oversize, Trailing};
pub use io::{ByteStreamIo, ByteStreamReader, ByteStreamWriter, IoReceiveStream, IoSendStream, IoStream};
pub use listener::{Connection, Listener, SocketListener};
pub use memory::{
    Capacity, MemoryObjectReceiveStream, MemoryObjectSendStream, MemoryObjectStreamStatistics,
    memory_object_stream,
};
pub use process::ChildStream;
pub use socket::{
    ConnectOptions, FamilyPreference, SocketStream, TcpStream, UnixStream, connect_tcp, connect_unix,
};
pub use stapled::{StapledByteStream, StapledObjectStream};
pub use text::{TextConnectable, TextReceiveStream, TextSendStream, TextStream};
pub use tls::{RaggedEofPolicy, TlsListener, TlsStream};
