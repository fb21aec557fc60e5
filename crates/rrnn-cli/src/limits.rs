//! What this machine allows a command: memory and CPUs, checked before anything is allocated or
//! written.
//!
//! Memory: a command's estimate (`relational_rnn::memory`, a rough upper bound from the
//! configuration alone) is compared with the memory this process may still take: the smallest of
//! the kernel's `MemAvailable`, the headroom (limit − usage) of every cgroup above the process
//! (v2 `memory.max`, v1 `memory.limit_in_bytes`) and the address-space limit less the process's
//! current size. When none of these can be read, the check is skipped.
//!
//! Threads: `rrnn train --threads` above the CPUs available is lowered to their count with a
//! one-line warning; the results are the same bits for any count, so only speed is at stake.

use std::fs;
use std::path::PathBuf;

use relational_rnn::experiment::Experiment;

/// Bytes as `12.3 GiB` (or MiB below one GiB).
pub fn human(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    if bytes == u64::MAX {
        "more than 16 EiB".to_owned()
    } else if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / GIB)
    } else {
        format!("{:.0} MiB", (bytes as f64 / (1u64 << 20) as f64).ceil())
    }
}

/// A number from a one-line file (`None` for `max`, a missing file or anything else).
fn read_number(path: PathBuf) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `Key:   1234 kB` from a `/proc` status file, in bytes.
fn proc_kib(file: &str, key: &str) -> Option<u64> {
    let text = fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The smallest `limit − usage` over the memory cgroup of this process and its ancestors, in the
/// v2 hierarchy or in v1's memory hierarchy.
fn cgroup_headroom(v2: bool) -> Option<u64> {
    let cgroups = fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroups.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (id, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let ours = if v2 {
            id == "0" && controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == "memory")
        };
        ours.then_some(path)
    })?;
    let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (root, mount) = mounts.lines().find_map(|line| {
        let (mount, fs_part) = line.split_once(" - ")?;
        let mut fs_fields = fs_part.split(' ');
        let (kind, _, options) = (fs_fields.next()?, fs_fields.next()?, fs_fields.next()?);
        let ours = if v2 {
            kind == "cgroup2"
        } else {
            kind == "cgroup" && options.split(',').any(|o| o == "memory")
        };
        let mut mount_fields = mount.split(' ').skip(3);
        let (root, point) = (mount_fields.next()?, mount_fields.next()?);
        ours.then_some((root, PathBuf::from(point)))
    })?;
    let (limit, usage) = if v2 {
        ("memory.max", "memory.current")
    } else {
        ("memory.limit_in_bytes", "memory.usage_in_bytes")
    };
    let relative = path.strip_prefix(root).unwrap_or(path);
    let mut dir = mount.join(relative.trim_start_matches('/'));
    let mut headroom: Option<u64> = None;
    loop {
        // v1 reports "no limit" as a number near 2^63.
        if let Some(max) = read_number(dir.join(limit)).filter(|&m| m < 1 << 62) {
            let free = max.saturating_sub(read_number(dir.join(usage)).unwrap_or(0));
            headroom = Some(headroom.map_or(free, |h| h.min(free)));
        }
        if dir == mount || !dir.pop() {
            return headroom;
        }
    }
}

/// The address-space limit less what the process already maps.
fn address_space_headroom() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    let soft: u64 = line["Max address space".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(soft.saturating_sub(proc_kib("/proc/self/status", "VmSize:").unwrap_or(0)))
}

/// Bytes this process may still allocate (see the module doc); `None` when unknown.
pub fn available_memory() -> Option<u64> {
    [
        proc_kib("/proc/meminfo", "MemAvailable:"),
        cgroup_headroom(true),
        cgroup_headroom(false),
        address_space_headroom(),
    ]
    .into_iter()
    .flatten()
    .min()
}

/// Refuses `what` when the parts of its estimate add up to more than [`available_memory`]; the
/// error gives both numbers and the largest part.
pub fn check_memory(parts: &[(String, u64)], what: &str) -> Result<(), String> {
    let needed = parts
        .iter()
        .fold(0u64, |sum, (_, bytes)| sum.saturating_add(*bytes));
    let Some(available) = available_memory() else {
        return Ok(());
    };
    if needed <= available {
        return Ok(());
    }
    let (part, bytes) = parts
        .iter()
        .max_by_key(|(_, bytes)| *bytes)
        .map_or(("", 0), |(p, b)| (p.as_str(), *b));
    let needs = if needed == u64::MAX {
        human(needed)
    } else {
        format!("about {}", human(needed))
    };
    Err(format!(
        "{what} needs {needs} of memory, {} available; the largest part is {part}: {}",
        human(available),
        human(bytes)
    ))
}

/// Refuses a training run whose estimate does not fit (before its directory is created).
pub fn check_training(experiment: &Experiment) -> Result<(), String> {
    let estimate = experiment.memory_estimate().map_err(|e| e.to_string())?;
    check_memory(&estimate.training, "this run")
}

/// `--threads` of `rrnn train`: an integer ≥ 1, lowered with a warning to the CPUs available.
pub fn parse_threads(s: &str) -> Result<u64, String> {
    let n: u64 = s
        .parse()
        .map_err(|e| format!("`{s}` is not a thread count: {e}"))?;
    if n == 0 {
        return Err("must be at least 1".into());
    }
    let cpus = std::thread::available_parallelism().map_or(1, |c| c.get() as u64);
    if n > cpus {
        eprintln!("warning: --threads {n} is more than the {cpus} CPUs available; using {cpus}");
        return Ok(cpus);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_memory_is_known_and_positive_on_linux() {
        let bytes = available_memory().expect("MemAvailable is readable");
        assert!(bytes > 1 << 20, "{bytes}");
    }

    #[test]
    fn sizes_read_as_gib_or_mib() {
        assert_eq!(human(3 << 30), "3.0 GiB");
        assert_eq!(human(5 << 20), "5 MiB");
        assert_eq!(human(u64::MAX), "more than 16 EiB");
    }

    #[test]
    fn a_check_names_both_numbers_and_the_largest_part() {
        let parts = [("small".to_owned(), 1), ("huge".to_owned(), u64::MAX / 2)];
        let e = check_memory(&parts, "this run").unwrap_err();
        assert!(e.starts_with("this run needs about "), "{e}");
        assert!(e.contains(" available; the largest part is huge: "), "{e}");
        assert!(check_memory(&parts[..1], "this run").is_ok());
    }

    #[test]
    fn thread_counts_are_clamped_not_refused() {
        assert_eq!(parse_threads("1"), Ok(1));
        assert!(parse_threads("0").is_err());
        assert!(parse_threads("-3").is_err());
        let cpus = std::thread::available_parallelism().unwrap().get() as u64;
        assert_eq!(parse_threads("100000"), Ok(cpus));
    }
}
