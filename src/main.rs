//! The `ouradb` binary: anyhow lives only here, at the edge.

fn main() -> std::process::ExitCode {
    ouradb::cli::main()
}
