//! Resolving a run's configuration: the library defaults for the task and model, then a config
//! file, then `--set key=value` in order, then the flags (`--steps`, `--lr`, …).
//!
//! The result is a [`relational_rnn::experiment::Experiment`]; config files and `--set` address
//! its JSON form by dotted paths (`model.core.mem_slots`, `train.optimizer.lr`,
//! `task.num_vectors`). Keys are checked against that form, so a typo is an error naming the
//! valid keys. Changing a tagged kind (`train.optimizer.kind=sgd`, `train.schedule.kind=...`)
//! starts that object afresh from the new kind's defaults.
//!
//! Short keys ([`ALIASES`]) work in `--set` and sweep grids. `heads=H` keeps the memory width
//! D = H·V fixed ([`RmcConfig::with_heads_keeping_width`]: `num_heads = H`, `head_size = D / H`,
//! an error when H does not divide D). The model's input width and class count follow the task
//! unless set explicitly.

use std::path::Path;

use relational_rnn::experiment::{Experiment, ModelKind};
use relational_rnn::nn::RmcConfig;
use relational_rnn::tasks::TaskKind;
use relational_rnn::train::TrainConfig;
use serde_json::{Map, Value};

/// Short keys for `--set` and sweep grids, with what they set.
pub const ALIASES: [(&str, &str); 11] = [
    ("steps", "train.steps"),
    ("batch", "train.batch_size"),
    ("lr", "train.optimizer.lr"),
    ("seed", "train.seed"),
    ("eval_every", "train.eval_every"),
    ("test_size", "test_size"),
    ("data_seed", "data_seed"),
    ("slots", "mem_slots of the RMC memory"),
    ("heads", "num_heads, with head_size = D / heads (D fixed)"),
    ("head_size", "head_size of the RMC memory"),
    ("hidden", "hidden_size of the LSTM"),
];

/// Splits `key=value`; the value is read as JSON when it parses (numbers, booleans, arrays,
/// quoted strings) and as a bare string otherwise (`kind=sgd`).
pub fn parse_set(s: &str) -> Result<(String, Value), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not key=value"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("`{s}` has an empty key"));
    }
    let value = serde_json::from_str(value.trim()).unwrap_or_else(|_| Value::String(value.into()));
    Ok((key.to_owned(), value))
}

/// Reads a config file: TOML, or JSON when it ends in `.json`. A run's `config.json` works too
/// (its `experiment` part is used).
fn read_file(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
    let value: Value = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
        serde_json::to_value(table).map_err(|e| format!("{}: {e}", path.display()))?
    };
    let value = match value {
        Value::Object(mut m) if m.contains_key("experiment") => {
            m.remove("experiment").unwrap_or_default()
        }
        v => v,
    };
    if value.is_object() {
        Ok(value)
    } else {
        Err(format!("{}: the config must be a table", path.display()))
    }
}

/// Sets `root[a][b]… = value` for the dotted `path`, creating objects on the way.
fn insert(root: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let mut node = root;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let map = node.as_object_mut().ok_or("unreachable")?;
        if parts.peek().is_none() {
            map.insert(part.to_owned(), value);
            return Ok(());
        }
        node = map.entry(part).or_insert_with(|| Value::Object(Map::new()));
    }
    Err(format!("empty key `{path}`"))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Applies `patch` onto `base`, refusing keys `base` does not have.
fn apply(base: &mut Value, patch: &Value, path: &str) -> Result<(), String> {
    let (Value::Object(b), Value::Object(p)) = (&mut *base, patch) else {
        *base = patch.clone();
        return Ok(());
    };
    for tag in ["kind", "task"] {
        let (new, old) = (
            p.get(tag).and_then(Value::as_str),
            b.get(tag).and_then(Value::as_str),
        );
        if new.is_some() && old.is_some() && new != old {
            // Another variant: its own fields and defaults; serde checks the keys.
            *b = p.clone();
            return Ok(());
        }
    }
    for (key, value) in p {
        let at = join(path, key);
        let Some(slot) = b.get_mut(key) else {
            let valid: Vec<&str> = b.keys().map(String::as_str).collect();
            let scope = if path.is_empty() {
                String::new()
            } else {
                format!(" of `{path}`")
            };
            return Err(format!(
                "unknown key `{at}`; valid keys{scope}: {}",
                valid.join(", ")
            ));
        };
        if slot.is_object() && value.is_object() {
            apply(slot, value, &at)?;
        } else {
            *slot = value.clone();
        }
    }
    Ok(())
}

/// The JSON object of the RMC memory inside `model.core` (`None` for the LSTM).
fn memory(json: &mut Value) -> Option<&mut Map<String, Value>> {
    let core = json.pointer_mut("/model/core")?;
    let memory = match core.get("kind").and_then(Value::as_str) {
        Some("rmc") => core,
        Some("rrnn-cell") => core.get_mut("memory")?,
        _ => return None,
    };
    memory.as_object_mut()
}

/// Applies one short key (see [`ALIASES`]) to the resolved JSON.
fn apply_alias(json: &mut Value, key: &str, value: &Value) -> Result<(), String> {
    let model = json
        .pointer("/model/core/kind")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    let not_for = || format!("key `{key}` does not apply to model {model}");
    match key {
        "slots" | "head_size" => {
            let field = if key == "slots" { "mem_slots" } else { key };
            memory(json)
                .ok_or_else(not_for)?
                .insert(field.into(), value.clone());
        }
        "heads" => {
            let m = memory(json).ok_or_else(not_for)?;
            let heads = value
                .as_u64()
                .filter(|&h| h >= 1)
                .and_then(|h| usize::try_from(h).ok())
                .ok_or_else(|| format!("invalid `heads`: must be an integer ≥ 1, got {value}"))?;
            let mut fields = m.clone();
            fields.remove("kind"); // the core's tag, when the memory is the core itself
            let config: RmcConfig = serde_json::from_value(Value::Object(fields))
                .map_err(|e| format!("invalid config: {e}"))?;
            let config = config
                .with_heads_keeping_width(heads)
                .map_err(|e| e.to_string())?;
            m.insert("num_heads".into(), config.num_heads.into());
            m.insert("head_size".into(), config.head_size.into());
        }
        "hidden" => {
            let core = json
                .pointer_mut("/model/core")
                .and_then(Value::as_object_mut)
                .filter(|c| c.contains_key("hidden_size"))
                .ok_or_else(not_for)?;
            core.insert("hidden_size".into(), value.clone());
        }
        _ => {
            let (_, path) = ALIASES
                .iter()
                .find(|(k, _)| *k == key)
                .ok_or_else(|| unknown_short_key(key))?;
            insert(json, path, value.clone())?;
        }
    }
    Ok(())
}

fn unknown_short_key(key: &str) -> String {
    let short: Vec<&str> = ALIASES.iter().map(|(k, _)| *k).collect();
    format!(
        "unknown key `{key}`; use a dotted path (task.*, model.*, train.*) or one of: {}",
        short.join(", ")
    )
}

/// What a run's configuration is made of, lowest precedence first.
#[derive(Debug, Default, Clone)]
pub struct Sources<'a> {
    /// `--config`.
    pub file: Option<&'a Path>,
    /// `--set` and the flags, in order of precedence (later wins).
    pub sets: Vec<(String, Value)>,
    /// `--task`.
    pub task: Option<&'a str>,
    /// `--model`.
    pub model: Option<&'a str>,
}

/// Resolves and validates the experiment; errors are one line.
pub fn resolve(sources: &Sources<'_>) -> Result<Experiment, String> {
    let mut patch = match sources.file {
        Some(path) => read_file(path)?,
        None => Value::Object(Map::new()),
    };
    let mut aliases = Vec::new();
    for (key, value) in &sources.sets {
        if key.contains('.') {
            insert(&mut patch, key, value.clone())?;
        } else if ALIASES.iter().any(|(k, _)| k == key) {
            aliases.push((key.as_str(), value));
        } else {
            return Err(unknown_short_key(key));
        }
    }
    if let Some(task) = sources.task {
        // The CLI name (`babi-qa2`) maps onto the config's serde tag (`task = "babi"`) plus, for
        // bAbI, its `kind`.
        let kind: TaskKind = task.parse()?;
        let tagged = serde_json::to_value(kind.default_config()).map_err(|e| e.to_string())?;
        insert(&mut patch, "task.task", tagged["task"].clone())?;
        if let Some(babi_kind) = tagged.get("kind") {
            insert(&mut patch, "task.kind", babi_kind.clone())?;
        }
    }
    if let Some(model) = sources.model {
        let kind: ModelKind = model
            .parse()
            .map_err(|e: relational_rnn::ConfigError| e.to_string())?;
        insert(&mut patch, "model.core.kind", kind.name().into())?;
    }
    let task: TaskKind = match patch.pointer("/task/task").and_then(Value::as_str) {
        Some("babi") => {
            let kind = patch
                .pointer("/task/kind")
                .and_then(Value::as_str)
                .unwrap_or("qa1");
            format!("babi-{kind}").parse()?
        }
        Some(name) => name.parse()?,
        None => return Err("no task: give --task or set task.task in the config".into()),
    };
    let model: ModelKind = patch
        .pointer("/model/core/kind")
        .and_then(Value::as_str)
        .ok_or("no model: give --model or set model.core.kind in the config")?
        .parse()
        .map_err(|e: relational_rnn::ConfigError| e.to_string())?;
    let defaults = Experiment::new(task.default_config(), model, TrainConfig::default())
        .map_err(|e| e.to_string())?;
    let mut json = serde_json::to_value(&defaults).map_err(|e| e.to_string())?;
    apply(&mut json, &patch, "")?;
    for (key, value) in aliases {
        apply_alias(&mut json, key, value)?;
    }
    let mut experiment: Experiment =
        serde_json::from_value(json).map_err(|e| format!("invalid config: {e}"))?;
    let built = experiment.task.build().map_err(|e| e.to_string())?;
    if patch.pointer("/model/core/input_size").is_none() {
        experiment.model.core = experiment.model.core.with_input_size(built.input_size());
    }
    if patch.pointer("/model/num_classes").is_none() {
        experiment.model.num_classes = built.num_classes();
    }
    experiment.validate().map_err(|e| e.to_string())?;
    Ok(experiment)
}
