//! Checkpoints: an interrupted atomic write keeps the old file, and optimiser buffers saved under
//! a prefix load back exactly.

use std::io::Write;

use relational_rnn::ParamStore;
use relational_rnn::checkpoint::{
    CheckpointError, Metadata, decode, encode, load_grads, write_atomic, write_atomic_with,
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
