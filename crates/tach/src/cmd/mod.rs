//! One module per subcommand; each exposes `Args` (clap) and `run`.

pub mod distill;
pub mod notigen;
pub mod timex;
pub mod triggers;

/// Exit code for invalid input that the user must fix (bad definitions, bad expression).
pub const EXIT_INVALID: u8 = 2;
