//! An echo server written with async/await: one task per connection.
//!
//!   echo_async          serve on a free port, echo a line from a client
//!                       task of its own, print it and exit
//!   echo_async PORT     serve 127.0.0.1:PORT until SIGTERM or SIGINT
//!                       (prints READY; the benchmark's server)
use libasync::{connect, Listener, Loop, LoopHandle, Signal, Stream};

async fn echo(stream: Stream) -> libasync::Result<()> {
    let mut buffer = vec![0u8; 65536];
    loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            return Ok(()); // the peer's end of file; dropping closes
        }
        stream.write_all(&buffer[..n]).await?;
    }
}

async fn serve(lp: LoopHandle, listener: Listener) {
    while let Ok(stream) = listener.accept().await {
        lp.spawn(async move {
            let _ = echo(stream).await;
        });
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lp = Loop::new()?;
    let port: Option<u16> = std::env::args().nth(1).map(|p| p.parse()).transpose()?;
    let listener = Listener::bind(&lp, Some("127.0.0.1"), port.unwrap_or(0))?;
    let bound = listener.server().port()?;
    lp.spawn(serve(lp.clone(), listener));
    if port.is_some() {
        let mut signals = Vec::new();
        for signum in [15, 2] {
            let signal = Signal::new(&lp)?;
            let handle = lp.clone();
            signal.start(signum, move |_| handle.stop())?;
            signals.push(signal);
        }
        println!("READY");
        lp.run()?;
        return Ok(());
    }
    let handle = lp.clone();
    let line = lp.block_on(async move {
        let client = async {
            let stream = connect(&handle, "127.0.0.1", bound)?.await?;
            stream.write_all(b"hello from the async client\n").await?;
            stream.read_line(1024).await
        };
        handle.timeout(5000, client).await? // bounded
    })??;
    print!("echoed: {}", String::from_utf8_lossy(&line));
    Ok(())
}
