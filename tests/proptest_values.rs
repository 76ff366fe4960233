//! Failures found under proptest are kept as values: the generated scenario's file with the
//! failing schedule in it, which replays on its own, whatever the generator does next.

use proptest::prelude::*;
use pushrace::{Config, Scenario};

const VARIANTS: [&str; 5] = ["v0.17", "v0.18", "v2.0.4", "v2.0.5", "lease-held"];

fn scenario(a: usize, b: usize, tags: bool, containerd: &str) -> Scenario {
    let mut image = toml::Table::new();
    image.insert("ref".into(), "example.com/app:1".into());
    image.insert(
        "platforms".into(),
        vec!["linux/amd64", "linux/arm64"].into(),
    );
    if tags {
        image.insert("tags".into(), vec!["example.com/app:1-ci"].into());
    }
    Scenario::builder()
        .name(&format!(
            "gen-{}-{}-{tags}-{containerd}",
            VARIANTS[a], VARIANTS[b]
        ))
        .containerd(containerd)
        .image_table(image)
        .push("push-a", "example.com/app:1", VARIANTS[a])
        .push(
            "push-b",
            if tags {
                "example.com/app:1-ci"
            } else {
                "example.com/app:1"
            },
            VARIANTS[b],
        )
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn a_failure_is_persisted_as_a_scenario_that_replays(
        a in 0..VARIANTS.len(),
        b in 0..VARIANTS.len(),
        tags in any::<bool>(),
        containerd in prop::sample::select(vec!["1.6", "1.7"]),
    ) {
        let s = scenario(a, b, tags, containerd);
        let dir = std::env::temp_dir().join(format!("pushrace-prop-{}", std::process::id()));
        let found = s.explore(Config::new().regressions(Some(&dir)));
        match found.persist().unwrap() {
            None => {
                prop_assert!(found.holds());
                // A holding scenario's file reloads to the same exploration.
                let again = Scenario::from_toml("again", s.to_toml()).unwrap().explore(Config::new());
                prop_assert!(again.holds());
                prop_assert_eq!(again.executions(), found.executions());
            }
            Some(path) => {
                prop_assert!(!found.holds());
                let saved = Scenario::from_file(&path).unwrap();
                let again = saved.explore(Config::new());
                prop_assert_eq!(again.executions(), 1, "{}", again);
                prop_assert_eq!(again.schedule(), found.schedule());
                prop_assert_eq!(again.message(), found.message());
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
}
