//! The `reluvia-transform` executable: parses the command line, sets up logging
//! (`RUST_LOG`, to stderr) and exits with the command's code.

use clap::Parser;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off"))
        .target(env_logger::Target::Stderr)
        .init();
    let cli = reluvia_transform::cli::Cli::parse();
    std::process::exit(reluvia_transform::commands::main(cli));
}
