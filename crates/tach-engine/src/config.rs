//! `winchester.yaml`: StackTach-compatible settings and the search path for the other files.
//!
//! The file is read loosely: keys tach does not use are accepted with a warning, unknown keys
//! warn with the nearest known key, and sections for other tach components (`ingest:`, `api:`)
//! are kept as raw values for their crates to read. Warnings are logged and also returned in
//! [`WinchesterConfig::warnings`]. Loading the trigger and pipeline files it names is
//! [`WinchesterConfig::load_triggers`] / [`WinchesterConfig::load_pipelines`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tach_timex::{TimeExpression, TimexValue};

use crate::error::{Error, Result};
use crate::keys;
use crate::pipeline::PipelineConfig;
use crate::trigger::{TriggerFile, load_triggers};

/// Keys of `winchester.yaml` that tach reads.
const KNOWN_KEYS: &[&str] = &[
    "config_path",
    "database",
    "distiller_config",
    "trigger_definitions",
    "pipeline_config",
    "pipeline_handlers",
    "catch_all_notifications",
    "statistics_period",
    "pipeline_worker_batch_size",
    "pipeline_worker_delay",
    "purge_completed_streams",
    "trim_events",
    "trim_events_age",
    "trim_events_batch_size",
];

/// StackTach keys tach accepts but does not use, with the reason given in the warning.
const UNUSED_KEYS: &[(&str, &str)] = &[
    (
        "logging_config",
        "tach logs with tracing; set the filter with TACH_LOG or RUST_LOG",
    ),
    (
        "log_level",
        "tach logs with tracing; set the filter with TACH_LOG or RUST_LOG",
    ),
    (
        "distiller_trait_plugins",
        "tach's trait plugins are Rust code registered with the distiller",
    ),
    (
        "time_sync_endpoint",
        "tach follows event time itself, without a time sync service",
    ),
];

/// Sections for other tach components, kept as raw values in [`WinchesterConfig::sections`].
pub const SECTIONS: &[&str] = &["ingest", "api", "pipeline", "archive"];

/// Keys of the `database:` section that tach reads.
const DATABASE_KEYS: &[&str] = &["url", "indexed_traits"];

/// StackTach handler classes and the tach built-in handler each maps to.
pub const STACKTACH_HANDLERS: &[(&str, &str)] = &[
    ("winchester.pipeline_handler:LoggingHandler", "logger"),
    ("winchester.pipeline_handler:UsageHandler", "usage"),
    ("winchester.pipeline_handler:NotabeneHandler", "notabene"),
];

/// The default of `trim_events_age`, as in winchester.
pub const DEFAULT_TRIM_EVENTS_AGE: &str = "$timestamp - 14d";

/// The database backends tach's store supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseBackend {
    /// SQLite (`sqlite://tach.db`).
    Sqlite,
    /// PostgreSQL (`postgres://` or SQLAlchemy's `postgresql://`, `postgresql+psycopg2://`).
    Postgres,
    /// MySQL or MariaDB (`mysql://`, `mysql+pymysql://`, `mariadb://`).
    Mysql,
}

/// The `database:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// The URL exactly as written (SQLAlchemy forms such as `mysql+pymysql://` included).
    pub url: String,
    /// The backend the URL's scheme names.
    pub backend: DatabaseBackend,
    /// `indexed_traits`: the trait names searches by trait find through an index (`*`: all);
    /// `None` keeps the database's set (`tach db migrate` applies it).
    pub indexed_traits: Option<Vec<String>>,
}

impl DatabaseConfig {
    /// Reads a database URL, accepting sqlx and SQLAlchemy schemes (`+driver` suffixes).
    ///
    /// # Errors
    /// The reason, when the URL has no `scheme://` or names an unsupported backend.
    pub fn from_url(url: &str) -> std::result::Result<Self, String> {
        let Some((scheme, _)) = url.split_once("://") else {
            return Err(format!(
                "`{url}` is not a database URL (expected e.g. sqlite://tach.db, \
                 postgres://user:pass@host/db, mysql://user:pass@host/db)"
            ));
        };
        let base = scheme
            .split('+')
            .next()
            .unwrap_or(scheme)
            .to_ascii_lowercase();
        let backend = match base.as_str() {
            "sqlite" => DatabaseBackend::Sqlite,
            "postgres" | "postgresql" => DatabaseBackend::Postgres,
            "mysql" | "mariadb" => DatabaseBackend::Mysql,
            _ => {
                return Err(format!(
                    "unsupported database `{scheme}` in `{url}` (tach supports sqlite, \
                     postgres/postgresql and mysql/mariadb)"
                ));
            }
        };
        Ok(Self {
            url: url.to_string(),
            backend,
            indexed_traits: None,
        })
    }

    /// The URL in the form sqlx reads: the SQLAlchemy `+driver` suffix dropped, `postgresql`
    /// written `postgres` and `mariadb` written `mysql`; the rest is kept as written (SQLite
    /// paths are read as sqlx reads them: `sqlite://tach.db` is relative to the working dir).
    pub fn sqlx_url(&self) -> String {
        let rest = self.url.split_once("://").map_or("", |(_, rest)| rest);
        let scheme = match self.backend {
            DatabaseBackend::Sqlite => "sqlite",
            DatabaseBackend::Postgres => "postgres",
            DatabaseBackend::Mysql => "mysql",
        };
        format!("{scheme}://{rest}")
    }
}

/// `winchester.yaml`, as StackTach wrote it, plus tach's own sections.
#[derive(Debug, Clone)]
pub struct WinchesterConfig {
    /// The file that was loaded.
    pub path: PathBuf,
    /// Directories searched for the other files, in order: `config_path`'s entries (relative
    /// ones resolved against this file's directory), then this file's directory.
    pub search_path: Vec<PathBuf>,
    /// The `database:` section; `None` when absent (commands that need it say so).
    pub database: Option<DatabaseConfig>,
    /// `distiller_config`: the event definitions file name.
    pub distiller_config: Option<String>,
    /// `trigger_definitions`: the triggers file name.
    pub trigger_definitions: Option<String>,
    /// `pipeline_config`: the pipelines file name.
    pub pipeline_config: Option<String>,
    /// `pipeline_handlers`: name used in pipelines.yaml → tach handler name (StackTach class
    /// paths already mapped, e.g. `winchester.pipeline_handler:UsageHandler` → `usage`).
    pub pipeline_handlers: BTreeMap<String, String>,
    /// `catch_all_notifications`: keep notifications no definition matches (default false).
    pub catch_all_notifications: bool,
    /// `statistics_period`: how often statistics and trigger debug counters are logged
    /// (default 10 s).
    pub statistics_period: Duration,
    /// `pipeline_worker_batch_size`: streams a pipeline worker takes at a time (default 1000).
    pub pipeline_worker_batch_size: usize,
    /// `pipeline_worker_delay`: how long an idle pipeline worker sleeps (default 10 s).
    pub pipeline_worker_delay: Duration,
    /// `purge_completed_streams`: delete streams whose pipeline succeeded (default true).
    pub purge_completed_streams: bool,
    /// `trim_events`: delete old events (default false).
    pub trim_events: bool,
    /// `trim_events_age`: time expression of the cutoff (default `$timestamp - 14d`).
    pub trim_events_age: String,
    /// `trim_events_batch_size`: events deleted at a time (default 100).
    pub trim_events_batch_size: usize,
    /// Raw sections for other tach components (see [`SECTIONS`]), by name.
    pub sections: BTreeMap<String, Value>,
    /// What was odd but accepted (unused or unknown keys, missing directories).
    pub warnings: Vec<String>,
}

impl WinchesterConfig {
    /// Loads `winchester.yaml`; warnings are logged and kept in [`Self::warnings`].
    ///
    /// # Errors
    /// When the file cannot be read, is not YAML, or a setting is invalid (wrong type, unknown
    /// StackTach handler class, unsupported database URL, unparsable `trim_events_age`).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let value = keys::load_yaml(path)?;
        let config = Self::from_value(&value, path)?;
        for warning in &config.warnings {
            tracing::warn!(file = %path.display(), %warning, "Configuration warning.");
        }
        Ok(config)
    }

    /// Reads settings from a parsed file; `path` locates relative `config_path` entries.
    ///
    /// # Errors
    /// As [`Self::load`], except reading and parsing.
    pub fn from_value(value: &Value, path: &Path) -> Result<Self> {
        let file = path.display().to_string();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let empty = serde_json::Map::new();
        let map = match value {
            Value::Object(map) => map,
            Value::Null => &empty,
            other => {
                return Err(invalid(
                    &file,
                    "the file",
                    format!(
                        "expected a mapping of settings, found {}",
                        keys::kind(other)
                    ),
                ));
            }
        };
        let mut config = Self::defaults(path.to_path_buf());
        let mut config_path = Vec::new();
        for (key, v) in map {
            match key.as_str() {
                "config_path" => config_path = string_list(&file, key, v)?,
                "database" => config.database = database(&file, v, &mut config.warnings)?,
                "distiller_config" => config.distiller_config = optional_string(&file, key, v)?,
                "trigger_definitions" => {
                    config.trigger_definitions = optional_string(&file, key, v)?;
                }
                "pipeline_config" => config.pipeline_config = optional_string(&file, key, v)?,
                "pipeline_handlers" => config.pipeline_handlers = pipeline_handlers(&file, v)?,
                "catch_all_notifications" => config.catch_all_notifications = flag(&file, key, v)?,
                "statistics_period" => config.statistics_period = duration(&file, key, v)?,
                "pipeline_worker_batch_size" => {
                    config.pipeline_worker_batch_size = count(&file, key, v)?;
                }
                "pipeline_worker_delay" => config.pipeline_worker_delay = duration(&file, key, v)?,
                "purge_completed_streams" => config.purge_completed_streams = flag(&file, key, v)?,
                "trim_events" => config.trim_events = flag(&file, key, v)?,
                "trim_events_age" => {
                    let text = required_string(&file, key, v)?;
                    TimeExpression::parse(&text).map_err(|e| {
                        invalid(&file, "`trim_events_age`", format!("`{text}`: {e}"))
                    })?;
                    config.trim_events_age = text;
                }
                "trim_events_batch_size" => config.trim_events_batch_size = count(&file, key, v)?,
                k if SECTIONS.contains(&k) => {
                    config.sections.insert(k.to_string(), v.clone());
                }
                k => {
                    if let Some((_, why)) = UNUSED_KEYS.iter().find(|(name, _)| *name == k) {
                        config.warnings.push(format!(
                            "{file}: `{k}` is not used by tach ({why}); ignored"
                        ));
                    } else {
                        let mut known: Vec<&str> = KNOWN_KEYS.to_vec();
                        known.extend(UNUSED_KEYS.iter().map(|(name, _)| *name));
                        known.extend(SECTIONS);
                        config.warnings.push(keys::unknown_key(&file, k, &known));
                    }
                }
            }
        }
        config.search_path = search_path(&dir, &config_path, &file, &mut config.warnings);
        Ok(config)
    }

    /// A configuration with winchester's defaults, as if `path` were an empty file.
    fn defaults(path: PathBuf) -> Self {
        Self {
            path,
            search_path: Vec::new(),
            database: None,
            distiller_config: None,
            trigger_definitions: None,
            pipeline_config: None,
            pipeline_handlers: BTreeMap::new(),
            catch_all_notifications: false,
            statistics_period: Duration::from_secs(10),
            pipeline_worker_batch_size: 1000,
            pipeline_worker_delay: Duration::from_secs(10),
            purge_completed_streams: true,
            trim_events: false,
            trim_events_age: DEFAULT_TRIM_EVENTS_AGE.to_string(),
            trim_events_batch_size: 100,
            sections: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    /// Finds a file named in this configuration: an absolute name as is, otherwise the first
    /// directory of [`Self::search_path`] that has it.
    ///
    /// # Errors
    /// [`Error::NotFound`] naming the directories searched.
    pub fn resolve_file(&self, name: &str) -> Result<PathBuf> {
        let candidate = Path::new(name);
        if candidate.is_absolute() {
            if candidate.is_file() {
                return Ok(candidate.to_path_buf());
            }
            return Err(Error::NotFound {
                name: name.to_string(),
                searched: candidate.display().to_string(),
            });
        }
        for dir in &self.search_path {
            let full = dir.join(candidate);
            if full.is_file() {
                return Ok(full);
            }
        }
        Err(Error::NotFound {
            name: name.to_string(),
            searched: self
                .search_path
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// The file named by a setting, resolved; `key` names the setting in the error.
    fn named_file(&self, key: &str, name: Option<&String>) -> Result<PathBuf> {
        match name {
            Some(name) => self.resolve_file(name),
            None => Err(invalid(
                &self.path.display().to_string(),
                &format!("`{key}`"),
                "not set".to_string(),
            )),
        }
    }

    /// The event definitions file (`distiller_config`), resolved.
    ///
    /// # Errors
    /// When the setting is absent or the file is not found.
    pub fn distiller_config_path(&self) -> Result<PathBuf> {
        self.named_file("distiller_config", self.distiller_config.as_ref())
    }

    /// Loads the triggers file (`trigger_definitions`); its warnings are logged and returned.
    ///
    /// # Errors
    /// When the setting is absent, the file is not found, or a definition is invalid.
    pub fn load_triggers(&self) -> Result<TriggerFile> {
        let path = self.named_file("trigger_definitions", self.trigger_definitions.as_ref())?;
        load_triggers(&path)
    }

    /// Loads the pipelines file (`pipeline_config`), checking every handler against
    /// `pipeline_handlers`; its warnings are logged and returned.
    ///
    /// # Errors
    /// When the setting is absent, the file is not found, or a pipeline is invalid.
    pub fn load_pipelines(&self) -> Result<PipelineConfig> {
        let path = self.named_file("pipeline_config", self.pipeline_config.as_ref())?;
        PipelineConfig::load(&path, &self.pipeline_handlers)
    }

    /// The cutoff of `trim_events_age` at `now` (`$timestamp` is `now`; a range gives its
    /// beginning): events older than it may be trimmed.
    ///
    /// # Errors
    /// When the expression names a variable other than `$timestamp`.
    pub fn trim_events_cutoff(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        let evaluate_error = |reason: String| Error::Evaluate {
            trigger: "(winchester.yaml)".to_string(),
            what: "trim_events_age",
            expression: self.trim_events_age.clone(),
            reason,
        };
        let expression = TimeExpression::parse(&self.trim_events_age)
            .map_err(|e| evaluate_error(e.to_string()))?;
        let vars = std::collections::HashMap::<String, DateTime<Utc>>::new();
        match expression.evaluate_at(&vars, now) {
            Ok(TimexValue::Timestamp(t)) => Ok(t),
            Ok(TimexValue::Range(r)) => Ok(r.begin),
            Err(e) => Err(evaluate_error(e.to_string())),
        }
    }
}

/// An [`Error::Invalid`] for this file.
fn invalid(file: &str, what: &str, reason: String) -> Error {
    Error::Invalid {
        file: file.to_string(),
        what: what.to_string(),
        reason,
    }
}

/// A string or a list of strings (`config_path`).
fn string_list(file: &str, key: &str, value: &Value) -> Result<Vec<String>> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(invalid(
                    file,
                    &format!("`{key}`"),
                    format!("expected directory names, found {}", keys::kind(other)),
                )),
            })
            .collect(),
        other => Err(invalid(
            file,
            &format!("`{key}`"),
            format!(
                "expected a directory or a list of them, found {}",
                keys::kind(other)
            ),
        )),
    }
}

/// A required string setting.
fn required_string(file: &str, key: &str, value: &Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(invalid(
            file,
            &format!("`{key}`"),
            format!("expected a string, found {}", keys::kind(other)),
        )),
    }
}

/// A string setting that may be left empty (`null`).
fn optional_string(file: &str, key: &str, value: &Value) -> Result<Option<String>> {
    match value {
        Value::Null => Ok(None),
        _ => required_string(file, key, value).map(Some),
    }
}

/// A boolean setting.
fn flag(file: &str, key: &str, value: &Value) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => Err(invalid(
            file,
            &format!("`{key}`"),
            format!("expected true or false, found {}", keys::kind(other)),
        )),
    }
}

/// A positive count setting.
fn count(file: &str, key: &str, value: &Value) -> Result<usize> {
    match value.as_u64().and_then(|n| usize::try_from(n).ok()) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(invalid(
            file,
            &format!("`{key}`"),
            format!("expected a positive whole number, found `{value}`"),
        )),
    }
}

/// A duration setting in seconds (or with a unit).
fn duration(file: &str, key: &str, value: &Value) -> Result<Duration> {
    keys::seconds(value).map_err(|reason| invalid(file, &format!("`{key}`"), reason))
}

/// The `database:` section.
fn database(
    file: &str,
    value: &Value,
    warnings: &mut Vec<String>,
) -> Result<Option<DatabaseConfig>> {
    let map = match value {
        Value::Null => return Ok(None),
        Value::Object(map) => map,
        other => {
            return Err(invalid(
                file,
                "`database`",
                format!("expected a mapping with `url`, found {}", keys::kind(other)),
            ));
        }
    };
    for key in map.keys().filter(|k| !DATABASE_KEYS.contains(&k.as_str())) {
        if key == "echo_sql" {
            warnings.push(format!(
                "{file}: `database.echo_sql` is not used by tach (log SQL with \
                 TACH_LOG=sqlx=debug); ignored"
            ));
        } else {
            warnings.push(keys::unknown_key(
                &format!("{file}: database"),
                key,
                DATABASE_KEYS,
            ));
        }
    }
    let url = match map.get("url") {
        Some(Value::String(url)) => url,
        Some(other) => {
            return Err(invalid(
                file,
                "`database.url`",
                format!("expected a string, found {}", keys::kind(other)),
            ));
        }
        None => return Err(invalid(file, "`database`", "missing `url`".to_string())),
    };
    let mut config =
        DatabaseConfig::from_url(url).map_err(|reason| invalid(file, "`database.url`", reason))?;
    if let Some(value) = map.get("indexed_traits") {
        let not_names = |other: &Value| {
            invalid(
                file,
                "`database.indexed_traits`",
                format!(
                    "expected a list of trait names (or \"*\"), found {}",
                    keys::kind(other)
                ),
            )
        };
        let names = match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(not_names(other)),
                })
                .collect::<Result<Vec<String>>>()?,
            other => return Err(not_names(other)),
        };
        config.indexed_traits = Some(names);
    }
    Ok(Some(config))
}

/// The `pipeline_handlers:` mapping: name → tach handler name.
fn pipeline_handlers(file: &str, value: &Value) -> Result<BTreeMap<String, String>> {
    let map = match value {
        Value::Null => return Ok(BTreeMap::new()),
        Value::Object(map) => map,
        other => {
            return Err(invalid(
                file,
                "`pipeline_handlers`",
                format!(
                    "expected a mapping of name to handler, found {}",
                    keys::kind(other)
                ),
            ));
        }
    };
    let mut handlers = BTreeMap::new();
    for (name, target) in map {
        let what = format!("pipeline handler `{name}`");
        let Value::String(target) = target else {
            return Err(invalid(
                file,
                &what,
                format!(
                    "expected a handler name or a StackTach class path, found {}",
                    keys::kind(target)
                ),
            ));
        };
        let handler = map_handler(target).map_err(|reason| invalid(file, &what, reason))?;
        handlers.insert(name.clone(), handler);
    }
    Ok(handlers)
}

/// Maps a StackTach class path (`winchester.pipeline_handler:UsageHandler`, also simport's
/// `dir|module:Class` and `module.Class`) to its tach handler; a plain name is a tach handler.
pub fn map_handler(target: &str) -> std::result::Result<String, String> {
    let target = target.trim();
    if target.is_empty() {
        return Err("empty handler name".to_string());
    }
    let is_path = target.contains([':', '.', '|', '/']);
    if !is_path {
        return Ok(target.to_string());
    }
    let without_dir = target.rsplit('|').next().unwrap_or(target);
    let normalised = if without_dir.contains(':') {
        without_dir.to_string()
    } else {
        match without_dir.rsplit_once('.') {
            Some((module, class)) => format!("{module}:{class}"),
            None => without_dir.to_string(),
        }
    };
    STACKTACH_HANDLERS
        .iter()
        .find(|(class, _)| *class == normalised)
        .map(|(_, handler)| (*handler).to_string())
        .ok_or_else(|| {
            let known = STACKTACH_HANDLERS
                .iter()
                .map(|(class, handler)| format!("{class} (tach `{handler}`)"))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "unknown StackTach handler class `{target}`; known classes: {known}; \
                 or name a tach handler directly (e.g. `usage`)"
            )
        })
}

/// The directories searched for the other files: `config_path` entries (relative to `dir`),
/// then `dir`; entries that are not directories are skipped with a warning.
fn search_path(
    dir: &Path,
    config_path: &[String],
    file: &str,
    warnings: &mut Vec<String>,
) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in config_path {
        // `components()` drops `.` segments, so `config_path: .` is the file's own directory.
        let full: PathBuf = dir.join(entry).components().collect();
        if !full.is_dir() {
            warnings.push(format!(
                "{file}: config_path entry `{entry}` ({}) is not a directory; skipped",
                full.display()
            ));
            continue;
        }
        if !paths.contains(&full) {
            paths.push(full);
        }
    }
    let own: PathBuf = dir.components().collect();
    if !paths.contains(&own) {
        paths.push(own);
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::HandlerRegistry;
    use crate::testutil::{config_dir, dt, scratch_dir, stacktach_dir};

    /// Writes `winchester.yaml` into a fresh directory and loads it.
    fn load_text(name: &str, yaml: &str) -> (PathBuf, Result<WinchesterConfig>) {
        let dir = scratch_dir(name);
        let path = dir.join("winchester.yaml");
        std::fs::write(&path, yaml).expect("write");
        let config = WinchesterConfig::load(&path);
        (path, config)
    }

    #[test]
    fn stacktach_sandbox_winchester_yaml_loads_unchanged() {
        let dir = stacktach_dir().join("sandbox");
        let path = dir.join("winchester.yaml");
        let config = WinchesterConfig::load(&path).expect("loads");
        let file = path.display();
        assert_eq!(
            config.warnings,
            vec![
                format!(
                    "{file}: `logging_config` is not used by tach (tach logs with tracing; set \
                     the filter with TACH_LOG or RUST_LOG); ignored"
                ),
                format!(
                    "{file}: config_path entry `winchester` ({}) is not a directory; skipped",
                    dir.join("winchester").display()
                ),
            ]
        );
        assert_eq!(config.search_path, vec![dir.clone()]);
        let database = config.database.as_ref().expect("database");
        assert_eq!(
            database.url,
            "mysql://winchester:testpasswd@localhost/winchester"
        );
        assert_eq!(database.backend, DatabaseBackend::Mysql);
        assert_eq!(
            config.pipeline_handlers,
            BTreeMap::from([
                ("logger".to_string(), "logger".to_string()),
                ("notabene".to_string(), "notabene".to_string()),
                ("usage".to_string(), "usage".to_string()),
            ])
        );
        assert_eq!(config.statistics_period, Duration::from_secs(10));
        assert_eq!(config.pipeline_worker_batch_size, 1000);
        assert_eq!(config.pipeline_worker_delay, Duration::from_secs(10));
        assert!(!config.purge_completed_streams);
        assert!(!config.catch_all_notifications);
        assert_eq!(
            config.distiller_config_path().expect("found"),
            dir.join("event_definitions.yaml")
        );
        assert_eq!(
            config.resolve_file("triggers.yaml").expect("found"),
            dir.join("triggers.yaml")
        );
        let triggers = config.load_triggers().expect("triggers");
        assert_eq!(triggers.triggers[0].name, "test_trigger");
        let pipelines = config.load_pipelines().expect("pipelines");
        pipelines
            .check_triggers(&triggers.triggers)
            .expect("pipelines exist");
        assert_eq!(pipelines.pipelines.len(), 2);
    }

    #[test]
    fn stacktach_example_winchester_yaml_loads_unchanged() {
        let dir = stacktach_dir().join("winchester-etc");
        let path = dir.join("winchester.yaml");
        let config = WinchesterConfig::load(&path).expect("loads");
        let file = path.display();
        assert_eq!(
            config.warnings,
            vec![
                format!(
                    "{file}: `log_level` is not used by tach (tach logs with tracing; set the \
                     filter with TACH_LOG or RUST_LOG); ignored"
                ),
                format!(
                    "{file}: config_path entry `/home/winchester/etc` (/home/winchester/etc) is \
                     not a directory; skipped"
                ),
            ]
        );
        assert!(config.purge_completed_streams, "winchester's default");
        assert_eq!(
            config.pipeline_handlers,
            BTreeMap::from([("logger".to_string(), "logger".to_string())])
        );
        let triggers = config.load_triggers().expect("triggers");
        let pipelines = config.load_pipelines().expect("pipelines");
        pipelines
            .check_triggers(&triggers.triggers)
            .expect("pipelines exist");
        HandlerRegistry::with_builtins()
            .check(&pipelines)
            .expect("built-ins suffice");
    }

    #[test]
    fn the_projects_config_loads_without_warnings() {
        let path = config_dir().join("winchester.yaml");
        let config = WinchesterConfig::load(&path).expect("loads");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(config.search_path, vec![config_dir()]);
        let database = config.database.as_ref().expect("database");
        assert_eq!(database.backend, DatabaseBackend::Sqlite);
        assert_eq!(database.sqlx_url(), "sqlite://tach.db");
        assert!(!config.purge_completed_streams);
        assert!(!config.trim_events);
        assert_eq!(config.trim_events_age, "$timestamp - 14d");
        assert_eq!(config.trim_events_batch_size, 100);
        assert_eq!(
            config.distiller_config.as_deref(),
            Some("event_definitions.yaml")
        );

        let triggers = config.load_triggers().expect("triggers");
        assert!(triggers.warnings.is_empty(), "{:?}", triggers.warnings);
        let names: Vec<&str> = triggers.triggers.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["instance_usage", "request_id"]);
        let pipelines = config.load_pipelines().expect("pipelines");
        assert!(pipelines.warnings.is_empty(), "{:?}", pipelines.warnings);
        pipelines
            .check_triggers(&triggers.triggers)
            .expect("every pipeline exists");
        HandlerRegistry::with_builtins()
            .check(&pipelines)
            .expect("built-ins suffice");
    }

    #[test]
    fn unknown_keys_warn_with_suggestions_and_sections_are_kept() {
        let (path, config) = load_text(
            "unknown",
            "statistic_period: 5\ncolour: blue\ntime_sync_endpoint: http://x\n\
             distiller_trait_plugins: {}\ningest: {source: amqp}\napi: {bind: '127.0.0.1:8000'}\n\
             database: {url: 'sqlite://x.db', echo_sql: true, pool: 4}\n",
        );
        let config = config.expect("loads");
        let file = path.display();
        let dir = path.parent().expect("dir").display();
        assert_eq!(
            config.warnings,
            vec![
                format!(
                    "{file}: unknown key `colour` (known: config_path, database, \
                         distiller_config, trigger_definitions, pipeline_config, \
                         pipeline_handlers, catch_all_notifications, statistics_period, \
                         pipeline_worker_batch_size, pipeline_worker_delay, \
                         purge_completed_streams, trim_events, trim_events_age, \
                         trim_events_batch_size, logging_config, log_level, \
                         distiller_trait_plugins, time_sync_endpoint, ingest, api, pipeline, \
                         archive); ignored"
                ),
                format!(
                    "{file}: `database.echo_sql` is not used by tach (log SQL with \
                     TACH_LOG=sqlx=debug); ignored"
                ),
                format!(
                    "{file}: database: unknown key `pool` (known: url, indexed_traits); ignored"
                ),
                format!(
                    "{file}: `distiller_trait_plugins` is not used by tach (tach's trait plugins \
                     are Rust code registered with the distiller); ignored"
                ),
                format!(
                    "{file}: unknown key `statistic_period` (did you mean `statistics_period`?); \
                     ignored"
                ),
                format!(
                    "{file}: `time_sync_endpoint` is not used by tach (tach follows event time \
                     itself, without a time sync service); ignored"
                ),
            ]
        );
        assert_eq!(
            config.statistics_period,
            Duration::from_secs(10),
            "misspelled: default"
        );
        assert_eq!(
            config.sections["ingest"],
            serde_json::json!({"source": "amqp"})
        );
        assert_eq!(
            config.sections["api"],
            serde_json::json!({"bind": "127.0.0.1:8000"})
        );
        assert_eq!(config.search_path.len(), 1, "{dir}");
    }

    #[test]
    fn stacktach_handler_classes_map_to_builtins() {
        assert_eq!(
            map_handler("winchester.pipeline_handler:UsageHandler"),
            Ok("usage".into())
        );
        assert_eq!(
            map_handler("/opt/lib|winchester.pipeline_handler:LoggingHandler"),
            Ok("logger".into())
        );
        assert_eq!(
            map_handler("winchester.pipeline_handler.NotabeneHandler"),
            Ok("notabene".into())
        );
        assert_eq!(map_handler("kafka"), Ok("kafka".into()));
        let (path, config) = load_text(
            "handlers",
            "pipeline_handlers:\n  audit: winchester.pipeline_handler:AuditHandler\n",
        );
        assert_eq!(
            config.expect_err("unknown class").to_string(),
            format!(
                "{}: pipeline handler `audit`: unknown StackTach handler class \
                 `winchester.pipeline_handler:AuditHandler`; known classes: \
                 winchester.pipeline_handler:LoggingHandler (tach `logger`), \
                 winchester.pipeline_handler:UsageHandler (tach `usage`), \
                 winchester.pipeline_handler:NotabeneHandler (tach `notabene`); or name a tach \
                 handler directly (e.g. `usage`)",
                path.display()
            )
        );
    }

    #[test]
    fn database_urls_in_sqlx_and_sqlalchemy_forms() {
        let cases = [
            (
                "mysql+pymysql://u:p@h/db",
                DatabaseBackend::Mysql,
                "mysql://u:p@h/db",
            ),
            (
                "mariadb://u:p@h/db",
                DatabaseBackend::Mysql,
                "mysql://u:p@h/db",
            ),
            (
                "postgresql+psycopg2://u@h/db",
                DatabaseBackend::Postgres,
                "postgres://u@h/db",
            ),
            (
                "postgres://u@h/db",
                DatabaseBackend::Postgres,
                "postgres://u@h/db",
            ),
            (
                "sqlite://tach.db",
                DatabaseBackend::Sqlite,
                "sqlite://tach.db",
            ),
        ];
        for (url, backend, sqlx) in cases {
            let db = DatabaseConfig::from_url(url).expect("valid");
            assert_eq!(
                (db.url.as_str(), db.backend, db.sqlx_url().as_str()),
                (url, backend, sqlx)
            );
        }
        assert_eq!(
            DatabaseConfig::from_url("oracle://h/db").expect_err("unsupported"),
            "unsupported database `oracle` in `oracle://h/db` (tach supports sqlite, \
             postgres/postgresql and mysql/mariadb)"
        );
        let (path, config) = load_text("db", "database: {url: tach.db}\n");
        assert_eq!(
            config.expect_err("no scheme").to_string(),
            format!(
                "{}: `database.url`: `tach.db` is not a database URL (expected e.g. \
                 sqlite://tach.db, postgres://user:pass@host/db, mysql://user:pass@host/db)",
                path.display()
            )
        );
    }

    #[test]
    fn config_path_lists_resolve_against_the_files_directory() {
        let dir = scratch_dir("paths");
        std::fs::create_dir_all(dir.join("first")).expect("mkdir");
        std::fs::create_dir_all(dir.join("second")).expect("mkdir");
        std::fs::write(dir.join("second/triggers.yaml"), "[]\n").expect("write");
        std::fs::write(dir.join("first/pipelines.yaml"), "{}\n").expect("write");
        std::fs::write(dir.join("pipelines.yaml"), "{}\n").expect("write");
        std::fs::write(dir.join("own.yaml"), "").expect("write");
        let path = dir.join("winchester.yaml");
        std::fs::write(&path, "config_path: [first, second]\n").expect("write");
        let config = WinchesterConfig::load(&path).expect("loads");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(
            config.search_path,
            vec![dir.join("first"), dir.join("second"), dir.clone()]
        );
        assert_eq!(
            config.resolve_file("triggers.yaml").expect("found"),
            dir.join("second/triggers.yaml")
        );
        assert_eq!(
            config.resolve_file("pipelines.yaml").expect("found"),
            dir.join("first/pipelines.yaml")
        );
        assert_eq!(
            config.resolve_file("own.yaml").expect("found"),
            dir.join("own.yaml")
        );
        assert_eq!(
            config
                .resolve_file("missing.yaml")
                .expect_err("missing")
                .to_string(),
            format!(
                "cannot find `missing.yaml` in the config path ({}, {}, {})",
                dir.join("first").display(),
                dir.join("second").display(),
                dir.display()
            )
        );
        assert_eq!(
            config.load_triggers().expect_err("not set").to_string(),
            format!("{}: `trigger_definitions`: not set", path.display())
        );
    }

    #[test]
    fn invalid_settings_are_errors_naming_the_key() {
        let cases = [
            (
                "statistics_period: soon\n",
                "`statistics_period`: `soon` is not a duration (e.g. 30, 30s, 5m, 2h)",
            ),
            (
                "pipeline_worker_batch_size: 0\n",
                "`pipeline_worker_batch_size`: expected a positive whole number, found `0`",
            ),
            (
                "purge_completed_streams: maybe\n",
                "`purge_completed_streams`: expected true or false, found a string",
            ),
            (
                "config_path: 5\n",
                "`config_path`: expected a directory or a list of them, found a number",
            ),
            (
                "database:\n  url: sqlite://x.db\n  indexed_traits: [host, 5]\n",
                "`database.indexed_traits`: expected a list of trait names (or \"*\"), found a \
                 number",
            ),
        ];
        for (yaml, reason) in cases {
            let (path, config) = load_text("invalid", yaml);
            assert_eq!(
                config.expect_err(yaml).to_string(),
                format!("{}: {reason}", path.display())
            );
        }
        let (path, config) = load_text("age", "trim_events_age: '$timestamp -'\n");
        let parse_error = TimeExpression::parse("$timestamp -").expect_err("invalid");
        assert_eq!(
            config.expect_err("bad age").to_string(),
            format!(
                "{}: `trim_events_age`: `$timestamp -`: {parse_error}",
                path.display()
            )
        );
    }

    #[test]
    fn indexed_traits_are_read_as_a_list_or_one_name() {
        let (_, config) = load_text(
            "indexed",
            "database:\n  url: sqlite://x.db\n  indexed_traits: [host, instance_id]\n",
        );
        let database = config.expect("valid").database.expect("database");
        assert_eq!(
            database.indexed_traits,
            Some(vec!["host".to_owned(), "instance_id".to_owned()])
        );
        let (_, config) = load_text(
            "star",
            "database:\n  url: sqlite://x.db\n  indexed_traits: '*'\n",
        );
        let database = config.expect("valid").database.expect("database");
        assert_eq!(database.indexed_traits, Some(vec!["*".to_owned()]));
        let (_, config) = load_text("none", "database:\n  url: sqlite://x.db\n");
        assert_eq!(
            config.expect("valid").database.expect("db").indexed_traits,
            None
        );
    }

    #[test]
    fn trim_cutoff_and_durations_with_units() {
        let (_, config) = load_text(
            "trim",
            "trim_events: true\ntrim_events_age: $timestamp - 2d\nstatistics_period: 1m\n\
             pipeline_worker_delay: 0.5\n",
        );
        let config = config.expect("loads");
        assert!(config.trim_events);
        assert_eq!(config.statistics_period, Duration::from_secs(60));
        assert_eq!(config.pipeline_worker_delay, Duration::from_millis(500));
        let now = dt("2014-08-10 12:00:00");
        assert_eq!(
            config.trim_events_cutoff(now).expect("cutoff"),
            dt("2014-08-08 12:00:00")
        );
        let (_, empty) = load_text("empty", "");
        let empty = empty.expect("an empty file is all defaults");
        assert_eq!(
            empty.trim_events_cutoff(now).expect("cutoff"),
            dt("2014-07-27 12:00:00")
        );
        assert_eq!(empty.database, None);
    }
}
