//! Which trust stores `gen-cert --install` / `--uninstall` change (`--trust-stores`), the
//! NSS databases of Firefox and Chromium (changed with `certutil`), and the run over the
//! chosen stores: every store is checked before any is changed, and a store failing
//! part-way undoes what this run did to the stores before it. The system store itself is
//! [`super::trust`]. Decisions are in `docs/gen-cert.md`, "Installing the CA".

use std::path::{Path, PathBuf};
use std::process::Command;

use super::issue::CertAuthority;
use super::trust::{self, TrustChange};

/// A trust store `--trust-stores` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// Debian's system store ([`super::trust`]).
    System,
    /// The NSS databases in the user's home (Chromium's `~/.pki/nssdb`, each Firefox
    /// profile).
    Nss,
    /// A Java keystore (changed with `keytool`).
    Java,
}

impl Store {
    /// Its name in `--trust-stores` and in the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            Store::System => "system",
            Store::Nss => "nss",
            Store::Java => "java",
        }
    }
}

/// Parses `--trust-stores`: a comma-separated list of `system`, `nss` and `java`, each
/// once.
///
/// # Errors
/// One line naming the word that is not a store.
pub fn parse_stores(list: &str) -> Result<Vec<Store>, String> {
    let mut stores = Vec::new();
    for word in list.split(',').map(str::trim) {
        let store = match word {
            "system" => Store::System,
            "nss" => Store::Nss,
            "java" => Store::Java,
            other => {
                return Err(format!("{other:?}: not a trust store; the stores are system, nss and java"));
            }
        };
        if stores.contains(&store) {
            return Err(format!("{word}: named twice"));
        }
        stores.push(store);
    }
    Ok(stores)
}

/// What one store's run did: the store, where (the system store's file, an NSS
/// database's directory) and the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreChange {
    /// The store.
    pub store: Store,
    /// What changed, and where.
    pub change: TrustChange,
    /// The NSS nickname (`None` for the system store).
    pub nickname: Option<String>,
}

/// The NSS nickname of `ca`: `streamtool local CA HEX16` (the first 8 bytes of its
/// certificate's SHA-256, as the system store's file name), so `--uninstall` deletes
/// exactly this CA.
pub fn nss_nickname(ca: &CertAuthority) -> String {
    let digest = crate::streams::tls::sha256(ca.cert_der().as_ref());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("streamtool local CA {hex}")
}

/// The NSS databases (directories with a `cert9.db`) under `home`: Chromium's
/// `.pki/nssdb`, then each Firefox profile in `.mozilla/firefox/*/` and
/// `snap/firefox/common/.mozilla/firefox/*/`, sorted.
pub fn nss_databases(home: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let chromium = home.join(".pki/nssdb");
    if chromium.join("cert9.db").is_file() {
        found.push(chromium);
    }
    for profiles in [".mozilla/firefox", "snap/firefox/common/.mozilla/firefox"] {
        let Ok(entries) = std::fs::read_dir(home.join(profiles)) else { continue };
        let mut dirs: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.join("cert9.db").is_file()).collect();
        dirs.sort();
        found.extend(dirs);
    }
    found
}

/// `certutil` on PATH.
fn certutil() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("certutil")).find(|p| p.is_file())
}

const NO_CERTUTIL: &str = "certutil was not found (Debian, Ubuntu: apt install libnss3-tools): it changes the NSS databases of Firefox and Chromium";

fn sql(dir: &Path) -> String {
    format!("sql:{}", dir.display())
}

/// Runs certutil; `Err` holds its last line of output.
fn run_certutil(tool: &Path, args: &[&str]) -> Result<(), String> {
    let out =
        Command::new(tool).args(args).output().map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let last = all.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string();
    Err(format!("certutil {} failed ({}): {last}", args.join(" "), out.status))
}

fn has_nickname(tool: &Path, dir: &Path, nick: &str) -> bool {
    run_certutil(tool, &["-L", "-d", &sql(dir), "-n", nick]).is_ok()
}

/// Whether this process may write `path`: `Err` says why not (read-only, permission).
fn writable(path: &Path) -> Result<(), String> {
    crate::platform::writable(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            std::io::ErrorKind::ReadOnlyFilesystem => "read-only file system".to_string(),
            #[cfg(unix)]
            _ if e.raw_os_error().is_some() => {
                nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)).desc().to_string()
            }
            _ => e.to_string(),
        };
        format!("{}: {why}", path.display())
    })
}

/// Which stores one run changes, and where the NSS databases and the Java keystore are.
#[derive(Debug, Clone)]
pub struct StoreChoice {
    /// The stores (`--trust-stores`, else [`default_stores`]).
    pub stores: Vec<Store>,
    /// Named by `--trust-stores` (else found databases without certutil are a note).
    pub explicit: bool,
    /// The user's home (the NSS databases are under it).
    pub home: Option<PathBuf>,
    /// `--java-keystore`, else [`java_keystore`] finds it.
    pub java_keystore: Option<PathBuf>,
}

/// The Java keystore and keytool: (keytool, keystore).
struct Java {
    tool: PathBuf,
    keystore: PathBuf,
}

/// The plan of one run: the stores, each with what is needed to change it, checked.
struct Plan {
    system: bool,
    nss: Option<(PathBuf, Vec<PathBuf>)>,
    java: Option<Java>,
}

/// Java's default keystore password, as mkcert and every JDK use it.
const STOREPASS: &str = "changeit";

/// `keytool`: `$JAVA_HOME/bin/keytool`, else on PATH.
fn keytool() -> Option<PathBuf> {
    let home = std::env::var_os("JAVA_HOME").map(|h| PathBuf::from(h).join("bin/keytool"));
    home.filter(|p| p.is_file()).or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).map(|d| d.join("keytool")).find(|p| p.is_file())
    })
}

/// The Java keystore: `$JAVA_HOME/lib/security/cacerts` when JAVA_HOME is set and it
/// exists, else Debian's `/etc/ssl/certs/java/cacerts`.
pub fn java_keystore() -> PathBuf {
    std::env::var_os("JAVA_HOME")
        .map(|h| PathBuf::from(h).join("lib/security/cacerts"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/java/cacerts"))
}

/// The keytool alias of `ca`: `streamtool-local-ca-HEX16` (keytool lowercases aliases).
pub fn java_alias(ca: &CertAuthority) -> String {
    nss_nickname(ca).replace("streamtool local CA ", "streamtool-local-ca-")
}

fn run_keytool(tool: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(tool)
        .args(args)
        .env_remove("JAVA_TOOL_OPTIONS")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let last = all.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string();
    let shown: Vec<&str> = args.iter().map(|a| if *a == STOREPASS { "changeit" } else { a }).collect();
    Err(format!("keytool {} failed ({}): {last}", shown.join(" "), out.status))
}

fn java_has(java: &Java, alias: &str) -> bool {
    let ks = java.keystore.display().to_string();
    run_keytool(&java.tool, &["-list", "-keystore", &ks, "-storepass", STOREPASS, "-alias", alias]).is_ok()
}

fn java_add(java: &Java, alias: &str, ca_file: &Path) -> Result<TrustChange, String> {
    if java_has(java, alias) {
        return Ok(TrustChange::Unchanged(java.keystore.clone()));
    }
    let (ks, file) = (java.keystore.display().to_string(), ca_file.display().to_string());
    run_keytool(
        &java.tool,
        &[
            "-importcert",
            "-noprompt",
            "-keystore",
            &ks,
            "-storepass",
            STOREPASS,
            "-alias",
            alias,
            "-file",
            &file,
        ],
    )?;
    Ok(TrustChange::Installed(java.keystore.clone()))
}

fn java_delete(java: &Java, alias: &str) -> Result<TrustChange, String> {
    if !java_has(java, alias) {
        return Ok(TrustChange::Unchanged(java.keystore.clone()));
    }
    let ks = java.keystore.display().to_string();
    run_keytool(&java.tool, &["-delete", "-keystore", &ks, "-storepass", STOREPASS, "-alias", alias])?;
    Ok(TrustChange::Removed(java.keystore.clone()))
}

/// Checks the Java keystore: keytool there, the keystore readable with the password, and
/// writable when a change is needed (else the line says it needs root, with the command).
fn plan_java(
    ca: &CertAuthority,
    ca_file: &Path,
    choice: &StoreChoice,
    installing: bool,
) -> Result<Java, String> {
    let tool = keytool().ok_or(
        "keytool was not found in $JAVA_HOME/bin or on PATH (Debian, Ubuntu: apt install default-jre-headless): it changes Java keystores; nothing changed",
    )?;
    let keystore = choice.java_keystore.clone().unwrap_or_else(java_keystore);
    let java = Java { tool, keystore };
    let ks = java.keystore.display().to_string();
    run_keytool(&java.tool, &["-list", "-keystore", &ks, "-storepass", STOREPASS]).map_err(|e| {
        format!("cannot read the Java keystore {ks} (password changeit): {e}; nothing changed")
    })?;
    let alias = java_alias(ca);
    if java_has(&java, &alias) != installing {
        let how = if installing {
            format!(
                "as root: keytool -importcert -noprompt -keystore {ks} -storepass changeit -alias {alias} -file {}",
                ca_file.display()
            )
        } else {
            format!("as root: keytool -delete -keystore {ks} -storepass changeit -alias {alias}")
        };
        let dir = java.keystore.parent().map(Path::to_path_buf).unwrap_or_default();
        for path in [java.keystore.clone(), dir] {
            writable(&path).map_err(|e| {
                if e.ends_with("permission denied") {
                    format!("cannot change the Java keystore {ks} ({e}): it needs root; {how}")
                } else {
                    format!("cannot change the Java keystore {ks} ({e}); nothing changed")
                }
            })?;
        }
    }
    Ok(java)
}
/// Checks every chosen store before any is changed: the tools are there, the databases
/// found (an explicit `nss` with none is an error on install) and writable where a change
/// is needed. `explicit`: the stores were named by `--trust-stores` (else a missing
/// certutil for found databases is a note and NSS is left out).
fn plan(
    ca: &CertAuthority,
    ca_file: &Path,
    choice: &StoreChoice,
    installing: bool,
    note: &mut dyn FnMut(&str),
) -> Result<Plan, String> {
    let stores = &choice.stores;
    let (explicit, home) = (choice.explicit, choice.home.as_deref());
    let mut plan = Plan { system: stores.contains(&Store::System), nss: None, java: None };
    if plan.system {
        trust::check_system(ca, ca_file, installing)?;
    }
    if stores.contains(&Store::Java) {
        plan.java = Some(plan_java(ca, ca_file, choice, installing)?);
    }
    if stores.contains(&Store::Nss) {
        let dbs = home.map(nss_databases).unwrap_or_default();
        let looked = match home {
            Some(home) => format!(
                "{0}/.pki/nssdb, {0}/.mozilla/firefox/*, {0}/snap/firefox/common/.mozilla/firefox/*",
                home.display()
            ),
            None => "no home directory".to_string(),
        };
        if dbs.is_empty() {
            if installing {
                return Err(format!(
                    "no NSS database found ({looked}): Firefox and Chromium make theirs on their first run; nothing changed"
                ));
            }
            return Ok(plan);
        }
        let Some(tool) = certutil() else {
            if explicit {
                return Err(format!("{NO_CERTUTIL}; nothing changed"));
            }
            let list: Vec<String> = dbs.iter().map(|d| d.display().to_string()).collect();
            note(&format!(
                "{NO_CERTUTIL}: not changed: {} (install it and run again, or give --trust-stores system)",
                list.join(", ")
            ));
            return Ok(plan);
        };
        let nick = nss_nickname(ca);
        for dir in &dbs {
            run_certutil(&tool, &["-L", "-d", &sql(dir)])
                .map_err(|e| format!("cannot read the NSS database {}: {e}", dir.display()))?;
            if has_nickname(&tool, dir, &nick) != installing {
                for path in [dir.join("cert9.db"), dir.clone()] {
                    writable(&path).map_err(|e| {
                        format!("cannot change the NSS database {} ({e}); nothing changed", dir.display())
                    })?;
                }
            }
        }
        plan.nss = Some((tool, dbs));
    }
    Ok(plan)
}

fn nss_add(tool: &Path, dir: &Path, nick: &str, ca_file: &Path) -> Result<TrustChange, String> {
    if has_nickname(tool, dir, nick) {
        return Ok(TrustChange::Unchanged(dir.to_path_buf()));
    }
    let file = ca_file.display().to_string();
    run_certutil(tool, &["-A", "-d", &sql(dir), "-t", "C,,", "-n", nick, "-i", &file])?;
    Ok(TrustChange::Installed(dir.to_path_buf()))
}

fn nss_delete(tool: &Path, dir: &Path, nick: &str) -> Result<TrustChange, String> {
    if !has_nickname(tool, dir, nick) {
        return Ok(TrustChange::Unchanged(dir.to_path_buf()));
    }
    run_certutil(tool, &["-D", "-d", &sql(dir), "-n", nick])?;
    Ok(TrustChange::Removed(dir.to_path_buf()))
}

/// Undoes the changes of this run (in reverse), for a store that failed after them; the
/// text to add to the error.
fn undo(ca: &CertAuthority, ca_file: &Path, done: &[StoreChange], plan: &Plan) -> String {
    let tool = plan.nss.as_ref().map(|(tool, _)| tool.as_path());
    let alias = java_alias(ca);
    let nick = nss_nickname(ca);
    let mut failed = Vec::new();
    let mut undone = 0;
    for change in done.iter().rev() {
        let result = match (&change.change, change.store) {
            (TrustChange::Installed(_), Store::System) => trust::uninstall_system(ca).map(drop),
            (TrustChange::Removed(_), Store::System) => trust::install_system(ca, ca_file).map(drop),
            (TrustChange::Installed(dir), Store::Nss) => {
                tool.map_or(Ok(()), |t| nss_delete(t, dir, &nick).map(drop))
            }
            (TrustChange::Removed(dir), Store::Nss) => {
                tool.map_or(Ok(()), |t| nss_add(t, dir, &nick, ca_file).map(drop))
            }
            (TrustChange::Installed(_), Store::Java) => {
                plan.java.as_ref().map_or(Ok(()), |j| java_delete(j, &alias).map(drop))
            }
            (TrustChange::Removed(_), Store::Java) => {
                plan.java.as_ref().map_or(Ok(()), |j| java_add(j, &alias, ca_file).map(drop))
            }
            (TrustChange::Unchanged(_), _) => continue,
        };
        match result {
            Ok(()) => undone += 1,
            Err(e) => failed.push(e),
        }
    }
    match (undone, failed.is_empty()) {
        (0, true) => "nothing changed".to_string(),
        (_, true) => format!("the {undone} change(s) made before it were undone"),
        _ => format!("undoing the changes made before it failed too: {}", failed.join("; ")),
    }
}

/// Installs (`installing`) or uninstalls `ca` (its certificate at `ca_file`) in the
/// chosen stores: every store checked first, then changed in order (system, each NSS
/// database, Java); a failure undoes this run's earlier changes. `note`: a store left out
/// (found databases but no certutil, when not explicit).
///
/// # Errors
/// One line: the store that cannot be changed and why, and what was undone.
pub fn change_stores(
    ca: &CertAuthority,
    ca_file: &Path,
    choice: &StoreChoice,
    installing: bool,
    note: &mut dyn FnMut(&str),
) -> Result<Vec<StoreChange>, String> {
    let plan = plan(ca, ca_file, choice, installing, note)?;
    let mut done = Vec::new();
    if plan.system {
        let change =
            if installing { trust::install_system(ca, ca_file) } else { trust::uninstall_system(ca) };
        done.push(StoreChange { store: Store::System, change: change?, nickname: None });
    }
    if let Some((tool, dbs)) = &plan.nss {
        let nick = nss_nickname(ca);
        for dir in dbs {
            let change =
                if installing { nss_add(tool, dir, &nick, ca_file) } else { nss_delete(tool, dir, &nick) };
            match change {
                Ok(change) => {
                    done.push(StoreChange { store: Store::Nss, change, nickname: Some(nick.clone()) })
                }
                Err(why) => {
                    let undone = undo(ca, ca_file, &done, &plan);
                    return Err(format!("cannot change the NSS database {}: {why}; {undone}", dir.display()));
                }
            }
        }
    }
    if let Some(java) = &plan.java {
        let alias = java_alias(ca);
        let change = if installing { java_add(java, &alias, ca_file) } else { java_delete(java, &alias) };
        match change {
            Ok(change) => done.push(StoreChange { store: Store::Java, change, nickname: Some(alias) }),
            Err(why) => {
                let undone = undo(ca, ca_file, &done, &plan);
                return Err(format!(
                    "cannot change the Java keystore {}: {why}; {undone}",
                    java.keystore.display()
                ));
            }
        }
    }
    Ok(done)
}

/// The default stores (no `--trust-stores`): the system store, and NSS when a database is
/// found under `home`.
pub fn default_stores(home: Option<&Path>) -> Vec<Store> {
    let mut stores = vec![Store::System];
    if home.is_some_and(|h| !nss_databases(h).is_empty()) {
        stores.push(Store::Nss);
    }
    stores
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_stores_parse() {
        assert_eq!(parse_stores("system,nss").unwrap(), vec![Store::System, Store::Nss]);
        assert_eq!(parse_stores("nss").unwrap(), vec![Store::Nss]);
        assert_eq!(parse_stores("java,system").unwrap(), vec![Store::Java, Store::System]);
        assert!(parse_stores("nss,nss").unwrap_err().contains("named twice"));
        assert!(parse_stores("").unwrap_err().contains("not a trust store"));
    }
}
