//! Manifests and indexes: what a document is (by media type, or by shape when a source gives none),
//! and which manifest of an index (OCI image index, Docker manifest list) fits a platform.

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex};

use crate::error::{Error, Result};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The index annotation skopeo and the OCI spec use for a tag (or a whole reference).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and docker's) annotation for the full reference.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The manifest media types sandbox reads, for a registry's Accept header.
pub const ACCEPT: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// Manifests and indexes are small; anything larger is refused before it is read whole.
pub const MAX_DOCUMENT: u64 = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Index,
    Manifest,
}

/// What a document is. An empty or generic media type (`application/json`, `text/plain`, some
/// archives' descriptors) falls back to the document's own `mediaType`, then to its shape.
pub fn kind(media_type: &str, body: &[u8]) -> Result<Kind> {
    match media_type {
        OCI_INDEX | DOCKER_LIST => return Ok(Kind::Index),
        OCI_MANIFEST | DOCKER_MANIFEST => return Ok(Kind::Manifest),
        "" | "application/json" | "text/plain" | "application/octet-stream" => {}
        other => return Err(unknown(other)),
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| Error::image(format!("manifest is not JSON: {e}")))?;
    if let Some(m) = v.get("mediaType").and_then(|m| m.as_str()) {
        return kind(m, &[]).map_err(|e| if m.is_empty() { e } else { unknown(m) });
    }
    if v.get("manifests").is_some() {
        Ok(Kind::Index)
    } else if v.get("layers").is_some() && v.get("config").is_some() {
        Ok(Kind::Manifest)
    } else {
        Err(unknown(media_type))
    }
}

fn unknown(m: &str) -> Error {
    Error::invalid(
        "manifest media type",
        m,
        "an OCI image index or manifest, or a Docker schema 2 manifest or manifest list \
         (Docker schema 1 is not supported)",
    )
}

/// An os/architecture[/variant] triple, as `--platform` and indexes write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// This machine: linux and Go's name for the CPU architecture.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "arm" => "arm",
            other => other,
        };
        Platform { os: "linux".into(), arch: arch.into(), variant: None }
    }

    /// `linux/amd64`, `linux/arm64/v8`.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => {
                Ok(Platform { os: os.to_string(), arch: arch.to_string(), variant: None })
            }
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => {
                Ok(Platform { os: os.to_string(), arch: arch.to_string(), variant: Some(v.to_string()) })
            }
            _ => Err(Error::invalid("--platform", s, "OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8")),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The platform an image config names; `None` when it names none (some hand-made images).
pub fn platform_of(config: &ImageConfiguration) -> Option<Platform> {
    let (os, arch) = (config.os().to_string(), config.architecture().to_string());
    if os.is_empty() || arch.is_empty() {
        return None;
    }
    Some(Platform { os, arch, variant: config.variant().clone().filter(|v| !v.is_empty()) })
}

/// Refuses the image `name` (config `config`) unless it is for `want`: same OS and architecture,
/// and the variant when `want` names one. `verb` is what `--platform` would make happen anyway
/// (`pull`, `run`). An image that names no platform passes.
pub fn check_platform(config: &ImageConfiguration, want: &Platform, name: &str, verb: &str) -> Result<()> {
    let Some(is) = platform_of(config) else { return Ok(()) };
    let fits = is.os == want.os
        && is.arch == want.arch
        && want.variant.as_ref().map_or(true, |v| is.variant.as_deref() == Some(v.as_str()));
    if fits {
        return Ok(());
    }
    let host = Platform::host();
    Err(Error::image(if *want == host {
        format!("image {name} is {is}; this host runs {host}; pass --platform {is} to {verb} it anyway")
    } else {
        format!("image {name} is {is}, not {want} as --platform asks; it has no image for {want}")
    }))
}

/// The manifest of `index` for `want`: same os and architecture, and the variant when one is
/// asked for. Entries without a platform (attestations, other artifacts) never match.
pub fn select<'a>(index: &'a ImageIndex, want: &Platform) -> Result<&'a Descriptor> {
    let fits = |d: &&Descriptor| {
        d.platform().as_ref().is_some_and(|p| {
            p.os().to_string() == want.os
                && p.architecture().to_string() == want.arch
                && want.variant.as_ref().map_or(true, |v| p.variant().as_deref() == Some(v.as_str()))
        })
    };
    index.manifests().iter().find(fits).ok_or_else(|| {
        let have: Vec<String> = index
            .manifests()
            .iter()
            .filter_map(|d| d.platform().as_ref())
            .map(|p| {
                let v = p.variant().as_ref().map(|v| format!("/{v}")).unwrap_or_default();
                format!("{}/{}{v}", p.os(), p.architecture())
            })
            .collect();
        Error::image(format!(
            "no manifest for platform {want} in the index (it has: {}); choose one with --platform",
            if have.is_empty() { "none with a platform".to_string() } else { have.join(", ") }
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> ImageIndex {
        let d = |digest: char, arch: &str, variant: Option<&str>| {
            let v = variant.map(|v| format!(r#","variant":"{v}""#)).unwrap_or_default();
            format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{}","size":100,
                "platform":{{"os":"linux","architecture":"{arch}"{v}}}}}"#,
                digest.to_string().repeat(64)
            )
        };
        let attestation = format!(
            r#"{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{}","size":5,
            "annotations":{{"vnd.docker.reference.type":"attestation-manifest"}}}}"#,
            "d".repeat(64)
        );
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[{},{},{},{attestation}]}}"#,
            d('a', "arm", Some("v7")),
            d('b', "arm64", Some("v8")),
            d('c', "amd64", None)
        );
        ImageIndex::from_reader(body.as_bytes()).unwrap()
    }

    #[test]
    fn select_picks_os_arch_and_variant() {
        let i = index();
        let pick = |p: &str| select(&i, &Platform::parse(p).unwrap()).map(|d| d.digest().to_string());
        assert!(pick("linux/amd64").unwrap().ends_with(&"c".repeat(64)));
        assert!(pick("linux/arm64").unwrap().ends_with(&"b".repeat(64)));
        assert!(pick("linux/arm/v7").unwrap().ends_with(&"a".repeat(64)));
        let e = pick("linux/s390x").unwrap_err().to_string();
        assert!(e.contains("linux/s390x") && e.contains("linux/arm64/v8") && e.contains("--platform"), "{e}");
        assert!(pick("linux/arm/v6").is_err(), "a variant asked for must match");
    }

    fn config(os: &str, arch: &str, variant: Option<&str>) -> ImageConfiguration {
        let v = variant.map(|v| format!(r#","variant":"{v}""#)).unwrap_or_default();
        let body = format!(r#"{{"os":"{os}","architecture":"{arch}"{v},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#);
        ImageConfiguration::from_reader(body.as_bytes()).unwrap()
    }

    #[test]
    fn an_image_for_another_platform_is_refused_naming_both() {
        let host = Platform::host();
        let other = if host.arch == "arm64" { "amd64" } else { "arm64" };
        let c = config("linux", other, None);
        let e = check_platform(&c, &host, "test/x", "pull").unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "image test/x is linux/{other}; this host runs {host}; pass --platform linux/{other} to pull it anyway"
            )
        );
        check_platform(&c, &Platform::parse(&format!("linux/{other}")).unwrap(), "test/x", "pull").unwrap();
        check_platform(&config("linux", &host.arch, None), &host, "x", "pull").unwrap();
        let e =
            check_platform(&config("linux", &host.arch, None), &Platform::parse("linux/s390x").unwrap(), "x", "pull")
                .unwrap_err()
                .to_string();
        assert!(e.contains(&format!("is {host}")) && e.contains("not linux/s390x as --platform asks"), "{e}");
        let windows = config("windows", &host.arch, None);
        assert!(check_platform(&windows, &host, "x", "run").unwrap_err().to_string().contains("windows/"));
        // A variant counts only when asked for.
        let v7 = config("linux", "arm", Some("v7"));
        check_platform(&v7, &Platform::parse("linux/arm").unwrap(), "x", "pull").unwrap();
        assert!(check_platform(&v7, &Platform::parse("linux/arm/v6").unwrap(), "x", "pull").is_err());
    }

    #[test]
    fn kinds_by_media_type_then_by_shape() {
        assert_eq!(kind(DOCKER_LIST, b"").unwrap(), Kind::Index);
        assert_eq!(kind(OCI_MANIFEST, b"").unwrap(), Kind::Manifest);
        assert_eq!(kind("", br#"{"schemaVersion":2,"manifests":[]}"#).unwrap(), Kind::Index);
        assert_eq!(kind("application/json", br#"{"config":{},"layers":[]}"#).unwrap(), Kind::Manifest);
        let e = kind("application/vnd.docker.distribution.manifest.v1+prettyjws", b"").unwrap_err().to_string();
        assert!(e.contains("schema 1") && e.contains("prettyjws"), "{e}");
        let e = kind("", br#"{"mediaType":"application/x-foo"}"#).unwrap_err().to_string();
        assert!(e.contains("'application/x-foo'"), "{e}");
        assert_eq!(Platform::host().os, "linux");
        for bad in ["linux", "linux/", "a/b/c/d", "linux/amd 64"] {
            assert!(Platform::parse(bad).unwrap_err().to_string().contains("OS/ARCH"), "{bad}");
        }
    }
}
