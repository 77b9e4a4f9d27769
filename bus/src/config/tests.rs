//! The loader: defaults, key paths of every problem, salvaged entries.

use super::*;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(Path::new("/etc/lienthong/bus.toml"), text)
}

const GOOD: &str = r#"
[bus]
broker_url = "memory://"
[[agencies]]
code = "000.00.00.H40"
token_env = "LT_TOKEN_H40"
[[adapters]]
id = "stp-inbox"
type = "webhook"
url = "http://127.0.0.1:9101/inbox"
[[routes]]
id = "r1"
types = ["dossier.submitted"]
from = ["000.00.00.H40"]
deliver = ["stp-inbox"]
"#;

#[test]
fn good_config_loads_with_defaults() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.bus.namespace, "lienthong");
    assert_eq!(c.routes[0].retry, RetryPolicy::default());
    assert_eq!(c.adapters[0].kind, "webhook");
    assert!(c.adapters[0].options.contains_key("url"));
    assert_eq!(c.schemas_dir(), Path::new("/etc/lienthong/../schemas"));
}

#[test]
fn every_problem_is_listed_with_its_key_path() {
    let bad = GOOD.replace(
        "deliver = [\"stp-inbox\"]",
        "deliver = [\"nope\"]\nbogus = 1",
    ) + "\n[[routes]]\nid = \"r2\"\ntypes = [\"x\"]\ndeliver = [\"stp-inbox\", \"missing\"]\nfrom = [\"H40\"]\n";
    let err = parse(&bad).unwrap_err();
    let paths: Vec<_> = err.problems.iter().map(|p| p.path.as_str()).collect();
    // routes[0] has an unknown key; it is read without it, so its deliver is checked too.
    assert!(paths.contains(&"routes[0].bogus"), "{paths:?}");
    assert!(paths.contains(&"routes[0].deliver[0]"), "{paths:?}");
    assert!(paths.contains(&"routes[1].deliver[1]"), "{paths:?}");
    assert!(paths.contains(&"routes[1].from[0]"), "{paths:?}");
}

#[test]
fn copy_layout_defaults_by_state_store_and_names_what_it_takes() {
    let with_layout = |text: &str, layout: u8| {
        text.replace(
            "broker_url = \"memory://\"",
            &format!("broker_url = \"memory://\"\ncopy_layout = {layout}"),
        )
    };
    // One process on SQLite: layout 2. PostgreSQL (several processes, maybe of different builds): layout 1.
    assert_eq!(parse(GOOD).unwrap().copy_layout(), 2);
    let pg = format!("{GOOD}\n[state]\nurl = \"postgres://bus@db/lienthong\"\n");
    assert_eq!(parse(&pg).unwrap().copy_layout(), 1);
    assert_eq!(parse(&with_layout(&pg, 2)).unwrap().copy_layout(), 2);
    assert_eq!(parse(&with_layout(GOOD, 1)).unwrap().copy_layout(), 1);
    for bad in ["0", "3"] {
        let text = GOOD.replace(
            "broker_url = \"memory://\"",
            &format!("broker_url = \"memory://\"\ncopy_layout = {bad}"),
        );
        let err = parse(&text).unwrap_err();
        let p = &err.problems[0];
        assert_eq!(p.path, "bus.copy_layout");
        assert!(p.message.contains("must be 1 or 2"), "{}", p.message);
    }
}

#[test]
fn unknown_keys_and_bad_codes_are_named() {
    let bad = GOOD
        .replace("broker_url", "brokr_url")
        .replace("000.00.00.H40\"\ntoken", "H 40\"\ntoken");
    let err = parse(&bad).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("bus.brokr_url"), "{text}");
    assert!(text.contains("agencies[0].code"), "{text}");
}

#[test]
fn syntax_errors_name_the_line() {
    let err = parse("[bus]\nbroker_url = \n").unwrap_err();
    assert!(
        err.problems[0].message.contains("line 2"),
        "{:?}",
        err.problems
    );
}

#[test]
fn qd20_codes_map_to_qcvn102_and_are_checked() {
    let c = parse(&GOOD.replace(
        "token_env = \"LT_TOKEN_H40\"",
        "token_env = \"LT_TOKEN_H40\"\nqd20_code = \"H40\"",
    ))
    .unwrap();
    assert_eq!(
        c.qd20_to_qcvn102().get("H40").map(String::as_str),
        Some("000.00.00.H40")
    );
    assert_eq!(c.qd20_of("000.00.00.H40"), Some("H40"));
    let bad =
        parse(&GOOD.replace("token_env = \"LT_TOKEN_H40\"", "qd20_code = \"H 40!\"")).unwrap_err();
    assert_eq!(bad.problems[0].path, "agencies[0].qd20_code");
}

#[test]
fn other_codes_name_their_agency_and_no_code_names_two() {
    let two = GOOD.replace(
        "token_env = \"LT_TOKEN_H40\"",
        "token_env = \"LT_TOKEN_H40\"\nqd20_code = \"H40\"\nother_codes = [\"020100107370\"]\n\
         [[agencies]]\ncode = \"000.00.00.G12\"\nqd20_code = \"G12\"",
    );
    let c = parse(&two).unwrap();
    for code in ["000.00.00.H40", "H40", "020100107370"] {
        assert!(c.is_code_of("000.00.00.H40", code), "{code}");
        assert_eq!(c.canonical_code(code), "000.00.00.H40");
    }
    assert!(!c.is_code_of("000.00.00.H40", "G12"));
    assert!(!c.is_code_of("000.00.00.G12", "020100107370"));
    assert_eq!(c.canonical_code("H37.02.02"), "H37.02.02");
    assert_eq!(
        c.agencies[0].codes().collect::<Vec<_>>(),
        ["000.00.00.H40", "H40", "020100107370"]
    );
    // A route may name a sender by any of its codes.
    assert!(parse(&two.replace("from = [\"000.00.00.H40\"]", "from = [\"020100107370\"]")).is_ok());

    // A code claimed by a second agency, in any of the three keys, is refused where it is claimed again.
    for (claim, path) in [
        (
            "other_codes = [\"020100107370\"]",
            "agencies[1].other_codes[0]",
        ),
        (
            "other_codes = [\"000.00.00.H40\"]",
            "agencies[1].other_codes[0]",
        ),
        ("other_codes = [\"H40\"]", "agencies[1].other_codes[0]"),
    ] {
        let err = parse(&two.replace("qd20_code = \"G12\"", claim)).unwrap_err();
        let p = err.problems.iter().find(|p| p.path == path);
        assert!(
            p.is_some_and(|p| p.message.contains("agencies[0]")),
            "{claim}: {:?}",
            err.problems
        );
    }
    let err = parse(&two.replace("qd20_code = \"G12\"", "qd20_code = \"H40\"")).unwrap_err();
    assert_eq!(
        err.problems[0].path, "agencies[1].qd20_code",
        "{:?}",
        err.problems
    );
    // The same agency repeating one of its codes is harmless.
    assert!(parse(&two.replace("[\"020100107370\"]", "[\"020100107370\", \"H40\"]")).is_ok());
    // Other codes are read with the core's generic rule (the domain judges them again).
    let err = parse(&two.replace("[\"020100107370\"]", "[\"02 01\"]")).unwrap_err();
    assert_eq!(
        err.problems[0].path, "agencies[0].other_codes[0]",
        "{:?}",
        err.problems
    );
}

#[test]
fn retry_policy_repeats_the_last_delay() {
    let p = RetryPolicy {
        attempts: 3,
        backoff: vec![HumanDuration::secs(1), HumanDuration::secs(5)],
    };
    assert_eq!(p.delay_before_retry(1).unwrap().as_secs(), 1);
    assert_eq!(p.delay_before_retry(3).unwrap().as_secs(), 5);
    assert_eq!(p.delay_before_retry(4), None);
}

fn parse_all(text: &str) -> (Config, Vec<String>) {
    let (c, problems) = Config::parse_all(Path::new("/etc/lienthong/bus.toml"), text).unwrap();
    let problems = problems
        .into_iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect();
    (c, problems)
}

#[test]
fn an_entry_with_a_bad_key_is_read_without_it_and_checked_on() {
    let text = GOOD
        .replace(
            "token_env = \"LT_TOKEN_H40\"",
            "token_env = \"LT_TOKEN_H40\"\ntokn = 1",
        )
        .replace(
            "broker_url = \"memory://\"",
            "broker_url = \"memory://\"\nprefetch = \"many\"",
        )
        .replace(
            "from = [\"000.00.00.H40\"]",
            "from = [\"000.00.00.H40\", 5]\nretry = { attempts = 2, bogus = true }",
        );
    let (c, problems) = parse_all(&text);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    for want in [
        "agencies[0].tokn: unknown field `tokn`",
        "bus.prefetch: invalid type",
        "routes[0].from[1]: invalid type",
        "routes[0].retry.bogus: unknown field `bogus`",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(want)),
            "{want}: {problems:#?}"
        );
    }
    // What could be read was kept, with defaults where a key was taken out.
    assert_eq!(c.agencies[0].token_env.as_deref(), Some("LT_TOKEN_H40"));
    assert_eq!(c.bus.prefetch, BusConfig::default().prefetch);
    assert_eq!(c.routes[0].from, None);
    assert_eq!(c.routes[0].retry.attempts, 2);
    assert!(
        parse(&text).is_err(),
        "a salvaged config is never good to run"
    );
}

#[test]
fn a_required_key_that_cannot_be_read_is_reported_once() {
    // `deliver` is required: the route cannot stand without it, and that is one problem, not two.
    let (c, problems) =
        parse_all(&GOOD.replace("deliver = [\"stp-inbox\"]", "deliver = \"stp-inbox\""));
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with("routes[0].deliver: invalid type"),
        "{problems:#?}"
    );
    assert!(c.routes.is_empty());
    // An adapter whose type is unusable still has its id, so the route naming it is not reported.
    let (_, problems) = parse_all(&GOOD.replace("type = \"webhook\"", "type = 7"));
    assert_eq!(
        problems,
        vec!["adapters[0].type: must be a string".to_owned()]
    );
}

#[test]
fn what_follows_from_a_default_put_in_place_of_a_bad_key_is_not_reported() {
    // `namespace = 5` falls back to the default, which is fine; a problem found later at the same key is
    // the one already reported.
    let mut problems = vec![Problem::new("bus.schemas_dir", "invalid type")];
    add_unless_explained(
        &mut problems,
        vec![
            Problem::new("bus.schemas_dir", "`../schemas` is not a folder"),
            Problem::new("bus.schemas_dir_x", "kept: another key"),
            Problem::new("agencies[0].token_env", "kept"),
        ],
    );
    let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "bus.schemas_dir",
            "bus.schemas_dir_x",
            "agencies[0].token_env"
        ]
    );
    let mut problems = vec![Problem::new("routes[1]", "missing field `id`")];
    add_unless_explained(
        &mut problems,
        vec![
            Problem::new("routes[1].types[0]", "x"),
            Problem::new("routes[10].types[0]", "kept"),
        ],
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[test]
fn order_keys_are_checked_at_their_key_paths() {
    let ordered = GOOD.replace(
        "deliver = [\"stp-inbox\"]",
        "deliver = [\"stp-inbox\"]\norder_by = \"/payload/case_id\"",
    );
    let c = parse(&ordered).unwrap();
    assert_eq!(c.routes[0].order_by.as_deref(), Some("/payload/case_id"));
    assert_eq!(c.routes[0].partitions(), route::DEFAULT_ORDER_PARTITIONS);
    assert_eq!(
        crate::order::ordered_adapters(&c).0,
        BTreeMap::from([("stp-inbox".to_string(), 16)])
    );
    let problems = |text: &str| {
        parse(text)
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect::<Vec<_>>()
    };
    let bad = ordered.replace("\"/payload/case_id\"", "\"payload/case_id\"");
    let p = problems(&bad);
    assert!(
        p.iter()
            .any(|p| p.starts_with("routes[0].order_by: `payload/case_id` is not a JSON pointer")),
        "{p:?}"
    );
    let bad = ordered.replace("\"/payload/case_id\"", "\"/payload/case~id\"");
    assert!(
        problems(&bad)
            .iter()
            .any(|p| p.starts_with("routes[0].order_by:") && p.contains("~0")),
    );
    let bad = GOOD.replace(
        "deliver = [\"stp-inbox\"]",
        "deliver = [\"stp-inbox\"]\norder_partitions = 4",
    );
    assert!(problems(&bad).iter().any(|p| {
        p.starts_with("routes[0].order_partitions: only means something with `order_by`")
    }));
    let bad = ordered.clone() + "order_partitions = 0\n";
    assert!(
        problems(&bad)
            .iter()
            .any(|p| p == "routes[0].order_partitions: must be 1 to 1024")
    );
    // Two ordered routes sharing an adapter must agree on its partitions.
    let bad = ordered.clone()
        + "\n[[routes]]\nid = \"r2\"\ntypes = [\"x\"]\ndeliver = [\"stp-inbox\"]\norder_by = \"/correlation_id\"\norder_partitions = 4\n";
    let p = problems(&bad);
    assert!(
        p.iter()
            .any(|p| p.starts_with("routes[1].order_partitions:")
                && p.contains("already has 16 order partitions from routes[0]")),
        "{p:?}"
    );
}

#[test]
fn limits_that_would_refuse_every_message_are_refused_at_their_keys() {
    let bad = GOOD.replace(
        "broker_url = \"memory://\"",
        "broker_url = \"memory://\"\ndelivery_limit = 0\n[http]\nmax_body_bytes = 0\nmax_json_depth = 1",
    );
    let err = parse(&bad).unwrap_err();
    let paths: Vec<_> = err.problems.iter().map(|p| p.path.as_str()).collect();
    for key in [
        "bus.delivery_limit",
        "http.max_body_bytes",
        "http.max_json_depth",
    ] {
        assert!(paths.contains(&key), "{key}: {paths:?}");
    }
}

#[test]
fn listen_addresses_run_could_not_bind_are_refused_at_their_keys() {
    for (listen, want) in [
        ("[http]\nlisten = \"not-an-addr\"", "http.listen"),
        ("[admin]\nlisten = \"127.0.0.1:99999\"", "admin.listen"),
        (
            "[http]\nlisten = \"127.0.0.1:18080\"\n[admin]\nlisten = \"127.0.0.1:18080\"",
            "admin.listen",
        ),
    ] {
        let bad = GOOD.replace(
            "broker_url = \"memory://\"",
            &format!("broker_url = \"memory://\"\n{listen}"),
        );
        let err = parse(&bad).unwrap_err();
        let paths: Vec<_> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, [want], "{listen}");
    }
}
