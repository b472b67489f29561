//! `sandbox history IMAGE`: docker's table of an image's history, newest first: IMAGE (the id on
//! the newest entry, `<missing>` on the others, as docker shows a pulled image), CREATED, CREATED
//! BY, SIZE (of the layer the entry made, unpacked; 0 for an entry without one) and COMMENT.

use anyhow::Result;
use clap::{ArgAction, Args};
use sandbox::image::size;
use serde_json::Value;

use super::{show, Cli};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The image: a name or an id prefix
    pub image: String,
    /// Do not shorten the id and CREATED BY
    #[arg(long)]
    pub no_trunc: bool,
    /// Only the ids
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Times as "3 weeks ago" and sizes in KiB/MiB (false: RFC 3339 and bytes)
    #[arg(long, short = 'H', action = ArgAction::Set, default_value_t = true, value_name = "BOOL")]
    pub human: bool,
}

/// Width of CREATED BY unless --no-trunc, as docker's.
const CREATED_BY_WIDTH: usize = 45;

pub fn history(cli: &Cli, args: &HistoryArgs) -> Result<i32> {
    let (store, img) = show::find(cli, &args.image)?;
    let config: Value = serde_json::from_slice(&store.read_blob(&img.config_digest())?)?;
    let mut entries: Vec<Value> = config.get("history").and_then(Value::as_array).cloned().unwrap_or_default();
    let empty = |e: &Value| e.get("empty_layer").and_then(Value::as_bool) == Some(true);
    // One non-empty entry per layer: a config that recorded fewer gets blank ones in front.
    let diff_ids = img.diff_ids();
    let recorded = entries.iter().filter(|e| !empty(e)).count();
    if recorded < diff_ids.len() {
        entries.splice(0..0, std::iter::repeat(Value::Null).take(diff_ids.len() - recorded));
    }
    let mut layers = diff_ids.iter();
    let mut rows = vec![];
    for e in &entries {
        let bytes = if empty(e) { 0 } else { layers.next().map_or(0, |d| size::layer(&store, d)) };
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        rows.push((s("created"), s("created_by"), bytes, s("comment")));
    }
    let id = if args.no_trunc { img.config_digest() } else { img.short_id() };
    let mut table = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"].map(String::from)];
    let mut ids = String::new();
    for (i, (created, by, bytes, comment)) in rows.into_iter().rev().enumerate() {
        let image = if i == 0 { id.clone() } else { "<missing>".to_string() };
        if args.quiet {
            ids += &format!("{image}\n");
            continue;
        }
        let by = by.replace('\t', " ");
        let by = if args.no_trunc { by } else { ellipsis(&by, CREATED_BY_WIDTH) };
        let (created, size) =
            if args.human { (show::ago(Some(&created)), show::size(bytes)) } else { (created, bytes.to_string()) };
        table.push([image, created, by, size, comment]);
    }
    show::print(&if args.quiet { ids } else { show::table(&table) })?;
    Ok(0)
}

/// At most `max` characters, the last an ellipsis when cut (docker's `formatter.Ellipsis`).
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ellipsis_cuts_to_the_width() {
        assert_eq!(super::ellipsis("abc", 3), "abc");
        assert_eq!(super::ellipsis("abcdef", 4), "abc…");
    }
}
