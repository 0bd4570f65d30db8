//! The `policy` section: what loads, what it compiles to, and the errors a
//! mistake gets, each at the line and column of the value at fault.

use std::time::Duration;

use sandbar_scenario::{ConditionVariable, LoadError, PolicyAction, PolicyDefault, load_str};

const HEAD: &str = "version: 1\nname: policy\ntools:\n  - name: issue_refund\n";

fn load(policy: &str) -> Result<sandbar_scenario::Scenario, LoadError> {
    load_str(&format!("{HEAD}policy:\n{policy}"), "p.yaml", None)
}

/// Loads `policy`, expects exactly one problem, at the first occurrence of
/// `at` in the file, whose message contains `fragment`.
fn check_error(policy: &str, at: &str, fragment: &str) {
    let text = format!("{HEAD}policy:\n{policy}");
    let offset = text
        .find(at)
        .unwrap_or_else(|| panic!("`{at}` is not in the test"));
    let line = text[..offset].matches('\n').count() as u64 + 1;
    let column = (offset - text[..offset].rfind('\n').map_or(0, |n| n + 1)) as u64 + 1;
    let error = load(policy).expect_err(policy);
    let LoadError::Invalid { problems, .. } = &error else {
        panic!("expected a semantic error, got {error}");
    };
    assert_eq!(problems.len(), 1, "{error}");
    let problem = &problems[0];
    assert!(problem.message.contains(fragment), "{policy}\n{error}");
    assert_eq!(
        (problem.line, problem.column),
        (line, column),
        "{policy}\n{error}"
    );
    let rendered = error.to_string();
    assert!(
        rendered.starts_with(&format!("p.yaml:{line}:{column}: policy.")),
        "{rendered}"
    );
}

#[test]
fn a_full_policy_compiles() {
    let scenario = load(
        r#"  approval_timeout: 30s
  default: deny
  rules:
    - deny: issue_refund
      when: "args.amount > 500"
      message: "refunds over 500 need a human"
      name: big-refunds
    - approve: "send_*"
      when: "size(calls) > 3"
    - rate_limit: "*"
      calls: 10
      per: 1m
    - allow: "lookup_*"
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let policy = scenario.policy.expect("a policy");
    assert_eq!(policy.approval_timeout, Duration::from_secs(30));
    assert_eq!(policy.default, PolicyDefault::Deny);
    let names: Vec<&str> = policy.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["big-refunds", "rule 2", "rule 3", "rule 4"]);
    let refunds = &policy.rules[0];
    assert_eq!(refunds.action, PolicyAction::Deny);
    assert!(refunds.tools.matches("issue_refund"));
    assert_eq!(refunds.message, "refunds over 500 need a human");
    let when = refunds.when.as_ref().expect("a condition");
    assert_eq!(when.source(), "args.amount > 500");
    assert!(when.uses(ConditionVariable::Args));
    assert!(!when.uses(ConditionVariable::Calls));
    assert_eq!(policy.rules[1].action, PolicyAction::Approve);
    assert!(policy.rules[1].tools.matches("send_email"));
    assert!(policy.rules[1].message.contains("rule `rule 2`"));
    assert_eq!(
        policy.rules[2].action,
        PolicyAction::RateLimit {
            calls: 10,
            per: Duration::from_secs(60)
        }
    );
    assert!(
        policy.rules[2].message.contains("at most 10 calls per 1m"),
        "{}",
        policy.rules[2].message
    );
    assert_eq!(policy.rules[3].action, PolicyAction::Allow);
    assert!(policy.rules[3].when.is_none());
}

#[test]
fn defaults() {
    let scenario = load("  rules: []\n").unwrap_or_else(|e| panic!("{e}"));
    let policy = scenario.policy.expect("a policy");
    assert_eq!(policy.approval_timeout, Duration::from_secs(60));
    assert_eq!(policy.default, PolicyDefault::Allow);
    assert!(policy.rules.is_empty());
    let none = load_str(HEAD, "p.yaml", None).unwrap_or_else(|e| panic!("{e}"));
    assert!(none.policy.is_none());
}

#[test]
fn mistakes_are_located() {
    check_error(
        "  rules:\n    - when: \"true\"\n",
        "when: \"true\"",
        "a rule needs one of `allow`, `deny`, `approve` or `rate_limit`",
    );
    check_error(
        "  rules:\n    - deny: issue_refund\n      approve: send_email\n",
        "send_email",
        "already says `deny`; write `approve` as a rule of its own",
    );
    check_error(
        "  rules:\n    - deny: issue_refund\n      when: \"args.amount >\"\n",
        "\"args.amount >\"",
        "is not a valid CEL expression: Syntax error",
    );
    check_error(
        "  rules:\n    - deny: issue_refund\n      when: \"arg.amount > 500\"\n",
        "\"arg.amount",
        "`arg` (at column 1) is not a variable conditions can read (did you mean `args`?)",
    );
    check_error(
        "  rules:\n    - rate_limit: \"*\"\n      per: 1m\n",
        "\"*\"",
        "`rate_limit` needs `calls`",
    );
    check_error(
        "  rules:\n    - rate_limit: \"*\"\n      calls: 3\n",
        "\"*\"",
        "`rate_limit` needs `per`",
    );
    check_error(
        "  rules:\n    - rate_limit: \"*\"\n      calls: 0\n      per: 1s\n",
        "0\n",
        "`calls` must be at least 1",
    );
    check_error(
        "  rules:\n    - rate_limit: \"*\"\n      calls: 2\n      per: 0s\n",
        "0s",
        "`per` must be longer than zero",
    );
    check_error(
        "  rules:\n    - deny: issue_refund\n      calls: 3\n",
        "3\n",
        "`calls` belongs to `rate_limit` rules, not to `deny` rules",
    );
    check_error(
        "  rules:\n    - allow: issue_refund\n      per: 1m\n",
        "1m",
        "`per` belongs to `rate_limit` rules, not to `allow` rules",
    );
    check_error(
        "  rules:\n    - approve: \"\"\n",
        "\"\"",
        "no tool name to match: the pattern is empty",
    );
    check_error(
        "  rules:\n    - deny: a\n      name: default\n",
        "default\n",
        "`default` stands for the policy's default",
    );
    check_error(
        "  approval_timeout: 0\n",
        "0\n",
        "an approval timeout of zero",
    );
}

#[test]
fn duplicate_names_point_at_the_second() {
    let error =
        load("  rules:\n    - deny: a\n      name: same\n    - deny: b\n      name: same\n")
            .expect_err("duplicate names")
            .to_string();
    assert!(
        error.starts_with(
            "p.yaml:10:13: policy.rules[1].name: another rule is already named `same`"
        ),
        "{error}"
    );
}

#[test]
fn unknown_keys_and_actions_are_syntax_errors() {
    let error = load("  rules:\n    - deny: a\n      wen: \"true\"\n")
        .expect_err("unknown key")
        .to_string();
    assert!(error.contains("p.yaml:8:7"), "{error}");
    assert!(error.contains("wen"), "{error}");
    let error = load("  default: maybe\n")
        .expect_err("bad default")
        .to_string();
    assert!(error.contains("p.yaml:6:12"), "{error}");
}
