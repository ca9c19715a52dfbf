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
pub struct ProvidersFile {
    pub circle: Option<super::circle::CircleConfig>,
    pub lithic: Option<super::lithic::LithicConfig>,
    pub turnkey: Option<super::turnkey::TurnkeyConfig>,
}

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

    /// The Lithic ASA HMAC secret, if a `[lithic]` section configures one.
    pub fn lithic_asa_secret(&self) -> Option<super::Secret> {
        self.file.lithic.as_ref().and_then(|c| c.asa_secret.clone())
    }

    pub(super) fn build(&self) -> anyhow::Result<Vec<Arc<dyn Provider>>> {
        let ProvidersFile { circle, lithic, turnkey } = &self.file;
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        if let Some(config) = circle {
            providers.push(Arc::new(super::circle::Circle::new(config)?));
        }
        if let Some(config) = lithic {
            providers.push(Arc::new(super::lithic::Lithic::new(config)?));
        }
        if let Some(config) = turnkey {
            providers.push(Arc::new(super::turnkey::Turnkey::new(config)?));
        }
        Ok(providers)
    }
}
