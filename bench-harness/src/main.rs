//! `verdict-load`: the load generator for verdict (see `verdict-load --help`).

fn main() -> std::process::ExitCode {
    verdict_load::cli::main()
}
