//! The command-line side: clap arguments built from [`SPECS`], so a setting
//! is a flag without being written again in `main.rs`.
//!
//! clap's own `env` and `default_value` are deliberately not used: clap
//! would read the process environment (which tests can then not inject) and
//! a clap default would hide the file, which comes after the environment.
//! The environment and the defaults are applied by [`resolve`](super::resolve).

use super::{Layer, SPECS, Scope, Settings, Spec};
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches, value_parser};
use std::path::PathBuf;

/// The flag and variable naming the TOML file (not a setting: a file cannot name a file).
pub const CONFIG_FLAG: &str = "config";
/// See [`CONFIG_FLAG`].
pub const CONFIG_ENV: &str = "VPNMON_CONFIG";

/// The flags of one command: [`ServeFlags`] (every setting) or
/// [`StoreFlags`] (the settings `admin` shares with `serve`), and `--config`.
#[derive(Debug, Clone, Default)]
pub struct Flags<const SERVE: bool> {
    /// The settings given as flags.
    pub layer: Layer,
    /// `--config FILE`.
    pub config: Option<PathBuf>,
}

/// The flags of `vpnmon serve` and `vpnmon config show`.
pub type ServeFlags = Flags<true>;
/// The flags `vpnmon admin` shares with `serve` (the store's location).
pub type StoreFlags = Flags<false>;

impl<const SERVE: bool> Flags<SERVE> {
    /// Which settings these flags cover.
    pub const SCOPE: Scope = if SERVE { Scope::Serve } else { Scope::Store };
}

impl Spec {
    /// The help line: the doc, the variable and the default.
    pub fn help(&self, defaults: &Settings) -> String {
        let mut help = self
            .doc
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ");
        help.push_str(&format!(" [env: {}]", self.env));
        let default = defaults
            .shown()
            .into_iter()
            .find(|s| s.key == self.key)
            .map(|s| s.text)
            .unwrap_or_default();
        if self.value_name.is_some() && !default.is_empty() {
            help.push_str(&format!(" [default: {default}]"));
        }
        help
    }

    /// The clap argument (id = the file key).
    pub fn arg(&self, defaults: &Settings) -> Arg {
        let mut arg = Arg::new(self.key)
            .long(self.flag)
            .help(self.help(defaults))
            .global(self.shared);
        if let Some(v) = self.value_name {
            arg = arg.value_name(v);
        }
        (self.shape)(arg)
    }
}

impl<const SERVE: bool> Args for Flags<SERVE> {
    fn augment_args(cmd: Command) -> Command {
        let defaults = Settings::defaults();
        let cmd = SPECS
            .iter()
            .filter(|s| Self::SCOPE.covers(s.shared))
            .fold(cmd, |cmd, s| cmd.arg(s.arg(&defaults)));
        cmd.arg(
            Arg::new(CONFIG_FLAG)
                .long(CONFIG_FLAG)
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .global(true)
                .help(format!(
                    "TOML file with the settings' keys (data_dir, listen, ...) [env: {CONFIG_ENV}]"
                )),
        )
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl<const SERVE: bool> FromArgMatches for Flags<SERVE> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        // A type mismatch here is a bug in the table's raw types; say so
        // rather than drop the flag.
        let bug = |e| {
            clap::Error::raw(
                clap::error::ErrorKind::Io,
                format!("internal error reading the settings' flags: {e}\n"),
            )
        };
        Ok(Flags {
            layer: Layer::from_matches(m, Self::SCOPE).map_err(bug)?,
            config: m.try_get_one::<PathBuf>(CONFIG_FLAG).map_err(bug)?.cloned(),
        })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}
