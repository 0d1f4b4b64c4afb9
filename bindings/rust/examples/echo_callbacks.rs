//! An echo server written with callbacks (a `Protocol`).
//!
//!   echo_callbacks          serve on a free port, echo one message from a
//!                           client of its own, print it and exit
//!   echo_callbacks PORT     serve 127.0.0.1:PORT until SIGTERM or SIGINT
//!                           (prints READY, then CPU time at exit: the
//!                           benchmark's server, bench/run_echo.sh)
use libasync::{connect_with, Loop, Protocol, Server, Signal, StreamRef, Timer};
use std::cell::RefCell;
use std::rc::Rc;

struct Echo;

impl Protocol for Echo {
    fn connection_made(&mut self, stream: &StreamRef<'_>) {
        // The benchmark's write marks (bench/echo_policy.h).
        stream.set_write_limits(65536, 16384).unwrap();
    }
    fn data_received(&mut self, stream: &StreamRef<'_>, data: &[u8]) -> usize {
        let _ = stream.write(data);
        data.len()
    }
    fn pause_writing(&mut self, stream: &StreamRef<'_>) {
        let _ = stream.pause_reading();
    }
    fn resume_writing(&mut self, stream: &StreamRef<'_>) {
        let _ = stream.resume_reading();
    }
}

/// The self-test's client: sends a line, keeps what comes back.
struct Client {
    received: Rc<RefCell<Vec<u8>>>,
}

impl Protocol for Client {
    fn connection_made(&mut self, stream: &StreamRef<'_>) {
        stream.write(b"hello from the callback client\n").unwrap();
    }
    fn data_received(&mut self, stream: &StreamRef<'_>, data: &[u8]) -> usize {
        self.received.borrow_mut().extend_from_slice(data);
        if data.ends_with(b"\n") {
            stream.close().unwrap();
        }
        data.len()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lp = Loop::new()?;
    let port: Option<u16> = std::env::args().nth(1).map(|p| p.parse()).transpose()?;
    let server = Server::listen(&lp, Some("127.0.0.1"), port.unwrap_or(0), || Echo)?;
    if port.is_some() {
        let mut signals = Vec::new();
        for signum in [15, 2] {
            let signal = Signal::new(&lp)?;
            let handle = lp.clone();
            signal.start(signum, move |_| handle.stop())?;
            signal.set_ref(false)?;
            signals.push(signal);
        }
        println!("READY");
        lp.run()?;
        print_cpu();
        return Ok(());
    }
    let received = Rc::new(RefCell::new(Vec::new()));
    let connect = connect_with(&lp, "127.0.0.1", server.port()?, Client { received: received.clone() })?;
    let guard = Timer::new(&lp)?; // bounds the run: 5 s
    let handle = lp.clone();
    guard.start(5000, 0, move || handle.stop())?;
    guard.set_ref(false)?;
    lp.run_until(&connect)?;
    drop(connect);
    while received.borrow().last() != Some(&b'\n') && guard.is_active() {
        lp.run_mode(libasync::RunMode::Once)?;
    }
    print!("echoed: {}", String::from_utf8_lossy(&received.borrow()));
    if received.borrow().as_slice() != b"hello from the callback client\n" {
        return Err("no echo".into());
    }
    Ok(())
}

/// The process's CPU time, as the C servers print it.
fn print_cpu() {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    let rss_kib: f64 = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0.0);
    println!("CPU {:.6} MAXRSS_MIB {:.1}", ticks / 100.0, rss_kib / 1024.0);
}
