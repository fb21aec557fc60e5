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
//! unless set explicitly. `--task` and `--model` may not contradict `task.task`, `task.kind` or `model.core.kind` given
//! by `--set` or the file: a conflict is an error naming both.
//!
//! `--babi-dir DIR` sets `task.data_dir` to DIR's absolute path (and `task.vocabulary` to
//! `english` unless given); it needs a bAbI task.
//!
//! Every value is checked against the type of the same key in the defaults before the
//! configuration is built, so a wrong one is an error naming its key: sizes and counts must be
//! non-negative integers (the library then bounds them by `MAX_SIZE`), rates and biases finite
//! numbers (`nan` and `inf`, which TOML allows, are refused), flags booleans, tables tables.

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
        toml_to_json(toml::Value::Table(table))
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

/// A TOML value as JSON; NaN and ±∞ (which TOML allows and JSON cannot hold) become the strings
/// `nan`, `inf`, `-inf`, so the type check names their key instead of seeing `null`.
fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => i.into(),
        toml::Value::Float(x) => float_to_json(x),
        toml::Value::Boolean(b) => b.into(),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => a.into_iter().map(toml_to_json).collect(),
        toml::Value::Table(t) => t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect(),
    }
}

/// A float as JSON: a number when finite, else its name as a string (see [`toml_to_json`]).
pub fn float_to_json(x: f64) -> Value {
    if x.is_finite() {
        x.into()
    } else {
        Value::String(x.to_string())
    }
}

/// Sets `root[a][b]… = value` for the dotted `path`, creating objects on the way; a value
/// already set on the way that is not a table is an error (`model.core=5` then `model.core.kind`).
fn insert(root: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let mut node = root;
    let mut parts = path.split('.').peekable();
    let mut at = String::new();
    while let Some(part) = parts.next() {
        let map = node.as_object_mut().ok_or_else(|| {
            format!("cannot set `{path}`: `{at}` was set to a value that is not a table")
        })?;
        at = join(&at, part);
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

/// A value as an error shows it: strings without quotes (`abc`, `NaN`), the rest as JSON.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// Checks every value of `json` against the type of the same key in `defaults`: a size or count
/// (an unsigned integer there) must be one, any other number a finite number, a flag a boolean,
/// a name a string, a list a list of such, a table a table. Keys the defaults lack or leave empty,
/// and `null` values, are left to deserialisation (optional fields take `null`).
fn check_types(json: &Value, defaults: &Value, path: &str) -> Result<(), String> {
    let bad = |rule: &str| Err(format!("invalid `{path}`: {rule}, got {}", shown(json)));
    match (defaults, json) {
        (_, Value::Null) | (Value::Null, _) => Ok(()),
        (Value::Object(d), Value::Object(j)) => {
            for (key, value) in j {
                if let Some(default) = d.get(key) {
                    check_types(value, default, &join(path, key))?;
                }
            }
            Ok(())
        }
        (Value::Object(_), _) => bad("must be a table"),
        (Value::Number(n), v) if n.is_u64() && !v.is_u64() => bad("must be a non-negative integer"),
        (Value::Number(_), v) if !v.is_number() => bad("must be a finite number"),
        (Value::Bool(_), v) if !v.is_boolean() => bad("must be true or false"),
        (Value::String(_), v) if !v.is_string() => bad("must be a string"),
        (Value::Array(d), Value::Array(items)) => match d.first() {
            Some(first) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, item)| check_types(item, first, &format!("{path}[{i}]"))),
            None => Ok(()),
        },
        (Value::Array(_), _) => bad("must be a list"),
        _ => Ok(()),
    }
}

/// The JSON pointers of the leaves where `json` differs from `defaults`.
fn changed_leaves(json: &Value, defaults: Option<&Value>, pointer: &str, out: &mut Vec<String>) {
    match json {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                let at = format!("{pointer}/{key}");
                changed_leaves(value, defaults.and_then(|d| d.get(key)), &at, out);
            }
        }
        leaf if defaults != Some(leaf) => out.push(pointer.to_owned()),
        _ => {}
    }
}

/// Deserialises the experiment; when that fails, the error names the first changed key whose
/// default value makes it succeed.
fn build(json: Value, defaults: &Value) -> Result<Experiment, String> {
    let error = match serde_json::from_value(json.clone()) {
        Ok(experiment) => return Ok(experiment),
        Err(e) => e,
    };
    let mut changed = Vec::new();
    changed_leaves(&json, Some(defaults), "", &mut changed);
    let culprit = changed.into_iter().find(|pointer| {
        let mut trial = json.clone();
        let restored = match (trial.pointer_mut(pointer), defaults.pointer(pointer)) {
            (Some(slot), Some(default)) => {
                *slot = default.clone();
                true
            }
            _ => false,
        };
        restored && serde_json::from_value::<Experiment>(trial).is_ok()
    });
    Err(match culprit {
        Some(pointer) => format!("invalid `{}`: {error}", pointer[1..].replace('/', ".")),
        None => format!("invalid config: {error}"),
    })
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
            let Ok(config) = serde_json::from_value::<RmcConfig>(Value::Object(fields)) else {
                // A bad memory setting: the build that follows fails too, naming its key.
                return Ok(());
            };
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
    /// `--babi-dir`.
    pub babi_dir: Option<&'a Path>,
}

/// Sets `path` (a tag) to `value` for a flag, unless the file or `--set` gave it another value.
fn set_flag(
    patch: &mut Value,
    path: &str,
    value: &Value,
    flag: &str,
    given: &str,
) -> Result<(), String> {
    let pointer = format!("/{}", path.replace('.', "/"));
    match patch.pointer(&pointer) {
        Some(old) if old != value => Err(format!(
            "{flag} {given} conflicts with {path} = {} from --set or --config; give only one",
            shown(old)
        )),
        _ => insert(patch, path, value.clone()),
    }
}

/// `--babi-dir`: `task.data_dir` = the directory's absolute path, and `task.vocabulary` =
/// `english` unless given (the real files use words the generated world lacks).
fn babi_dir(patch: &mut Value, dir: &Path) -> Result<(), String> {
    let task = patch.pointer("/task/task").and_then(Value::as_str);
    if task != Some("babi") {
        return Err(format!(
            "--babi-dir needs a bAbI task (--task babi-qa1, babi-qa2 or babi-qa3), got {}",
            task.unwrap_or("none")
        ));
    }
    let absolute =
        std::fs::canonicalize(dir).map_err(|e| format!("--babi-dir {}: {e}", dir.display()))?;
    let absolute = absolute
        .to_str()
        .ok_or_else(|| format!("--babi-dir {}: the path is not UTF-8", dir.display()))?;
    set_flag(
        patch,
        "task.data_dir",
        &absolute.into(),
        "--babi-dir",
        &dir.display().to_string(),
    )?;
    if patch.pointer("/task/vocabulary").is_none() {
        insert(patch, "task.vocabulary", "english".into())?;
    }
    Ok(())
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
        for key in ["task", "kind"] {
            if let Some(value) = tagged.get(key) {
                set_flag(&mut patch, &format!("task.{key}"), value, "--task", task)?;
            }
        }
    }
    if let Some(model) = sources.model {
        let kind: ModelKind = model
            .parse()
            .map_err(|e: relational_rnn::ConfigError| e.to_string())?;
        set_flag(
            &mut patch,
            "model.core.kind",
            &kind.name().into(),
            "--model",
            model,
        )?;
    }
    if let Some(dir) = sources.babi_dir {
        babi_dir(&mut patch, dir)?;
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
    let defaults = serde_json::to_value(&defaults).map_err(|e| e.to_string())?;
    let mut json = defaults.clone();
    apply(&mut json, &patch, "")?;
    // Before the aliases read the memory's settings (`heads`), so a bad value names its key.
    check_types(&json, &defaults, "")?;
    for (key, value) in aliases {
        apply_alias(&mut json, key, value)?;
    }
    check_types(&json, &defaults, "")?;
    let mut experiment = build(json, &defaults)?;
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
