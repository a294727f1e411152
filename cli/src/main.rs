//! `cpis`: see `cpis --help` and docs/cli.md.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(cpis_cli::run(cpis_cli::args::Cli::parse()))
}
