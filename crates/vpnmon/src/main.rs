//! The `vpnmon` command.

use anyhow::{Result, anyhow};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use vpnmon::admin::{self, Output};
use vpnmon::app::{self, Application, Hooks};
use vpnmon::config;

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
    /// Inspect the settings of `serve`.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Check what would keep `serve` (with the same flags, environment and
    /// config file) from probing, storing or serving: one line per problem
    /// with its remedy. Exit status 0: none; 1: problems; 2: doctor could
    /// not run (e.g. invalid settings).
    Doctor {
        #[command(flatten)]
        settings: config::ServeFlags,
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Output,
    },
    // The CLI client (crate `client`): login, gateway, customer-gateway, connection, monitor.
    #[command(flatten)]
    Client(client::ClientCmd),
    /// Lab test hosts in a network namespace (198.18.0.0/15), with loss and delay.
    #[command(subcommand)]
    Lab(lab::cli::LabCmd),
}

/// `vpnmon serve`: every setting's flag, from the table in `config/mod.rs`.
#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    settings: config::ServeFlags,
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Print the effective settings of `serve` (after flags, environment and
    /// config file) and where each comes from; `-o json`: one object keyed
    /// by config-file key, durations in seconds.
    Show {
        #[command(flatten)]
        settings: config::ServeFlags,
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Args)]
struct AdminArgs {
    /// `--data-dir`, `--database-url`, `--config`, shared with `serve`.
    #[command(flatten)]
    store: config::StoreFlags,
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
    /// The nodes sharing this store.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Write a consistent copy of the SQLite store to FILE while vpnmon
    /// serves (`VACUUM INTO`; a PostgreSQL store: use `pg_dump`, as the
    /// error says). FILE must not exist.
    Backup {
        file: std::path::PathBuf,
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Output,
    },
    /// Put the backup FILE in place of the store of a stopped vpnmon (the
    /// database it replaces is moved aside, not deleted). Refused while a
    /// vpnmon has the store open.
    Restore {
        file: std::path::PathBuf,
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Output,
    },
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
    /// Show a user: domain, projects, failed logins and lock.
    Show {
        name: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Output,
    },
    /// End a user's lock and forget its failed logins.
    Unlock { name: String },
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
enum NodeCmd {
    /// List the live nodes (lease not run out): name, id, last heartbeat,
    /// addresses they can send from, monitors they probe.
    List {
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum EipCmd {
    /// List the pool and what each address is bound to.
    List {
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Output,
    },
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
    let settings = a.settings.resolve()?.settings;
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

fn config_cmd(c: ConfigCmd) -> Result<()> {
    match c {
        ConfigCmd::Show { settings, output } => {
            let resolved = settings.resolve()?;
            match output {
                Output::Json => println!("{}", resolved.to_json()),
                Output::Text => print!("{}", resolved.to_text()),
            }
            Ok(())
        }
    }
}

async fn admin_cmd(a: AdminArgs) -> Result<()> {
    vpnmon::telemetry::init("text");
    let settings = a.store.resolve()?.settings;
    // A restore replaces the store: it must not open it.
    if let AdminCmd::Restore { file, output } = &a.cmd {
        return admin::restore(&settings, file, *output).await;
    }
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
        AdminCmd::User(UserCmd::Show { name, output }) => admin::user_show(s, &name, output).await,
        AdminCmd::User(UserCmd::Unlock { name }) => admin::user_unlock(s, &name).await,
        AdminCmd::Credential(CredentialCmd::Create {
            user,
            description,
            output,
        }) => {
            let key = vpnmon::secrets::key_source(&settings);
            admin::credential_create(s, &key, &user, &description, output).await
        }
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
        AdminCmd::Node(NodeCmd::List { output }) => admin::node_list(s, output).await,
        AdminCmd::Backup { file, output } => admin::backup(&store, &settings, &file, output).await,
        // Returned above, before the store was opened (and locked).
        AdminCmd::Restore { .. } => Err(anyhow!("restore must not open the store")),
        AdminCmd::BulkMonitors {
            project,
            gateway,
            eip_id,
            addresses,
            eip_pool,
            output,
        } => {
            // Like serve, an empty store gets the bootstrap admin and project first.
            match app::bootstrap(s, settings.admin_password.as_deref()).await {
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
        Cmd::Config(c) => config_cmd(c),
        Cmd::Doctor { settings, output } => {
            let settings = match settings.resolve() {
                Ok(r) => r.settings,
                Err(e) => {
                    eprintln!("vpnmon doctor: {e:#}");
                    std::process::exit(2);
                }
            };
            let problems = vpnmon::doctor::check(&settings).await;
            let healthy = vpnmon::doctor::report(&problems, output);
            let _ = std::io::stdout().flush();
            std::process::exit(if healthy { 0 } else { 1 });
        }
        Cmd::Client(c) => client::run(c).await,
        Cmd::Lab(c) => lab::cli::run(c).await.map_err(Into::into),
    };
    if let Err(e) = r {
        eprintln!("vpnmon: {e:#}");
        std::process::exit(1);
    }
}
