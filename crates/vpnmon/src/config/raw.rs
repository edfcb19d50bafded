//! How a setting's value is written in each source, and how a resolved value
//! is shown again.
//!
//! A setting has a *raw* type, the same for the flag, the environment and the
//! file (a `String` for an address, a `Vec<String>` for a list, ...), and a
//! resolved type that its parser makes of the raw value. [`Raw`] says how
//! the raw type is read from clap's matches and from an environment
//! variable (the file goes through serde); [`Show`] renders a resolved value
//! for `vpnmon config show` and for the defaults in `--help`.

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, parser::MatchesError, value_parser};
use domain::retention::Retention;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A raw setting value, as a flag, an environment variable or a file key gives it.
pub trait Raw:
    Sized + Clone + Debug + PartialEq + DeserializeOwned + Send + Sync + 'static
{
    /// Gives the flag its action and value parser.
    fn shape(arg: Arg) -> Arg;
    /// The value given on the command line, if any.
    fn from_matches(m: &ArgMatches, id: &str) -> Result<Option<Self>, MatchesError>;
    /// Parses the text of an environment variable (never empty: an empty
    /// variable counts as unset).
    fn from_env(text: &OsStr) -> Result<Self, String>;
}

fn utf8(text: &OsStr) -> Result<&str, String> {
    text.to_str()
        .ok_or_else(|| format!("{text:?} is not valid UTF-8"))
}

impl Raw for String {
    fn shape(arg: Arg) -> Arg {
        arg.action(ArgAction::Set)
            .value_parser(value_parser!(String))
    }
    fn from_matches(m: &ArgMatches, id: &str) -> Result<Option<Self>, MatchesError> {
        Ok(m.try_get_one::<String>(id)?.cloned())
    }
    fn from_env(text: &OsStr) -> Result<Self, String> {
        utf8(text).map(str::to_owned)
    }
}

impl Raw for PathBuf {
    fn shape(arg: Arg) -> Arg {
        arg.action(ArgAction::Set)
            .value_parser(value_parser!(PathBuf))
    }
    fn from_matches(m: &ArgMatches, id: &str) -> Result<Option<Self>, MatchesError> {
        Ok(m.try_get_one::<PathBuf>(id)?.cloned())
    }
    fn from_env(text: &OsStr) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }
}

macro_rules! raw_integer {
    ($($t:ty),*) => {$(
        impl Raw for $t {
            fn shape(arg: Arg) -> Arg {
                arg.action(ArgAction::Set).value_parser(value_parser!($t))
            }
            fn from_matches(m: &ArgMatches, id: &str) -> Result<Option<Self>, MatchesError> {
                Ok(m.try_get_one::<$t>(id)?.copied())
            }
            fn from_env(text: &OsStr) -> Result<Self, String> {
                let s = utf8(text)?;
                s.parse()
                    .map_err(|e| format!("invalid value {s:?}: {e}"))
            }
        }
    )*};
}
raw_integer!(u32, usize);

/// A list: the flag is repeatable and takes comma-separated values, the
/// environment variable is comma-separated, the file has an array.
impl Raw for Vec<String> {
    fn shape(arg: Arg) -> Arg {
        arg.action(ArgAction::Append)
            .value_delimiter(',')
            .value_parser(value_parser!(String))
    }
    fn from_matches(m: &ArgMatches, id: &str) -> Result<Option<Self>, MatchesError> {
        Ok(m.try_get_many::<String>(id)?.map(|v| v.cloned().collect()))
    }
    fn from_env(text: &OsStr) -> Result<Self, String> {
        Ok(utf8(text)?.split(',').map(str::to_owned).collect())
    }
}

/// A switch that is on by default. In the file it is the setting itself
/// (`probe = false`); the flag turns it off (`--no-probe`), and so does its
/// environment variable, named like the flag (`VPNMON_NO_PROBE=true`;
/// `false` turns it on, over the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Switch(pub bool);

impl Raw for Switch {
    fn shape(arg: Arg) -> Arg {
        arg.action(ArgAction::SetTrue)
    }
    fn from_matches(m: &ArgMatches, id: &str) -> Result<Option<Self>, MatchesError> {
        // SetTrue always has a value (false by default); only one typed on
        // the command line counts.
        let given = m.try_get_one::<bool>(id)?.copied() == Some(true)
            && m.value_source(id) == Some(ValueSource::CommandLine);
        Ok(given.then_some(Switch(false)))
    }
    fn from_env(text: &OsStr) -> Result<Self, String> {
        match utf8(text)? {
            "true" => Ok(Switch(false)),
            "false" => Ok(Switch(true)),
            s => Err(format!("invalid value {s:?} (want true or false)")),
        }
    }
}

/// A retention schedule as written: text from a flag, a variable or the
/// file (`raw=2d,300=10d`, or a plain duration for the raw windows), or a
/// table in the file (`retention = { raw = "2d", 300 = "10d" }`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum Levels {
    /// `LEVEL=DURATION,...` or a duration.
    Text(String),
    /// Level -> duration.
    Table(BTreeMap<String, String>),
}

impl Raw for Levels {
    fn shape(arg: Arg) -> Arg {
        arg.action(ArgAction::Set)
            .value_parser(value_parser!(String))
    }
    fn from_matches(m: &ArgMatches, id: &str) -> Result<Option<Self>, MatchesError> {
        Ok(m.try_get_one::<String>(id)?.cloned().map(Levels::Text))
    }
    fn from_env(text: &OsStr) -> Result<Self, String> {
        utf8(text).map(|t| Levels::Text(t.to_owned()))
    }
}

/// A resolved value as `config show` prints it: JSON (durations in seconds)
/// and text (as one would write it in the file, without quotes).
pub trait Show {
    /// The JSON form.
    fn json(&self) -> Value;
    /// The text form; empty when there is nothing to show.
    fn text(&self) -> String;
}

impl Show for String {
    fn json(&self) -> Value {
        Value::from(self.as_str())
    }
    fn text(&self) -> String {
        self.clone()
    }
}

impl Show for PathBuf {
    fn json(&self) -> Value {
        Value::from(self.to_string_lossy())
    }
    fn text(&self) -> String {
        self.display().to_string()
    }
}

impl Show for SocketAddr {
    fn json(&self) -> Value {
        Value::from(self.to_string())
    }
    fn text(&self) -> String {
        self.to_string()
    }
}

/// An optional listener: `None` is written `off`, as the flag takes it.
impl Show for Option<SocketAddr> {
    fn json(&self) -> Value {
        Value::from(self.text())
    }
    fn text(&self) -> String {
        self.map_or_else(|| "off".to_string(), |a| a.to_string())
    }
}

impl Show for Option<String> {
    fn json(&self) -> Value {
        self.as_deref().map_or(Value::Null, Value::from)
    }
    fn text(&self) -> String {
        self.clone().unwrap_or_default()
    }
}

impl Show for Option<PathBuf> {
    fn json(&self) -> Value {
        self.as_ref()
            .map_or(Value::Null, |p| Value::from(p.to_string_lossy()))
    }
    fn text(&self) -> String {
        self.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }
}

impl<T: std::fmt::Display> Show for Vec<T> {
    fn json(&self) -> Value {
        Value::Array(self.iter().map(|x| Value::from(x.to_string())).collect())
    }
    fn text(&self) -> String {
        self.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Show for Duration {
    fn json(&self) -> Value {
        seconds(*self)
    }
    fn text(&self) -> String {
        format_duration(*self)
    }
}

/// Per level, the seconds it is kept (`{"raw": 172800, "60": 172800, ...}`);
/// as text, as the flag takes it.
impl Show for Retention {
    fn json(&self) -> Value {
        Value::Object(
            self.levels()
                .map(|(level, keep)| (level.to_string(), seconds(keep)))
                .collect(),
        )
    }
    fn text(&self) -> String {
        self.to_string()
    }
}

macro_rules! show_plain {
    ($($t:ty),*) => {$(
        impl Show for $t {
            fn json(&self) -> Value {
                Value::from(*self)
            }
            fn text(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
show_plain!(u32, usize, bool);

/// A duration in seconds: an integer when it is whole.
pub fn seconds(d: Duration) -> Value {
    if d.subsec_nanos() == 0 {
        Value::from(d.as_secs())
    } else {
        Value::from(d.as_secs_f64())
    }
}

/// Writes a duration in the largest unit that divides it (`7d`, `90s`,
/// `250ms`), the inverse of [`super::parse_duration`] for whole milliseconds.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 || !d.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{}s", d.as_secs_f64());
    }
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}
