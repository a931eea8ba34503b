use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = promptgate::cli::Cli::parse();
    let env = promptgate::env::Env::read();
    promptgate::cli::init_logging(&cli, &env);
    promptgate::cli::run(cli, &env).into()
}
