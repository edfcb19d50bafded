//! The lab's echo responder as a binary of its own, so tests of this crate
//! can start one (`vpnmon lab responder` is the same thing inside vpnmon).

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(lab::responder::main_with_args(std::env::args_os().skip(1)))
}
