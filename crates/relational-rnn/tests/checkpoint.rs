//! Checkpoints: an interrupted atomic write keeps the old file, optimiser buffers saved under a
//! prefix load back exactly, and the same tensors and metadata always encode to the same bytes.

use std::io::Write;

use relational_rnn::ParamStore;
use relational_rnn::checkpoint::{
    CheckpointError, Metadata, decode, encode, is_temporary, load_grads, write_atomic,
    write_atomic_with,
};
use relational_rnn::ndarray::{ArrayD, IxDyn};

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
