//! Checkpoints: an interrupted atomic write keeps the old file, optimiser buffers saved under a
//! prefix load back exactly, the same tensors and metadata always encode to the same bytes,
//! non-finite or foreign tensors are refused, and no mutation or truncation of a real
//! checkpoint's bytes makes reading or loading it panic.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use relational_rnn::ParamStore;
use relational_rnn::checkpoint::{
    self, CheckpointError, Metadata, decode, encode, is_temporary, load_grads, write_atomic,
    write_atomic_with,
};
use relational_rnn::experiment::{Experiment, ModelKind};
use relational_rnn::ndarray::{ArrayD, IxDyn};
use relational_rnn::tasks::TaskKind;
use relational_rnn::train::TrainConfig;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rrnn-ckpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_write_that_fails_midway_keeps_the_old_file_and_no_temporary() {
    let dir = temp_dir("atomic");
    let path = dir.join("last.safetensors");
    write_atomic(&path, b"old complete contents").unwrap();
    let err = write_atomic_with(&path, |f| {
        f.write_all(b"half of the new")?;
        let temps: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| is_temporary(n))
            .collect();
        assert_eq!(
            temps.len(),
            1,
            "the file being written is recognised as temporary"
        );
        Err(std::io::Error::other("disk full (simulated)"))
    })
    .unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err}");
    assert!(err.to_string().contains("disk full"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"old complete contents");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["last.safetensors"]);
    write_atomic(&path, b"new").unwrap();
    for name in [
        "last.safetensors",
        ".last.safetensors.tmp-",
        ".x.tmp-12a",
        "a.tmp-12",
    ] {
        assert!(!is_temporary(name), "{name}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"new");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn prefixed_buffers_round_trip_and_partial_sets_are_errors() {
    let mut store = ParamStore::<f32>::new();
    store.add("a.weight", ArrayD::from_elem(IxDyn(&[2, 3]), 0.5f32));
    store.add("a.bias", ArrayD::from_elem(IxDyn(&[3]), -1.0f32));
    let mut m = store.zeros_like();
    for (i, (_, g)) in m.iter_mut().enumerate() {
        g.fill(0.1 + i as f32 / 3.0);
    }
    let names = ["optim.m.a.weight", "optim.m.a.bias"];
    let tensors = names.iter().zip(m.iter()).map(|(n, (_, g))| (*n, g));
    let bytes = encode(tensors, &Metadata::new()).unwrap();
    let path = std::path::Path::new("mem.safetensors");
    let (tensors, _) = decode(&bytes, path).unwrap();
    let back = load_grads(&store, &tensors, "optim.m.", path).unwrap();
    assert_eq!(back, Some(m.clone()));
    assert_eq!(
        load_grads(&store, &tensors, "optim.v.", path).unwrap(),
        None
    );

    let only_one = encode([(names[0], m.iter().next().unwrap().1)], &Metadata::new()).unwrap();
    let (tensors, _) = decode(&only_one, path).unwrap();
    let err = load_grads(&store, &tensors, "optim.m.", path).unwrap_err();
    assert!(err.to_string().contains("optim.m.a.bias"), "{err}");
}

#[test]
fn the_same_tensors_and_metadata_encode_to_the_same_bytes_in_name_order() {
    let a = ArrayD::from_elem(IxDyn(&[2, 3]), 0.5f32);
    let b = ArrayD::from_elem(IxDyn(&[3]), -1.0f32);
    let keys = [
        "step",
        "progress",
        "best",
        "experiment",
        "format",
        "optimizer_steps",
    ];
    let metadata: Metadata = keys
        .iter()
        .map(|k| (k.to_string(), format!("\"{k}\" value")))
        .collect();
    let first = encode([("z.weight", &a), ("a.bias", &b)], &metadata).unwrap();
    for _ in 0..5 {
        let again = encode([("a.bias", &b), ("z.weight", &a)], &metadata).unwrap();
        assert_eq!(again, first);
    }
    let n = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0);
    let header = std::str::from_utf8(&first[8..8 + n]).unwrap();
    let at = |key: &str| header.find(&format!("\"{key}\"")).unwrap();
    let mut sorted = keys;
    sorted.sort();
    assert!(sorted.windows(2).all(|w| at(w[0]) < at(w[1])), "{header}");
    assert!(at("__metadata__") < at("a.bias") && at("a.bias") < at("z.weight"));
    let (tensors, back) = decode(&first, std::path::Path::new("mem")).unwrap();
    assert_eq!(back, metadata);
    assert_eq!(tensors["a.bias"], b.mapv(f64::from));
    assert_eq!(tensors["z.weight"], a.mapv(f64::from));
    let empty = encode::<f32>([], &metadata).unwrap();
    assert_eq!(
        decode(&empty, std::path::Path::new("mem")).unwrap().1,
        metadata
    );
    // With one key there is no order to choose: the bytes are safetensors' own.
    let one = Metadata::from([("step".to_owned(), "7".to_owned())]);
    let data: Vec<u8> = b.iter().flat_map(|x| x.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3], &data);
    let theirs = safetensors::serialize(
        [("a.bias", view.unwrap())],
        Some(one.clone().into_iter().collect()),
    );
    assert_eq!(encode([("a.bias", &b)], &one).unwrap(), theirs.unwrap());
}

#[test]
fn non_finite_and_foreign_tensors_are_refused_by_name() {
    let mut store = ParamStore::<f32>::new();
    store.add("a.weight", ArrayD::from_elem(IxDyn(&[2, 3]), 0.5f32));
    let path = Path::new("mem.safetensors");
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut w = store.get(store.id("a.weight").unwrap()).clone();
        w[[1, 2]] = bad;
        let bytes = encode([("a.weight", &w)], &Metadata::new()).unwrap();
        let (tensors, _) = decode(&bytes, path).unwrap();
        let err = checkpoint::load_into(&mut store.clone(), &tensors, path).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::NonFinite { name, index: 5, .. } if name == "a.weight"),
            "{err}"
        );
        let err = load_grads(&store, &tensors, "", path).unwrap_err();
        assert!(err.to_string().contains("non-finite"), "{err}");
    }
    let w = store.get(store.id("a.weight").unwrap()).clone();
    let bytes = encode([("a.weight", &w), ("b.weight", &w)], &Metadata::new()).unwrap();
    let (tensors, _) = decode(&bytes, path).unwrap();
    checkpoint::load_into(&mut store.clone(), &tensors, path).unwrap();
    let err = checkpoint::check_no_extra(&store, &tensors, &[], path).unwrap_err();
    assert!(
        err.to_string().contains("`b.weight` is not a parameter"),
        "{err}"
    );
    checkpoint::check_no_extra(&store, &tensors, &["b."], path).unwrap();
}

/// A real checkpoint: a small RMC's parameters and Adam-style buffers, with experiment metadata.
fn real_checkpoint() -> &'static (Vec<u8>, Experiment) {
    static BYTES: OnceLock<(Vec<u8>, Experiment)> = OnceLock::new();
    BYTES.get_or_init(|| {
        let mut experiment = Experiment::new(
            TaskKind::NthFarthest.default_config(),
            ModelKind::Rmc,
            TrainConfig::default(),
        )
        .unwrap();
        if let relational_rnn::nn::CoreConfig::Rmc(rmc) = &mut experiment.model.core {
            (rmc.mem_slots, rmc.num_heads, rmc.head_size) = (2, 2, 4);
        }
        experiment.model.head_hidden = vec![8];
        let (_, store) = experiment.init().unwrap();
        let mut named: Vec<(String, ArrayD<f32>)> = store
            .iter()
            .map(|(_, n, v)| (n.to_owned(), v.clone()))
            .collect();
        for (_, n, v) in store.iter() {
            named.push((format!("optim.m.{n}"), v.mapv(|x| x / 2.0)));
        }
        let metadata = Metadata::from([
            ("step".into(), "7".into()),
            (
                "experiment".into(),
                serde_json::to_string(&experiment).unwrap(),
            ),
        ]);
        let bytes = encode(named.iter().map(|(n, v)| (n.as_str(), v)), &metadata).unwrap();
        (bytes, experiment)
    })
}

/// Reads `bytes` from a file through [`checkpoint::read`] and, when that succeeds, loads them
/// into the real checkpoint's network: either step may fail, neither may panic.
fn read_and_load(bytes: &[u8], case: u64) -> Result<(), CheckpointError> {
    let name = format!("rrnn-ckpt-fuzz-{}-{case}.safetensors", std::process::id());
    let path: PathBuf = std::env::temp_dir().join(name);
    std::fs::write(&path, bytes).unwrap();
    let read = checkpoint::read(&path);
    std::fs::remove_file(&path).unwrap();
    let (tensors, metadata) = read?;
    let (_, mut store) = real_checkpoint().1.init().unwrap();
    checkpoint::load_into(&mut store, &tensors, &path)?;
    checkpoint::check_no_extra(&store, &tensors, &["optim."], &path)?;
    load_grads(&store, &tensors, "optim.m.", &path)?;
    if let Some(text) = metadata.get("experiment") {
        let _ = serde_json::from_str::<Experiment>(text).map(|e| e.memory_estimate());
    }
    Ok(())
}

/// The safetensors header: its length prefix and JSON text.
fn header_len(bytes: &[u8]) -> usize {
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

#[test]
fn the_real_checkpoint_reads_and_loads() {
    read_and_load(&real_checkpoint().0, u64::MAX).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn truncated_checkpoints_never_panic(cut in 0usize..100_000, case in any::<u64>()) {
        let bytes = &real_checkpoint().0;
        let cut = cut % bytes.len();
        prop_assert!(read_and_load(&bytes[..cut], case).is_err());
    }

    #[test]
    fn checkpoints_with_flipped_bytes_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        in_header in any::<bool>(),
        case in any::<u64>(),
    ) {
        let mut bytes = real_checkpoint().0.clone();
        let end = if in_header { 8 + header_len(&bytes) } else { bytes.len() };
        for (at, value) in edits {
            bytes[at.index(end)] = value;
        }
        let _ = read_and_load(&bytes, case);
    }

    #[test]
    fn checkpoints_with_forged_header_numbers_never_panic(
        which in any::<prop::sample::Index>(),
        number in prop_oneof![
            Just("18446744073709551615".to_owned()),
            Just("18446744073709551616".to_owned()),
            Just("4294967296".to_owned()),
            Just("-1".to_owned()),
            Just("0".to_owned()),
            Just("1e308".to_owned()),
            (0u64..1 << 40).prop_map(|n| n.to_string()),
        ],
        case in any::<u64>(),
    ) {
        // Replace one number of the header's JSON (a shape, an offset, a metadata value) and fix
        // the length prefix, so the parser gets past the prefix to the values.
        let bytes = &real_checkpoint().0;
        let n = header_len(bytes);
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        let starts: Vec<usize> = header
            .char_indices()
            .filter(|&(i, c)| {
                c.is_ascii_digit() && !header[..i].ends_with(|p: char| p.is_ascii_digit() || p == '.')
            })
            .map(|(i, _)| i)
            .collect();
        let start = starts[which.index(starts.len())];
        let len = header[start..].find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
        let forged = format!("{}{number}{}", &header[..start], &header[start + len..]);
        let mut out = (forged.len() as u64).to_le_bytes().to_vec();
        out.extend(forged.as_bytes());
        out.extend(&bytes[8 + n..]);
        let _ = read_and_load(&out, case);
    }

    #[test]
    fn forged_length_prefixes_never_panic(prefix in any::<u64>(), case in any::<u64>()) {
        let mut bytes = real_checkpoint().0.clone();
        bytes[..8].copy_from_slice(&prefix.to_le_bytes());
        let _ = read_and_load(&bytes, case);
    }
}
