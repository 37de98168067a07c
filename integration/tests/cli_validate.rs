//! `brisk validate` (issue 14) against the corpus in integration/validate-corpus: for every
//! NAME.json, NAME.expected lists the exact problems `brisk validate --bundle` reports (text form,
//! without the file name) and the accept/refuse decision of brisk and of runc 1.1.5.
//!
//! `corpus_create_decision` runs `create` with each config, runc and brisk side by side: runc must
//! decide as recorded, and brisk's `create` must decide as its own `validate` does (one code path:
//! the same checks, fail-fast for create, collect-all for validate). runc has no `validate`, so the
//! tests of the command itself run brisk only; the reference for them is the runc decision above.
//!
//! INTENDED_DIFFERENCES (recorded in the .expected files as runc accepting, brisk refusing):
//! `capability-spelling` (runc ignores a capability not spelled CAP_*, brisk refuses it: README
//! "Differences from runc") and `oci-version` (runc 1.1.5 does not look at ociVersion; brisk
//! refuses a version that is not 1.x, which it cannot claim to implement).

use std::fs;
use std::path::{Path, PathBuf};

use brisk_integration::bundle::Bundle;
use brisk_integration::runtime_cli::{path_str, CmdResult, RuntimeUnderTest};
use brisk_integration::runtime_tests;
use serde_json::Value;

runtime_tests!(corpus_create_decision);

struct Item {
    name: String,
    config: Vec<u8>,
    brisk_accepts: bool,
    runc_accepts: bool,
    problems: Vec<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("validate-corpus")
}

fn corpus() -> Vec<Item> {
    let mut names: Vec<String> = fs::read_dir(corpus_dir())
        .expect("reading validate-corpus")
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 15, "corpus too small: {names:?}");
    names
        .into_iter()
        .map(|name| {
            let config = fs::read(corpus_dir().join(format!("{name}.json"))).expect("config");
            let expected = fs::read_to_string(corpus_dir().join(format!("{name}.expected"))).unwrap_or_else(|e| panic!("{name}.expected: {e}"));
            let verdict = |who: &str| match expected.lines().find_map(|l| l.strip_prefix(&format!("# {who}: "))) {
                Some("accepted") => true,
                Some("refused") => false,
                other => panic!("{name}.expected: no '# {who}: accepted|refused' line ({other:?})"),
            };
            let problems = expected.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(str::to_owned).collect();
            Item { brisk_accepts: verdict("brisk"), runc_accepts: verdict("runc-1.1.5"), name, config, problems }
        })
        .collect()
}

/// A busybox bundle whose config.json is exactly the corpus file (byte for byte: the expected
/// line:column refer to it).
fn bundle_with(item: &Item) -> Bundle {
    let b = Bundle::new();
    fs::write(b.path().join("config.json"), &item.config).expect("writing config.json");
    b
}

fn validate(args: &[&str]) -> CmdResult {
    let rt = RuntimeUnderTest::brisk();
    let mut a = vec!["validate"];
    a.extend_from_slice(args);
    rt.cmd(&a)
}

/// The problem lines of a text report, without the "FILE:" prefix and the summary line.
fn problem_lines(r: &CmdResult, file: &Path) -> Vec<String> {
    let prefix = format!("{}:", file.display());
    r.stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|l| !l.starts_with(" accepted:") && !l.starts_with(" refused:"))
        .map(|l| l.trim_start().to_owned())
        .collect()
}

fn corpus_create_decision(rt: &RuntimeUnderTest) {
    let mut wrong = Vec::new();
    for item in corpus() {
        let b = bundle_with(&item);
        let id = rt.new_id("vcorpus");
        let r = rt.cmd_to_files(&["create", "--bundle", path_str(b.path()), &id], &b, &id);
        let created = r.status.success();
        if created {
            rt.delete_force(&id).ok();
        }
        rt.assert_nothing_left(&id);
        if rt.is_runc() {
            if created != item.runc_accepts {
                wrong.push(format!("{}: runc create {} but the corpus records {}\n{}", item.name, created, item.runc_accepts, r.stderr));
            }
        } else {
            let v = validate(&["--bundle", path_str(b.path())]);
            let accepted = match v.code() {
                0 => true,
                1 => false,
                other => panic!("{}: validate exited {other}:\n{}{}", item.name, v.stdout, v.stderr),
            };
            if created != accepted || created != item.brisk_accepts {
                wrong.push(format!("{}: brisk create {created}, validate {accepted}, corpus {}\ncreate: {}\nvalidate: {}", item.name, item.brisk_accepts, r.stderr, v.stdout));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn validate_reports_exactly_the_expected_problems() {
    let mut wrong = Vec::new();
    for item in corpus() {
        let b = bundle_with(&item);
        let r = validate(&["--bundle", path_str(b.path())]);
        let file = fs::canonicalize(b.path()).expect("bundle").join("config.json");
        let got = problem_lines(&r, &file);
        if got != item.problems || (r.code() == 0) != item.brisk_accepts {
            wrong.push(format!("{}: exit {}\nexpected:\n{}\ngot:\n{}\n{}", item.name, r.code(), item.problems.join("\n"), got.join("\n"), r.stderr));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn json_output_has_the_documented_shape() {
    for item in corpus() {
        let b = bundle_with(&item);
        let text = validate(&["--bundle", path_str(b.path())]);
        let r = validate(&["--format", "json", "--bundle", path_str(b.path())]);
        assert_eq!(r.code(), text.code(), "{}", item.name);
        let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{}: not JSON ({e}):\n{}", item.name, r.stdout));
        let arr = v.as_array().unwrap_or_else(|| panic!("{}: not an array", item.name));
        assert_eq!(arr.len(), item.problems.len(), "{}: {}", item.name, r.stdout);
        for p in arr {
            let o = p.as_object().expect("object");
            let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
            keys.sort();
            assert_eq!(keys, ["column", "hint", "line", "message", "path", "severity"], "{}", item.name);
            assert!(matches!(o["severity"].as_str(), Some("error" | "warning" | "note")), "{p}");
            assert!(o["line"].is_u64() && o["column"].is_u64(), "{p}");
            assert!(o["path"].is_string() && o["message"].is_string() && o["hint"].is_string(), "{p}");
            // The same problem is in the text report.
            let line = format!(
                "{}{}: {}: {}",
                if o["line"].as_u64() > Some(0) { format!("{}:{}: ", o["line"], o["column"]) } else { String::new() },
                o["severity"].as_str().unwrap_or_default(),
                o["path"].as_str().unwrap_or_default(),
                o["message"].as_str().unwrap_or_default()
            );
            assert!(item.problems.iter().any(|l| l.starts_with(&line)), "{}: {line:?} not in {:?}", item.name, item.problems);
        }
    }
}

#[test]
fn bad_input_exits_2_with_one_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.json");
    let not_json = dir.path().join("bad.json");
    fs::write(&not_json, "{\"ociVersion\": ").expect("write");
    let array = dir.path().join("array.json");
    fs::write(&array, "[1]").expect("write");
    let big = dir.path().join("big.json");
    let f = fs::File::create(&big).expect("create");
    f.set_len((16 << 20) + 1).expect("set_len");
    let empty_dir = dir.path().join("bundle");
    fs::create_dir(&empty_dir).expect("mkdir");
    for (args, want) in [
        (vec![path_str(&missing)], "No such file"),
        (vec![path_str(&not_json)], "not JSON"),
        (vec![path_str(&array)], "not a JSON object"),
        (vec![path_str(&big)], "16 MiB"),
        (vec!["--bundle", path_str(&empty_dir)], "no config.json"),
        (vec![path_str(&empty_dir)], "no config.json"),
        (vec!["--bundle", path_str(&not_json)], "not a directory"),
    ] {
        let r = validate(&args);
        assert_eq!(r.code(), 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn strict_turns_warnings_into_refusal() {
    let item = corpus().into_iter().find(|i| i.name == "unknown-keys").expect("unknown-keys");
    let b = bundle_with(&item);
    assert_eq!(validate(&["--bundle", path_str(b.path())]).code(), 0);
    assert_eq!(validate(&["--strict", "--bundle", path_str(b.path())]).code(), 1);
    // Notes (respelled keys) never refuse, even with --strict.
    let item = corpus().into_iter().find(|i| i.name == "tutorial-spellings").expect("tutorial-spellings");
    let b = bundle_with(&item);
    assert_eq!(validate(&["--strict", "--bundle", path_str(b.path())]).code(), 0);
}

#[test]
fn a_lone_file_is_checked_without_its_rootfs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let item = corpus().into_iter().find(|i| i.name == "valid").expect("valid");
    let file = dir.path().join("config.json");
    fs::write(&file, &item.config).expect("write");
    // No rootfs next to it: a file is linted alone; the bundle form would refuse.
    let r = validate(&[path_str(&file)]);
    assert_eq!(r.code(), 0, "{}", r.stdout);
    assert!(r.stdout.contains("root.path: not checked"), "{}", r.stdout);
    let r = validate(&["--bundle", path_str(dir.path())]);
    assert_eq!(r.code(), 1, "{}", r.stdout);
    assert!(r.stdout.contains("error: root.path"), "{}", r.stdout);
}

#[test]
fn seccomp_report_compares_with_the_default_profile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut v: Value = serde_json::from_slice(&corpus().into_iter().find(|i| i.name == "valid").expect("valid").config).expect("json");
    v["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["read", "write", "exit_group", "unshare", "init_module", "keyctl", "opne"], "action": "SCMP_ACT_ALLOW"}]
    });
    let file = dir.path().join("config.json");
    fs::write(&file, serde_json::to_vec_pretty(&v).expect("json")).expect("write");
    let r = validate(&["--seccomp-report", "--format", "json", path_str(&file)]);
    assert_eq!(r.code(), 0, "{}{}", r.stdout, r.stderr);
    let problems: Vec<Value> = serde_json::from_str(&r.stdout).expect("json");
    let msgs: Vec<String> = problems.iter().map(|p| format!("{} {} {} {}", p["severity"], p["path"], p["message"], p["hint"])).collect();
    let has = |s: &str| msgs.iter().any(|m| m.contains(s));
    assert!(has("allows 1 syscall(s) brisk's default profile denies [namespace creation]: unshare"), "{msgs:#?}");
    assert!(has("[module loading]: init_module"), "{msgs:#?}");
    assert!(has("[kernel keyring]: keyctl"), "{msgs:#?}");
    assert!(has("denies") && has("[other]"), "{msgs:#?}");
    assert!(has("\"warning\" \"linux.seccomp.syscalls[0].names[6]\" \"\\\"opne\\\" is not a syscall libseccomp knows"), "{msgs:#?}");
    assert!(has("did you mean \\\"open\\\"?"), "{msgs:#?}");
    // Without the report the profile is accepted silently, and --strict counts the unknown name.
    assert_eq!(validate(&[path_str(&file)]).code(), 0);
    assert_eq!(validate(&["--seccomp-report", "--strict", path_str(&file)]).code(), 1);
}

#[test]
fn host_mode_checks_this_machine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut v: Value = serde_json::from_slice(&corpus().into_iter().find(|i| i.name == "valid").expect("valid").config).expect("json");
    // A namespace path that is not a namespace: only --host looks at the machine.
    v["linux"]["namespaces"][1] = serde_json::json!({"type": "network", "path": "/dev/null"});
    let file = dir.path().join("config.json");
    fs::write(&file, serde_json::to_vec_pretty(&v).expect("json")).expect("write");
    let r = validate(&[path_str(&file)]);
    assert_eq!(r.code(), 0, "{}", r.stdout);
    let r = validate(&["--host", path_str(&file)]);
    assert_eq!(r.code(), 1, "{}", r.stdout);
    assert!(r.stdout.contains("linux.namespaces[1].path"), "{}", r.stdout);
}
