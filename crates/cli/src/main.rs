//! The `agentq` binary: parses arguments and hands over to [`agentq::cli`].

fn main() -> std::process::ExitCode {
    agentq::cli::main()
}
