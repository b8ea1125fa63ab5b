//! The `verdict` binary.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    verdict::cli::run(verdict::cli::Cli::parse())
}
