//! Datagram sockets as AnyIO's unreliable object streams (`streams::datagram`): the
//! behaviours of AnyIO's `UDPSocket`, `ConnectedUDPSocket` and the UNIX datagram sockets,
//! on real sockets on loopback and in a private directory.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use streamtool::streams::attrs::socket;
use streamtool::streams::datagram::*;
use streamtool::streams::*;

use crate::support::run;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// AnyIO `test_send_receive`: a datagram and its sender's address, both ways.
#[test]
fn unconnected_sockets_send_and_receive_with_addresses() {
    run(async {
        let mut server = UdpSocket::bind(loopback(), false).unwrap();
        let mut client = UdpSocket::bind(loopback(), false).unwrap();
        let (server_addr, client_addr) = (server.local_addr().unwrap(), client.local_addr().unwrap());
        client.send((Bytes::from_static(b"blah"), server_addr)).await.unwrap();
        let (data, from) = server.receive().await.unwrap();
        assert_eq!((&data[..], from), (&b"blah"[..], client_addr));
        server.send((Bytes::from_static(b"halb"), from)).await.unwrap();
        assert_eq!(client.receive().await.unwrap(), (Bytes::from_static(b"halb"), server_addr));
        // sendto resolves a host name first.
        client.sendto(Bytes::from_static(b"named"), "localhost", server_addr.port()).await.unwrap();
        assert_eq!(&server.receive().await.unwrap().0[..], b"named");
    });
}

/// Message boundaries are kept: three sends are three receives, an empty datagram
/// included (AnyIO's items are whole datagrams).
#[test]
fn message_boundaries_are_kept_and_empty_datagrams_arrive() {
    run(async {
        let mut server = UdpSocket::bind(loopback(), false).unwrap();
        let addr = server.local_addr().unwrap();
        let mut client =
            create_connected_udp_socket("127.0.0.1", addr.port(), FamilyPreference::V4Only, None)
                .await
                .unwrap();
        for item in [&b"one"[..], b"", b"three"] {
            client.send(Bytes::copy_from_slice(item)).await.unwrap();
        }
        for item in [&b"one"[..], b"", b"three"] {
            assert_eq!(&server.receive().await.unwrap().0[..], item);
        }
    });
}

/// AnyIO `test_extra_attributes` for both kinds of UDP socket.
#[test]
fn typed_attributes_name_both_ends() {
    run(async {
        let server = UdpSocket::bind(loopback(), false).unwrap();
        let addr = server.local_addr().unwrap();
        assert_eq!(server.extra(socket::FAMILY).unwrap(), AddressFamily::Inet);
        assert_eq!(server.extra(socket::LOCAL_ADDRESS).unwrap(), Address::Inet(addr));
        assert_eq!(server.extra(socket::LOCAL_PORT).unwrap(), addr.port());
        assert!(matches!(server.extra(socket::REMOTE_ADDRESS), Err(StreamError::AttributeNotFound(_))));
        let client = ConnectedUdpSocket::connect_addr(addr, None, false).await.unwrap();
        assert_eq!(client.extra(socket::REMOTE_ADDRESS).unwrap(), Address::Inet(addr));
        assert_eq!(client.extra(socket::REMOTE_PORT).unwrap(), addr.port());
        assert_eq!(client.extra(socket::LOCAL_PORT).unwrap(), client.local_addr().unwrap().port());
    });
}

/// A connected socket gets only its peer's datagrams (the kernel drops the others), and
/// its items are the bytes alone.
#[test]
fn a_connected_socket_hears_only_its_peer() {
    run(async {
        let mut server = UdpSocket::bind(loopback(), false).unwrap();
        let mut stranger = UdpSocket::bind(loopback(), false).unwrap();
        let addr = server.local_addr().unwrap();
        let mut client = ConnectedUdpSocket::connect_addr(addr, None, false).await.unwrap();
        let client_addr = client.local_addr().unwrap();
        stranger.send((Bytes::from_static(b"not for you"), client_addr)).await.unwrap();
        server.send((Bytes::from_static(b"for you"), client_addr)).await.unwrap();
        assert_eq!(&client.receive().await.unwrap()[..], b"for you");
    });
}

/// AnyIO `test_receive_after_close` and `test_send_after_close`: closing is local and
/// final.
#[test]
fn receiving_or_sending_after_close_is_closed() {
    run(async {
        let mut server = UdpSocket::bind(loopback(), false).unwrap();
        let addr = server.local_addr().unwrap();
        server.aclose().await.unwrap();
        assert!(matches!(server.receive().await, Err(StreamError::Closed)));
        assert!(matches!(server.send((Bytes::new(), addr)).await, Err(StreamError::Closed)));
        let mut client = ConnectedUdpSocket::connect_addr(addr, None, false).await.unwrap();
        client.aclose().await.unwrap();
        assert!(matches!(client.receive().await, Err(StreamError::Closed)));
        assert!(matches!(client.send(Bytes::new()).await, Err(StreamError::Closed)));
    });
}

/// A datagram larger than UDP carries is refused whole, naming its size; nothing of it is
/// sent, and the socket stays usable.
#[test]
fn an_oversized_datagram_is_refused_and_nothing_is_sent() {
    run(async {
        let mut server = UdpSocket::bind(loopback(), false).unwrap();
        let addr = server.local_addr().unwrap();
        let mut client = ConnectedUdpSocket::connect_addr(addr, None, false).await.unwrap();
        let big = Bytes::from(vec![b'x'; 65_508]);
        match client.send(big).await {
            Err(StreamError::OversizedDatagram { size: 65_508, max: 65_507, peer: Some(peer) }) => {
                assert!(peer.contains(&addr.to_string()), "{peer}");
            }
            other => panic!("expected an oversized datagram, got {other:?}"),
        }
        let most = Bytes::from(vec![b'y'; 65_507]);
        client.send(most.clone()).await.unwrap();
        let (got, _) = server.receive().await.unwrap();
        assert_eq!(got, most, "the largest IPv4 UDP payload arrives whole, and nothing before it");
    });
}

/// ICMP port unreachable on a connected socket: the next receive is a refusal naming
/// the peer (AnyIO's trio backend: `ConnectionRefusedError`), and the socket stays usable.
#[test]
fn a_closed_port_is_a_refusal_on_a_connected_socket() {
    run(async {
        let closed = UdpSocket::bind(loopback(), false).unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let mut client = ConnectedUdpSocket::connect_addr(addr, None, false).await.unwrap();
        client.send(Bytes::from_static(b"anyone?")).await.unwrap();
        let refused = tokio::time::timeout(Duration::from_secs(5), client.receive()).await.unwrap();
        match refused {
            Err(StreamError::Connect { target, source }) => {
                assert_eq!(target, format!("udp:{addr}"));
                assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Still usable: a server on that port now gets the next datagram.
        let mut server = UdpSocket::bind(addr, false).unwrap();
        client.send(Bytes::from_static(b"again")).await.unwrap();
        assert_eq!(&server.receive().await.unwrap().0[..], b"again");
    });
}

/// AnyIO `test_reuse_port`: two sockets on one port with SO_REUSEPORT, none without.
#[test]
fn reuse_port_lets_two_sockets_share_a_port() {
    run(async {
        let first = UdpSocket::bind(loopback(), true).unwrap();
        let addr = first.local_addr().unwrap();
        UdpSocket::bind(addr, true).expect("a second socket on the port with reuse_port");
        match UdpSocket::bind(addr, false) {
            Err(StreamError::Bind { addr: named, .. }) => assert_eq!(named, format!("udp:{addr}")),
            other => panic!("expected a bind error, got {other:?}"),
        }
    });
}

/// The loopback pair: one port on 127.0.0.1 and ::1 (IPv4 alone without IPv6).
#[test]
fn a_bare_port_binds_both_loopback_addresses() {
    run(async {
        let sockets = UdpSocket::bind_loopback(0, false).unwrap();
        let addrs: Vec<SocketAddr> = sockets.iter().map(|s| s.local_addr().unwrap()).collect();
        assert!(addrs[0].ip().is_loopback() && addrs[0].is_ipv4());
        if let Some(v6) = addrs.get(1) {
            assert!(v6.is_ipv6() && v6.ip().is_loopback());
            assert_eq!(v6.port(), addrs[0].port());
        }
    });
}

/// UNIX datagram sockets: the sender's path with each item, replies to it; a connected
/// one (autobound on Linux) gets replies too; closing is local.
#[test]
fn unix_datagram_sockets_carry_paths_and_replies() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let (server_path, client_path) = (dir.path().join("server"), dir.path().join("client"));
        let mut server = UnixDatagramSocket::bind(Some(&server_path)).unwrap();
        let mut client = UnixDatagramSocket::bind(Some(&client_path)).unwrap();
        client.send((Bytes::from_static(b"ping"), Some(server_path.clone()))).await.unwrap();
        let (data, from) = server.receive().await.unwrap();
        assert_eq!((&data[..], from.as_deref()), (&b"ping"[..], Some(client_path.as_path())));
        assert_eq!(server.extra(socket::LOCAL_ADDRESS).unwrap(), Address::Unix(Some(server_path.clone())));
        server.send((Bytes::from_static(b"pong"), from)).await.unwrap();
        assert_eq!(&client.receive().await.unwrap().0[..], b"pong");

        let mut connected = ConnectedUnixDatagramSocket::connect(&server_path, None).unwrap();
        assert_eq!(
            connected.extra(socket::REMOTE_ADDRESS).unwrap(),
            Address::Unix(Some(server_path.clone()))
        );
        connected.send(Bytes::from_static(b"hello")).await.unwrap();
        let (data, from) = server.receive().await.unwrap();
        assert_eq!(&data[..], b"hello");
        assert!(from.is_none(), "an abstract (autobound) sender has no path");
        connected.aclose().await.unwrap();
        assert!(matches!(connected.receive().await, Err(StreamError::Closed)));
        match ConnectedUnixDatagramSocket::connect(&dir.path().join("nobody"), None) {
            Err(StreamError::Connect { target, .. }) => assert!(target.ends_with("nobody"), "{target}"),
            other => panic!("expected a connect error, got {other:?}"),
        }
    });
}

/// A UNIX datagram longer than 64 KiB is dropped whole and reported, never cut; the next
/// one arrives.
#[test]
fn an_oversized_unix_datagram_is_dropped_whole() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server");
        let mut server = UnixDatagramSocket::bind(Some(&path)).unwrap();
        let raw = std::os::unix::net::UnixDatagram::unbound().unwrap();
        raw.send_to(&vec![b'z'; MAX_DATAGRAM + 100], &path).unwrap();
        raw.send_to(b"next", &path).unwrap();
        match server.receive().await {
            Err(StreamError::OversizedDatagram { max, .. }) => assert_eq!(max, MAX_DATAGRAM),
            other => panic!("expected an oversized datagram, got {other:?}"),
        }
        assert_eq!(&server.receive().await.unwrap().0[..], b"next");
    });
}

/// A UNIX datagram listener: a stale socket file is replaced, a live one and a file that
/// is not a socket are refused naming the path, its own file goes when it is dropped;
/// it answers peers bound to a path and to an abstract name, and refuses an unnamed one.
#[test]
fn a_unix_datagram_listener_replaces_only_stale_files_and_answers_its_peers() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server");
        drop(std::os::unix::net::UnixDatagram::bind(&path).unwrap()); // stale: nobody bound
        let mut server = UnixDatagramSocket::bind_listener(&path).unwrap();
        match UnixDatagramSocket::bind_listener(&path) {
            Err(StreamError::Bind { addr, source }) => {
                assert!(
                    addr.ends_with("server") && source.to_string().contains("another server"),
                    "{source}"
                );
            }
            other => panic!("a live socket was taken over: {other:?}"),
        }
        let file = dir.path().join("file");
        std::fs::write(&file, b"precious").unwrap();
        assert!(matches!(UnixDatagramSocket::bind_listener(&file), Err(StreamError::Bind { .. })));
        assert_eq!(std::fs::read(&file).unwrap(), b"precious", "a file that is not a socket is left alone");

        let replier = server.replier().unwrap();
        let named = std::os::unix::net::UnixDatagram::bind(dir.path().join("client")).unwrap();
        named.send_to(b"from a path", &path).unwrap();
        let (data, peer) = server.receive_from().await.unwrap();
        assert_eq!((&data[..], &peer), (&b"from a path"[..], &UnixPeer::Path(dir.path().join("client"))));
        replier.send_to(b"back", &peer).await.unwrap();
        let mut buf = [0u8; 16];
        let n = named.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"back");

        let mut autobound = ConnectedUnixDatagramSocket::connect(&path, None).unwrap();
        autobound.send(Bytes::from_static(b"abstract")).await.unwrap();
        let (_, peer) = server.receive_from().await.unwrap();
        assert!(matches!(peer, UnixPeer::Abstract(_)), "{peer:?}");
        replier.send_to(b"to @name", &peer).await.unwrap();
        assert_eq!(&autobound.receive().await.unwrap()[..], b"to @name");

        let unnamed = std::os::unix::net::UnixDatagram::unbound().unwrap();
        unnamed.send_to(b"who?", &path).unwrap();
        let (_, peer) = server.receive_from().await.unwrap();
        assert_eq!(peer, UnixPeer::Unnamed);
        assert!(matches!(replier.send_to(b"no", &peer).await, Err(StreamError::Unsupported(_))));
        drop((server, replier));
        assert!(!path.exists(), "the listener's socket file is removed when it is dropped");
    });
}
