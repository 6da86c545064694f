//! Env specs: `envs/<id>.toml` files naming the data, observation mode, step limit and
//! splits of an environment. Specs are data; command-line flags override them.

use std::path::Path;

use serde::Deserialize;

use super::observe::ObsMode;
use super::{Error, Result};

/// One environment spec.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSpec {
    /// Versioned id, e.g. `webshop-v0`.
    pub id: String,
    /// Which site (`webshop`).
    pub site: String,
    /// Native catalog directory, relative to the spec's parent directory's parent (the
    /// repository root for `envs/`).
    #[serde(default)]
    pub data: Option<String>,
    /// WebShop original data directory (instead of `data`).
    #[serde(default)]
    pub webshop_data: Option<String>,
    /// Observation mode.
    pub observation: ObsMode,
    /// Steps before truncation.
    pub max_steps: usize,
    /// Show the Attributes tab.
    #[serde(default)]
    pub show_attrs: bool,
    /// Goal index ranges per split (`-1` = to the end).
    pub splits: Splits,
}

/// Split ranges of a spec.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Splits {
    /// Test range.
    pub test: [i64; 2],
    /// Dev range.
    pub dev: [i64; 2],
    /// Train range.
    pub train: [i64; 2],
}

impl Splits {
    /// The `[start, end]` range of `split` as written.
    pub fn get(&self, split: crate::Split) -> [i64; 2] {
        match split {
            crate::Split::Test => self.test,
            crate::Split::Dev => self.dev,
            crate::Split::Train => self.train,
        }
    }
}

impl EnvSpec {
    /// Parses a spec file, naming the file and field on error.
    pub fn load(path: &Path) -> Result<EnvSpec> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::SpecIo {
            path: path.to_path_buf(),
            source,
        })?;
        let spec = Self::parse(&text).map_err(|message| Error::Spec {
            path: path.to_path_buf(),
            message,
        })?;
        spec.check_site().map_err(|message| Error::Spec {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(spec)
    }

    /// The site adapter the spec names.
    pub fn site(&self) -> Result<std::sync::Arc<dyn crate::Site>> {
        crate::sites::by_name(&self.site)
    }

    /// Checks that `site` is registered and that `splits` states the site's split layout
    /// (a spec documents the layout; the site defines it).
    pub fn check_site(&self) -> std::result::Result<(), String> {
        let site = self.site().map_err(|e| format!("site: {e}"))?;
        for split in crate::Split::ALL {
            let [start, end] = self.splits.get(split);
            let r = site.split_range(split, usize::MAX);
            let end_ok = if end < 0 {
                r.end == usize::MAX
            } else {
                usize::try_from(end) == Ok(r.end)
            };
            if usize::try_from(start) != Ok(r.start) || !end_ok {
                let end = if r.end == usize::MAX {
                    "-1".to_string()
                } else {
                    r.end.to_string()
                };
                return Err(format!(
                    "splits.{}: the {} site's layout is [{}, {end}]",
                    split.name(),
                    site.name(),
                    r.start
                ));
            }
        }
        Ok(())
    }

    /// Parses spec text.
    pub fn parse(text: &str) -> std::result::Result<EnvSpec, String> {
        let spec: EnvSpec = toml::from_str(text).map_err(|e| e.to_string())?;
        if spec.max_steps == 0 {
            return Err("max_steps must be at least 1".into());
        }
        if spec.data.is_some() == spec.webshop_data.is_some() {
            return Err("exactly one of `data` and `webshop_data` must be set".into());
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_spec_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../envs/webshop-v0.toml");
        let s = EnvSpec::load(&p).unwrap();
        assert_eq!(s.id, "webshop-v0");
        assert_eq!(s.max_steps, 15);
        assert_eq!(s.observation, ObsMode::Text);
        assert_eq!(s.splits.test, [0, 500]);
    }

    #[test]
    fn bad_specs_name_the_problem() {
        let e = EnvSpec::parse("id = 1").unwrap_err();
        assert!(e.contains("id"), "{e}");
        let ok = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../envs/webshop-v0.toml"),
        )
        .unwrap();
        let e = EnvSpec::parse(&ok.replace("max_steps = 15", "max_steps = 0")).unwrap_err();
        assert!(e.contains("max_steps"));
        let e = EnvSpec::parse(&ok.replace("observation = \"text\"", "observation = \"pdf\""))
            .unwrap_err();
        assert!(e.contains("observation") || e.contains("pdf"), "{e}");
    }

    #[test]
    fn specs_must_name_a_registered_site_and_its_splits() {
        let ok = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../envs/webshop-v0.toml"),
        )
        .unwrap();
        let spec = EnvSpec::parse(&ok).unwrap();
        spec.check_site().unwrap();
        let other = EnvSpec::parse(&ok.replace("site = \"webshop\"", "site = \"nope\"")).unwrap();
        let e = other.check_site().unwrap_err();
        assert!(e.contains("site") && e.contains("nope"), "{e}");
        let moved = EnvSpec::parse(&ok.replace("dev = [500, 1500]", "dev = [500, 1400]")).unwrap();
        let e = moved.check_site().unwrap_err();
        assert!(e.contains("splits.dev") && e.contains("[500, 1500]"), "{e}");
    }
}
