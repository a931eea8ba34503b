use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = promptgate::cli::Cli::parse();
    let env = promptgate::env::Env::read();
    promptgate::cli::init_logging(&cli, &env);
    promptgate::cli::run(cli, &env).into()
}

/// promptgate allocates many small values (YAML nodes, JSON values) per artifact;
/// mimalloc handles that faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
