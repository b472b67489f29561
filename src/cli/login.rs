//! `sandbox login [REGISTRY]` and `sandbox logout [REGISTRY]`: the credentials `pull` and `push`
//! read, in the auth file they look at first.

use std::io::{IsTerminal, Read};

use anyhow::Result;
use clap::Args;
use sandbox::image::registry::login;
use sandbox::image::registry::{self, Credentials, Options};

#[derive(Debug, Args)]
#[command(after_help = "\
The credentials are checked against the registry (GET /v2/ with them) before they are written to
$SANDBOX_AUTH_FILE when set, else $XDG_RUNTIME_DIR/containers/auth.json (podman's), else
~/.docker/config.json (docker's): the first file `pull` and `push` read. The file is mode 0600 and
replaced whole.")]
pub struct LoginArgs {
    /// The registry: HOST[:PORT] (default docker.io)
    pub registry: Option<String>,
    /// User name
    #[arg(long, short = 'u')]
    pub username: String,
    /// Password (visible to other users in the process list: prefer --password-stdin)
    #[arg(long, short = 'p', conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from stdin (one line; the newline is dropped)
    #[arg(long)]
    pub password_stdin: bool,
    /// Speak plain http to this registry; repeatable
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Connect and read timeouts for the registry, e.g. 10,30 or 5s,2m [default: 10,30]
    #[arg(long = "registry-timeout", value_name = "CONNECT[,READ]")]
    pub registry_timeout: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry: HOST[:PORT] (default docker.io)
    pub registry: Option<String>,
}

pub fn login(args: &LoginArgs) -> Result<i32> {
    let reg = args.registry.as_deref().unwrap_or("docker.io");
    login::check_registry(reg)?;
    let mut insecure = args.insecure_registry.clone();
    insecure.extend(Options::insecure_from_env());
    for i in &insecure {
        registry::check_insecure(i)?;
    }
    let pass = match (&args.password, args.password_stdin) {
        (Some(p), _) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p.clone()
        }
        (None, true) => {
            let mut s = String::new();
            std::io::stdin().take(1 << 16).read_to_string(&mut s)?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            let why = if std::io::stdin().is_terminal() { "no prompt here" } else { "stdin is not a terminal" };
            return Err(sandbox::Error::invalid(
                "password",
                "(none)",
                &format!("--password-stdin (echo \"$PASS\" | sandbox login -u USER --password-stdin REGISTRY) or -p PASS ({why})"),
            )
            .into());
        }
    };
    if args.username.is_empty() || args.username.contains(':') || pass.is_empty() {
        return Err(sandbox::Error::invalid(
            "--username/password",
            "(hidden)",
            "a non-empty user name without ':' and a non-empty password",
        )
        .into());
    }
    let creds = Credentials { user: args.username.clone(), pass };
    let timeouts = match &args.registry_timeout {
        Some(t) => registry::Timeouts::parse(t, "--registry-timeout")?,
        None => registry::Timeouts::from_env()?.unwrap_or_default(),
    };
    let file = login::login_file()?;
    login::verify_login(reg, &Options { insecure, creds: Some(creds.clone()), timeouts })?;
    login::store(&file, reg, &creds)?;
    eprintln!("credentials saved in {}", file.display());
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(args: &LogoutArgs) -> Result<i32> {
    let reg = args.registry.as_deref().unwrap_or("docker.io");
    login::check_registry(reg)?;
    let mut removed = vec![];
    for f in registry::auth::auth_files() {
        if login::remove(&f, reg)? {
            removed.push(f.display().to_string());
        }
    }
    if removed.is_empty() {
        eprintln!("not logged in to {reg}");
        return Ok(0);
    }
    println!("Removed login credentials for {reg} from {}", removed.join(", "));
    Ok(0)
}
