//! TLS and SOCKS5 layers (Stream::push_tls, TlsContext, the TLS getters,
//! Stream::push_socks5 / push_socks5_addr): an in-process handshake over
//! local TCP with certificates made now by tests/tls_certs.sh (openssl),
//! ALPN and version, a verify failure, bad input; TLS through
//! ConnectOptions::tls and Server::set_tls with server-side SNI
//! (TlsContext::add_server_name); a SOCKS5 tunnel through
//! a proxy written with the crate, and bad input.

use libasync::{
    connect, connect_options, ConnectOptions, Error, Listener, Loop, LoopHandle, Stream, Timer, TlsContext, TlsOptions,
    TlsSide,
};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Stops the loop after `ms`: every test's run is bounded.
fn deadline(lp: &LoopHandle, ms: u64) -> Timer {
    let timer = Timer::new(lp).unwrap();
    let handle = lp.clone();
    timer.start(ms, 0, move || handle.stop()).unwrap();
    timer.set_ref(false).unwrap();
    timer
}

/// A fresh directory of test certificates (removed on drop).
struct Certs(PathBuf);

impl Certs {
    fn new(name: &str) -> Certs {
        let dir = std::env::temp_dir().join(format!("libasync-rust-tls-{}-{}", name, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/tls_certs.sh");
        let status = Command::new("sh").arg(script).arg(&dir).status().expect("sh runs tls_certs.sh");
        assert!(status.success(), "tls_certs.sh (the openssl command) failed");
        Certs(dir)
    }

    fn file(&self, name: &str) -> Option<String> {
        Some(self.0.join(name).to_str().unwrap().to_owned())
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn server_context(certs: &Certs, alpn: &[&str]) -> TlsContext {
    let options = TlsOptions {
        cert_file: certs.file("server.pem"),
        key_file: certs.file("server.key"),
        alpn: alpn.iter().map(|a| a.to_string()).collect(),
        ..TlsOptions::default()
    };
    TlsContext::new(TlsSide::Server, &options).unwrap()
}

/// A TLS echo server on 127.0.0.1: its port.
fn tls_echo_server(lp: &LoopHandle, ctx: TlsContext) -> u16 {
    let listener = Listener::bind(lp, Some("127.0.0.1"), 0).unwrap();
    let port = listener.server().port().unwrap();
    let handle = lp.clone();
    lp.spawn(async move {
        while let Ok(stream) = listener.accept().await {
            let (stream, handshake) = stream.push_tls(&handle, &ctx, None).unwrap();
            handle.spawn(async move {
                if handshake.await.is_err() {
                    return;
                }
                let mut buffer = vec![0u8; 4096];
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
fn handshake_echo_alpn_version() {
    let certs = Certs::new("echo");
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 20_000);
    let port = tls_echo_server(&lp, server_context(&certs, &["h2", "http/1.1"]));
    let client = TlsContext::new(
        TlsSide::Client,
        &TlsOptions { ca_file: certs.file("ca.pem"), alpn: vec!["http/1.1".into()], ..TlsOptions::default() },
    )
    .unwrap();
    // Clones share the context from any thread (Send + Sync).
    let shared = client.clone();
    std::thread::spawn(move || drop(shared)).join().unwrap();
    let handle = lp.clone();
    lp.block_on(async move {
        let lower = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
        let (stream, handshake) = lower.push_tls(&handle, &client, Some("localhost")).unwrap();
        assert_eq!(stream.tls_version().unwrap(), 0, "0 before the handshake is done");
        stream.write_all(b"queued before the handshake\n").await.unwrap();
        handshake.await.unwrap();
        assert_eq!(stream.alpn().unwrap().as_deref(), Some("http/1.1"));
        assert_eq!(stream.tls_version().unwrap(), 0x0304);
        assert!(!stream.resumed().unwrap());
        assert_eq!(stream.verify_error().unwrap(), (0, "ok"));
        assert!(stream.is_layered().unwrap());
        assert_eq!(stream.read_line(100).await.unwrap(), b"queued before the handshake\n");
        stream.write_all(b"ping\n").await.unwrap();
        assert_eq!(stream.read_line(100).await.unwrap(), b"ping\n");
    })
    .unwrap();
}

#[test]
fn untrusted_server_fails_with_cert_and_a_reason() {
    let certs = Certs::new("verify");
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 20_000);
    let port = tls_echo_server(&lp, server_context(&certs, &[]));
    let client =
        TlsContext::new(TlsSide::Client, &TlsOptions { ca_file: certs.file("other-ca.pem"), ..TlsOptions::default() })
            .unwrap();
    let handle = lp.clone();
    lp.block_on(async move {
        let lower = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
        let (stream, handshake) = lower.push_tls(&handle, &client, Some("localhost")).unwrap();
        assert_eq!(handshake.await.err(), Some(Error::CERT));
        let (code, reason) = stream.verify_error().unwrap();
        assert!(code > 0, "an X509_V_ERR code, got {}", code);
        assert!(!reason.is_empty() && reason != "ok", "a reason, got {:?}", reason);
        let mut byte = [0u8; 1];
        assert_eq!(stream.read(&mut byte).await, Ok(0), "the stream ended with the handshake");
        assert_eq!(stream.verify_error().unwrap(), (code, reason), "kept after the end");
    })
    .unwrap();
}

#[test]
fn wrong_host_name_fails_with_cert() {
    let certs = Certs::new("name");
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 20_000);
    let port = tls_echo_server(&lp, server_context(&certs, &[]));
    let client =
        TlsContext::new(TlsSide::Client, &TlsOptions { ca_file: certs.file("ca.pem"), ..TlsOptions::default() })
            .unwrap();
    let handle = lp.clone();
    lp.block_on(async move {
        let lower = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
        let (_stream, handshake) = lower.push_tls(&handle, &client, Some("not-the-name.example")).unwrap();
        assert_eq!(handshake.await.err(), Some(Error::CERT));
    })
    .unwrap();
}

#[test]
fn connect_option_and_server_tls_with_sni() {
    let certs = Certs::new("connect");
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 20_000);
    // The default certificate names wrong.example; "localhost" gets server.pem by SNI.
    let options = TlsOptions {
        cert_file: certs.file("wronghost.pem"),
        key_file: certs.file("wronghost.key"),
        ..TlsOptions::default()
    };
    let server_ctx = TlsContext::new(TlsSide::Server, &options).unwrap();
    server_ctx.add_server_name("localhost", &server_context(&certs, &[])).unwrap();
    assert_eq!(server_ctx.add_server_name("localhost", &server_context(&certs, &[])).err(), Some(Error::INVAL));
    let client =
        TlsContext::new(TlsSide::Client, &TlsOptions { ca_file: certs.file("ca.pem"), ..TlsOptions::default() })
            .unwrap();
    let listener = Listener::bind(&lp, Some("127.0.0.1"), 0).unwrap();
    assert_eq!(listener.server().set_tls(Some(&client)).err(), Some(Error::INVAL));
    listener.server().set_tls(Some(&server_ctx)).unwrap();
    let port = listener.server().port().unwrap();
    let handle = lp.clone();
    lp.spawn(async move {
        while let Ok(stream) = listener.accept().await {
            // Accepted after its handshake: already above TLS.
            assert!(stream.tls_version().unwrap() >= 0x0303);
            let mut buffer = vec![0u8; 4096];
            while let Ok(n) = stream.read(&mut buffer).await {
                if n == 0 || stream.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
        }
    });
    lp.block_on(async move {
        let with_name = |name: &str| ConnectOptions {
            tls: Some(client.clone()),
            server_name: Some(name.to_owned()),
            ..ConnectOptions::default()
        };
        let stream = connect_options(&handle, "127.0.0.1", port, &with_name("localhost")).unwrap().await.unwrap();
        assert!(stream.tls_version().unwrap() >= 0x0303, "the handshake is done");
        stream.write_all(b"ping\n").await.unwrap();
        assert_eq!(stream.read_line(100).await.unwrap(), b"ping\n");
        let other = connect_options(&handle, "127.0.0.1", port, &with_name("other.example")).unwrap();
        assert_eq!(other.await.err(), Some(Error::CERT));
        let nul = connect_options(&handle, "127.0.0.1", port, &with_name("a\0b"));
        assert_eq!(nul.err(), Some(Error::INVAL));
        let no_tls = ConnectOptions { server_name: Some("localhost".into()), ..ConnectOptions::default() };
        assert_eq!(connect_options(&handle, "127.0.0.1", port, &no_tls).err(), Some(Error::INVAL));
    })
    .unwrap();
}

#[test]
fn bad_input() {
    let certs = Certs::new("bad");
    // A server needs a certificate; files that do not exist; NUL bytes.
    assert_eq!(TlsContext::new(TlsSide::Server, &TlsOptions::default()).err(), Some(Error::INVAL));
    let missing = TlsOptions { cert_file: Some("/nonexistent/cert.pem".into()), ..TlsOptions::default() };
    assert!(TlsContext::new(TlsSide::Server, &missing).is_err());
    let nul = TlsOptions { ca_file: Some("a\0b".into()), ..TlsOptions::default() };
    assert_eq!(TlsContext::new(TlsSide::Client, &nul).err(), Some(Error::INVAL));
    let ctx = server_context(&certs, &[]);

    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 20_000);
    let listener = Listener::bind(&lp, Some("127.0.0.1"), 0).unwrap();
    let port = listener.server().port().unwrap();
    let handle = lp.clone();
    lp.block_on(async move {
        let plain = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
        // The getters refuse a stream that is not above TLS.
        assert_eq!(plain.alpn().err(), Some(Error::INVAL));
        assert_eq!(plain.tls_version().err(), Some(Error::INVAL));
        assert_eq!(plain.resumed().err(), Some(Error::INVAL));
        assert_eq!(plain.verify_error().err(), Some(Error::INVAL));
        assert_eq!(plain.push_tls(&handle, &ctx, Some("a\0b")).err(), Some(Error::INVAL));
        let plain = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
        // SOCKS5 bad input: an empty or too long host, empty or too long
        // credentials, NUL bytes.
        assert_eq!(plain.push_socks5(&handle, "", 80, None).err(), Some(Error::INVAL));
        for (host, credentials) in [
            ("x".repeat(256), None),
            ("example.org".to_owned(), Some(("", "secret"))),
            ("example.org".to_owned(), Some(("user", &*"p".repeat(256)))),
            ("a\0b".to_owned(), None),
        ] {
            let plain = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
            assert_eq!(plain.push_socks5(&handle, &host, 80, credentials).err(), Some(Error::INVAL), "{:?}", host);
        }
        drop(listener);
    })
    .unwrap();
}

/// A SOCKS5 proxy on 127.0.0.1 that accepts no-authentication and
/// CONNECT to an IPv4 address, answers success and then echoes (the
/// target is itself): its port.
fn socks5_echo_proxy(lp: &LoopHandle) -> u16 {
    let listener = Listener::bind(lp, Some("127.0.0.1"), 0).unwrap();
    let port = listener.server().port().unwrap();
    let handle = lp.clone();
    lp.spawn(async move {
        while let Ok(stream) = listener.accept().await {
            handle.spawn(async move {
                let greeting = stream.read_exact(2).await.unwrap();
                assert_eq!(greeting[0], 5);
                stream.read_exact(greeting[1] as usize).await.unwrap();
                stream.write_all(&[5, 0]).await.unwrap();
                let request = stream.read_exact(10).await.unwrap();
                assert_eq!(&request[..4], &[5, 1, 0, 1], "CONNECT to an IPv4 address");
                assert_eq!(&request[4..8], &[127, 0, 0, 1]);
                assert_eq!(u16::from_be_bytes([request[8], request[9]]), 7);
                stream.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await.unwrap();
                let mut buffer = vec![0u8; 4096];
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

async fn through(tunnel: Stream, text: &[u8]) {
    assert!(tunnel.is_layered().unwrap());
    tunnel.write_all(text).await.unwrap();
    assert_eq!(tunnel.read_line(100).await.unwrap(), text);
}

#[test]
fn socks5_tunnel_by_host_and_by_address() {
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 20_000);
    let port = socks5_echo_proxy(&lp);
    let handle = lp.clone();
    lp.block_on(async move {
        let lower = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
        let tunnel = lower.push_socks5(&handle, "127.0.0.1", 7, None).unwrap().await.unwrap();
        through(tunnel, b"by host\n").await;
        let lower = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
        let target = "127.0.0.1:7".parse().unwrap();
        let tunnel = lower.push_socks5_addr(&handle, target, None).unwrap().await.unwrap();
        through(tunnel, b"by address\n").await;
    })
    .unwrap();
}

#[test]
fn socks5_proxy_closing_fails_the_future() {
    let lp = Loop::new().unwrap();
    let _deadline = deadline(&lp, 20_000);
    let listener = Listener::bind(&lp, Some("127.0.0.1"), 0).unwrap();
    let port = listener.server().port().unwrap();
    let handle = lp.clone();
    lp.spawn(async move {
        // Reads the greeting and hangs up.
        let stream = listener.accept().await.unwrap();
        stream.read_exact(3).await.unwrap();
        drop(stream);
    });
    lp.block_on(async move {
        let lower = connect(&handle, "127.0.0.1", port).unwrap().await.unwrap();
        let result = lower.push_socks5(&handle, "example.org", 443, Some(("user", "secret"))).unwrap().await;
        assert_eq!(result.err(), Some(Error::EOF));
    })
    .unwrap();
}
