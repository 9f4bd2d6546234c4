//! Stapled streams: spec §5, scenarios 47-56.

use bytes::{Bytes, BytesMut};
use streamtool::streams::*;

use crate::support::run;

/// A byte receive stream preloaded with data; like AnyIO's dummy it returns an empty chunk
/// when drained (a test artefact a real stream never produces).
struct DummyByteReceiveStream {
    data: BytesMut,
    closed: bool,
}

impl AsyncResource for DummyByteReceiveStream {
    async fn aclose(&mut self) -> Result<()> {
        self.closed = true;
        Ok(())
    }
}
impl TypedAttributeProvider for DummyByteReceiveStream {}
impl ByteReceiveStream for DummyByteReceiveStream {
    async fn receive(&mut self, max_bytes: usize) -> Result<Bytes> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        let n = max_bytes.min(self.data.len());
        Ok(self.data.split_to(n).freeze())
    }
}

#[derive(Default)]
struct DummyByteSendStream {
    buffer: Vec<u8>,
    closed: bool,
}

impl AsyncResource for DummyByteSendStream {
    async fn aclose(&mut self) -> Result<()> {
        self.closed = true;
        Ok(())
    }
}
impl TypedAttributeProvider for DummyByteSendStream {}
impl ByteSendStream for DummyByteSendStream {
    async fn send(&mut self, data: Bytes) -> Result<()> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        self.buffer.extend_from_slice(&data);
        Ok(())
    }
}

fn byte_stream() -> StapledByteStream<DummyByteSendStream, DummyByteReceiveStream> {
    StapledByteStream::new(
        DummyByteSendStream::default(),
        DummyByteReceiveStream { data: BytesMut::from(&b"hello, world"[..]), closed: false },
    )
}

// scenario 47
#[test]
fn stapled_byte_stream_receives_and_sends_through_its_halves() {
    run(async {
        let mut stapled = byte_stream();
        assert_eq!(stapled.receive(3).await.unwrap(), &b"hel"[..]);
        assert_eq!(stapled.receive(DEFAULT_MAX_BYTES).await.unwrap(), &b"lo, world"[..]);
        assert_eq!(stapled.receive(DEFAULT_MAX_BYTES).await.unwrap(), &b""[..]);
        stapled.send(Bytes::from_static(b"how are you ")).await.unwrap();
        stapled.send(Bytes::from_static(b"today?")).await.unwrap();
        assert_eq!(stapled.send_stream.buffer, b"how are you today?");
    });
}

// scenario 48
#[test]
fn stapled_byte_stream_send_eof_closes_only_send_half() {
    run(async {
        let mut stapled = byte_stream();
        stapled.send_eof().await.unwrap();
        stapled.send_eof().await.unwrap();
        assert!(matches!(stapled.send(Bytes::from_static(b"world")).await, Err(StreamError::Closed)));
        assert_eq!(stapled.receive(DEFAULT_MAX_BYTES).await.unwrap(), &b"hello, world"[..]);
    });
}

// scenario 49
#[test]
fn stapled_byte_stream_aclose_closes_both_halves() {
    run(async {
        let mut stapled = byte_stream();
        stapled.aclose().await.unwrap();
        assert!(matches!(stapled.receive(DEFAULT_MAX_BYTES).await, Err(StreamError::Closed)));
        assert!(matches!(stapled.send(Bytes::new()).await, Err(StreamError::Closed)));
    });
}

// scenario 50 (0 only: -1 is not a usize)
#[test]
fn stapled_byte_stream_receive_zero_max_bytes_is_invalid() {
    run(async {
        let mut stapled = byte_stream();
        let err = stapled.receive(0).await.unwrap_err();
        assert_eq!(err.to_string(), "max_bytes must be a positive integer");
    });
}

struct DummyObjectReceiveStream {
    items: std::collections::VecDeque<String>,
    closed: bool,
}

impl AsyncResource for DummyObjectReceiveStream {
    async fn aclose(&mut self) -> Result<()> {
        self.closed = true;
        Ok(())
    }
}
impl TypedAttributeProvider for DummyObjectReceiveStream {}
impl ObjectReceiveStream<String> for DummyObjectReceiveStream {
    async fn receive(&mut self) -> Result<String> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        self.items.pop_front().ok_or(StreamError::EndOfStream)
    }
}

#[derive(Default)]
struct DummyObjectSendStream {
    items: Vec<String>,
    closed: bool,
}

impl AsyncResource for DummyObjectSendStream {
    async fn aclose(&mut self) -> Result<()> {
        self.closed = true;
        Ok(())
    }
}
impl TypedAttributeProvider for DummyObjectSendStream {}
impl ObjectSendStream<String> for DummyObjectSendStream {
    async fn send(&mut self, item: String) -> Result<()> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        self.items.push(item);
        Ok(())
    }
}

/// A send stream whose `send_nowait` exists but fails with its own error.
#[derive(Default)]
struct FailingNowaitSendStream;

impl AsyncResource for FailingNowaitSendStream {
    async fn aclose(&mut self) -> Result<()> {
        Ok(())
    }
}
impl TypedAttributeProvider for FailingNowaitSendStream {}
impl ObjectSendStream<String> for FailingNowaitSendStream {
    async fn send(&mut self, _item: String) -> Result<()> {
        Ok(())
    }
    fn send_nowait(&mut self, _item: String) -> Result<()> {
        Err(StreamError::Unsupported("no attribute 'nonexistent'".into()))
    }
}

fn object_stream() -> StapledObjectStream<DummyObjectSendStream, DummyObjectReceiveStream> {
    StapledObjectStream::new(
        DummyObjectSendStream::default(),
        DummyObjectReceiveStream { items: ["hello".into(), "world".into()].into(), closed: false },
    )
}

// scenario 51
#[test]
fn stapled_object_stream_receives_and_sends_through_its_halves() {
    run(async {
        let mut stapled = object_stream();
        assert_eq!(stapled.receive().await.unwrap(), "hello");
        assert_eq!(stapled.receive().await.unwrap(), "world");
        assert!(matches!(stapled.receive().await, Err(StreamError::EndOfStream)));
        stapled.send("how are you ".to_string()).await.unwrap();
        stapled.send("today?".to_string()).await.unwrap();
        assert_eq!(stapled.send_stream.items, ["how are you ", "today?"]);
    });
}

// scenario 52
#[test]
fn stapled_object_stream_send_eof_closes_only_send_half() {
    run(async {
        let mut stapled = object_stream();
        ObjectStream::<String>::send_eof(&mut stapled).await.unwrap();
        ObjectStream::<String>::send_eof(&mut stapled).await.unwrap();
        assert!(matches!(stapled.send("world".to_string()).await, Err(StreamError::Closed)));
        assert_eq!(stapled.receive().await.unwrap(), "hello");
        assert_eq!(stapled.receive().await.unwrap(), "world");
    });
}

// scenario 53
#[test]
fn stapled_object_stream_aclose_closes_both_halves() {
    run(async {
        let mut stapled = object_stream();
        stapled.aclose().await.unwrap();
        assert!(matches!(stapled.receive().await, Err(StreamError::Closed)));
        assert!(matches!(stapled.send("x".to_string()).await, Err(StreamError::Closed)));
    });
}

// scenario 54
#[test]
fn stapled_send_nowait_delegates_to_memory_stream() {
    run(async {
        let (tx, rx) = memory_object_stream::<String>(1);
        let (_tx2, rx2) = memory_object_stream::<String>(1);
        let mut stapled = StapledObjectStream::new(tx, rx2);
        stapled.send_nowait("hello".to_string()).unwrap();
        assert_eq!(rx.receive_nowait().unwrap(), "hello");
    });
}

// scenario 55
#[test]
fn stapled_send_nowait_unsupported_names_the_send_stream_type() {
    let mut stapled = object_stream();
    let err = stapled.send_nowait("hello".to_string()).unwrap_err();
    assert!(matches!(err, StreamError::Unsupported(_)));
    let message = err.to_string();
    assert!(message.starts_with("'send_nowait' method not implemented in "), "{message}");
    assert!(message.contains("DummyObjectSendStream"), "{message}");
}

// scenario 56
#[test]
fn stapled_send_nowait_does_not_mask_the_send_streams_own_error() {
    let mut stapled = StapledObjectStream::new(
        FailingNowaitSendStream,
        DummyObjectReceiveStream { items: Default::default(), closed: false },
    );
    let err = stapled.send_nowait("hello".to_string()).unwrap_err();
    assert_eq!(err.to_string(), "no attribute 'nonexistent'");
}

/// A provider answering for one key, with a fixed value.
struct Provides(&'static str, u16);

impl TypedAttributeProvider for Provides {
    fn provide(&self, name: &'static str) -> Option<Result<attrs::AttributeValue>> {
        (name == self.0).then(|| Ok(Box::new(self.1) as attrs::AttributeValue))
    }
}
impl AsyncResource for Provides {
    async fn aclose(&mut self) -> Result<()> {
        Ok(())
    }
}

#[test]
fn stapled_attributes_are_the_union_and_the_receive_half_wins() {
    let stapled =
        StapledObjectStream::new(Provides("socket.local_port", 1), Provides("socket.local_port", 2));
    assert_eq!(stapled.extra(attrs::socket::LOCAL_PORT).unwrap(), 2);
    let stapled =
        StapledObjectStream::new(Provides("socket.remote_port", 1), Provides("socket.local_port", 2));
    assert_eq!(stapled.extra(attrs::socket::REMOTE_PORT).unwrap(), 1);
    assert_eq!(stapled.extra(attrs::socket::LOCAL_PORT).unwrap(), 2);
    assert!(matches!(stapled.extra(attrs::socket::FAMILY), Err(StreamError::AttributeNotFound(_))));
    assert_eq!(stapled.extra_or(attrs::socket::FAMILY, AddressFamily::Unix).unwrap(), AddressFamily::Unix);
}

/// A provider whose getter fails.
struct FailingProvider;

impl TypedAttributeProvider for FailingProvider {
    fn provide(&self, name: &'static str) -> Option<Result<attrs::AttributeValue>> {
        (name == "socket.local_port").then(|| Err(StreamError::Unsupported("getter failed".into())))
    }
}

// scenario 78 (typed attributes): an error inside a getter propagates unchanged.
#[test]
fn attribute_getter_error_is_not_turned_into_not_found() {
    let err = FailingProvider.extra(attrs::socket::LOCAL_PORT).unwrap_err();
    assert_eq!(err.to_string(), "getter failed");
    let err = FailingProvider.extra_or(attrs::socket::LOCAL_PORT, 7).unwrap_err();
    assert_eq!(err.to_string(), "getter failed");
}
