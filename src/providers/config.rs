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

/// `:line:column` (1-based) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!(":{line}:{column}")
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
        let file = toml::from_str(&text).map_err(|e| {
            // toml's own rendering quotes the offending line, which could be
            // a credential written inline by mistake: name the place only.
            let at = e.span().map(|span| line_col(&text, span.start)).unwrap_or_default();
            anyhow::anyhow!("providers file {}{at}: {}", path.display(), e.message())
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_errors_name_the_place_but_never_quote_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("providers.toml");
        std::fs::write(&path, "[circle]\napi_key = \"TEST_API_KEY:abc:def-inline\"\n").unwrap();
        let err = ProviderSettings::load(Some(&path)).err().unwrap().to_string();
        assert!(err.contains("providers.toml:2:11"), "{err}");
        assert!(!err.contains("inline"), "{err}");
    }
}
