//! Stream layers (Stream::push_rate_limit, Stream::pop,
//! StreamRef::is_layered): normal use, the rate, bad input, a push from
//! inside a callback protocol's data_received, a panic while awaiting,
//! drop order.

use libasync::{connect, connect_with, Error, Listener, Loop, LoopHandle, Protocol, Stream, StreamRef, Timer};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Stops the loop after `ms`: every test's run is bounded.
fn deadline(lp: &LoopHandle, ms: u64) -> Timer {
    let timer = Timer::new(lp).unwrap();
    let handle = lp.clone();
    timer.start(ms, 0, move || handle.stop()).unwrap();
    timer.set_ref(false).unwrap();
    timer
}

/// An echo server on 127.0.0.1: its port.
fn echo_server(lp: &LoopHandle) -> u16 {
    let listener = Listener::bind(lp, Some("127.0.0.1"), 0).unwrap();
    let port = listener.server().port().unwrap();
    let handle = lp.clone();
    lp.spawn(async move {
        while let Ok(stream) = listener.accept().await {
            handle.spawn(async move {
                let mut buffer = vec![0u8; 65536];
                while let Ok(n) = stream.read(&mut buffer).await {
                    if n == 0 || stream.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn push_echo_and_pop() {
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 20_000);
    let port = echo_server(&lp);
    let handle = lp.clone();
    lp.block_on(async move {
        let lower = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
        assert!(!lower.is_layered().unwrap());
        let upper = lower.push_rate_limit(0, 0).unwrap();
        assert!(upper.is_layered().unwrap());
        assert!(upper.peer_addr().unwrap().port() == port, "socket queries answer for the socket below");
        upper.write_all(b"through the layer\n").await.unwrap();
        assert_eq!(upper.read_line(100).await.unwrap(), b"through the layer\n");
        // Stacked: a limiter on the limiter.
        let top = upper.push_rate_limit(0, 0).unwrap();
        top.write_all(b"two layers\n").await.unwrap();
        assert_eq!(top.read_line(100).await.unwrap(), b"two layers\n");
        let upper = top.pop().unwrap();
        let lower = upper.pop().unwrap();
        assert!(!lower.is_layered().unwrap());
        lower.write_all(b"below again\n").await.unwrap();
        assert_eq!(lower.read_line(100).await.unwrap(), b"below again\n");
    })
    .unwrap();
}

#[test]
fn the_limiter_keeps_to_its_rate() {
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 20_000);
    let port = echo_server(&lp);
    let handle = lp.clone();
    let elapsed = lp
        .block_on(async move {
            let stream = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
            // 100 kB/s down: a bucket of 5 kB passes at once, 20 kB more take 0.2 s.
            // Read before the push, so a late clock read cannot shorten it.
            let started = Instant::now();
            let limited = stream.push_rate_limit(0, 100_000).unwrap();
            limited.write_all(&[7u8; 25_000]).await.unwrap();
            assert_eq!(limited.read_exact(25_000).await.unwrap(), vec![7u8; 25_000]);
            started.elapsed()
        })
        .unwrap();
    assert!(elapsed >= Duration::from_millis(150), "25 kB at 100 kB/s took {:?}", elapsed);
}

#[test]
fn bad_input() {
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 20_000);
    let port = echo_server(&lp);
    let handle = lp.clone();
    lp.block_on(async move {
        let stream = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
        assert_eq!(stream.pop().err(), Some(Error::INVAL), "not a layer's stream (dropped: closed)");
        let stream = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
        // Bytes read but not taken would be lost below a layer.
        stream.write_all(b"ab").await.unwrap();
        assert_eq!(stream.read_exact(1).await.unwrap(), b"a");
        assert_eq!(stream.push_rate_limit(0, 0).err(), Some(Error::STATE));
        // A closed stream.
        let stream = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
        let other = stream.to_owned().unwrap();
        stream.close().unwrap();
        assert_eq!(other.push_rate_limit(0, 0).err(), Some(Error::CLOSED));
        // Popping an upper stream already closed.
        let stream = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
        let upper = stream.push_rate_limit(0, 0).unwrap();
        upper.close().unwrap();
        assert_eq!(upper.pop().err(), Some(Error::CLOSED));
    })
    .unwrap();
}

/// A plaintext greeting, then a layer pushed from inside data_received
/// (the STARTTLS shape): the protocol whose callback pushes is released
/// during the push, while its callback still runs.
struct StartLimited {
    upper: Rc<RefCell<Option<Stream>>>,
}

impl Protocol for StartLimited {
    fn connection_made(&mut self, stream: &StreamRef<'_>) {
        stream.write(b"hello\n").unwrap();
    }

    fn data_received(&mut self, stream: &StreamRef<'_>, data: &[u8]) -> usize {
        assert_eq!(data, b"hello\n");
        let upper = stream.to_owned().unwrap().push_rate_limit(0, 0).unwrap();
        *self.upper.borrow_mut() = Some(upper);
        data.len()
    }
}

#[test]
fn push_inside_data_received() {
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 20_000);
    let port = echo_server(&lp);
    let upper = Rc::new(RefCell::new(None));
    let connecting = connect_with(&lp, "127.0.0.1", port, StartLimited { upper: upper.clone() }).unwrap();
    // Held: dropping it would close the stream before the greeting.
    let _below = lp.block_on(connecting).unwrap().unwrap();
    let handle = lp.clone();
    let waited = upper.clone();
    lp.block_on(async move {
        while waited.borrow().is_none() {
            handle.sleep(1).await.unwrap();
        }
    })
    .unwrap();
    let upper = upper.borrow_mut().take().unwrap();
    let line = lp
        .block_on(async move {
            upper.write_all(b"after the push\n").await.unwrap();
            upper.read_line(100).await
        })
        .unwrap()
        .unwrap();
    assert_eq!(line, b"after the push\n");
}

#[test]
fn panic_while_reading_a_layer_and_drop_order() {
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 20_000);
    let port = echo_server(&lp);
    let handle = lp.clone();
    let upper = lp
        .block_on(async move {
            let upper = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap().push_rate_limit(0, 0).unwrap();
            upper.write_all(b"x\n").await.unwrap();
            upper
        })
        .unwrap();
    let payload = catch_unwind(AssertUnwindSafe(|| {
        lp.block_on(async {
            upper.read_line(10).await.unwrap();
            panic!("after a layered read");
        })
    }))
    .unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"after a layered read"));
    // The upper stream outlives the loop: ended, then dropped without a crash.
    drop(lp);
    assert!(upper.write(b"late").is_err());
    drop(upper);
}
