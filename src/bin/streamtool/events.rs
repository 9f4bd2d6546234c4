//! `--events json`: one JSON object per line on stderr, with `event` and `time` (seconds
//! since the Unix epoch) first. The schema is in `docs/events.md`.

use std::io::Write;
use std::sync::Arc;

use serde_json::{Map, Value, json};

/// Where events go; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Events {
    enabled: bool,
    lock: Arc<std::sync::Mutex<()>>,
}

impl Events {
    /// Events on (`--events json`) or off.
    pub fn new(enabled: bool) -> Self {
        Events { enabled, lock: Arc::default() }
    }

    /// Writes one event with the fields `fields` returns (an object). The fields are built
    /// only when events are on: a server pays nothing per connection for them otherwise.
    pub fn emit(&self, event: &str, fields: impl FnOnce() -> Value) {
        if !self.enabled {
            return;
        }
        let fields = fields();
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let mut object = Map::new();
        object.insert("event".into(), json!(event));
        object.insert("time".into(), json!((time * 1000.0).round() / 1000.0));
        object.insert("version".into(), json!(1));
        if let Value::Object(extra) = fields {
            object.extend(extra);
        }
        let line = Value::Object(object).to_string();
        let _guard = self.lock.lock();
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{line}");
    }
}
