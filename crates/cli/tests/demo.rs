//! `sandbar demo`, the README's first command, on every example: the
//! binary serves the scenario, drives its scripted session (every tool with
//! its examples, every resource and prompt) and prints the timeline. An
//! example whose templates fail at run time fails here, not in a user's
//! first run.

mod common;

use std::path::PathBuf;

use common::*;

/// Every example scenario, with whether it declares upstreams.
fn examples() -> Vec<(PathBuf, bool)> {
    let mut found: Vec<(PathBuf, bool)> = std::fs::read_dir(repo().join("examples"))
        .expect("read examples")
        .filter_map(|entry| {
            let path = entry.ok()?.path().join("scenario.yaml");
            path.is_file().then_some(path)
        })
        .map(|path| {
            let scenario = sandbar_scenario::load_path(&path)
                .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.detailed()));
            let upstreams = !scenario.upstreams.is_empty();
            (path, upstreams)
        })
        .collect();
    found.sort();
    found
}

#[test]
fn the_demo_runs_every_example_without_upstreams_to_the_end() {
    let all = examples();
    assert!(all.iter().filter(|(_, up)| !up).count() >= 4, "{all:?}");
    for (path, upstreams) in all {
        let data = tempfile::tempdir().expect("tempdir");
        let out = sandbar()
            .current_dir(repo())
            .arg("demo")
            .arg(&path)
            .arg("--data")
            .arg(data.path())
            .output()
            .expect("run sandbar demo");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if upstreams {
            // Refused in plain words, with what to do instead.
            assert_eq!(
                out.status.code(),
                Some(2),
                "{}: {stdout}{stderr}",
                path.display()
            );
            assert!(stderr.contains("declares upstreams"), "{stderr}");
            assert!(stderr.contains("sandbar serve"), "{stderr}");
            assert!(!stdout.contains("Serving"), "{stdout}");
            continue;
        }
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {stdout}{stderr}",
            path.display()
        );
        assert!(
            !stdout.contains("scenario error"),
            "{}: {stdout}",
            path.display()
        );
        assert!(stdout.contains("run/end"), "{}: {stdout}", path.display());
    }
}
