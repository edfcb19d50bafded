//! `settings!`: from one table of settings, everything each source needs.
//!
//! For a table entry
//!
//! ```text
//! /// Help text (the flag's help and the field's doc).
//! key: Type {
//!     flag: "flag-name", [value: "VALUE",] env: "VPNMON_NAME",
//!     raw: RawType, default: <Type expr>, parse: <fn(RawType) -> Result<Type, E>>,
//!     [json: <fn(&Type) -> serde_json::Value>,] [shared: true,]
//! }
//! ```
//!
//! the macro writes the field `key: Type` of [`Settings`](super::Settings)
//! and its default, the optional field `key: Option<RawType>` of
//! [`Layer`](super::Layer) (what a flag, the environment or the file gives;
//! the file's key is the field's name), the entry in
//! [`SPECS`](super::SPECS) that clap's arguments are built from, and the
//! step of [`resolve`](super::resolve) that takes the first layer that has
//! the value and parses it. `shared` settings are also flags of
//! `vpnmon admin`.

/// Picks an optional table entry, or a fallback.
macro_rules! setting_or {
    (() $fallback:expr) => {
        $fallback
    };
    (($($given:tt)+) $fallback:expr) => {
        $($given)+
    };
}

macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $key:ident: $ty:ty {
            flag: $flag:literal,
            $(value: $value:literal,)?
            env: $env:literal,
            raw: $raw:ty,
            default: $default:expr,
            parse: $parse:expr,
            $(json: $json:expr,)?
            $(shared: $shared:literal,)?
        }
    )+) => {
        /// Resolved settings of a running server (see the table in `config/mod.rs`).
        #[derive(Debug, Clone, PartialEq)]
        pub struct Settings {
            $(
                $(#[doc = $doc])+
                pub $key: $ty,
            )+
            /// Password of the bootstrap admin, from `VPNMON_ADMIN_PASSWORD`
            /// only (a secret: no flag, no file key, never shown); generated
            /// when unset.
            pub admin_password: Option<String>,
        }

        impl Settings {
            /// The defaults `serve` starts from (the table's). `Settings::default()`
            /// is these without the metrics listener, for servers built in-process.
            pub fn defaults() -> Settings {
                Settings {
                    $($key: $default,)+
                    admin_password: None,
                }
            }

            /// Every setting's value as `config show` prints it, in table order.
            pub fn shown(&self) -> Vec<Shown> {
                vec![$(
                    Shown {
                        key: stringify!($key),
                        json: setting_or!(($(($json)(&self.$key))?) Show::json(&self.$key)),
                        text: Show::text(&self.$key),
                    },
                )+]
            }
        }

        /// One source's values (flags, environment or file), each optional.
        /// In the file, the keys are the field names; any other key is refused.
        #[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Layer {
            $(
                $(#[doc = $doc])+
                pub $key: Option<$raw>,
            )+
        }

        impl Layer {
            /// The values given on the command line.
            pub fn from_matches(
                m: &clap::ArgMatches,
                scope: Scope,
            ) -> Result<Layer, clap::parser::MatchesError> {
                let mut layer = Layer::default();
                $(
                    if scope.covers(setting_or!(($($shared)?) false)) {
                        layer.$key = <$raw as Raw>::from_matches(m, stringify!($key))?;
                    }
                )+
                Ok(layer)
            }

            /// The values of the `VPNMON_*` variables, read through `env`.
            /// An empty variable counts as unset.
            pub fn from_env(env: &dyn Fn(&str) -> Option<OsString>, scope: Scope) -> anyhow::Result<Layer> {
                let mut layer = Layer::default();
                $(
                    if scope.covers(setting_or!(($($shared)?) false)) {
                        if let Some(text) = env($env).filter(|t| !t.is_empty()) {
                            let value = <$raw as Raw>::from_env(&text)
                                .map_err(|e| anyhow::anyhow!("{}: {e}", $env))?;
                            layer.$key = Some(value);
                        }
                    }
                )+
                Ok(layer)
            }

            /// Forgets the values of settings outside `scope`.
            pub fn retain(mut self, scope: Scope) -> Layer {
                $(
                    if !scope.covers(setting_or!(($($shared)?) false)) {
                        self.$key = None;
                    }
                )+
                self
            }
        }

        /// Every setting's declaration, in table order.
        pub const SPECS: &[Spec] = &[$(
            Spec {
                key: stringify!($key),
                flag: $flag,
                value_name: setting_or!(($(Some($value))?) None),
                env: $env,
                doc: &[$($doc),+],
                shared: setting_or!(($($shared)?) false),
                shape: <$raw as Raw>::shape,
            },
        )+];

        /// Resolves every setting from the first layer that has it: flags,
        /// then environment, then file, then the default; then checks the
        /// rules between settings.
        pub fn resolve(layers: &Layers) -> anyhow::Result<Resolved> {
            let mut settings = Settings::defaults();
            let mut sources = Vec::with_capacity(SPECS.len());
            $(
                let (raw, source) = pick(&layers.flags.$key, &layers.env.$key, &layers.file.$key);
                if let Some(raw) = raw {
                    settings.$key = ($parse)(raw.clone()).map_err(|e| Refusal::from(e).at($flag))?;
                }
                sources.push((stringify!($key), source));
            )+
            settings.admin_password = layers.admin_password.clone();
            check(&settings)?;
            Ok(Resolved { settings, sources, config: layers.config.clone() })
        }
    };
}
