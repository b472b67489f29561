//! Importing an OCI image layout's index: which of its images to take (all, or the one `--tag`
//! names) and what to call each. An index may list several images, each named by an annotation:
//! containerd's full name (`io.containerd.image.name`, docker save), a whole reference in
//! `org.opencontainers.image.ref.name` (podman, `skopeo copy oci:DIR:alpine:3.20`), or only a tag
//! there (`umoci new --image DIR:TAG`, `skopeo copy oci:DIR:3.20`), which names no repository.

use oci_spec::image::{Descriptor, ImageIndex};

use super::archive::{DirSource, Imported};
use super::install::{self, Progress};
use super::manifest::{self, Platform};
use super::store::Store;
use super::Reference;
use crate::error::{Error, Result};

/// Imports the images of the layout in `src`: every entry of index.json, or the one `tag`
/// names; named by their annotations, or by `name` (one image: the whole name; several: a
/// repository, each image keeping its own tag).
pub fn import(
    store: &Store,
    src: &DirSource,
    name: Option<&str>,
    tag: Option<&str>,
    progress: &dyn Progress,
) -> Result<Imported> {
    let body = src.read_small(std::path::Path::new("index.json"))?;
    let index = ImageIndex::from_reader(&body[..]).map_err(|e| Error::image(format!("index.json: {e}")))?;
    let chosen = choose(index.manifests(), tag)?;
    let names = chosen.iter().map(|d| name_of(d, name, chosen.len())).collect::<Result<Vec<_>>>()?;
    let mut out = vec![];
    for (d, full) in chosen.iter().zip(names) {
        let top = install::fetch_document(src, d, "manifest")?;
        out.push(install::install(store, src, d.media_type().as_ref(), top, &Platform::host(), &full, progress)?);
    }
    Ok(out)
}

/// The entries to import: all, or those `tag` names (by tag, or by whole name).
fn choose<'a>(entries: &'a [Descriptor], tag: Option<&str>) -> Result<Vec<&'a Descriptor>> {
    if entries.is_empty() {
        return Err(Error::image("index.json lists no image".to_string()));
    }
    let Some(tag) = tag else { return Ok(entries.iter().collect()) };
    let wanted = Reference::parse(tag).ok().map(|r| r.to_string());
    let hits: Vec<&Descriptor> = entries
        .iter()
        .filter(|d| {
            let (full, own) = annotations(d);
            own.as_deref() == Some(tag)
                || full.as_deref() == Some(tag)
                || tag_of(d).as_deref() == Some(tag)
                || (wanted.is_some() && full.and_then(|f| Reference::parse(&f).ok()).map(|r| r.to_string()) == wanted)
        })
        .collect();
    if hits.is_empty() {
        return Err(Error::invalid("--tag", tag, &format!("a tag the layout holds: {}", labels(entries).join(", "))));
    }
    Ok(hits)
}

/// An entry's whole name (containerd's, or a ref.name holding a repository) and its ref.name.
fn annotations(d: &Descriptor) -> (Option<String>, Option<String>) {
    let a = d.annotations().clone().unwrap_or_default();
    let own = a.get(manifest::REF_NAME).cloned();
    let full = a.get(manifest::CONTAINERD_NAME).cloned().or_else(|| own.clone().filter(|n| n.contains([':', '/'])));
    (full, own)
}

/// The tag of an entry: a bare ref.name, or the tag of its whole name.
fn tag_of(d: &Descriptor) -> Option<String> {
    match annotations(d) {
        (Some(full), _) => Reference::parse(&full).ok().and_then(|r| r.tag),
        (None, own) => own,
    }
}

/// How the entries are listed in messages: by their names, else by digest.
fn labels(entries: &[Descriptor]) -> Vec<String> {
    entries
        .iter()
        .map(|d| match annotations(d) {
            (_, Some(own)) => own,
            (Some(full), None) => full,
            (None, None) => format!("(unnamed {})", d.digest()),
        })
        .collect()
}

/// Whether a name the user gave carries a tag or digest (`x:1`, `x@sha256:…`), not only a
/// repository (`localhost:5000/x` has none: its `:` is a port's).
fn has_tag(name: &str) -> bool {
    name.contains('@') || name.rsplit('/').next().is_some_and(|last| last.contains(':'))
}

/// The name an entry is imported as. `given`: the user's --name; `count`: images imported.
fn name_of(d: &Descriptor, given: Option<&str>, count: usize) -> Result<String> {
    match given {
        Some(n) if count == 1 => Ok(Reference::parse(n)?.to_string()),
        Some(n) if has_tag(n) => Err(Error::invalid(
            "--name",
            n,
            &format!(
                "a repository without a tag (each of the layout's {count} images keeps its own tag), \
                 or choose one image with --tag"
            ),
        )),
        Some(repo) => match tag_of(d) {
            Some(t) => Ok(Reference::parse(&format!("{repo}:{t}"))?.to_string()),
            None => Err(Error::image(format!(
                "the layout's image {} has no tag to import under {repo}: choose the others with --tag",
                d.digest()
            ))),
        },
        None => match annotations(d) {
            (Some(full), _) => Ok(Reference::parse(&full)?.to_string()),
            (None, Some(tag)) => Err(Error::image(format!(
                "the layout names image {} only by the tag '{tag}', not a repository: give --name {} \
                 (each image keeps its tag)",
                d.digest(),
                if count == 1 { format!("REPOSITORY:{tag}") } else { "REPOSITORY".to_string() }
            ))),
            (None, None) => Err(Error::image(format!("the layout's image {} has no name: give --name", d.digest()))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(digest: char, annotations: &str) -> Descriptor {
        let body = format!(
            r#"{{"mediaType":"{}","digest":"sha256:{}","size":1,"annotations":{{{annotations}}}}}"#,
            manifest::OCI_MANIFEST,
            digest.to_string().repeat(64)
        );
        serde_json::from_str(&body).unwrap()
    }

    #[test]
    fn layout_entries_are_named_by_containerd_name_or_a_whole_ref_name() {
        let n = |a: &str| name_of(&entry('a', a), None, 1);
        assert_eq!(n(r#""io.containerd.image.name":"alpine:3.20""#).unwrap(), "docker.io/library/alpine:3.20");
        assert_eq!(n(r#""org.opencontainers.image.ref.name":"localhost/x:1""#).unwrap(), "localhost/x:1");
        let e = n(r#""org.opencontainers.image.ref.name":"3.20""#).unwrap_err().to_string();
        assert!(e.contains("'3.20'") && e.contains("--name REPOSITORY:3.20"), "{e}");
        assert!(n("").unwrap_err().to_string().contains("--name"));
        assert!(n(r#""io.containerd.image.name":"Bad Name""#).is_err());
    }

    /// umoci's index after `umoci new --image L:1.0` and `umoci tag --image L:1.0 latest`.
    fn umoci_two_tags() -> Vec<Descriptor> {
        vec![
            entry('a', r#""org.opencontainers.image.ref.name":"1.0""#),
            entry('a', r#""org.opencontainers.image.ref.name":"latest""#),
        ]
    }

    #[test]
    fn several_tags_import_under_one_repository_or_one_by_tag() {
        let e = umoci_two_tags();
        let all = choose(&e, None).unwrap();
        let names: Vec<String> = all.iter().map(|d| name_of(d, Some("localhost/x"), all.len()).unwrap()).collect();
        assert_eq!(names, ["localhost/x:1.0", "localhost/x:latest"]);
        let one = choose(&e, Some("latest")).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(name_of(one[0], Some("localhost/y:2"), 1).unwrap(), "localhost/y:2");
        let err = choose(&e, Some("2.0")).unwrap_err().to_string();
        assert!(err.contains("'2.0'") && err.contains("1.0, latest"), "{err}");
        let err = name_of(all[0], Some("localhost/x:1"), 2).unwrap_err().to_string();
        assert!(err.contains("--tag") && err.contains("without a tag"), "{err}");
        assert!(!has_tag("localhost:5000/x") && has_tag("localhost:5000/x:1") && has_tag("x@sha256:ab"));
    }

    #[test]
    fn whole_names_are_chosen_by_tag_or_by_name() {
        let e = vec![
            entry(
                'a',
                r#""io.containerd.image.name":"docker.io/library/alpine:3.20","org.opencontainers.image.ref.name":"3.20""#,
            ),
            entry('b', r#""org.opencontainers.image.ref.name":"localhost/busybox:1""#),
        ];
        let pick = |t: &str| choose(&e, Some(t)).map(|v| v[0].digest().to_string());
        assert!(pick("3.20").unwrap().ends_with('a'));
        assert!(pick("alpine:3.20").unwrap().ends_with('a'));
        assert!(pick("1").unwrap().ends_with('b'));
        assert!(pick("localhost/busybox:1").unwrap().ends_with('b'));
        let all = choose(&e, None).unwrap();
        let names: Vec<String> = all.iter().map(|d| name_of(d, None, 2).unwrap()).collect();
        assert_eq!(names, ["docker.io/library/alpine:3.20", "localhost/busybox:1"]);
    }
}
