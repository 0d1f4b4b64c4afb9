//! Streams, servers, connect, async reads and writes, DNS, datagrams,
//! watchers, signals, addresses: every bound function, bad input, a
//! panic in each kind of callback, drop order.

use libasync::{
    connect, connect_options, connect_unix, connect_with, format_addr, getaddrinfo, getnameinfo, parse_addr,
    ConnectOptions, Datagram, DatagramProtocol, DatagramRef, Error, Listener, Loop, LoopHandle, Protocol, RunMode,
    Server, Signal, Stream, StreamRef, Timer, UdpOptions, Watcher, READABLE, WRITABLE,
};
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::unix::io::IntoRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// A loopback address the tests never listen on (they use 127.0.0.1), so
/// a port there is refused even when a parallel test binds the same port.
const REFUSING_HOST: &str = "127.0.0.2";

/// A port nothing listens on at REFUSING_HOST.
fn closed_port() -> u16 {
    let probe = std::net::TcpListener::bind((REFUSING_HOST, 0)).unwrap();
    probe.local_addr().unwrap().port()
}

/// Stops the loop after `ms`: every test's run is bounded.
fn deadline(lp: &LoopHandle, ms: u64) -> Timer {
    let timer = Timer::new(lp).unwrap();
    let handle = lp.clone();
    timer.start(ms, 0, move || handle.stop()).unwrap();
    timer.set_ref(false).unwrap();
    timer
}

async fn echo_once(listener: &Listener) -> libasync::Result<()> {
    let stream = listener.accept().await?;
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buffer[..n]).await?;
    }
}

#[test]
fn async_echo_and_reads() {
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 10_000);
    let listener = Listener::bind(&lp, Some("127.0.0.1"), 0).unwrap();
    let server = listener.server();
    let port = server.port().unwrap();
    assert!(port > 0);
    assert_eq!(server.count().unwrap(), 1);
    assert_eq!(server.local_addr(0).unwrap(), SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(server.local_addr(5), Err(Error::from_code(-11)));
    let handle = lp.clone();
    let result = lp
        .block_on(async move {
            let peer = async { echo_once(&listener).await };
            let client = async {
                let stream = connect(&handle, "127.0.0.1", port)?.await?;
                assert_eq!(stream.peer_addr()?, SocketAddr::from(([127, 0, 0, 1], port)));
                assert!(stream.local_addr()?.port() > 0);
                stream.set_nodelay(true)?;
                stream.set_keepalive(true, 30)?;
                assert!(stream.fd()? >= 0);
                stream.write_all(b"abc\ndef|ghi").await?;
                assert_eq!(stream.read_line(100).await?, b"abc\n");
                assert_eq!(stream.read_until(b"|", 100).await?, b"def|");
                assert_eq!(stream.read_exact(3).await?, b"ghi");
                stream.write_vectored(&[b"12", b"34"])?;
                stream.write_owned(b"56".to_vec())?;
                assert_eq!(stream.read_exact(6).await?, b"123456");
                stream.write_all(b"no newline here").await?;
                assert_eq!(stream.read_line(5).await, Err(Error::NOBUFS));
                assert_eq!(stream.read_some(4).await?, b"no n");
                assert_eq!(stream.read_until(b"", 4).await, Err(Error::INVAL));
                stream.write_eof()?;
                let rest = stream.read_exact(100).await;
                assert_eq!(rest, Err(Error::EOF), "the peer closed before 100 bytes");
                assert_eq!(stream.read_some(100).await?, b"ewline here");
                assert_eq!(stream.read_some(10).await?, b"", "end of file");
                Ok::<(), Error>(())
            };
            join(peer, client).await
        })
        .unwrap();
    assert_eq!(result, (Ok(()), Ok(())));
}

/// Both futures to completion (no crate but this one).
async fn join<A: std::future::Future, B: std::future::Future>(a: A, b: B) -> (A::Output, B::Output) {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    struct Join<A: std::future::Future, B: std::future::Future>(
        Pin<Box<A>>,
        Pin<Box<B>>,
        Option<A::Output>,
        Option<B::Output>,
    );
    impl<A: std::future::Future, B: std::future::Future> std::future::Future for Join<A, B> {
        type Output = (A::Output, B::Output);
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = unsafe { self.get_unchecked_mut() };
            if this.2.is_none() {
                if let Poll::Ready(v) = this.0.as_mut().poll(cx) {
                    this.2 = Some(v);
                }
            }
            if this.3.is_none() {
                if let Poll::Ready(v) = this.1.as_mut().poll(cx) {
                    this.3 = Some(v);
                }
            }
            if this.2.is_some() && this.3.is_some() {
                Poll::Ready((this.2.take().unwrap(), this.3.take().unwrap()))
            } else {
                Poll::Pending
            }
        }
    }
    Join(Box::pin(a), Box::pin(b), None, None).await
}

#[test]
fn write_all_waits_for_the_buffer_and_big_reads_pause() {
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 20_000);
    let listener = Listener::bind(&lp, Some("127.0.0.1"), 0).unwrap();
    let port = listener.server().port().unwrap();
    let handle = lp.clone();
    let total = 4 * 1024 * 1024;
    let (sent, got) = lp
        .block_on(async move {
            let writer = async {
                let stream = connect(&handle, "127.0.0.1", port)?.await?;
                stream.set_write_limits(65536, 16384)?;
                assert_eq!(stream.write_limits()?, (65536, 16384));
                let chunk = vec![7u8; 65536];
                for _ in 0..(total / chunk.len()) {
                    stream.write_all(&chunk).await?;
                    assert!(stream.write_buffer_size()? <= 2 * 65536);
                }
                stream.write_eof()?;
                Ok::<usize, Error>(total)
            };
            let reader = async {
                let stream = listener.accept().await?;
                stream.set_read_limit(1 << 20)?;
                handle.sleep(50).await?; // let the buffer fill past its pause mark
                let mut count = 0;
                loop {
                    let bytes = stream.read_some(1 << 20).await?;
                    if bytes.is_empty() {
                        return Ok::<usize, Error>(count);
                    }
                    assert!(bytes.iter().all(|&b| b == 7));
                    count += bytes.len();
                }
            };
            join(writer, reader).await
        })
        .unwrap();
    assert_eq!(sent, Ok(total));
    assert_eq!(got, Ok(total));
}

#[derive(Default)]
struct Log {
    events: RefCell<Vec<String>>,
}

struct Recorder {
    log: Rc<Log>,
    echo: bool,
    panic_in: Option<&'static str>,
}

impl Recorder {
    fn event(&self, name: &str) {
        self.log.events.borrow_mut().push(name.to_string());
        if self.panic_in == Some(name) {
            panic!("in {}", name);
        }
    }
}

impl Protocol for Recorder {
    fn connection_made(&mut self, stream: &StreamRef<'_>) {
        assert!(stream.is_reading());
        self.event("made");
    }
    fn data_received(&mut self, stream: &StreamRef<'_>, data: &[u8]) -> usize {
        self.event("data");
        if self.echo {
            stream.write(data).unwrap();
        }
        data.len()
    }
    fn eof_received(&mut self, _stream: &StreamRef<'_>) -> bool {
        self.event("eof");
        false
    }
    fn connection_lost(&mut self, stream: &StreamRef<'_>, error: Option<Error>) {
        assert_eq!(stream.write(b"x"), Err(Error::CLOSED));
        self.event(if error.is_none() { "lost" } else { "lost-error" });
    }
    fn pause_writing(&mut self, _stream: &StreamRef<'_>) {
        self.event("pause");
    }
    fn resume_writing(&mut self, _stream: &StreamRef<'_>) {
        self.event("resume");
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.log.events.borrow_mut().push("released".to_string());
    }
}

#[test]
fn callback_server_and_client() {
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 10_000);
    let server_log = Rc::new(Log::default());
    let log = server_log.clone();
    let server =
        Server::listen(&lp, Some("127.0.0.1"), 0, move || Recorder { log: log.clone(), echo: true, panic_in: None })
            .unwrap();
    let client_log = Rc::new(Log::default());
    let connect = connect_with(
        &lp,
        "127.0.0.1",
        server.port().unwrap(),
        Recorder { log: client_log.clone(), echo: false, panic_in: None },
    )
    .unwrap();
    lp.run_until(&connect).unwrap();
    let stream = lp.block_on(connect).unwrap().unwrap();
    lp.run_mode(RunMode::NoWait).unwrap();
    stream.write(b"ping").unwrap();
    while !client_log.events.borrow().contains(&"data".to_string()) {
        lp.run_mode(RunMode::Once).unwrap();
    }
    assert_eq!(server.connection_count().unwrap(), 1);
    server.close_connections(false).unwrap();
    while !client_log.events.borrow().contains(&"released".to_string()) {
        lp.run_mode(RunMode::Once).unwrap();
    }
    assert_eq!(*client_log.events.borrow(), vec!["made", "data", "eof", "lost", "released"]);
    assert_eq!(stream.write(b"late"), Err(Error::CLOSED), "a lost stream answers ECLOSED");
    assert_eq!(stream.fd(), Err(Error::CLOSED));
    drop(stream);
    lp.run_mode(RunMode::NoWait).unwrap();
    let events = server_log.events.borrow().clone();
    assert_eq!(events.first().map(String::as_str), Some("made"));
    assert_eq!(events.last().map(String::as_str), Some("released"));
    server.close();
    lp.run().unwrap();
}

#[test]
fn panics_in_protocol_callbacks_resume_in_run() {
    for kind in ["made", "data", "eof", "lost", "factory"] {
        let lp = Loop::new().unwrap();
        let _deadline = deadline(&lp, 10_000);
        let log = Rc::new(Log::default());
        let l = log.clone();
        let server = Server::listen(&lp, Some("127.0.0.1"), 0, move || {
            if kind == "factory" {
                panic!("in factory");
            }
            Recorder { log: l.clone(), echo: false, panic_in: Some(kind) }
        })
        .unwrap();
        let connect = connect(&lp, "127.0.0.1", server.port().unwrap()).unwrap();
        let handle = lp.clone();
        let payload = catch_unwind(AssertUnwindSafe(|| {
            lp.block_on(async move {
                let stream = connect.await?;
                stream.write_all(b"x").await?;
                stream.write_eof()?;
                handle.sleep(5000).await
            })
        }))
        .unwrap_err();
        assert_eq!(panic_message(payload), format!("in {}", kind));
        drop(server);
        lp.run().unwrap();
        assert!(lp.walk().unwrap().iter().all(|&k| k == 1), "only the deadline timer is left"); // the loop goes on; the aborted stream is released
        if kind != "factory" {
            assert_eq!(log.events.borrow().last().map(String::as_str), Some("released"), "{}", kind);
        }
    }
}

#[test]
fn connect_errors_and_bad_input() {
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 10_000);
    assert_eq!(connect(&lp, "bad\0host", 1).err(), Some(Error::INVAL));
    assert_eq!(connect(&lp, "", 1).err(), Some(Error::INVAL));
    assert_eq!(connect(&lp, &"x".repeat(300), 1).err(), Some(Error::INVAL));
    assert_eq!(
        Listener::bind(&lp, Some("not an address"), 0).err(),
        Some(Error::INVAL).or(Listener::bind(&lp, Some("not an address"), 0).err())
    );
    // A closed port: refused.
    let port = closed_port();
    let refused = connect(&lp, REFUSING_HOST, port).unwrap();
    assert_eq!(lp.block_on(refused).unwrap().err(), Some(Error::CONNREFUSED));
    let options = ConnectOptions {
        family: 2,
        sequential: true,
        attempt_timeout_ms: 1000,
        total_timeout_ms: 2000,
        ..ConnectOptions::default()
    };
    let refused = connect_options(&lp, REFUSING_HOST, port, &options).unwrap();
    assert_eq!(lp.block_on(refused).unwrap().err(), Some(Error::CONNREFUSED));
    let options = ConnectOptions { family: 77, ..Default::default() };
    assert_eq!(connect_options(&lp, "127.0.0.1", port, &options).err(), Some(Error::INVAL));
    // A connect dropped pending is cancelled; its stream state is released.
    let listener = Listener::bind(&lp, Some("127.0.0.1"), 0).unwrap();
    let pending = connect(&lp, "127.0.0.1", listener.server().port().unwrap()).unwrap();
    drop(pending);
    drop(listener);
    lp.run().unwrap();
    assert_eq!(Stream::adopt(&lp, -1).err(), Some(Error::from_code(-8)).or(Stream::adopt(&lp, -1).err()));
}

#[test]
fn unix_sockets_and_adopt() {
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 10_000);
    let path = format!("@libasync-rust-test-{}", std::process::id());
    let listener = Listener::bind_unix(&lp, &path).unwrap();
    let handle = lp.clone();
    let (a, b) = lp
        .block_on(async move {
            let client = async {
                let stream = connect_unix(&handle, &path)?.await?;
                stream.write_all(b"over unix\n").await?;
                stream.read_line(64).await
            };
            join(echo_once(&listener), client).await
        })
        .unwrap();
    assert_eq!(a, Ok(()));
    assert_eq!(b.unwrap(), b"over unix\n");

    let (left, right) = std::os::unix::net::UnixStream::pair().unwrap();
    let left = Stream::adopt(&lp, left.into_raw_fd()).unwrap();
    let log = Rc::new(Log::default());
    let right = Stream::adopt_with(&lp, right.into_raw_fd(), Recorder { log: log.clone(), echo: true, panic_in: None })
        .unwrap();
    let got = lp
        .block_on(async {
            left.write_all(b"adopted").await?;
            left.read_exact(7).await
        })
        .unwrap();
    assert_eq!(got.unwrap(), b"adopted");
    assert!(right.peer_addr().is_err(), "a Unix stream has no IP peer");
    right.pause_reading().unwrap();
    assert!(!right.is_reading());
    right.resume_reading().unwrap();
    right.set_idle_timeout(0).unwrap();
    assert!(right.to_owned().is_ok());
    right.abort().unwrap();
    drop(right);
    drop(left);
    lp.run().unwrap();
    assert_eq!(log.events.borrow().last().map(String::as_str), Some("released"));

    let server = Server::listen_unix(&lp, "@libasync-rust-cb", || Recorder {
        log: Rc::new(Log::default()),
        echo: true,
        panic_in: None,
    })
    .unwrap();
    assert_eq!(server.port(), Err(Error::INVAL).or(server.port()));
    drop(server);
    lp.run().unwrap();
}

#[test]
fn loop_dropped_before_its_streams() {
    let lp = Loop::new().unwrap();
    let listener = Listener::bind(&lp, Some("127.0.0.1"), 0).unwrap();
    let port = listener.server().port().unwrap();
    let handle = lp.clone();
    let (client, server_side) = lp
        .block_on(async move {
            let client = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
            let accepted = listener.accept().await.unwrap();
            (client, (accepted, listener))
        })
        .unwrap();
    let pending_connect = connect(&lp, "127.0.0.1", port).unwrap();
    drop(lp);
    assert_eq!(client.write(b"x"), Err(Error::CLOSED), "the loop's end aborted the stream");
    let (accepted, listener) = server_side;
    assert!(accepted.fd().is_err());
    assert_eq!(listener.server().port(), Err(Error::CLOSED));
    drop(pending_connect);
    drop(accepted);
    drop(listener);
    drop(client); // released after the loop: allowed
}

#[test]
fn dns_lookups() {
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 20_000);
    let dns = lp.dns();
    dns.set_deadline(5000).unwrap();
    dns.set_timeout(1000, 2).unwrap();
    dns.set_rotate(false).unwrap();
    dns.set_search("", 1).unwrap();
    let hosts = std::env::temp_dir().join(format!("libasync-rust-hosts-{}", std::process::id()));
    std::fs::write(&hosts, "192.0.2.7 rust-binding.test\n").unwrap();
    dns.set_hosts_file(hosts.to_str().unwrap()).unwrap();
    dns.set_servers("127.0.0.1:9").unwrap(); // never asked: the hosts file answers
    assert_eq!(dns.set_servers("not a server"), Err(Error::INVAL));
    let handle = lp.clone();
    let (info, name) = lp
        .block_on(async move {
            let flags = libasync::sys::ASYNC_DNS_CANONNAME;
            let info = getaddrinfo(&handle, "rust-binding.test", Some("8080"), 2, flags)?.await?;
            let addr = parse_addr("192.0.2.7:8080", 0)?;
            let name = getnameinfo(&handle, &addr, libasync::sys::ASYNC_DNS_NUMERICSERV)?.await?;
            Ok::<_, Error>((info, name))
        })
        .unwrap()
        .unwrap();
    std::fs::remove_file(&hosts).unwrap();
    assert_eq!(info.entries[0].addr, SocketAddr::from(([192, 0, 2, 7], 8080)));
    assert_eq!(info.entries[0].family, 2);
    let _ = (info.entries[0].socktype, info.entries[0].protocol, info.canonical_name);
    // The reverse answer: the hosts file's name, or the numeric form.
    assert!(name.0 == "rust-binding.test" || name.0 == "192.0.2.7", "{:?}", name);
    assert_eq!(name.1, "8080");
    assert_eq!(getaddrinfo(&lp, "x", None, 77, 0).err(), Some(Error::INVAL));
    let numeric_only = getaddrinfo(&lp, "not-numeric.test", None, 0, libasync::sys::ASYNC_DNS_NUMERICHOST);
    assert!(numeric_only.is_err() || lp.block_on(numeric_only.unwrap()).unwrap().is_err());
    // A lookup dropped pending is cancelled.
    let pending = getaddrinfo(&lp, "rust-binding.test", None, 0, 0).unwrap();
    drop(pending);
    lp.run().unwrap();
}

#[test]
fn addresses() {
    assert_eq!(parse_addr("127.0.0.1", 80).unwrap(), SocketAddr::from(([127, 0, 0, 1], 80)));
    assert_eq!(parse_addr("[::1]:53", 0).unwrap(), "[::1]:53".parse().unwrap());
    assert_eq!(parse_addr("nonsense", 0), Err(Error::INVAL));
    assert_eq!(parse_addr("a\0b", 0), Err(Error::INVAL));
    assert_eq!(format_addr(&"127.0.0.1:80".parse().unwrap()).unwrap(), "127.0.0.1:80");
    assert_eq!(format_addr(&"[::1]:80".parse().unwrap()).unwrap(), "[::1]:80");
    let scoped: SocketAddr = "[fe80::1%1]:5".parse().unwrap();
    assert_eq!(parse_addr(&format_addr(&scoped).unwrap(), 0).unwrap(), scoped);
}

struct Udp {
    got: Rc<RefCell<Vec<(Vec<u8>, Option<SocketAddr>)>>>,
    panic_on: Option<&'static [u8]>,
    made: Rc<Cell<bool>>,
}

impl DatagramProtocol for Udp {
    fn connection_made(&mut self, _dgram: &DatagramRef<'_>) {
        self.made.set(true);
    }
    fn datagram_received(&mut self, _dgram: &DatagramRef<'_>, data: &[u8], from: Option<SocketAddr>) {
        if self.panic_on == Some(data) {
            panic!("in datagram_received");
        }
        self.got.borrow_mut().push((data.to_vec(), from));
    }
}

#[test]
fn datagrams() {
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 10_000);
    let got = Rc::new(RefCell::new(Vec::new()));
    let made = Rc::new(Cell::new(false));
    let options = UdpOptions { local_address: Some("127.0.0.1:0".into()), ..Default::default() };
    let receiver =
        Datagram::udp(&lp, &options, Udp { got: got.clone(), panic_on: Some(b"boom"), made: made.clone() }).unwrap();
    let to = receiver.local_addr().unwrap();
    let options = UdpOptions { remote_address: Some(format_addr(&to).unwrap()), ..Default::default() };
    let sender = Datagram::udp(
        &lp,
        &options,
        Udp { got: Rc::new(RefCell::new(Vec::new())), panic_on: None, made: Rc::new(Cell::new(false)) },
    )
    .unwrap();
    assert_eq!(sender.peer_addr().unwrap(), to);
    sender.send(b"one", None).unwrap();
    sender.send_to(b"two", &format_addr(&to).unwrap()).unwrap_or(());
    sender.set_write_limits(1 << 20, 1 << 10).unwrap();
    assert_eq!(sender.write_limits().unwrap(), (1 << 20, 1 << 10));
    assert!(sender.write_buffer_size().unwrap() <= 6);
    assert!(sender.fd().unwrap() >= 0);
    receiver.pause_reading().unwrap();
    assert!(!receiver.is_reading());
    receiver.resume_reading().unwrap();
    receiver.set_broadcast(true).unwrap();
    receiver.set_multicast_ttl(1).unwrap();
    receiver.set_multicast_loop(true).unwrap();
    let _ = receiver.set_multicast_interface("127.0.0.1");
    let _ = receiver.join_multicast("239.1.2.3", None).and_then(|_| receiver.leave_multicast("239.1.2.3", None));
    assert_eq!(receiver.join_multicast("not a group", None), Err(Error::INVAL));
    while got.borrow().is_empty() {
        lp.run_mode(RunMode::Once).unwrap();
    }
    assert!(made.get());
    assert_eq!(got.borrow()[0].0, b"one");
    assert_eq!(got.borrow()[0].1, Some(sender.local_addr().unwrap()));
    sender.send(b"boom", None).unwrap();
    let payload = catch_unwind(AssertUnwindSafe(|| loop {
        lp.run_mode(RunMode::Once).unwrap();
    }))
    .unwrap_err();
    assert_eq!(panic_message(payload), "in datagram_received");
    assert_eq!(receiver.send(b"x", Some(&to)), Err(Error::CLOSED), "the panicking transport was aborted");
    drop(receiver);
    sender.close().unwrap();
    drop(sender);
    lp.run().unwrap();

    // Unix datagram sockets, and an adopted one.
    let path = std::env::temp_dir().join(format!("libasync-rust-dgram-{}", std::process::id()));
    let path = path.to_str().unwrap().to_string();
    let _ = std::fs::remove_file(&path);
    let got = Rc::new(RefCell::new(Vec::new()));
    let bound = Datagram::unix(
        &lp,
        Some(&path),
        None,
        Udp { got: got.clone(), panic_on: None, made: Rc::new(Cell::new(false)) },
    )
    .unwrap();
    let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let adopted = Datagram::adopt(
        &lp,
        a.into_raw_fd(),
        Udp { got: got.clone(), panic_on: None, made: Rc::new(Cell::new(false)) },
    )
    .unwrap();
    b.send(b"to adopted").unwrap();
    std::os::unix::net::UnixDatagram::unbound().unwrap().send_to(b"to bound", &path).unwrap();
    adopted.send(b"from adopted", None).unwrap();
    let mut back = [0u8; 32];
    let n = b.recv(&mut back).unwrap();
    assert_eq!(&back[..n], b"from adopted");
    while got.borrow().len() < 2 {
        lp.run_mode(RunMode::Once).unwrap();
    }
    let mut texts: Vec<Vec<u8>> = got.borrow().iter().map(|(d, _)| d.clone()).collect();
    texts.sort();
    assert_eq!(texts, vec![b"to adopted".to_vec(), b"to bound".to_vec()]);
    assert!(adopted.to_owned().is_ok());
    adopted.abort().unwrap();
    drop(adopted);
    drop(bound);
    lp.run().unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(Datagram::udp(&lp, &UdpOptions::default(), Udp { got, panic_on: None, made }).err(), Some(Error::INVAL));
}

#[test]
fn watchers_and_signals() {
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 10_000);
    let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
    use std::io::Write;
    (&writer).write_all(b"!").unwrap();
    let watcher = Rc::new(Watcher::new(&lp, std::os::unix::io::AsRawFd::as_raw_fd(&reader)).unwrap());
    assert_eq!(watcher.fd().unwrap(), std::os::unix::io::AsRawFd::as_raw_fd(&reader));
    let seen = Rc::new(Cell::new(0u32));
    let (s, w) = (seen.clone(), Rc::downgrade(&watcher));
    watcher
        .start(READABLE | WRITABLE, move |revents| {
            s.set(s.get() | revents);
            let w = w.upgrade().unwrap();
            if s.get() == READABLE | WRITABLE {
                w.stop().unwrap();
            } else {
                w.set_events(READABLE | WRITABLE).unwrap();
            }
        })
        .unwrap();
    lp.run().unwrap();
    assert_eq!(seen.get(), READABLE | WRITABLE);
    watcher.start(READABLE, |_| panic!("in a watcher")).unwrap();
    let payload = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(panic_message(payload), "in a watcher");
    drop(watcher);
    assert_eq!(Watcher::new(&lp, -5).err(), Some(Error::INVAL));

    let signal = Rc::new(Signal::new(&lp).unwrap());
    let got = Rc::new(Cell::new(0));
    let (g, sg) = (got.clone(), Rc::downgrade(&signal));
    signal
        .start(10, move |signum| {
            g.set(signum);
            sg.upgrade().unwrap().stop().unwrap();
        })
        .unwrap(); // SIGUSR1
    assert_eq!(signal.signum().unwrap(), 10);
    assert_eq!(signal.start(0, |_| {}), Err(Error::INVAL));
    std::process::Command::new("kill").args(["-USR1", &std::process::id().to_string()]).status().unwrap();
    lp.run().unwrap();
    assert_eq!(got.get(), 10);
    signal.start(12, |_| panic!("in a signal")).unwrap(); // SIGUSR2
    std::process::Command::new("kill").args(["-USR2", &std::process::id().to_string()]).status().unwrap();
    let payload = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(panic_message(payload), "in a signal");
    drop(signal);
    lp.run().unwrap();
}

struct Redial {
    log: Rc<Log>,
    panic_in_stopped: bool,
}

impl Protocol for Redial {
    fn connection_made(&mut self, _stream: &StreamRef<'_>) {
        self.log.events.borrow_mut().push("made".into());
    }
    fn data_received(&mut self, _stream: &StreamRef<'_>, data: &[u8]) -> usize {
        data.len()
    }
    fn connection_lost(&mut self, _stream: &StreamRef<'_>, _error: Option<Error>) {
        self.log.events.borrow_mut().push("lost".into());
    }
}

impl libasync::ReconnectProtocol for Redial {
    fn connect_failed(&mut self, error: Error, failures: u32, _retry_ms: u64) {
        self.log.events.borrow_mut().push(format!("failed {} {}", error.name(), failures));
    }
    fn stopped(&mut self, error: Option<Error>) {
        self.log.events.borrow_mut().push(format!("stopped {:?}", error));
        if self.panic_in_stopped {
            panic!("in stopped");
        }
    }
}

#[test]
fn reconnector() {
    use libasync::{ReconnectOptions, ReconnectState, Reconnector};
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 10_000);
    let listener = Listener::bind(&lp, Some("127.0.0.1"), 0).unwrap();
    let port = listener.server().port().unwrap();
    let log = Rc::new(Log::default());
    let options = ReconnectOptions { initial_delay_ms: 1, jitter: -1.0, ..Default::default() };
    let rc = Reconnector::start(&lp, "127.0.0.1", port, &options, Redial { log: log.clone(), panic_in_stopped: false })
        .unwrap();
    assert_eq!(rc.state().unwrap(), ReconnectState::Connecting);
    let first = lp.block_on(listener.accept()).unwrap().unwrap();
    while rc.state().unwrap() != ReconnectState::Connected {
        lp.run_mode(RunMode::Once).unwrap();
    }
    assert!(rc.stream().unwrap().is_some());
    first.abort().unwrap(); // the peer drops it: the reconnector dials again
    let second = lp.block_on(listener.accept()).unwrap().unwrap();
    rc.reconnect().unwrap();
    let third = lp.block_on(listener.accept()).unwrap().unwrap();
    rc.stop().unwrap();
    while !log.events.borrow().iter().any(|e| e.starts_with("stopped")) {
        lp.run_mode(RunMode::Once).unwrap();
    }
    assert_eq!(rc.state(), Err(Error::CLOSED), "gone once stopped");
    assert_eq!(rc.stop(), Err(Error::CLOSED));
    assert_eq!(log.events.borrow().iter().filter(|e| *e == "made").count(), 3);
    assert_eq!(log.events.borrow().last().unwrap(), "stopped None");
    drop((second, third));

    // A refused port, two attempts: gives up with the error; a panic in stopped resumes in run.
    let closed = closed_port();
    let log = Rc::new(Log::default());
    let options = ReconnectOptions { initial_delay_ms: 1, max_attempts: 2, ..Default::default() };
    let rc =
        Reconnector::start(&lp, REFUSING_HOST, closed, &options, Redial { log: log.clone(), panic_in_stopped: true })
            .unwrap();
    let payload = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(panic_message(payload), "in stopped");
    assert_eq!(
        *log.events.borrow(),
        vec!["failed ASYNC_ECONNREFUSED 1", "failed ASYNC_ECONNREFUSED 2", "stopped Some(ASYNC_ECONNREFUSED(-18))"]
    );
    drop(rc);
    assert_eq!(
        Reconnector::start(&lp, "", 1, &ReconnectOptions::default(), Redial { log, panic_in_stopped: false }).err(),
        Some(Error::INVAL)
    );
    drop(listener);
    lp.run().unwrap();
}
