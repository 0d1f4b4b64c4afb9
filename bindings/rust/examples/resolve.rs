//! DNS resolve with async/await: addresses of a name, and the name of an
//! address back.
//!
//!   resolve [NAME]      NAME defaults to "localhost" (answered from the
//!                       hosts file: no network needed)
use libasync::{getaddrinfo, getnameinfo, Loop};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "localhost".to_string());
    let lp = Loop::new()?;
    lp.dns().set_deadline(5000)?; // bounded, whatever the network does
    let handle = lp.clone();
    lp.block_on(async move {
        let info = getaddrinfo(&handle, &name, Some("80"), 0, 0)?.await?;
        for entry in &info.entries {
            println!("{} -> {}", name, entry.addr);
        }
        if let Some(first) = info.entries.first() {
            let flags = libasync::sys::ASYNC_DNS_NUMERICSERV;
            let (host, service) = getnameinfo(&handle, &first.addr, flags)?.await?;
            println!("{} <- {}:{}", first.addr, host, service);
        }
        Ok::<(), libasync::Error>(())
    })??;
    Ok(())
}
