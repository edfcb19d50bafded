use super::*;
use clap::{Args, Command, FromArgMatches};
use std::collections::{HashMap, HashSet};

/// An injected environment.
fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).map(OsString::from)
}

fn parse_flags<F: Args + FromArgMatches>(args: &[&str]) -> Result<F, clap::Error> {
    let cmd = F::augment_args(Command::new("vpnmon").no_binary_name(true));
    let m = cmd.try_get_matches_from(args)?;
    F::from_arg_matches(&m)
}

fn serve_flags(args: &[&str]) -> ServeFlags {
    parse_flags(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn shown(s: &Settings, key: &str) -> Shown {
    s.shown()
        .into_iter()
        .find(|s| s.key == key)
        .unwrap_or_else(|| panic!("{key} is not shown"))
}

/// Per setting: a flag's arguments, an environment value and a file line,
/// each giving a different value (and none the default). A new setting
/// without samples fails `every_setting_is_taken_from_flag_then_env_then_file_then_default`.
fn samples(key: &str) -> Option<(&'static [&'static str], &'static str, &'static str)> {
    Some(match key {
        "listen" => (
            &["--listen", "127.0.0.1:1"],
            "127.0.0.1:2",
            "listen = \"127.0.0.1:3\"",
        ),
        "data_dir" => (&["--data-dir", "/flag"], "/env", "data_dir = \"/file\""),
        "database_url" => (
            &["--database-url", "sqlite:///flag.db"],
            "sqlite:///env.db",
            "database_url = \"sqlite:///file.db\"",
        ),
        "master_key_file" => (
            &["--master-key-file", "/flag.key"],
            "/env.key",
            "master_key_file = \"/file.key\"",
        ),
        "eip_pool" => (
            &[
                "--eip-pool",
                "198.18.0.1",
                "--eip-pool",
                "198.18.0.2,198.18.0.3",
            ],
            "198.18.1.0/28,198.18.2.1",
            "eip_pool = [\"198.18.3.1-198.18.3.9\"]",
        ),
        "log_format" => (&["--log-format", "json"], "text", "log_format = \"json\""),
        "node_name" => (
            &["--node-name", "flag-node"],
            "env-node",
            "node_name = \"file-node\"",
        ),
        "probe_allow" => (
            &["--probe-allow", "10.0.0.0/8"],
            "192.168.0.0/16,198.18.0.1",
            "probe_allow = [\"172.16.0.0/12\"]",
        ),
        "public_url" => (
            &["--public-url", "http://127.0.0.1:8080"],
            "https://vpnmon.example.net/",
            "public_url = \"http://198.18.0.1:8080/base\"",
        ),
        "notify_allow" => (
            &["--notify-allow", "10.0.0.0/8"],
            "192.168.0.0/16,127.0.0.1",
            "notify_allow = [\"172.16.0.0/12\"]",
        ),
        "probe_interval" => (
            &["--probe-interval", "20s"],
            "30s",
            "probe_interval = \"1m\"",
        ),
        "probe_count" => (&["--probe-count", "5"], "7", "probe_count = 9"),
        "probe_timeout" => (
            &["--probe-timeout", "250ms"],
            "2s",
            "probe_timeout = \"3s\"",
        ),
        // The switch has two values only: adjacent layers differ.
        "probe" => (&["--no-probe"], "false", "probe = false"),
        "retention" => (&["--retention", "1d"], "2h", "retention = \"30m\""),
        "metrics_listen" => (
            &["--metrics-listen", "off"],
            "127.0.0.1:9200",
            "metrics_listen = \"127.0.0.1:9300\"",
        ),
        "metrics_max_monitors" => (
            &["--metrics-max-monitors", "10"],
            "20",
            "metrics_max_monitors = 30",
        ),
        "login_max_failures" => (
            &["--login-max-failures", "3"],
            "4",
            "login_max_failures = 6",
        ),
        "login_failure_window" => (
            &["--login-failure-window", "5m"],
            "10m",
            "login_failure_window = \"20m\"",
        ),
        "login_lockout" => (&["--login-lockout", "1m"], "2m", "login_lockout = \"3m\""),
        "login_max_failures_per_address" => (
            &["--login-max-failures-per-address", "7"],
            "8",
            "login_max_failures_per_address = 9",
        ),
        "http_header_timeout" => (
            &["--http-header-timeout", "5s"],
            "10s",
            "http_header_timeout = \"15s\"",
        ),
        "http_body_timeout" => (
            &["--http-body-timeout", "6s"],
            "11s",
            "http_body_timeout = \"16s\"",
        ),
        "http_max_connections" => (
            &["--http-max-connections", "100"],
            "200",
            "http_max_connections = 300",
        ),
        _ => return None,
    })
}

#[test]
fn every_setting_is_taken_from_flag_then_env_then_file_then_default() {
    for spec in SPECS {
        let Some((flag, env, file)) = samples(spec.key) else {
            panic!(
                "no precedence samples for {}: add them to samples()",
                spec.key
            )
        };
        let flags = serve_flags(flag).layer;
        let env = Layer::from_env(&env_of(&[(spec.env, env)]), Scope::Serve)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.env));
        let file = Layer::from_toml(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let value = |flags: &Layer, env: &Layer, file: &Layer| {
            let layers = Layers {
                flags: flags.clone(),
                env: env.clone(),
                file: file.clone(),
                ..Layers::default()
            };
            let r = resolve(&layers).unwrap_or_else(|e| panic!("{}: {e}", spec.key));
            (shown(&r.settings, spec.key).json, r.source(spec.key))
        };
        let none = Layer::default();
        let only_flag = value(&flags, &none, &none).0;
        let only_env = value(&none, &env, &none).0;
        let only_file = value(&none, &none, &file).0;
        let default = shown(&Settings::defaults(), spec.key).json;
        // The samples must tell the layers apart, or the test proves nothing.
        assert_ne!(only_flag, only_env, "{}: flag and env samples", spec.key);
        assert_ne!(only_env, only_file, "{}: env and file samples", spec.key);
        assert_ne!(only_file, default, "{}: file sample and default", spec.key);

        assert_eq!(
            value(&flags, &env, &file),
            (only_flag, Source::Flag),
            "{}: the flag beats env and file",
            spec.key
        );
        assert_eq!(
            value(&none, &env, &file),
            (only_env, Source::Env),
            "{}: env beats the file",
            spec.key
        );
        assert_eq!(
            value(&none, &none, &file),
            (only_file, Source::File),
            "{}: the file beats the default",
            spec.key
        );
        assert_eq!(
            value(&none, &none, &none),
            (default, Source::Default),
            "{}: the default when nothing gives it",
            spec.key
        );
    }
}

#[test]
fn every_setting_has_a_unique_flag_env_var_and_key() {
    let (mut flags, mut envs, mut keys) = (HashSet::new(), HashSet::new(), HashSet::new());
    // Names outside the table that a setting must not take.
    flags.insert(CONFIG_FLAG);
    envs.insert(CONFIG_ENV);
    envs.insert(ADMIN_PASSWORD_ENV);
    for spec in SPECS {
        assert!(flags.insert(spec.flag), "flag --{} twice", spec.flag);
        assert!(envs.insert(spec.env), "variable {} twice", spec.env);
        assert!(keys.insert(spec.key), "key {} twice", spec.key);
        assert!(spec.env.starts_with("VPNMON_"), "{}", spec.env);
        assert!(!spec.doc.is_empty(), "{} has no help", spec.key);
    }
    // And clap agrees: building the command checks for duplicate flags and ids.
    ServeFlags::augment_args(Command::new("vpnmon")).debug_assert();
    StoreFlags::augment_args(Command::new("vpnmon")).debug_assert();
}

#[test]
fn the_file_refuses_unknown_keys_and_names_them() {
    let e = Layer::from_toml("listen = \"127.0.0.1:1\"\nlisen = \"x\"\n").unwrap_err();
    assert!(e.to_string().contains("unknown field `lisen`"), "{e}");
    // The admin password is a secret: no file key.
    let e = Layer::from_toml("admin_password = \"x\"\n").unwrap_err();
    assert!(e.to_string().contains("`admin_password`"), "{e}");
    // Through --config, the message names the file too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vpnmon.toml");
    std::fs::write(&path, "retention = \"1d\"\nprobe_cuont = 3\n").unwrap();
    let flags = serve_flags(&["--config", path.to_str().unwrap()]);
    let e = flags.resolve_with(&env_of(&[])).unwrap_err().to_string();
    assert!(e.contains("probe_cuont"), "{e}");
    assert!(e.contains(&path.display().to_string()), "{e}");
}

#[test]
fn the_config_file_comes_from_the_flag_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    std::fs::write(&a, "probe_count = 4\n").unwrap();
    std::fs::write(&b, "probe_count = 5\n").unwrap();
    let env = env_of(&[(CONFIG_ENV, b.to_str().unwrap())]);
    let from_env = serve_flags(&[]).resolve_with(&env).unwrap();
    assert_eq!(from_env.settings.probe_count, 5);
    assert_eq!(from_env.config.as_deref(), Some(b.as_path()));
    let from_flag = serve_flags(&["--config", a.to_str().unwrap()])
        .resolve_with(&env)
        .unwrap();
    assert_eq!(from_flag.settings.probe_count, 4);
    assert_eq!(from_flag.source("probe_count"), Source::File);
}

#[test]
fn an_empty_variable_counts_as_unset() {
    let env = env_of(&[("VPNMON_LISTEN", ""), ("VPNMON_PROBE_COUNT", "")]);
    let r = serve_flags(&[]).resolve_with(&env).unwrap();
    assert_eq!(r.settings, Settings::defaults());
    assert_eq!(r.source("listen"), Source::Default);
}

#[test]
fn lists_take_repeated_and_comma_separated_flags() {
    let f = serve_flags(&["--eip-pool", "a", "--eip-pool", "b,c"]);
    assert_eq!(
        f.layer.eip_pool,
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    // Blank allowlist entries (a trailing comma) are skipped.
    let env = env_of(&[("VPNMON_PROBE_ALLOW", "10.0.0.0/8,")]);
    let r = serve_flags(&[]).resolve_with(&env).unwrap();
    assert_eq!(r.settings.probe_allow, vec!["10.0.0.0/8".parse().unwrap()]);
}

#[test]
fn the_no_probe_switch_is_negated_in_flag_and_env() {
    let off = serve_flags(&["--no-probe"])
        .resolve_with(&env_of(&[]))
        .unwrap();
    assert!(!off.settings.probe);
    for (text, probe) in [("true", false), ("false", true)] {
        let env = env_of(&[("VPNMON_NO_PROBE", text)]);
        let r = serve_flags(&[]).resolve_with(&env).unwrap();
        assert_eq!(r.settings.probe, probe, "VPNMON_NO_PROBE={text}");
    }
    let e = serve_flags(&[])
        .resolve_with(&env_of(&[("VPNMON_NO_PROBE", "1")]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "VPNMON_NO_PROBE: invalid value \"1\" (want true or false)"
    );
}

#[test]
fn refused_values_name_the_flag_whichever_source_gave_them() {
    // (flags, environment, the error)
    type Case = (
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
        &'static str,
    );
    let cases: &[Case] = &[
        (
            &["--listen", "nowhere"],
            &[],
            "--listen: bad address \"nowhere\" (want IP:PORT)",
        ),
        (
            &[],
            &[("VPNMON_LISTEN", "nowhere")],
            "--listen: bad address \"nowhere\" (want IP:PORT)",
        ),
        (
            &["--log-format", "xml"],
            &[],
            "--log-format must be text or json",
        ),
        (
            &["--probe-count", "0"],
            &[],
            "--probe-count must be between 1 and 100",
        ),
        (
            &[],
            &[("VPNMON_PROBE_COUNT", "101")],
            "--probe-count must be between 1 and 100",
        ),
        (
            &[],
            &[("VPNMON_PROBE_COUNT", "many")],
            "VPNMON_PROBE_COUNT: invalid value \"many\": invalid digit found in string",
        ),
        (
            &["--probe-interval", "5x"],
            &[],
            "--probe-interval: bad duration unit in \"5x\" (use ms, s, m, h or d)",
        ),
        (
            &["--retention", "0s"],
            &[],
            "--retention: duration \"0s\" must be positive",
        ),
        (
            &["--notify-allow", "nope"],
            &[],
            "--notify-allow: bad notify allowlist entry \"nope\" (want a CIDR like 127.0.0.0/8)",
        ),
        (
            &["--probe-allow", "nope"],
            &[],
            "--probe-allow: bad probe allowlist entry \"nope\" (want a CIDR like 127.0.0.0/8)",
        ),
        (
            &["--metrics-listen", "on"],
            &[],
            "--metrics-listen: bad address \"on\" (want IP:PORT or off)",
        ),
        (
            &["--probe-timeout", "11s"],
            &[],
            "--probe-timeout must not exceed --probe-interval",
        ),
    ];
    for (args, env, want) in cases {
        let e = serve_flags(args).resolve_with(&env_of(env)).unwrap_err();
        assert_eq!(e.to_string(), *want, "{args:?} {env:?}");
    }
    // A number the flag cannot parse is clap's error, as before.
    let e = parse_flags::<ServeFlags>(&["--probe-count", "many"]).unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
}

#[test]
fn admin_reads_only_the_settings_it_shares_with_serve() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vpnmon.toml");
    std::fs::write(&path, "data_dir = \"/file\"\nlisten = \"bad\"\n").unwrap();
    let env = env_of(&[
        ("VPNMON_DATABASE_URL", "sqlite:///env.db"),
        ("VPNMON_PROBE_COUNT", "many"),
        (CONFIG_ENV, path.to_str().unwrap()),
    ]);
    let r = parse_flags::<StoreFlags>(&[])
        .unwrap()
        .resolve_with(&env)
        .unwrap();
    assert_eq!(r.settings.data_dir, PathBuf::from("/file"));
    assert_eq!(r.settings.database_url.as_deref(), Some("sqlite:///env.db"));
    assert_eq!(r.settings.listen, Settings::defaults().listen);
    assert_eq!(r.settings.probe_count, Settings::defaults().probe_count);
    // The flag wins, and admin has no serve-only flags.
    let flags = parse_flags::<StoreFlags>(&["--data-dir", "/flag"]).unwrap();
    assert_eq!(
        flags.resolve_with(&env).unwrap().settings.data_dir,
        PathBuf::from("/flag")
    );
    assert!(parse_flags::<StoreFlags>(&["--listen", "127.0.0.1:1"]).is_err());
}

#[test]
fn the_admin_password_comes_from_the_environment_and_is_never_shown() {
    let env = env_of(&[(ADMIN_PASSWORD_ENV, "Sekrit-pass-1")]);
    let r = serve_flags(&[]).resolve_with(&env).unwrap();
    assert_eq!(r.settings.admin_password.as_deref(), Some("Sekrit-pass-1"));
    assert!(!r.to_json().to_string().contains("Sekrit"));
    assert!(!r.to_text().contains("Sekrit"));
    assert!(parse_flags::<ServeFlags>(&["--admin-password", "x"]).is_err());
    let empty = env_of(&[(ADMIN_PASSWORD_ENV, "")]);
    let r = serve_flags(&[]).resolve_with(&empty).unwrap();
    assert_eq!(r.settings.admin_password, None);
}

#[test]
fn config_show_json_is_keyed_by_file_key_with_durations_in_seconds() {
    let r = serve_flags(&["--probe-timeout", "250ms"])
        .resolve_with(&env_of(&[]))
        .unwrap();
    assert_eq!(
        r.to_json(),
        serde_json::json!({
            "listen": "127.0.0.1:8080",
            "data_dir": "./vpnmon-data",
            "database_url": null,
            "master_key_file": null,
            "eip_pool": [],
            "log_format": "text",
            "probe_allow": [],
            "notify_allow": [],
            "public_url": null,
            "probe_interval": 10,
            "probe_count": 3,
            "probe_timeout": 0.25,
            "probe": true,
            // Cloud Eye's schedule by default.
            "retention": {"raw": 172800, "60": 172800, "300": 864000, "1200": 1728000,
                          "3600": 13392000, "14400": 25920000, "86400": 157680000},
            "metrics_listen": "127.0.0.1:9180",
            "node_name": null,
            "metrics_max_monitors": 1000,
            "login_max_failures": 5,
            "login_failure_window": 900,
            "login_lockout": 900,
            "login_max_failures_per_address": 20,
            "http_header_timeout": 60,
            "http_body_timeout": 60,
            "http_max_connections": 10000,
        })
    );
    let keys: Vec<_> = SPECS.iter().map(|s| s.key).collect();
    let json = r.to_json();
    let mut shown: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    let mut keys: Vec<String> = keys.into_iter().map(String::from).collect();
    shown.sort();
    keys.sort();
    assert_eq!(shown, keys);
}

#[test]
fn config_show_text_says_where_each_value_came_from() {
    let env = env_of(&[("VPNMON_PROBE_COUNT", "4")]);
    let text = serve_flags(&["--listen", "127.0.0.1:1"])
        .resolve_with(&env)
        .unwrap()
        .to_text();
    let line = |key: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(line("listen"), ["listen", "127.0.0.1:1", "--listen"]);
    assert_eq!(
        line("probe_count"),
        ["probe_count", "4", "VPNMON_PROBE_COUNT"]
    );
    assert_eq!(
        line("retention"),
        [
            "retention",
            "raw=2d,60=2d,300=10d,1200=20d,3600=155d,14400=300d,86400=5y",
            "default"
        ]
    );
    assert_eq!(line("database_url"), ["database_url", "-", "default"]);
    assert_eq!(text.lines().count(), SPECS.len());
}

#[test]
fn defaults_shown_in_help_read_back_as_the_defaults() {
    let defaults = Settings::defaults();
    for spec in SPECS.iter().filter(|s| s.value_name.is_some()) {
        let text = shown(&defaults, spec.key).text;
        if text.is_empty() {
            continue;
        }
        assert!(
            spec.help(&defaults).contains(&format!("[default: {text}]")),
            "{}",
            spec.help(&defaults)
        );
        let flag = format!("--{}", spec.flag);
        let r = serve_flags(&[&flag, &text])
            .resolve_with(&env_of(&[]))
            .unwrap();
        assert_eq!(r.settings, defaults, "{flag} {text}");
    }
}

#[test]
fn settings_default_is_the_serve_defaults_without_a_metrics_listener() {
    assert_eq!(
        Settings::default(),
        Settings {
            metrics_listen: None,
            ..Settings::defaults()
        }
    );
    assert!(Settings::defaults().metrics_listen.is_some());
}

#[test]
fn every_setting_is_in_the_readme_table() {
    let readme = include_str!("../../../../README.md");
    let table = readme
        .split("### `vpnmon serve`")
        .nth(1)
        .and_then(|s| s.split("\n\n").nth(1))
        .expect("README has a `vpnmon serve` table");
    for spec in SPECS {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("| `--{}", spec.flag)))
            .unwrap_or_else(|| panic!("README: no row for --{}", spec.flag));
        assert!(row.contains(&format!("`{}`", spec.env)), "{row}");
        let key = [format!("`{}`", spec.key), format!("`{} = ", spec.key)];
        assert!(key.iter().any(|k| row.contains(k)), "{row}");
    }
}

#[test]
fn retention_is_set_per_level_by_flag_env_or_file_table() {
    let level = |r: &Resolved, l: &str| r.to_json()["retention"][l].clone();
    let r = serve_flags(&["--retention", "raw=36h,300=12d,86400=6y"])
        .resolve_with(&env_of(&[]))
        .unwrap();
    assert_eq!(level(&r, "raw"), 36 * 3600);
    assert_eq!(level(&r, "60"), 2 * 86400, "not named: the default");
    assert_eq!(level(&r, "300"), 12 * 86400);
    assert_eq!(level(&r, "86400"), 6 * 365 * 86400);
    let env = env_of(&[("VPNMON_RETENTION", "1200=30d")]);
    let r = serve_flags(&[]).resolve_with(&env).unwrap();
    assert_eq!(level(&r, "1200"), 30 * 86400);
    // In the file: a string, or a table of levels.
    let file =
        Layer::from_toml("retention = { raw = \"3d\", 60 = \"3d\", 300 = \"10d\" }\n").unwrap();
    let layers = Layers {
        file,
        ..Layers::default()
    };
    let r = resolve(&layers).unwrap();
    assert_eq!(level(&r, "raw"), 3 * 86400);
    assert_eq!(level(&r, "60"), 3 * 86400);
    assert_eq!(r.source("retention"), Source::File);
    // A plain duration is the raw level, as it always was.
    let r = serve_flags(&["--retention", "7d"])
        .resolve_with(&env_of(&[]))
        .unwrap();
    assert_eq!(level(&r, "raw"), 7 * 86400);
    assert_eq!(level(&r, "60"), 7 * 86400, "raised to the raw level");
}

#[test]
fn retention_refuses_a_level_kept_shorter_than_the_level_below_it() {
    let e = serve_flags(&["--retention", "raw=3d,60=2d"])
        .resolve_with(&env_of(&[]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "--retention: level 60 (2d) would be kept shorter than level raw below it (3d); \
         keep each level at least as long as the one below it"
    );
    let e = serve_flags(&[])
        .resolve_with(&env_of(&[("VPNMON_RETENTION", "300=1d")]))
        .unwrap_err();
    assert!(e.to_string().contains("level 300 (1d)"), "{e}");
    assert!(e.to_string().contains("level 60 below it (2d)"), "{e}");
    let e = Layer::from_toml("retention = { 30 = \"1d\" }\n").unwrap();
    let e = resolve(&Layers {
        file: e,
        ..Layers::default()
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "--retention: unknown level \"30\" (levels: raw, 60, 300, 1200, 3600, 14400, 86400)"
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
    assert!(parse_duration("0s").is_err());
    assert!(parse_duration("5x").is_err());
}

#[test]
fn durations_are_written_in_their_largest_whole_unit() {
    for (d, text) in [
        (Duration::from_secs(7 * 86400), "7d"),
        (Duration::from_secs(7200), "2h"),
        (Duration::from_secs(90), "90s"),
        (Duration::from_millis(250), "250ms"),
        (Duration::from_millis(1500), "1500ms"),
    ] {
        assert_eq!(format_duration(d), text);
        assert_eq!(parse_duration(text).unwrap(), d);
    }
}

#[test]
fn allowlist_entries() {
    assert_eq!(
        parse_allow("127.0.0.0/8").unwrap().to_string(),
        "127.0.0.0/8"
    );
    assert_eq!(
        parse_allow("198.18.0.1").unwrap().to_string(),
        "198.18.0.1/32"
    );
    assert!(parse_allow("nope").is_err());
}

#[test]
fn the_packaged_config_file_lists_every_setting_at_its_default() {
    let text = include_str!("../../../../packaging/vpnmon.toml");
    // Every key appears as a setting line, commented or not.
    let setting = |line: &str| {
        let l = line.trim_start_matches('#').trim();
        l.split_once(" = ").map(|(k, _)| k.to_string())
    };
    let keys: HashSet<String> = text.lines().filter_map(setting).collect();
    for spec in SPECS {
        assert!(
            keys.contains(spec.key),
            "packaging/vpnmon.toml lacks {}",
            spec.key
        );
    }
    // As shipped (only data_dir set) it is valid and is the defaults
    // elsewhere.
    let of_file = |file: Layer| {
        resolve(&Layers {
            file,
            ..Layers::default()
        })
    };
    let shipped = of_file(Layer::from_toml(text).expect("the shipped file parses")).unwrap();
    assert_eq!(shipped.settings.data_dir, PathBuf::from("/var/lib/vpnmon"));
    let defaults = resolve(&Layers::default()).unwrap().to_json();
    let mut shipped_json = shipped.to_json();
    shipped_json["data_dir"] = defaults["data_dir"].clone();
    assert_eq!(shipped_json, defaults);
    // Uncommented, each line with a default is that default (the examples
    // of settings without one are only checked to parse).
    let defaults_only: String = text
        .lines()
        .filter(|l| {
            setting(l).is_some_and(|k| {
                let v = &defaults[k.as_str()];
                !(v.is_null() || v == &serde_json::json!([]) || v == "off")
            })
        })
        .map(|l| l.trim_start_matches('#').trim().to_string() + "\n")
        .collect();
    let all = Layer::from_toml(&defaults_only).expect("the uncommented defaults parse");
    let mut all = of_file(all).unwrap().to_json();
    all["data_dir"] = defaults["data_dir"].clone();
    assert_eq!(all, defaults, "a commented value differs from the default");
    let examples: String = text
        .lines()
        .filter(|l| l.starts_with("# ") && setting(l).is_some())
        .map(|l| l.trim_start_matches('#').trim().to_string() + "\n")
        .collect();
    let layer = Layer::from_toml(&examples).expect("every example parses");
    of_file(layer).expect("every example is a valid value");
}
