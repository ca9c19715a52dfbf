//! The providers file (`--providers-file`, TOML): which real providers this
//! gateway talks to and how. Without it only the built-in sandbox exists.
//! Each adapter owns its section's shape; this module only dispatches.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde::Deserialize;

use super::Provider;

/// The whole file. Unknown sections or keys are errors, so a typo cannot
/// silently leave a provider unconfigured.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersFile {}

/// What `serve` was configured with.
#[derive(Debug, Default)]
pub struct ProviderSettings {
    file: ProvidersFile,
}

impl ProviderSettings {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else { return Ok(ProviderSettings::default()) };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("providers file {}", path.display()))?;
        let file = toml::from_str(&text).with_context(|| format!("providers file {}", path.display()))?;
        Ok(ProviderSettings { file })
    }

    pub(super) fn build(&self) -> anyhow::Result<Vec<Arc<dyn Provider>>> {
        let ProvidersFile {} = &self.file;
        Ok(Vec::new())
    }
}
