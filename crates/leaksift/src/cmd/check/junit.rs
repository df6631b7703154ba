//! The JUnit XML report of `check`: one test case whose properties carry the evidence.

use std::fmt::Write;

use leaksift_report::escape::xml;

/// The outcome of the single test case.
#[derive(Debug)]
pub enum CaseResult {
    Passed,
    /// Memory grew per iteration beyond the budget.
    Failed {
        message: String,
        detail: String,
    },
    /// The check could not run to the end (scenario failed, server died…).
    Error {
        message: String,
    },
}

/// Renders a `<testsuites>` document with one suite and one case named after the scenario.
pub fn render(
    scenario: &str,
    seconds: f64,
    properties: &[(&str, String)],
    result: &CaseResult,
    samples_text: &str,
) -> String {
    let (failures, errors) = match result {
        CaseResult::Passed => (0, 0),
        CaseResult::Failed { .. } => (1, 0),
        CaseResult::Error { .. } => (0, 1),
    };
    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<testsuites name="leaksift check" tests="1" failures="{failures}" errors="{errors}" time="{seconds:.3}">"#
    );
    let _ = writeln!(
        out,
        r#"  <testsuite name="leaksift.check" tests="1" failures="{failures}" errors="{errors}" skipped="0" time="{seconds:.3}">"#
    );
    let _ = writeln!(
        out,
        r#"    <testcase classname="leaksift.check" name="memory growth per iteration: {}" time="{seconds:.3}">"#,
        xml(scenario)
    );
    out.push_str("      <properties>\n");
    for (name, value) in properties {
        let _ = writeln!(
            out,
            r#"        <property name="{}" value="{}"/>"#,
            xml(name),
            xml(value)
        );
    }
    out.push_str("      </properties>\n");
    match result {
        CaseResult::Passed => {}
        CaseResult::Failed { message, detail } => {
            let _ = writeln!(
                out,
                r#"      <failure message="{}" type="MemoryGrowth">{}</failure>"#,
                xml(message),
                xml(detail)
            );
        }
        CaseResult::Error { message } => {
            let _ = writeln!(
                out,
                r#"      <error message="{}" type="CheckError">{}</error>"#,
                xml(message),
                xml(message)
            );
        }
    }
    let _ = writeln!(out, "      <system-out>{}</system-out>", xml(samples_text));
    out.push_str("    </testcase>\n  </testsuite>\n</testsuites>\n");
    out
}
