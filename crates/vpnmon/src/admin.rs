//! `vpnmon admin ...`: manage projects, users, AK/SK credentials and the
//! EIP pool directly in the store (the same `--data-dir`/`--database-url`
//! as `serve`).

use anyhow::{Result, anyhow, bail};
use rand::Rng;
use serde_json::json;
use store::{IdentityStore, ResourceStore, Store};

/// A random 20-character password with every character class.
pub fn generate_password() -> String {
    const SETS: [&[u8]; 4] = [
        b"ABCDEFGHJKLMNPQRSTUVWXYZ",
        b"abcdefghijkmnopqrstuvwxyz",
        b"23456789",
        b"-_.!",
    ];
    let mut rng = rand::rng();
    let mut out: Vec<u8> = SETS
        .iter()
        .map(|s| s[rng.random_range(0..s.len())])
        .collect();
    let all: Vec<u8> = SETS.concat();
    while out.len() < 20 {
        out.push(all[rng.random_range(0..all.len())]);
    }
    for i in (1..out.len()).rev() {
        out.swap(i, rng.random_range(0..=i));
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn e(err: domain::DomainError) -> anyhow::Error {
    anyhow!("{err}")
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Output {
    /// Human-readable text.
    #[default]
    Text,
    /// JSON for scripts.
    Json,
}

/// `admin project create NAME [--domain D]`.
pub async fn project_create(
    store: &dyn Store,
    name: &str,
    domain_name: &str,
    out: Output,
) -> Result<()> {
    if name.is_empty() || name.len() > 64 {
        bail!("project name must be 1-64 characters");
    }
    let domain = match store.find_domain(domain_name).await.map_err(e)? {
        Some(d) => d,
        None => store.create_domain(domain_name).await.map_err(e)?,
    };
    let p = store.create_project(&domain.id, name).await.map_err(e)?;
    match out {
        Output::Json => println!(
            "{}",
            json!({"id": p.id, "name": p.name, "domain_id": domain.id, "domain": domain.name})
        ),
        Output::Text => println!(
            "created project {} (id {}) in domain {}",
            p.name, p.id, domain.name
        ),
    }
    Ok(())
}

/// `admin project list`.
pub async fn project_list(store: &dyn Store, out: Output) -> Result<()> {
    let ps = store.list_projects().await.map_err(e)?;
    match out {
        Output::Json => {
            let v: Vec<_> = ps
                .iter()
                .map(|p| json!({"id": p.id, "name": p.name, "domain_id": p.domain_id}))
                .collect();
            println!("{}", serde_json::Value::Array(v));
        }
        Output::Text => {
            println!("{:<34} NAME", "ID");
            for p in ps {
                println!("{:<34} {}", p.id, p.name);
            }
        }
    }
    Ok(())
}

/// `admin user create NAME --project P --password-stdin`.
pub async fn user_create(
    store: &dyn Store,
    name: &str,
    project: &str,
    password: &str,
    out: Output,
) -> Result<()> {
    if password.chars().count() < 8 {
        bail!("password must be at least 8 characters");
    }
    let p = store
        .find_project(project)
        .await
        .map_err(e)?
        .ok_or_else(|| anyhow!("no project named {project:?} (create it with: vpnmon admin project create {project})"))?;
    let hash = auth::password::hash_password(password).map_err(|x| anyhow!("{x}"))?;
    let u = store
        .create_user(&p.domain_id, name, &hash)
        .await
        .map_err(e)?;
    store.grant(&u.id, &p.id).await.map_err(e)?;
    let d = store
        .get_domain(&p.domain_id)
        .await
        .map_err(e)?
        .map(|d| d.name)
        .unwrap_or_default();
    match out {
        Output::Json => println!(
            "{}",
            json!({"id": u.id, "name": u.name, "domain_id": u.domain_id, "domain": d, "project_id": p.id, "project": p.name})
        ),
        Output::Text => println!(
            "created user {} (id {}) in domain {d} with a role in project {}",
            u.name, u.id, p.name
        ),
    }
    Ok(())
}

/// `admin user grant NAME --project P`.
pub async fn user_grant(store: &dyn Store, name: &str, project: &str) -> Result<()> {
    let u = store
        .find_user_any_domain(name)
        .await
        .map_err(e)?
        .ok_or_else(|| anyhow!("no user {name:?}"))?;
    let p = store
        .find_project(project)
        .await
        .map_err(e)?
        .ok_or_else(|| anyhow!("no project {project:?}"))?;
    store.grant(&u.id, &p.id).await.map_err(e)?;
    println!("granted user {} a role in project {}", u.name, p.name);
    Ok(())
}

/// `admin user show NAME`: the user, its projects and its login state.
pub async fn user_show(store: &dyn Store, name: &str, out: Output) -> Result<()> {
    let u = store
        .find_user_any_domain(name)
        .await
        .map_err(e)?
        .ok_or_else(|| anyhow!("no user {name:?}"))?;
    let d = store
        .get_domain(&u.domain_id)
        .await
        .map_err(e)?
        .map(|d| d.name)
        .unwrap_or_default();
    let projects: Vec<String> = store
        .user_projects(&u.id)
        .await
        .map_err(e)?
        .into_iter()
        .map(|p| p.name)
        .collect();
    let lock = store
        .get_login_lock(&u.id)
        .await
        .map_err(e)?
        .unwrap_or_default();
    let now = chrono::Utc::now().timestamp_micros();
    let locked = lock.locked_until_us > now;
    let until =
        locked.then(|| domain::time::wire_ms(domain::time::from_micros(lock.locked_until_us)));
    let since = (lock.failures > 0)
        .then(|| domain::time::wire_ms(domain::time::from_micros(lock.since_us)));
    match out {
        Output::Json => println!(
            "{}",
            json!({"id": u.id, "name": u.name, "domain_id": u.domain_id, "domain": d,
                   "projects": projects, "failed_logins": lock.failures,
                   "failed_since": since, "locked": locked, "locked_until": until})
        ),
        Output::Text => {
            println!("user {} (id {}) in domain {d}", u.name, u.id);
            println!("projects: {}", projects.join(", "));
            match &since {
                Some(t) => println!("failed logins: {} since {t}", lock.failures),
                None => println!("failed logins: 0"),
            }
            match &until {
                Some(t) => println!(
                    "locked until {t} (vpnmon admin user unlock {} ends it)",
                    u.name
                ),
                None => println!("not locked"),
            }
        }
    }
    Ok(())
}

/// `admin user unlock NAME`.
pub async fn user_unlock(store: &dyn Store, name: &str) -> Result<()> {
    let u = store
        .find_user_any_domain(name)
        .await
        .map_err(e)?
        .ok_or_else(|| anyhow!("no user {name:?}"))?;
    let had = store.get_login_lock(&u.id).await.map_err(e)?;
    // No failures as of now: running nodes see it at the user's next login
    // and forget the lock they remember.
    let unlocked = store::LoginLock {
        failures: 0,
        since_us: chrono::Utc::now().timestamp_micros(),
        locked_until_us: 0,
    };
    store.put_login_lock(&u.id, &unlocked).await.map_err(e)?;
    match had {
        Some(l) if l.failures > 0 => {
            println!(
                "unlocked user {} and forgot its {} failed logins",
                u.name, l.failures
            )
        }
        _ => println!("user {} had no failed logins or lock", u.name),
    }
    Ok(())
}

/// `admin credential create --user NAME`: the secret is printed once.
pub async fn credential_create(
    store: &dyn Store,
    key: &crate::secrets::KeySource,
    user: &str,
    description: &str,
    out: Output,
) -> Result<()> {
    let u = store
        .find_user_any_domain(user)
        .await
        .map_err(e)?
        .ok_or_else(|| anyhow!("no user {user:?}"))?;
    let key = crate::secrets::master_key(store, key).await?;
    let access = auth::credential::generate_access_key();
    let secret = auth::credential::generate_secret_key();
    store
        .insert_credential(&store::CredentialRecord {
            access: access.clone(),
            user_id: u.id.clone(),
            sealed_secret: auth::credential::seal_secret(&key, &access, &secret),
            enabled: true,
            description: description.to_string(),
            created_us: chrono::Utc::now().timestamp_micros(),
        })
        .await
        .map_err(e)?;
    let project_id = store
        .user_projects(&u.id)
        .await
        .map_err(e)?
        .first()
        .map(|p| p.id.clone());
    match out {
        Output::Json => println!(
            "{}",
            json!({"access": access, "secret": secret, "user": u.name, "project_id": project_id})
        ),
        Output::Text => {
            println!("access key: {access}");
            println!("secret key: {secret}");
            println!("(the secret key is shown only now; store it safely)");
            if let Some(p) = project_id {
                println!("project id: {p}");
            }
        }
    }
    Ok(())
}

/// `admin credential list [--user NAME]`: never shows secrets.
pub async fn credential_list(store: &dyn Store, user: Option<&str>, out: Output) -> Result<()> {
    let uid = match user {
        Some(n) => Some(
            store
                .find_user_any_domain(n)
                .await
                .map_err(e)?
                .ok_or_else(|| anyhow!("no user {n:?}"))?
                .id,
        ),
        None => None,
    };
    let cs = store.list_credentials(uid.as_ref()).await.map_err(e)?;
    let mut rows = Vec::new();
    for c in &cs {
        let name = store
            .get_user(&c.user_id)
            .await
            .map_err(e)?
            .map(|u| u.name)
            .unwrap_or_default();
        rows.push((c, name));
    }
    match out {
        Output::Json => {
            let v: Vec<_> = rows
                .iter()
                .map(|(c, n)| json!({"access": c.access, "user": n, "enabled": c.enabled, "description": c.description,
                    "created_at": domain::time::wire_ms(domain::time::from_micros(c.created_us))}))
                .collect();
            println!("{}", serde_json::Value::Array(v));
        }
        Output::Text => {
            println!(
                "{:<22} {:<16} {:<8} CREATED",
                "ACCESS KEY", "USER", "STATUS"
            );
            for (c, n) in rows {
                println!(
                    "{:<22} {:<16} {:<8} {}",
                    c.access,
                    n,
                    if c.enabled { "active" } else { "disabled" },
                    domain::time::wire_ms(domain::time::from_micros(c.created_us))
                );
            }
        }
    }
    Ok(())
}

/// `admin credential enable|disable AK`.
pub async fn credential_set_enabled(store: &dyn Store, access: &str, enabled: bool) -> Result<()> {
    if !store
        .set_credential_enabled(access, enabled)
        .await
        .map_err(e)?
    {
        bail!("no credential with access key {access}");
    }
    println!(
        "credential {access} {}",
        if enabled { "enabled" } else { "disabled" }
    );
    Ok(())
}

/// `admin credential delete AK`.
pub async fn credential_delete(store: &dyn Store, access: &str) -> Result<()> {
    if !store.delete_credential(access).await.map_err(e)? {
        bail!("no credential with access key {access}");
    }
    println!("credential {access} deleted");
    Ok(())
}

/// `admin eip list`.
pub async fn eip_list(store: &dyn Store, out: Output) -> Result<()> {
    let pool = store.list_pool().await.map_err(e)?;
    match out {
        Output::Json => {
            let v: Vec<_> = pool
                .iter()
                .map(|e| json!({"id": e.id, "ip_address": e.address, "project_id": e.project_id, "vgw_id": e.vgw_id}))
                .collect();
            println!("{}", serde_json::Value::Array(v));
        }
        Output::Text => {
            println!(
                "{:<38} {:<16} {:<34} VPN GATEWAY",
                "ID", "ADDRESS", "PROJECT"
            );
            for e in pool {
                println!(
                    "{:<38} {:<16} {:<34} {}",
                    e.id,
                    e.address,
                    e.project_id.unwrap_or_else(|| "-".into()),
                    e.vgw_id.unwrap_or_else(|| "-".into())
                );
            }
        }
    }
    Ok(())
}

/// `admin node list`: the live nodes, as `GET /vpnmon/nodes` shows them.
pub async fn node_list(store: &dyn Store, out: Output) -> Result<()> {
    let nodes = store.live_nodes().await.map_err(e)?;
    match out {
        Output::Json => {
            let v = api::routes::nodes::node_views(&nodes);
            println!("{}", serde_json::Value::Array(v));
        }
        Output::Text => {
            let leader = store::job_leader(&nodes);
            println!(
                "{:<20} {:<38} {:<25} {:>8} {:<4} ADDRESSES",
                "NAME", "ID", "HEARTBEAT", "MONITORS", "JOBS"
            );
            for n in nodes {
                println!(
                    "{:<20} {:<38} {:<25} {:>8} {:<4} {}",
                    n.name,
                    n.id.to_string(),
                    domain::time::wire_ms(domain::time::from_micros(n.heartbeat_us)),
                    n.monitors,
                    if Some(n.id) == leader { "yes" } else { "-" },
                    if n.addresses.is_empty() {
                        "-".to_string()
                    } else {
                        n.addresses.join(",")
                    }
                );
            }
        }
    }
    Ok(())
}

/// `admin bulk-monitors`: for every address, a customer gateway, a
/// policy-mode connection on one gateway and its monitor, in large
/// transactions (for fleets and benchmarks). Creates the gateway, with an
/// EIP from the pool, unless `--gateway` is given.
pub async fn bulk_monitors(
    store: &store::SqlStore,
    project: &str,
    gateway: Option<&str>,
    eip_id: Option<&str>,
    specs: &[String],
    out: Output,
) -> Result<()> {
    let p = store
        .find_project(project)
        .await
        .map_err(e)?
        .ok_or_else(|| anyhow!("no project named {project:?}"))?;
    let pid = p.id.clone();
    let mut addrs = Vec::new();
    for s in specs {
        for part in s.split(',').filter(|x| !x.trim().is_empty()) {
            let a = domain::eip::parse_pool_spec(part).map_err(|x| anyhow!("--addresses: {x}"))?;
            addrs.extend(a.iter().map(|a| a.to_string()));
        }
    }
    if addrs.is_empty() {
        bail!("give customer-gateway addresses with --addresses (address, CIDR or range a-b)");
    }
    let now = domain::time::wire_ms(chrono::Utc::now());
    let (vgw, vgw_ip) = match gateway {
        Some(g) => {
            let gid = domain::GatewayId::parse(g)
                .ok_or_else(|| anyhow!("--gateway: not a gateway id (a UUID): {g:?}"))?;
            let gw = store.get_gateway(&pid, &gid).await.map_err(e)?;
            let ip = match eip_id {
                Some(i) => i.to_string(),
                None => gw
                    .vgw_ips()
                    .first()
                    .map(|x| x.0.clone())
                    .ok_or_else(|| anyhow!("gateway {g} has no EIP or private address"))?,
            };
            (gw.id, ip)
        }
        None => {
            let req: domain::gateway::CreateVgw = serde_json::from_value(json!({
                "vpc_id": uuid::Uuid::new_v4().to_string(), "connect_subnet": uuid::Uuid::new_v4().to_string(),
                "local_subnets": ["192.168.0.0/16"], "eip1": {"type": "5_bgp", "bandwidth_size": 100}}))?;
            let plan =
                domain::gateway::plan_create(req, domain::GatewayId::random(), &now).map_err(e)?;
            let gw = store.create_gateway(&pid, plan).await.map_err(e)?;
            let ip = gw.eip1.as_ref().map(|x| x.id.clone()).unwrap_or_default();
            (gw.id, ip)
        }
    };
    let started = std::time::Instant::now();
    let ids = store
        .bulk_monitored_links(&pid, &vgw, &vgw_ip, &addrs, "Bulk-psk-1234")
        .await
        .map_err(e)?;
    match out {
        Output::Json => println!(
            "{}",
            json!({"project_id": p.id, "vgw_id": vgw, "vgw_ip": vgw_ip, "monitors": ids.len(),
                   "seconds": started.elapsed().as_secs_f64()})
        ),
        Output::Text => println!(
            "created {} monitored links on gateway {vgw} in {:.1} s",
            ids.len(),
            started.elapsed().as_secs_f64()
        ),
    }
    Ok(())
}

/// The SQLite file that `serve` with these settings opens, or why there is
/// none (a PostgreSQL store).
pub fn sqlite_database(settings: &crate::config::Settings) -> Result<std::path::PathBuf> {
    match &settings.database_url {
        None => Ok(settings.data_dir.join("vpnmon.db")),
        Some(url) if url.starts_with("sqlite:") => {
            let rest = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or("");
            match rest.split('?').next() {
                Some(p) if !p.is_empty() && p != ":memory:" => Ok(p.into()),
                _ => bail!("the database URL {url} names no file"),
            }
        }
        Some(_) => bail!("{}", store::BACKUP_POSTGRES),
    }
}

/// Where the SK master key lives, for the operator: it is never in a
/// SQLite backup, and a restored store needs the same key.
fn key_note(settings: &crate::config::Settings) -> String {
    match crate::secrets::key_source(settings) {
        crate::secrets::KeySource::File(f) => format!(
            "the SK master key is not in it: keep {} with it (the AK/SK secrets open only with that key)",
            f.display()
        ),
        crate::secrets::KeySource::Database => "the SK master key is in it".to_string(),
    }
}

/// The same for a restore: the key must be the backed-up store's.
fn restore_key_note(settings: &crate::config::Settings) -> String {
    match crate::secrets::key_source(settings) {
        crate::secrets::KeySource::File(f) => format!(
            "the SK master key is not in a backup: {} must be the key file of the store that was backed up",
            f.display()
        ),
        crate::secrets::KeySource::Database => "the SK master key came with it".to_string(),
    }
}

fn print_report(verb: &str, r: &store::BackupReport, note: &str, out: Output) {
    match out {
        Output::Json => {
            let rows: serde_json::Map<String, serde_json::Value> =
                r.rows.iter().map(|(t, n)| (t.clone(), json!(n))).collect();
            println!(
                "{}",
                json!({
                    "path": r.path,
                    "bytes": r.bytes,
                    "schema_version": r.schema_version,
                    "rows": rows,
                    "previous": r.previous,
                    "note": note,
                })
            )
        }
        Output::Text => {
            let rows: Vec<String> = r.rows.iter().map(|(t, n)| format!("{t} {n}")).collect();
            println!(
                "{verb} {} ({} bytes, schema version {}): {}",
                r.path.display(),
                r.bytes,
                r.schema_version,
                rows.join(", ")
            );
            if let Some(p) = &r.previous {
                println!("the database it replaced is kept as {}", p.display());
            }
            println!("{note}");
        }
    }
}

/// `admin backup FILE`: a consistent copy of the SQLite store while it
/// serves.
pub async fn backup(
    store: &store::SqlStore,
    settings: &crate::config::Settings,
    file: &std::path::Path,
    out: Output,
) -> Result<()> {
    let r = store.backup_to(file).await.map_err(e)?;
    print_report("backed up to", &r, &key_note(settings), out);
    Ok(())
}

/// `admin restore FILE`: puts a backup in place of the stopped store.
pub async fn restore(
    settings: &crate::config::Settings,
    file: &std::path::Path,
    out: Output,
) -> Result<()> {
    let db = sqlite_database(settings)?;
    if !file.is_file() {
        bail!("{}: no such backup file", file.display());
    }
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)
            .map_err(|err| anyhow!("create the data directory {}: {err}", dir.display()))?;
    }
    let r = store::restore_sqlite(file, &db).await.map_err(e)?;
    print_report(
        "restored",
        &r,
        &format!(
            "{}; start vpnmon on it (it migrates an older backup on start)",
            restore_key_note(settings)
        ),
        out,
    );
    Ok(())
}
