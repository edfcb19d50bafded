//! The `vpnmon` command.

use anyhow::{Result, anyhow};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use vpnmon::admin::{self, Output};
use vpnmon::app::{self, Application, Hooks};
use vpnmon::config::{self, FileSettings, Settings};

#[derive(Parser)]
#[command(
    name = "vpnmon",
    version,
    about = "Self-hosted Huawei Cloud VPN v5 connection monitor"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the API server (and the probe engine).
    Serve(ServeArgs),
    /// Manage projects, users, credentials and the EIP pool in the store.
    Admin(AdminArgs),
    // The CLI client (crate `client`): login, gateway, customer-gateway, connection, monitor.
    #[command(flatten)]
    Client(client::ClientCmd),
    /// Lab test hosts in a network namespace (198.18.0.0/15), with loss and delay.
    #[command(subcommand)]
    Lab(lab::cli::LabCmd),
}

#[derive(Args, Clone, Default)]
struct StoreArgs {
    /// Data directory holding the SQLite database.
    #[arg(long, env = "VPNMON_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Database URL (postgres://... or sqlite://...); overrides --data-dir.
    #[arg(long, env = "VPNMON_DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// TOML settings file.
    #[arg(long, env = "VPNMON_CONFIG", global = true)]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "VPNMON_LISTEN")]
    listen: Option<String>,
    /// EIP pool: addresses, CIDRs or ranges (a-b); repeatable or comma-separated.
    #[arg(long, env = "VPNMON_EIP_POOL", value_delimiter = ',')]
    eip_pool: Vec<String>,
    /// Log format: text or json.
    #[arg(long, env = "VPNMON_LOG_FORMAT")]
    log_format: Option<String>,
    /// Probe destinations allowed (CIDR); repeatable or comma-separated. Default: everything.
    #[arg(long, env = "VPNMON_PROBE_ALLOW", value_delimiter = ',')]
    probe_allow: Vec<String>,
    /// Probe window (default 10s).
    #[arg(long, env = "VPNMON_PROBE_INTERVAL")]
    probe_interval: Option<String>,
    /// Echo requests per window (default 3).
    #[arg(long, env = "VPNMON_PROBE_COUNT")]
    probe_count: Option<u32>,
    /// Per-probe timeout (default 1s).
    #[arg(long, env = "VPNMON_PROBE_TIMEOUT")]
    probe_timeout: Option<String>,
    /// Do not run the probe engine (API only).
    #[arg(long, env = "VPNMON_NO_PROBE")]
    no_probe: bool,
    /// Prometheus metrics listener, or `off` (default 127.0.0.1:9180).
    #[arg(long, env = "VPNMON_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Most monitors with per-monitor metric series (default 1000).
    #[arg(long, env = "VPNMON_METRICS_MAX_MONITORS")]
    metrics_max_monitors: Option<usize>,
    /// Keep raw datapoints this long (default 7d).
    #[arg(long, env = "VPNMON_RETENTION")]
    retention: Option<String>,
}

#[derive(Args)]
struct AdminArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    cmd: AdminCmd,
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Projects.
    #[command(subcommand)]
    Project(ProjectCmd),
    /// Users.
    #[command(subcommand)]
    User(UserCmd),
    /// AK/SK credentials.
    #[command(subcommand)]
    Credential(CredentialCmd),
    /// The EIP pool.
    #[command(subcommand)]
    Eip(EipCmd),
    /// Create many monitored links at once: per address a customer gateway,
    /// a policy-mode connection and a monitor (for fleets and benchmarks).
    BulkMonitors {
        /// Project (name).
        #[arg(long, default_value = "local-1")]
        project: String,
        /// Existing gateway id; by default a new gateway with an EIP from the pool.
        #[arg(long)]
        gateway: Option<String>,
        /// vgw_ip of the connections (EIP id) when --gateway is given; default its first EIP.
        #[arg(long)]
        eip_id: Option<String>,
        /// Customer-gateway addresses: address, CIDR or range a-b; repeatable.
        #[arg(long, required = true)]
        addresses: Vec<String>,
        /// Add these EIP pool entries first (as `serve --eip-pool` does).
        #[arg(long, value_delimiter = ',')]
        eip_pool: Vec<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum ProjectCmd {
    /// Create a project.
    Create {
        name: String,
        /// Domain (account) of the project; created if missing.
        #[arg(long, default_value = "vpnmon")]
        domain: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Output,
    },
    /// List projects.
    List {
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user with a role in a project.
    Create {
        name: String,
        /// Project (name) the user gets a role in.
        #[arg(long)]
        project: String,
        /// Read the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Output,
    },
    /// Give a user a role in another project.
    Grant {
        name: String,
        #[arg(long)]
        project: String,
    },
}

#[derive(Subcommand)]
enum CredentialCmd {
    /// Create an AK/SK pair for a user (the SK is printed once).
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Output,
    },
    /// List credentials (never their secrets).
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Output,
    },
    /// Disable a credential.
    Disable { access: String },
    /// Enable a credential.
    Enable { access: String },
    /// Delete a credential.
    Delete { access: String },
}

#[derive(Subcommand)]
enum EipCmd {
    /// List the pool and what each address is bound to.
    List {
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Output,
    },
}

fn settings_from(store: &StoreArgs) -> Result<(Settings, FileSettings)> {
    let file = match &store.config {
        Some(p) => FileSettings::load(p)?,
        None => FileSettings::default(),
    };
    let mut s = Settings::default();
    if let Some(d) = store.data_dir.clone().or(file.data_dir.clone()) {
        s.data_dir = d;
    }
    s.database_url = store.database_url.clone().or(file.database_url.clone());
    Ok((s, file))
}

fn serve_settings(a: &ServeArgs) -> Result<Settings> {
    let (mut s, file) = settings_from(&a.store)?;
    if let Some(l) = a.listen.clone().or(file.listen.clone()) {
        s.listen = l
            .parse()
            .map_err(|_| anyhow!("--listen: bad address {l:?} (want IP:PORT)"))?;
    }
    s.eip_pool = if a.eip_pool.is_empty() {
        file.eip_pool.clone().unwrap_or_default()
    } else {
        a.eip_pool.clone()
    };
    if let Some(f) = a.log_format.clone().or(file.log_format.clone()) {
        if f != "text" && f != "json" {
            return Err(anyhow!("--log-format must be text or json"));
        }
        s.log_format = f;
    }
    let allow = if a.probe_allow.is_empty() {
        file.probe_allow.clone().unwrap_or_default()
    } else {
        a.probe_allow.clone()
    };
    s.probe_allow = allow
        .iter()
        .filter(|x| !x.trim().is_empty())
        .map(|x| config::parse_allow(x).map_err(|e| anyhow!("--probe-allow: {e}")))
        .collect::<Result<_>>()?;
    if let Some(v) = a.probe_interval.clone().or(file.probe_interval.clone()) {
        s.probe_interval =
            config::parse_duration(&v).map_err(|e| anyhow!("--probe-interval: {e}"))?;
    }
    if let Some(v) = a.probe_timeout.clone().or(file.probe_timeout.clone()) {
        s.probe_timeout =
            config::parse_duration(&v).map_err(|e| anyhow!("--probe-timeout: {e}"))?;
    }
    if let Some(c) = a.probe_count.or(file.probe_count) {
        if c == 0 || c > 100 {
            return Err(anyhow!("--probe-count must be between 1 and 100"));
        }
        s.probe_count = c;
    }
    if let Some(r) = a.retention.clone().or(file.retention.clone()) {
        s.retention = config::parse_duration(&r).map_err(|e| anyhow!("--retention: {e}"))?;
    }
    s.probe = !a.no_probe && file.probe.unwrap_or(true);
    let ml = a
        .metrics_listen
        .clone()
        .or(file.metrics_listen.clone())
        .unwrap_or_else(|| "127.0.0.1:9180".into());
    s.metrics_listen =
        if ml == "off" {
            None
        } else {
            Some(ml.parse().map_err(|_| {
                anyhow!("--metrics-listen: bad address {ml:?} (want IP:PORT or off)")
            })?)
        };
    if let Some(n) = a.metrics_max_monitors.or(file.metrics_max_monitors) {
        s.metrics_max_monitors = n;
    }
    s.admin_password = std::env::var("VPNMON_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    if s.probe_timeout > s.probe_interval {
        return Err(anyhow!("--probe-timeout must not exceed --probe-interval"));
    }
    Ok(s)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

async fn serve(a: ServeArgs) -> Result<()> {
    let settings = serve_settings(&a)?;
    vpnmon::telemetry::init(&settings.log_format);
    let application = Application::build(&settings, Hooks::default()).await?;
    if let Some(b) = &application.bootstrap {
        match &b.generated_password {
            Some(p) => println!(
                "created admin user: domain {} user {} password {p} (shown once; set VPNMON_ADMIN_PASSWORD to choose it)",
                b.domain, b.user
            ),
            None => println!(
                "created admin user: domain {} user {} (password from VPNMON_ADMIN_PASSWORD)",
                b.domain, b.user
            ),
        }
        println!(
            "log in: POST http://{}/v3/auth/tokens with user {} in domain {} scoped to project {} (id {})",
            application.addr(),
            b.user,
            b.domain,
            b.project,
            b.project_id
        );
    }
    if let Some(m) = application.metrics_addr() {
        println!("metrics on http://{m}/metrics");
    }
    println!("listening on http://{}", application.addr());
    let _ = std::io::stdout().flush();
    application.run_until(shutdown_signal()).await
}

async fn admin_cmd(a: AdminArgs) -> Result<()> {
    vpnmon::telemetry::init("text");
    let (settings, _) = settings_from(&a.store)?;
    let store = app::open_store(&settings).await?;
    let s: &dyn store::Store = &store;
    let r = match a.cmd {
        AdminCmd::Project(ProjectCmd::Create {
            name,
            domain,
            output,
        }) => admin::project_create(s, &name, &domain, output).await,
        AdminCmd::Project(ProjectCmd::List { output }) => admin::project_list(s, output).await,
        AdminCmd::User(UserCmd::Create {
            name,
            project,
            password_stdin,
            output,
        }) => {
            if !password_stdin {
                return Err(anyhow!(
                    "give the password on standard input with --password-stdin"
                ));
            }
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let pw = line.trim_end_matches(['\n', '\r']);
            admin::user_create(s, &name, &project, pw, output).await
        }
        AdminCmd::User(UserCmd::Grant { name, project }) => {
            admin::user_grant(s, &name, &project).await
        }
        AdminCmd::Credential(CredentialCmd::Create {
            user,
            description,
            output,
        }) => admin::credential_create(s, &user, &description, output).await,
        AdminCmd::Credential(CredentialCmd::List { user, output }) => {
            admin::credential_list(s, user.as_deref(), output).await
        }
        AdminCmd::Credential(CredentialCmd::Disable { access }) => {
            admin::credential_set_enabled(s, &access, false).await
        }
        AdminCmd::Credential(CredentialCmd::Enable { access }) => {
            admin::credential_set_enabled(s, &access, true).await
        }
        AdminCmd::Credential(CredentialCmd::Delete { access }) => {
            admin::credential_delete(s, &access).await
        }
        AdminCmd::Eip(EipCmd::List { output }) => admin::eip_list(s, output).await,
        AdminCmd::BulkMonitors {
            project,
            gateway,
            eip_id,
            addresses,
            eip_pool,
            output,
        } => {
            // Like serve, an empty store gets the bootstrap admin and project first.
            let pw = std::env::var("VPNMON_ADMIN_PASSWORD").ok();
            match app::bootstrap(s, pw.as_deref()).await {
                Ok(Some(b)) => eprintln!(
                    "created admin user {} in domain {} (project {}){}",
                    b.user,
                    b.domain,
                    b.project,
                    b.generated_password
                        .map(|p| format!(" with password {p}"))
                        .unwrap_or_default()
                ),
                Ok(None) => {}
                Err(e) => {
                    store.close().await;
                    return Err(e);
                }
            }
            if let Err(e) = app::load_pool(s, &eip_pool).await {
                store.close().await;
                return Err(e);
            }
            admin::bulk_monitors(
                &store,
                &project,
                gateway.as_deref(),
                eip_id.as_deref(),
                &addresses,
                output,
            )
            .await
        }
    };
    store.close().await;
    r
}

fn main() {
    limit_malloc_arenas();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vpnmon: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    rt.block_on(run());
}

/// At most two glibc malloc arenas. By default glibc gives threads up to
/// 8 per core, and each keeps the memory its thread freed: with the engine,
/// the runtime's workers and one thread per SQLite connection allocating,
/// that retained memory was a tenth of the server's RSS at 100 000 monitors.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

async fn run() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Serve(a) => serve(a).await,
        Cmd::Admin(a) => admin_cmd(a).await,
        Cmd::Client(c) => client::run(c).await,
        Cmd::Lab(c) => lab::cli::run(c).await.map_err(Into::into),
    };
    if let Err(e) = r {
        eprintln!("vpnmon: {e:#}");
        std::process::exit(1);
    }
}
