//! The `ouradb` binary. Its edge is `cli`, the only place anyhow is used.

fn main() -> std::process::ExitCode {
    ouradb::cli::main()
}
