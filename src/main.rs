use std::process::ExitCode;

use clap::Parser;
use promptgate::app::{self, Cli};
use promptgate::env::Env;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::read();
    app::init_logging(&cli, &env);
    app::run(cli, &env).into()
}

/// promptgate allocates many small values (YAML nodes, JSON values) per artifact;
/// mimalloc handles that faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
