// Finds libasync without crates: LIBASYNC_LIB_DIR (a directory holding
// libasync.so) or `pkg-config --libs libasync` (PKG_CONFIG_PATH is honoured,
// so Meson's uninstalled directory works for an in-tree build).
use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBASYNC_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if let Ok(dir) = env::var("LIBASYNC_LIB_DIR") {
        println!("cargo:rustc-link-search=native={}", dir);
        println!("cargo:rustc-link-lib=dylib=async");
        return;
    }
    let output = Command::new("pkg-config").args(&["--libs", "libasync"]).output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => panic!(
            "pkg-config --libs libasync failed ({}): install libasync, set PKG_CONFIG_PATH, or set LIBASYNC_LIB_DIR",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => panic!("cannot run pkg-config ({}): set LIBASYNC_LIB_DIR instead", error),
    };
    let mut linked = false;
    for flag in String::from_utf8_lossy(&output.stdout).split_whitespace() {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={}", dir);
        } else if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={}", lib);
            linked |= lib == "async";
        }
    }
    if !linked {
        println!("cargo:rustc-link-lib=dylib=async");
    }
}
