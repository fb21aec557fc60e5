//! The library's layers: each source file imports only from its own layer or the layers below it,
//! and only the layers in [`KERNEL_USERS`] name a kernel (the models are written with the tape's
//! ops; the fast path is an implementation detail below them).
//!
//! The test reads `src/` as text: every `use crate::…`, `use super::…`, `use self::…` and every
//! inline `crate::…` / `super::…` path outside the unit-test modules (`#[cfg(test)] mod … { … }`),
//! with comments and string literals removed (a `mod.rs`'s `use child::…` names its own children,
//! which cannot be above it). A path is placed by the module it names, the crate root's
//! re-exports (`crate::Graph`, `crate::set_gemm_threads`, …) followed to their modules.
//! [`LAYERS`] is the layering that holds today; [`ALLOWED`] lists today's exceptions, each with
//! its reason, for the layering work to shrink. An exception that no longer occurs fails the test
//! too, so the list cannot go stale.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom to top, each with its modules. A module path belongs to the entry with the
/// longest matching prefix (`kernels::gemm::pack` is entry `kernels::gemm`).
const LAYERS: &[(&str, &[&str])] = &[
    ("leaves", &["error", "fast_math", "stats"]),
    // Tasks and plots stand beside the stack and use ndarray only.
    ("beside the stack", &["tasks", "plot"]),
    // `kernels::*`; its modules are entries of their own so that an exception names the one it
    // uses.
    (
        KERNELS,
        &[
            "kernels",
            "kernels::gemm",
            "kernels::simd",
            "kernels::threads",
            "kernels::reduce",
        ],
    ),
    ("element type", &["scalar"]),
    ("parameters", &["params"]),
    ("autodiff", &["autodiff"]),
    (
        "optimisers, checkpoints, losses",
        &["optim", "checkpoint", "loss"],
    ),
    ("models", &["nn"]),
    ("training", &["train"]),
    ("experiments", &["experiment"]),
    (
        "analysis, benchmarks, memory estimates, study summaries",
        &["analysis", "perf", "memory", "study"],
    ),
];

/// The CPU machinery layer.
const KERNELS: &str = "kernels";
/// The layers that may name a kernel: the element type (its matrix product), the parameters
/// (the gradient norm), the tape's ops, the optimisers (their update) and the training step
/// (what runs beside what). The models, experiments and everything above are written with the
/// tape's ops alone.
const KERNEL_USERS: &[&str] = &[
    "element type",
    "parameters",
    "autodiff",
    "optimisers, checkpoints, losses",
    "training",
];

/// Today's exceptions: (importing file under `src/`, module it names, why it is allowed for now).
const ALLOWED: &[(&str, &str, &str)] = &[];

/// Everything outside comments and the contents of string and char literals (newlines kept).
fn code_of(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c[i] == 'r' && matches!(next, Some('"' | '#')) && !ident_char(&c, i) {
            // r"…" or r#"…"#: no escapes, ends at the quote and as many #.
            let mut j = i + 1;
            while c.get(j) == Some(&'#') {
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            i = j + 1;
            while i < c.len()
                && !(c[i] == '"' && (0..hashes).all(|h| c.get(i + 1 + h) == Some(&'#')))
            {
                i += 1;
            }
            i += 1 + hashes;
            out.push_str("\"\"");
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c[i] == '\'' && (next == Some('\\') || c.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\'', '\u{..}'); a lifetime ('a) is code.
            i += 3;
            if next == Some('\\') {
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            }
            out.push_str("' '");
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// Whether the char before `i` continues an identifier (so `c[i]` is not a token's start).
fn ident_char(c: &[char], i: usize) -> bool {
    i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_')
}

/// `code` without its `#[cfg(test)] mod name { … }` blocks.
fn without_test_modules(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        let after = &rest[at + "#[cfg(test)]".len()..];
        let item = after.trim_start();
        let is_inline_mod = item
            .strip_prefix("mod ")
            .or_else(|| item.strip_prefix("pub(crate) mod "))
            .and_then(|m| m.find(['{', ';']).map(|k| m.as_bytes()[k] == b'{'))
            .unwrap_or(false);
        if !is_inline_mod {
            out.push_str(&rest[..at + "#[cfg(test)]".len()]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..at]);
        let open = at + rest[at..].find('{').expect("a module body");
        rest = &rest[open + closing_brace(&rest[open..]) + 1..];
    }
    out.push_str(rest);
    out
}

/// `code` split into its own part and the bodies of its inline modules (`mod x86 { … }`), each
/// with its module path, so that `super::` inside them resolves from the right place.
fn inline_modules(code: &str, module: &[String]) -> Vec<(Vec<String>, String)> {
    let mut own = String::new();
    let mut parts = Vec::new();
    let mut rest = code;
    while let Some(at) = find_token(rest, "mod") {
        let after = &rest[at + 3..];
        let name_len = after
            .trim_start()
            .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
            .unwrap_or(0);
        let name = after.trim_start()[..name_len].to_owned();
        let body = after.trim_start()[name_len..].trim_start();
        if name.is_empty() || !body.starts_with('{') {
            own.push_str(&rest[..at + 3]);
            rest = after;
            continue;
        }
        own.push_str(&rest[..at]);
        let open = rest.len() - body.len();
        let close = open + closing_brace(&rest[open..]);
        let mut inner = module.to_vec();
        inner.push(name);
        parts.extend(inline_modules(&rest[open + 1..close], &inner));
        rest = &rest[close + 1..];
    }
    own.push_str(rest);
    parts.push((module.to_vec(), own));
    parts
}

/// The byte offset of the brace that closes the one `text` starts with.
fn closing_brace(text: &str) -> usize {
    let mut depth = 0usize;
    for (k, ch) in text.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    panic!("an unclosed brace");
}

/// `a::{b, c::{d, e as f}, self}` → `a::b`, `a::c::d`, `a::c::e`, `a`.
fn expand(path: &str) -> Vec<String> {
    let path: String = path.split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(open) = path.find('{') else {
        let plain = path.split(" as ").next().unwrap_or("").trim();
        let plain = plain.trim_end_matches("::*").trim_end_matches("::self");
        return vec![plain.to_owned()];
    };
    let base = path[..open].trim_end_matches("::").trim();
    let inner = &path[open + 1..path.rfind('}').expect("a closing brace")];
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (k, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(&format!("{base}::{p}")))
        .map(|p| {
            p.trim_end_matches("::self")
                .trim_end_matches("::*")
                .to_owned()
        })
        .collect()
}

/// The paths of `code`'s `use` declarations (expanded) and its inline `crate::`/`super::` paths.
fn paths_in(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = String::new();
    let mut text = code;
    while let Some(at) = find_token(text, "use") {
        if text[at + 3..].trim_start().starts_with('<') {
            // `impl Trait + use<T>`: precise capturing, not a declaration.
            rest.push_str(&text[..at + 3]);
            text = &text[at + 3..];
            continue;
        }
        rest.push_str(&text[..at]);
        let end = at + text[at..].find(';').expect("a use ends with ;");
        paths.extend(expand(&text[at + 3..end]));
        text = &text[end + 1..];
    }
    rest.push_str(text);
    for root in ["crate", "super"] {
        let mut text = rest.as_str();
        while let Some(at) = find_token(text, root) {
            let tail = &text[at..];
            let len = tail
                .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == ':'))
                .unwrap_or(tail.len());
            let path = tail[..len].trim_end_matches(':');
            if path.contains("::") {
                paths.push(path.to_owned());
            }
            text = &tail[len..];
        }
    }
    paths
}

/// The byte offset of `word` in `text` as a whole identifier.
fn find_token(text: &str, word: &str) -> Option<usize> {
    let is_ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut from = 0;
    while let Some(k) = text[from..].find(word) {
        let at = from + k;
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/` (`autodiff/mod.rs` → `[autodiff]`, `lib.rs` → `[]`).
fn module_of(rel: &str) -> Vec<String> {
    let mut segs: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if matches!(segs.last().map(String::as_str), Some("mod" | "lib")) {
        segs.pop();
    }
    segs
}

/// The layer index and table entry of a module path (longest matching prefix).
fn layer_of(module: &[String]) -> Option<(usize, &'static str)> {
    let joined = module.join("::");
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, (_, mods))| mods.iter().map(move |m| (i, *m)))
        .filter(|(_, m)| joined == *m || joined.starts_with(&format!("{m}::")))
        .max_by_key(|(_, m)| m.len())
}

/// The position of the layer called `name` in [`LAYERS`].
fn layer_index(name: &str) -> usize {
    LAYERS
        .iter()
        .position(|(n, _)| *n == name)
        .expect("a layer")
}

/// The crate root's re-exports of its own modules: item name → module path.
fn root_reexports(lib: &str) -> BTreeMap<String, Vec<String>> {
    let code = code_of(lib);
    let modules: BTreeSet<&str> = LAYERS.iter().flat_map(|(_, m)| m.iter().copied()).collect();
    let mut map = BTreeMap::new();
    for path in paths_in(&code) {
        let segs: Vec<String> = path.split("::").map(|s| s.trim().to_owned()).collect();
        if segs.len() >= 2 && modules.contains(segs[0].as_str()) {
            let name = segs[segs.len() - 1].clone();
            map.insert(name, segs[..segs.len() - 1].to_vec());
        }
    }
    map
}

/// Every import that breaks the layering: (file, module entry it names, description).
fn violations(src: &Path) -> Vec<(String, String, String)> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("read lib.rs");
    let reexports = root_reexports(&lib);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    for user in KERNEL_USERS {
        layer_index(user); // a misspelt name fails here
    }
    let mut found = BTreeMap::new();
    for file in files {
        let rel = file
            .strip_prefix(src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let module = module_of(&rel);
        if module.is_empty() {
            continue; // lib.rs: the crate root re-exports, it is no layer
        }
        let (from, _) =
            layer_of(&module).unwrap_or_else(|| panic!("{rel}: its module has no layer in LAYERS"));
        let text = std::fs::read_to_string(&file).expect("read a source file");
        let code = without_test_modules(&code_of(&text));
        for (module, path) in inline_modules(&code, &module)
            .into_iter()
            .flat_map(|(m, part)| paths_in(&part).into_iter().map(move |p| (m.clone(), p)))
        {
            let segs: Vec<&str> = path.split("::").map(str::trim).collect();
            let target: Vec<String> = match segs[0] {
                "crate" => match segs.get(1).and_then(|s| reexports.get(*s)) {
                    Some(m) => m.clone(),
                    None => segs[1..].iter().map(|s| s.to_string()).collect(),
                },
                "super" | "self" => {
                    let mut base = module.clone();
                    let mut rest = &segs[..];
                    while let Some(&head) = rest.first() {
                        match head {
                            "super" => {
                                base.pop();
                            }
                            "self" => {}
                            _ => break,
                        }
                        rest = &rest[1..];
                    }
                    base.extend(rest.iter().map(|s| s.to_string()));
                    base
                }
                _ => continue, // another crate's path
            };
            let Some((to, entry)) = layer_of(&target) else {
                panic!("{rel}: `{path}` names no module in LAYERS");
            };
            let upward = to > from;
            let kernel_from_above =
                LAYERS[to].0 == KERNELS && from != to && !KERNEL_USERS.contains(&LAYERS[from].0);
            if upward || kernel_from_above {
                let why = if upward {
                    format!(
                        "layer `{}` imports layer `{}`",
                        LAYERS[from].0, LAYERS[to].0
                    )
                } else {
                    format!("layer `{}` names a kernel", LAYERS[from].0)
                };
                found
                    .entry((rel.clone(), entry.to_owned()))
                    .or_insert_with(|| format!("{why} (`{path}`)"));
            }
        }
    }
    found.into_iter().map(|((f, e), w)| (f, e, w)).collect()
}

/// Each import goes down the table, or is a listed exception; each exception still occurs.
#[test]
fn imports_respect_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    let allowed: BTreeSet<(&str, &str)> = ALLOWED.iter().map(|&(f, m, _)| (f, m)).collect();
    let new: Vec<String> = found
        .iter()
        .filter(|(f, m, _)| !allowed.contains(&(f.as_str(), m.as_str())))
        .map(|(f, m, why)| format!("  {f} -> {m}: {why}"))
        .collect();
    let present: BTreeSet<(&str, &str)> = found
        .iter()
        .map(|(f, m, _)| (f.as_str(), m.as_str()))
        .collect();
    let stale: Vec<String> = allowed
        .iter()
        .filter(|a| !present.contains(*a))
        .map(|(f, m)| format!("  {f} -> {m}"))
        .collect();
    assert!(
        new.is_empty() && stale.is_empty(),
        "imports against the layers (move the code, or list the exception in ALLOWED with why):\n\
         {}\nexceptions in ALLOWED that no longer occur (remove them):\n{}",
        new.join("\n"),
        stale.join("\n")
    );
}

/// The parser sees what the layer check relies on.
#[test]
fn parser_reads_uses_inline_paths_and_skips_tests_comments_and_strings() {
    let code = code_of(
        "use crate::{a::{B, c::D}, e as f};\n\
         pub(crate) use super::g::*;\n\
         // use crate::commented;\n\
         let s = \"crate::in_a_string\"; let r = r#\"crate::raw\"#; let q = '\"'; let e = '\\'';\n\
         fn h<'a>(x: &'a u8) -> impl Sized + use<'a> { crate::i::j(x) }\n\
         #[cfg(test)]\nmod tests { use crate::only_in_tests; fn k() { let _ = \"}\"; } }\n\
         #[cfg(test)]\nmod test_file;\n\
         use self::l::M;\n",
    );
    let mut paths = paths_in(&without_test_modules(&code));
    paths.sort();
    assert_eq!(
        paths,
        [
            "crate::a::B",
            "crate::a::c::D",
            "crate::e",
            "crate::i::j",
            "self::l::M",
            "super::g"
        ]
    );
    let m = vec!["m".to_owned()];
    let parts: Vec<(String, Vec<String>)> =
        inline_modules("mod x86 { use super::MR; } use crate::a;", &m)
            .into_iter()
            .map(|(module, part)| (module.join("::"), paths_in(&part)))
            .collect();
    assert_eq!(
        parts,
        [
            ("m::x86".to_owned(), vec!["super::MR".to_owned()]),
            ("m".to_owned(), vec!["crate::a".to_owned()])
        ]
    );
    assert_eq!(
        layer_of(&["kernels".into(), "gemm".into(), "pack".into()])
            .unwrap()
            .1,
        "kernels::gemm"
    );
    assert_eq!(
        layer_of(&["autodiff".into(), "graph".into()]).unwrap().1,
        "autodiff"
    );
    assert!(layer_of(&["simd".into()]).is_none());
}
