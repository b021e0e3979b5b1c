//! The `rt4ksr` command: a thin layer over the library, one module per subcommand.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("rt4ksr: {}", cli::one_line(&err));
            ExitCode::FAILURE
        }
    }
}
