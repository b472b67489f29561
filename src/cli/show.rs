//! What `images`, `inspect`, `history` and `tag` share: opening the store without creating it,
//! listing images past a damaged entry, docker's relative times, sizes in binary units.

use std::time::SystemTime;

use anyhow::Result;
use sandbox::image::{Image, Store};

use super::Cli;

/// The store at `--root` for reading, or `None` (said on stderr) when there is none yet: a read-only
/// command never creates one, so a mistyped `--root` leaves nothing behind.
pub fn open_read(cli: &Cli) -> Result<Option<Store>> {
    let s = Store::open_existing(&cli.root)?;
    if s.is_none() {
        eprintln!("sandbox: no image store at {} (nothing pulled yet)", cli.root.display());
    }
    Ok(s)
}

/// The store at `--root` for a command that needs `what` (`image 'x'`, `container 'y'`) in it;
/// when there is none, an error saying so, and nothing is created.
pub fn existing(cli: &Cli, what: &str) -> Result<Store> {
    Store::open_existing(&cli.root)?.ok_or_else(|| {
        sandbox::Error::image(format!("no {what}: no image store at {} (nothing pulled yet)", cli.root.display()))
            .into()
    })
}

/// The image `what` (a name or an id prefix), in a store that must exist.
pub fn find(cli: &Cli, what: &str) -> Result<(Store, Image)> {
    let store = existing(cli, &format!("image '{what}'"))?;
    let img = store.find(what)?;
    Ok((store, img))
}

/// Every image of the store; one that cannot be read is reported by name on stderr and skipped,
/// so one damaged entry does not hide the others ([`Store::images_checked`]).
pub fn images(store: &Store) -> Result<Vec<Image>> {
    let (images, damaged) = store.images_checked()?;
    for d in &damaged {
        eprintln!(
            "sandbox: image {} is damaged and not listed: {} (`sandbox rmi {}` or `sandbox image prune` removes it)",
            d.name, d.problem, d.name
        );
    }
    Ok(images)
}

/// Bytes in binary units, as `pull` prints them (`75.00 MiB`).
pub fn size(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// `os/arch[/variant]` of an image config document.
pub fn platform(config: &serde_json::Value) -> String {
    let s = |k: &str| config.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let v = s("variant");
    format!("{}/{}{}", s("os"), s("architecture"), if v.is_empty() { String::new() } else { format!("/{v}") })
}

/// An RFC 3339 time as docker prints it: `3 weeks ago`; the text as it is when it does not parse,
/// `N/A` when there is none.
pub fn ago(created: Option<&str>) -> String {
    let Some(c) = created.filter(|c| !c.is_empty()) else { return "N/A".into() };
    let Ok(t) = humantime::parse_rfc3339_weak(c.trim_end_matches('Z')) else { return c.to_string() };
    match SystemTime::now().duration_since(t) {
        Ok(d) => format!("{} ago", human_duration(d.as_secs_f64())),
        Err(_) => c.to_string(),
    }
}

/// docker's `units.HumanDuration`.
pub fn human_duration(secs: f64) -> String {
    let s = secs as u64;
    let minutes = s / 60;
    let hours = (secs / 3600.0 + 0.5) as u64;
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", s / 3600 / 24 / 365),
    }
}

/// Rows as docker's tables print them: columns left-aligned, three spaces apart.
pub fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// Writes `text` to stdout; a reader that went away (`| head`) ends the output quietly, as it
/// does for docker, instead of a panic.
pub fn print(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_dockers() {
        for (s, want) in [
            (0.5, "Less than a second"),
            (1.0, "1 second"),
            (59.0, "59 seconds"),
            (61.0, "About a minute"),
            (600.0, "10 minutes"),
            (3600.0, "About an hour"),
            (5.0 * 3600.0, "5 hours"),
            (3.0 * 86400.0, "3 days"),
            (21.0 * 86400.0, "3 weeks"),
            (90.0 * 86400.0, "3 months"),
            (800.0 * 86400.0, "2 years"),
        ] {
            assert_eq!(human_duration(s), want, "{s}");
        }
        assert_eq!(ago(None), "N/A");
        assert_eq!(ago(Some("yesterday")), "yesterday");
        assert!(ago(Some("2020-01-01T00:00:00.123456789Z")).ends_with("years ago"));
    }
}
