//! The `verdict` binary.
#![forbid(unsafe_code)]

use clap::Parser;

/// mimalloc (the default feature `mimalloc`, see Cargo.toml); else the system allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    verdict::cli::run(verdict::cli::Cli::parse())
}
