//! The vpnmon CLI client: `vpnmon login`, `vpnmon gateway|customer-gateway|
//! connection|monitor|alarm|topic ...`, talking to a vpnmon server (or anything that
//! speaks the same Huawei Cloud API) over HTTP. The binary only flattens
//! [`ClientCmd`] into its own commands and calls [`run`].
//!
//! Design choices:
//! - Request bodies are the server's own request structs from `domain`
//!   (`CreateVgw`, `CreateCgw`, `CreateConnection`, `CreateMonitor`), so
//!   the client cannot send a field the server would refuse: both sides
//!   share one definition of the wire, golden-tested against the spec's
//!   examples (`crates/domain/tests/golden.rs`; the CLI's own bodies in
//!   `tests/bodies.rs`).
//! - Answers are read into the domain's show structs (`VpnGateway`,
//!   `VpnConnection`, ...) where the client needs their fields; `-o json`
//!   still prints the server's object exactly as it came, so fields this
//!   client does not know survive for scripts.
//! - Settings come from flags, then `VPNMON_*` environment variables, then
//!   `~/.config/vpnmon/client.toml`, then defaults ([`settings`]).
//! - A token is asked for once and cached per endpoint, domain, user and
//!   project until five minutes before it expires ([`session`]), as the
//!   IAM documentation recommends; a resource command logs in on its own
//!   only when the cache is empty or stale and a password is at hand.
//! - Server errors are printed as the server sent them:
//!   `error_code: error_msg (request_id)`.
//! - Tables are for people; `-o json` prints the server's resource object
//!   or array unchanged, for scripts.
//! - Errors are `anyhow`: this crate is the command line's edge, and every
//!   error ends as one line on standard error.

#![forbid(unsafe_code)]

pub mod alarms;
pub mod resources;
pub mod session;
mod settings;
mod stats;
mod table;
mod watch;

use anyhow::Result;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Output format of the client commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// An aligned table.
    #[default]
    #[value(alias = "text")]
    Table,
    /// The server's JSON, for scripts.
    Json,
}

/// Where and as whom the client talks; every flag may also be given after
/// the subcommand.
#[derive(Args, Debug, Clone, Default)]
pub struct ClientOpts {
    /// API endpoint [default: http://127.0.0.1:8080].
    #[arg(long, env = "VPNMON_ENDPOINT", global = true)]
    pub endpoint: Option<String>,
    /// Domain (account) of the user [default: vpnmon].
    #[arg(long, env = "VPNMON_DOMAIN", global = true)]
    pub domain: Option<String>,
    /// User name [default: admin].
    #[arg(long, env = "VPNMON_USER", global = true)]
    pub user: Option<String>,
    /// Project (name) the token is scoped to [default: local-1].
    #[arg(long, env = "VPNMON_PROJECT", global = true)]
    pub project: Option<String>,
    /// Read the password from standard input (first line) when a token is
    /// needed; otherwise it comes from VPNMON_PASSWORD.
    #[arg(long, global = true)]
    pub password_stdin: bool,
    /// Client settings file [default: ~/.config/vpnmon/client.toml].
    #[arg(long = "config", env = "VPNMON_CLIENT_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        default_value_t,
        global = true
    )]
    pub output: OutputFormat,
}

/// The client's top-level commands (flattened into `vpnmon`'s own).
#[derive(Subcommand, Debug)]
pub enum ClientCmd {
    /// Log in: get a token and cache it until shortly before it expires.
    Login(LoginArgs),
    /// Revoke the cached token and forget it.
    Logout(LoginArgs),
    /// VPN gateways.
    Gateway(GatewayArgs),
    /// Customer gateways.
    CustomerGateway(CustomerGatewayArgs),
    /// VPN connections.
    Connection(ConnectionArgs),
    /// Connection monitors, their statistics and a live view.
    Monitor(MonitorArgs),
    /// Cloud Eye alarm rules on a connection's loss and latency, and their history.
    Alarm(AlarmArgs),
    /// SMN topics and HTTP(S) subscriptions: where alarm notices go.
    Topic(TopicArgs),
}

/// `vpnmon login`.
#[derive(Args, Debug)]
pub struct LoginArgs {
    #[command(flatten, next_help_heading = "Client options")]
    opts: ClientOpts,
}

/// `vpnmon gateway ...`.
#[derive(Args, Debug)]
pub struct GatewayArgs {
    #[command(flatten, next_help_heading = "Client options")]
    opts: ClientOpts,
    #[command(subcommand)]
    cmd: GatewayCmd,
}

#[derive(Subcommand, Debug)]
enum GatewayCmd {
    /// Create a VPN gateway (with a new EIP from the pool unless --eip-id).
    Create {
        /// Name [default: vpngw-XXXX].
        #[arg(long)]
        name: Option<String>,
        /// VPC id.
        #[arg(long)]
        vpc_id: String,
        /// Subnet (connect_subnet) id.
        #[arg(long)]
        subnet_id: String,
        /// Local subnet (CIDR); repeatable or comma-separated.
        #[arg(long, required = true, value_delimiter = ',')]
        local_subnet: Vec<String>,
        /// Bind this EIP of the pool instead of a new one.
        #[arg(long, conflicts_with = "eip_bandwidth")]
        eip_id: Option<String>,
        /// Bandwidth of the new EIP in Mbit/s.
        #[arg(long, default_value_t = 10)]
        eip_bandwidth: i64,
    },
    /// Show a VPN gateway (id or name).
    Show { id: String },
    /// List VPN gateways.
    List,
    /// Delete a VPN gateway (id or name).
    Delete { id: String },
}

/// `vpnmon customer-gateway ...`.
#[derive(Args, Debug)]
pub struct CustomerGatewayArgs {
    #[command(flatten, next_help_heading = "Client options")]
    opts: ClientOpts,
    #[command(subcommand)]
    cmd: CustomerGatewayCmd,
}

#[derive(Subcommand, Debug)]
enum CustomerGatewayCmd {
    /// Create a customer gateway identified by its IP address.
    Create {
        /// The customer gateway's address (what a monitor probes).
        #[arg(long)]
        ip: String,
        /// Name [default: cgw-XXXX].
        #[arg(long)]
        name: Option<String>,
        /// BGP AS number.
        #[arg(long)]
        bgp_asn: Option<i64>,
    },
    /// Show a customer gateway (id or name).
    Show { id: String },
    /// List customer gateways.
    List,
    /// Delete a customer gateway (id or name).
    Delete { id: String },
}

/// `vpnmon connection ...`.
#[derive(Args, Debug)]
pub struct ConnectionArgs {
    #[command(flatten, next_help_heading = "Client options")]
    opts: ClientOpts,
    #[command(subcommand)]
    cmd: ConnectionCmd,
}

/// Connection style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Style {
    /// Static routing (peer subnets).
    Static,
    /// Policy-based: one rule per gateway local subnet to the peer subnets.
    Policy,
    /// BGP routing.
    Bgp,
}

#[derive(Subcommand, Debug)]
enum ConnectionCmd {
    /// Create a VPN connection.
    #[command(group(ArgGroup::new("psk_source").required(true).args(["psk_stdin", "psk_env"])))]
    Create {
        /// VPN gateway (id or name).
        #[arg(long)]
        gateway: String,
        /// EIP id of the gateway to use [default: the gateway's eip1].
        #[arg(long)]
        eip_id: Option<String>,
        /// Customer gateway (id or name).
        #[arg(long)]
        customer_gateway: String,
        /// Peer subnet (CIDR); repeatable or comma-separated.
        #[arg(long, value_delimiter = ',')]
        peer_subnet: Vec<String>,
        /// Read the pre-shared key from standard input (first line).
        #[arg(long)]
        psk_stdin: bool,
        /// Read the pre-shared key from this environment variable.
        #[arg(long, value_name = "VAR")]
        psk_env: Option<String>,
        /// Name [default: vpn-XXXX].
        #[arg(long)]
        name: Option<String>,
        /// Routing style.
        #[arg(long, value_enum)]
        style: Option<Style>,
    },
    /// Show a VPN connection (id or name).
    Show { id: String },
    /// List VPN connections.
    List {
        /// Only the connections of this gateway (id or name).
        #[arg(long)]
        gateway: Option<String>,
    },
    /// Delete a VPN connection (id or name).
    Delete { id: String },
}

/// `vpnmon monitor ...`.
#[derive(Args, Debug)]
pub struct MonitorArgs {
    #[command(flatten, next_help_heading = "Client options")]
    opts: ClientOpts,
    #[command(subcommand)]
    cmd: MonitorCmd,
}

#[derive(Subcommand, Debug)]
enum MonitorCmd {
    /// Create a connection monitor for a VPN connection.
    Create {
        /// VPN connection (id or name).
        #[arg(long)]
        connection: String,
    },
    /// Show a connection monitor.
    Show { id: String },
    /// List connection monitors.
    List {
        /// Only the monitor of this VPN connection (id or name).
        #[arg(long)]
        connection: Option<String>,
    },
    /// Delete a connection monitor.
    Delete { id: String },
    /// Latency and loss statistics per period over a time range.
    Stats {
        id: String,
        /// How far back (e.g. 15m, 1h, 2d).
        #[arg(long, default_value = "1h")]
        since: String,
        /// Period in seconds: 1 (raw windows), 60, 300, 1200, 3600, 14400 or
        /// 86400 [default: chosen from --since].
        #[arg(long)]
        period: Option<i64>,
    },
    /// Live latency and loss of a monitor.
    Watch {
        id: String,
        /// Refresh interval.
        #[arg(long, default_value = "2s")]
        interval: String,
        /// Stop after this many refreshes.
        #[arg(long)]
        count: Option<u64>,
    },
}

/// `vpnmon alarm ...`.
#[derive(Args, Debug)]
pub struct AlarmArgs {
    #[command(flatten, next_help_heading = "Client options")]
    opts: ClientOpts,
    #[command(subcommand)]
    cmd: AlarmCmd,
}

// Parsed once per process: the size of the create variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum AlarmCmd {
    /// Create an alarm rule on one VPN connection's metric; with --topic,
    /// its alarm and ok notices go to those SMN topics.
    Create {
        /// VPN connection (id or name).
        #[arg(long)]
        connection: String,
        /// Metric: link_packet_loss_rate, link_average_latency,
        /// link_max_latency (or the public_* names).
        #[arg(long, default_value = "link_packet_loss_rate")]
        metric: String,
        /// Comparison with the threshold: >, >=, <, <=, =.
        #[arg(long = "op", default_value = ">=")]
        comparison: String,
        /// Threshold.
        #[arg(long)]
        value: f64,
        /// Unit of the threshold [default: the metric's, % or ms].
        #[arg(long)]
        unit: Option<String>,
        /// Period in seconds: 1 (each probe window), 300, 1200, 3600, 14400, 86400.
        #[arg(long, default_value_t = 1)]
        period: i64,
        /// How a period's windows are combined: average, max, min, sum, variance.
        #[arg(long, default_value = "average")]
        filter: String,
        /// Consecutive breaching periods that raise the alarm (1-5).
        #[arg(long, default_value_t = 1)]
        count: i64,
        /// Seconds between repeated alarm notices while the alarm lasts
        /// (0, 300, 600, 900, 1800, 3600, 10800, 21600, 43200, 86400; 0 = once).
        #[arg(long, default_value_t = 0)]
        suppress: i64,
        /// Level: 1 critical, 2 major, 3 minor, 4 informational.
        #[arg(long, default_value_t = 2)]
        level: i64,
        /// Name [default: vpn-<metric>-<connection>].
        #[arg(long)]
        name: Option<String>,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// SMN topic (URN or name) for the alarm and ok notices; repeatable.
        /// Without one, the rule records its state changes and notifies no one.
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// Create the rule disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List the project's alarm rules with their state.
    List,
    /// Show an alarm rule.
    Show { id: String },
    /// Delete an alarm rule (its history stays).
    Delete { id: String },
    /// Enable an alarm rule.
    Enable { id: String },
    /// Disable an alarm rule.
    Disable { id: String },
    /// State changes of the project's rules (or of one), newest first.
    History {
        /// Only this rule.
        id: Option<String>,
        /// At most this many records (1-100).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

/// `vpnmon topic ...`.
#[derive(Args, Debug)]
pub struct TopicArgs {
    #[command(flatten, next_help_heading = "Client options")]
    opts: ClientOpts,
    #[command(subcommand)]
    cmd: TopicCmd,
}

#[derive(Subcommand, Debug)]
enum TopicCmd {
    /// Create a topic (an existing name gives its URN); prints the topic URN.
    Create {
        name: String,
        /// Display name [default: the name].
        #[arg(long)]
        display_name: Option<String>,
    },
    /// List topics.
    List,
    /// Subscribe an HTTP(S) endpoint to a topic (URN or name); it is sent a
    /// SubscriptionConfirmation and receives messages once it confirms.
    Subscribe {
        topic: String,
        /// The endpoint URL (http:// or https://).
        #[arg(value_name = "ENDPOINT")]
        url: String,
        /// Remark.
        #[arg(long)]
        remark: Option<String>,
    },
    /// List the subscriptions of a topic (URN or name), or of every topic.
    Subscriptions { topic: Option<String> },
}

/// Runs one client command.
pub async fn run(cmd: ClientCmd) -> Result<()> {
    use resources::Kind;
    match cmd {
        ClientCmd::Login(a) => {
            let mut s = session::Session::open(&a.opts)?;
            let t = s.login().await?;
            session::print_login(&t, s.cache_path(), a.opts.output);
            Ok(())
        }
        ClientCmd::Logout(a) => {
            let mut s = session::Session::open(&a.opts)?;
            s.logout().await
        }
        ClientCmd::Gateway(a) => {
            let mut s = session::Session::open(&a.opts)?;
            let out = a.opts.output;
            match a.cmd {
                GatewayCmd::Create {
                    name,
                    vpc_id,
                    subnet_id,
                    local_subnet,
                    eip_id,
                    eip_bandwidth,
                } => {
                    let req = resources::GatewayCreate {
                        name,
                        vpc_id,
                        subnet_id,
                        local_subnets: local_subnet,
                        eip_id,
                        eip_bandwidth,
                    };
                    resources::gateway_create(&mut s, req, out).await
                }
                GatewayCmd::Show { id } => resources::show(&mut s, Kind::Gateway, &id, out).await,
                GatewayCmd::List => resources::list(&mut s, Kind::Gateway, &[], out).await,
                GatewayCmd::Delete { id } => {
                    resources::delete(&mut s, Kind::Gateway, &id, out).await
                }
            }
        }
        ClientCmd::CustomerGateway(a) => {
            let mut s = session::Session::open(&a.opts)?;
            let out = a.opts.output;
            match a.cmd {
                CustomerGatewayCmd::Create { ip, name, bgp_asn } => {
                    resources::cgw_create(&mut s, &ip, name, bgp_asn, out).await
                }
                CustomerGatewayCmd::Show { id } => {
                    resources::show(&mut s, Kind::CustomerGateway, &id, out).await
                }
                CustomerGatewayCmd::List => {
                    resources::list(&mut s, Kind::CustomerGateway, &[], out).await
                }
                CustomerGatewayCmd::Delete { id } => {
                    resources::delete(&mut s, Kind::CustomerGateway, &id, out).await
                }
            }
        }
        ClientCmd::Connection(a) => {
            if a.opts.password_stdin
                && matches!(
                    a.cmd,
                    ConnectionCmd::Create {
                        psk_stdin: true,
                        ..
                    }
                )
            {
                anyhow::bail!("--password-stdin and --psk-stdin cannot both read standard input");
            }
            let mut s = session::Session::open(&a.opts)?;
            let out = a.opts.output;
            match a.cmd {
                ConnectionCmd::Create {
                    gateway,
                    eip_id,
                    customer_gateway,
                    peer_subnet,
                    psk_stdin,
                    psk_env,
                    name,
                    style,
                } => {
                    let psk = read_psk(psk_stdin, psk_env.as_deref())?;
                    let req = resources::ConnectionCreate {
                        gateway,
                        eip_id,
                        customer_gateway,
                        peer_subnets: peer_subnet,
                        psk,
                        name,
                        style: style.map(|s| match s {
                            Style::Static => "static",
                            Style::Policy => "policy",
                            Style::Bgp => "bgp",
                        }),
                    };
                    resources::connection_create(&mut s, req, out).await
                }
                ConnectionCmd::Show { id } => {
                    resources::show(&mut s, Kind::Connection, &id, out).await
                }
                ConnectionCmd::List { gateway } => {
                    let mut q = Vec::new();
                    if let Some(g) = gateway {
                        let id = resources::resolve(&mut s, Kind::Gateway, &g).await?;
                        q.push(("vgw_id", id));
                    }
                    resources::list(&mut s, Kind::Connection, &q, out).await
                }
                ConnectionCmd::Delete { id } => {
                    resources::delete(&mut s, Kind::Connection, &id, out).await
                }
            }
        }
        ClientCmd::Monitor(a) => {
            let mut s = session::Session::open(&a.opts)?;
            let out = a.opts.output;
            match a.cmd {
                MonitorCmd::Create { connection } => {
                    resources::monitor_create(&mut s, &connection, out).await
                }
                MonitorCmd::Show { id } => resources::show(&mut s, Kind::Monitor, &id, out).await,
                MonitorCmd::List { connection } => {
                    let mut q = Vec::new();
                    if let Some(c) = connection {
                        let id = resources::resolve(&mut s, Kind::Connection, &c).await?;
                        q.push(("vpn_connection_id", id));
                    }
                    resources::list(&mut s, Kind::Monitor, &q, out).await
                }
                MonitorCmd::Delete { id } => {
                    resources::delete(&mut s, Kind::Monitor, &id, out).await
                }
                MonitorCmd::Stats { id, since, period } => {
                    let since = parse_duration("--since", &since)?;
                    stats::run(&mut s, &id, since, period, out).await
                }
                MonitorCmd::Watch {
                    id,
                    interval,
                    count,
                } => {
                    let interval = parse_duration("--interval", &interval)?;
                    watch::run(&mut s, &id, interval, count, out).await
                }
            }
        }
        ClientCmd::Alarm(a) => {
            let mut s = session::Session::open(&a.opts)?;
            let out = a.opts.output;
            match a.cmd {
                AlarmCmd::Create {
                    connection,
                    metric,
                    comparison,
                    value,
                    unit,
                    period,
                    filter,
                    count,
                    suppress,
                    level,
                    name,
                    description,
                    topics,
                    disabled,
                } => {
                    let connection =
                        resources::resolve(&mut s, Kind::Connection, &connection).await?;
                    let req = alarms::AlarmCreate {
                        connection,
                        metric,
                        comparison,
                        value,
                        unit,
                        period,
                        filter,
                        count,
                        suppress,
                        level,
                        name,
                        description,
                        topics,
                        disabled,
                    };
                    alarms::alarm_create(&mut s, req, out).await
                }
                AlarmCmd::List => alarms::alarm_list(&mut s, out).await,
                AlarmCmd::Show { id } => alarms::alarm_show(&mut s, &id, out).await,
                AlarmCmd::Delete { id } => alarms::alarm_delete(&mut s, &id, out).await,
                AlarmCmd::Enable { id } => alarms::alarm_enable(&mut s, &id, true, out).await,
                AlarmCmd::Disable { id } => alarms::alarm_enable(&mut s, &id, false, out).await,
                AlarmCmd::History { id, limit } => {
                    alarms::alarm_history(&mut s, id.as_deref(), limit, out).await
                }
            }
        }
        ClientCmd::Topic(a) => {
            let mut s = session::Session::open(&a.opts)?;
            let out = a.opts.output;
            match a.cmd {
                TopicCmd::Create { name, display_name } => {
                    alarms::topic_create(&mut s, &name, display_name, out).await
                }
                TopicCmd::List => alarms::topic_list(&mut s, out).await,
                TopicCmd::Subscribe { topic, url, remark } => {
                    alarms::topic_subscribe(&mut s, &topic, &url, remark, out).await
                }
                TopicCmd::Subscriptions { topic } => {
                    alarms::topic_subscriptions(&mut s, topic.as_deref(), out).await
                }
            }
        }
    }
}

fn parse_duration(flag: &str, v: &str) -> Result<std::time::Duration> {
    domain::time::parse_duration(v).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

/// The pre-shared key from standard input or an environment variable,
/// never from the command line (where `ps` would show it).
fn read_psk(stdin: bool, env: Option<&str>) -> Result<String> {
    let psk = if stdin {
        session::read_stdin_line()?
    } else {
        let var = env.unwrap_or_default();
        std::env::var(var)
            .map_err(|_| anyhow::anyhow!("--psk-env: environment variable {var} is not set"))?
    };
    if psk.is_empty() {
        anyhow::bail!("the pre-shared key is empty");
    }
    Ok(psk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: ClientCmd,
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn client_flags_work_before_and_after_the_subcommand() {
        let c = Cli::try_parse_from([
            "vpnmon",
            "monitor",
            "--endpoint",
            "http://a:1",
            "list",
            "-o",
            "json",
            "--project",
            "p",
        ])
        .unwrap();
        let ClientCmd::Monitor(m) = c.cmd else {
            panic!("{c:?}")
        };
        assert_eq!(m.opts.endpoint.as_deref(), Some("http://a:1"));
        assert_eq!(m.opts.project.as_deref(), Some("p"));
        assert_eq!(m.opts.output, OutputFormat::Json);
    }

    #[test]
    fn a_connection_needs_exactly_one_psk_source_and_a_gateway_one_eip_choice() {
        let base = [
            "vpnmon",
            "connection",
            "create",
            "--gateway",
            "g",
            "--customer-gateway",
            "c",
        ];
        assert!(Cli::try_parse_from(base).is_err());
        assert!(Cli::try_parse_from(base.iter().chain(&["--psk-stdin"])).is_ok());
        assert!(
            Cli::try_parse_from(base.iter().chain(&["--psk-stdin", "--psk-env", "X"])).is_err()
        );
        let gw = [
            "vpnmon",
            "gateway",
            "create",
            "--vpc-id",
            "v",
            "--subnet-id",
            "s",
            "--local-subnet",
            "10.0.0.0/24",
        ];
        assert!(Cli::try_parse_from(gw).is_ok());
        assert!(Cli::try_parse_from(gw.iter().chain(&["--eip-id", "e"])).is_ok());
        assert!(
            Cli::try_parse_from(gw.iter().chain(&["--eip-id", "e", "--eip-bandwidth", "5"]))
                .is_err()
        );
        assert!(
            Cli::try_parse_from(&gw[..7]).is_err(),
            "--local-subnet is required"
        );
    }
}
