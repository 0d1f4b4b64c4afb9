//! call_soon throughput, the workload of bench/callsoon_async.c (chain):
//! one callback in flight, each queuing the next, N callbacks.
//!
//!   callsoon [N]     N defaults to 2,000,000; prints a RESULT line
use libasync::{Loop, LoopHandle};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

fn chain(lp: LoopHandle, ran: Rc<Cell<u64>>, total: u64) {
    ran.set(ran.get() + 1);
    if ran.get() < total {
        let next = lp.clone();
        lp.call_soon(move || chain(next, ran, total)).unwrap();
    }
}

fn main() {
    let total: u64 = std::env::args().nth(1).map(|n| n.parse().unwrap()).unwrap_or(2_000_000);
    let lp = Loop::new().unwrap();
    let ran = Rc::new(Cell::new(0));
    let started = Instant::now();
    let (handle, counter) = (lp.clone(), ran.clone());
    lp.call_soon(move || chain(handle, counter, total)).unwrap();
    lp.run().unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(ran.get(), total);
    println!(
        "RESULT bench=callsoon_chain lib=rust callbacks={} secs={:.6} ops_per_sec={:.0}",
        total,
        secs,
        total as f64 / secs
    );
}
