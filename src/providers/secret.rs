//! Provider credentials. The providers file never holds a secret itself,
//! only where to find it: `{ env = "NAME" }` or `{ file = "/run/secrets/x" }`
//! (Docker and Kubernetes secrets mount as files). The value is read once at
//! start and never printed: `Debug` shows only where it came from.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// Where a secret comes from, as written in the providers file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SecretSource {
    Env(String),
    File(std::path::PathBuf),
}

/// A credential's value.
#[derive(Clone)]
pub struct Secret {
    value: String,
    source: String,
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.value
    }

    fn load(source: &SecretSource) -> Result<Secret, String> {
        let (value, label) = match source {
            SecretSource::Env(name) => {
                let value =
                    std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))?;
                (value, format!("env {name}"))
            }
            SecretSource::File(path) => {
                let value = std::fs::read_to_string(path)
                    .map_err(|e| format!("secret file {}: {e}", path.display()))?;
                (value, format!("file {}", path.display()))
            }
        };
        // Files written by `echo` end in a newline that is not part of the key.
        let value = value.trim().to_owned();
        if value.is_empty() {
            return Err(format!("{label} is empty"));
        }
        Ok(Secret { value, source: label })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}, redacted)", self.source)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

/// Accepts only the `{ env = ... }` / `{ file = ... }` table. Anything else
/// is refused with a message that does not quote it: serde's own errors
/// repeat the offending value, which here would be a credential written
/// inline by mistake.
struct SecretVisitor;

impl<'de> serde::de::Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`{ env = \"NAME\" }` or `{ file = \"/path\" }`")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Secret, A::Error> {
        let source = SecretSource::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Secret::load(&source).map_err(serde::de::Error::custom)
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Secret, E> {
        Err(E::custom(
            "secrets are never written in the providers file: use `{ env = \"NAME\" }` or `{ file = \"/path\" }`",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        key: Secret,
    }

    #[test]
    fn reads_files_and_never_prints_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "s3cr3t-value\n").unwrap();
        let h: Holder =
            toml::from_str(&format!("key = {{ file = {:?} }}", path.display().to_string())).unwrap();
        assert_eq!(h.key.expose(), "s3cr3t-value");
        assert!(!format!("{:?}", h.key).contains("s3cr3t"));
    }

    #[test]
    fn literal_values_and_missing_sources_are_refused() {
        let err = toml::from_str::<Holder>("key = \"inline-secret\"").err().unwrap().message().to_owned();
        assert!(
            err.contains("never written in the providers file") && !err.contains("inline-secret"),
            "{err}"
        );
        let err = toml::from_str::<Holder>("key = { value = \"inline-secret\" }")
            .err()
            .unwrap()
            .message()
            .to_owned();
        assert!(!err.contains("inline-secret"), "{err}");
        let err = toml::from_str::<Holder>("key = { env = \"PURSER_TEST_SURELY_UNSET_VAR\" }").err().unwrap();
        assert!(err.to_string().contains("PURSER_TEST_SURELY_UNSET_VAR is not set"), "{err}");
    }
}
