//! The JVM as the oracle for `leaksift heap` on HPROF dumps: tests/programs/java/LayoutOracle.java
//! runs under each HotSpot object layout (compressed oops and class pointers on and off, a 40 GiB
//! heap, 16-byte object alignment, class data sharing on and off); `jcmd GC.class_histogram` and
//! `jcmd GC.heap_dump` are taken while it waits, and leaksift's per-class instance counts and
//! shallow bytes must equal HotSpot's. Needs a JDK 17 (javac, java, jcmd).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::Value;

#[path = "support/json_command.rs"]
mod json_command;
use json_command::json_of;

/// Per class (Java name): instance count and shallow bytes.
type Histogram = BTreeMap<String, (u64, u64)>;

/// One JVM configuration and the layout leaksift must find in its dump.
struct Layout {
    flags: &'static [&'static str],
    /// (header, array header, reference, object alignment) bytes.
    expected: (u64, u64, u64, u64),
}

/// Class data sharing is off except in the one configuration that checks what it changes: its
/// archive holds mirrors of classes not loaded yet, which the histogram counts and the dump
/// leaves out.
const LAYOUTS: &[Layout] = &[
    Layout {
        flags: &["-Xshare:off"],
        expected: (12, 16, 4, 8),
    },
    Layout {
        flags: &["-Xshare:off", "-XX:-UseCompressedOops"],
        expected: (12, 16, 8, 8),
    },
    Layout {
        flags: &["-Xshare:off", "-XX:-UseCompressedClassPointers"],
        expected: (16, 24, 4, 8),
    },
    Layout {
        flags: &[
            "-Xshare:off",
            "-XX:-UseCompressedClassPointers",
            "-XX:-UseCompressedOops",
        ],
        expected: (16, 24, 8, 8),
    },
    // Over 32 GiB HotSpot turns compressed oops off; the objects still lie close together.
    Layout {
        flags: &["-Xshare:off", "-Xmx40g"],
        expected: (12, 16, 8, 8),
    },
    // Large heaps use 16-byte alignment to keep compressed oops up to 64 GiB: every object's
    // size is a multiple of 16.
    Layout {
        flags: &["-Xshare:off", "-XX:ObjectAlignmentInBytes=16"],
        expected: (12, 16, 4, 16),
    },
    Layout {
        flags: &["-Xshare:off", "-XX:ObjectAlignmentInBytes=16", "-Xmx40g"],
        expected: (12, 16, 4, 16),
    },
    Layout {
        flags: &["-Xshare:auto"],
        expected: (12, 16, 4, 8),
    },
];

fn jdk_tool(name: &str) -> Command {
    let found = Command::new(name)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        found.is_ok(),
        "`{name}` not found: the HPROF oracle test needs a JDK 17 \
         (apt-get install openjdk-17-jdk-headless)"
    );
    Command::new(name)
}

/// The JVM's class name in Java form, as leaksift prints it: `[I` → `int[]`,
/// `[Ljava.lang.Object;` → `java.lang.Object[]`, hidden classes without their `/0x…` address.
fn java_name(jvm: &str) -> String {
    let dims = jvm.bytes().take_while(|&b| b == b'[').count();
    let element = &jvm[dims..];
    let base = if dims == 0 {
        element
    } else {
        match element {
            "Z" => "boolean",
            "B" => "byte",
            "C" => "char",
            "S" => "short",
            "I" => "int",
            "J" => "long",
            "F" => "float",
            "D" => "double",
            other => other
                .strip_prefix('L')
                .and_then(|s| s.strip_suffix(';'))
                .unwrap_or(other),
        }
    };
    let base = match base.rfind("/0x") {
        Some(at) => &base[..at],
        None => base,
    };
    format!("{base}{}", "[]".repeat(dims))
}

/// Parses `jcmd <pid> GC.class_histogram` (`  1:  count  bytes  name (module)` rows), summing
/// classes of one name (several loaders, hidden classes).
fn parse_histogram(text: &str) -> Histogram {
    let mut classes = Histogram::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(rank), Some(count), Some(bytes), Some(name)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if !rank.ends_with(':') || rank.starts_with("num") {
            continue;
        }
        let (Ok(count), Ok(bytes)) = (count.parse::<u64>(), bytes.parse::<u64>()) else {
            continue;
        };
        let entry = classes.entry(java_name(name)).or_default();
        entry.0 += count;
        entry.1 += bytes;
    }
    classes
}

/// leaksift's classes, the garbage's included: in a live dump it is what the JVM keeps
/// through references the format does not write.
fn leaksift_histogram(heap: &Value) -> Histogram {
    let garbage = heap["garbage"]["classes"].as_array().cloned();
    let mut classes = Histogram::new();
    let rows = heap["classes"].as_array().expect("classes");
    for row in rows.iter().chain(garbage.iter().flatten()) {
        let entry = classes
            .entry(row["name"].as_str().expect("name").to_string())
            .or_default();
        entry.0 += row["count"].as_u64().expect("count");
        entry.1 += row["shallow_bytes"].as_u64().expect("shallow_bytes");
    }
    classes
}

/// The running LayoutOracle program; killed if the test fails before it exits.
struct Program {
    child: Child,
    stdin: Option<ChildStdin>,
    pid: String,
}

impl Program {
    fn start(classes: &Path, flags: &[&str]) -> Program {
        let mut child = jdk_tool("java")
            .args(flags)
            .arg("-cp")
            .arg(classes)
            .arg("LayoutOracle")
            .arg(classes)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start java");
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut pid = None;
        let mut program = Program {
            child,
            stdin,
            pid: String::new(),
        };
        loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("LayoutOracle {flags:?} exited before it was ready"))
                .expect("read LayoutOracle's stdout");
            if let Some(number) = line.strip_prefix("pid ") {
                pid = Some(number.to_string());
            } else if line == "ready" {
                break;
            }
        }
        program.pid = pid.expect("LayoutOracle printed its pid");
        program
    }

    fn jcmd(&self, command: &[&str]) -> String {
        let out = jdk_tool("jcmd")
            .arg(&self.pid)
            .args(command)
            .output()
            .expect("run jcmd");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "jcmd {command:?} failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    fn finish(mut self) {
        let mut stdin = self.stdin.take().expect("stdin");
        stdin
            .write_all(b"exit\n")
            .expect("tell LayoutOracle to exit");
        drop(stdin);
        let status = self.child.wait().expect("wait for LayoutOracle");
        assert!(status.success(), "LayoutOracle exited with {status}");
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Takes the class histogram and a live heap dump with the same objects: the JVM's background
/// threads (the reference handler, the cleaner) can free objects between two GCs, so the dump
/// counts only when the histograms taken just before and just after it are the same.
fn histogram_and_dump(program: &Program, dir: &Path) -> (Histogram, PathBuf) {
    let mut before = parse_histogram(&program.jcmd(&["GC.class_histogram"]));
    for attempt in 0..10 {
        let dump = dir.join(format!("oracle-{}-{attempt}.hprof", program.pid));
        program.jcmd(&["GC.heap_dump", dump.to_str().expect("UTF-8 path")]);
        let after = parse_histogram(&program.jcmd(&["GC.class_histogram"]));
        if after == before {
            return (after, dump);
        }
        std::fs::remove_file(&dump).expect("remove the unsteady dump");
        before = after;
    }
    panic!("the heap of LayoutOracle did not settle in 10 dumps");
}

fn leaksift_heap(dump: &Path) -> Value {
    json_of(
        Command::new(env!("CARGO_BIN_EXE_leaksift"))
            .args(["heap", "--json", "--quiet", "--top", "100000"])
            .arg(dump),
    )
}

/// The differences between the JVM's histogram and leaksift's for one configuration, one line each.
fn compare(layout: &Layout, jvm: &Histogram, heap: &Value) -> Vec<String> {
    let flags = layout.flags.join(" ");
    let mut problems = Vec::new();
    let dump = &heap["extra"]["dump"];
    let found = (
        dump["header_bytes"].as_u64().unwrap_or(0),
        dump["array_header_bytes"].as_u64().unwrap_or(0),
        dump["reference_bytes"].as_u64().unwrap_or(0),
        dump["alignment_bytes"].as_u64().unwrap_or(0),
    );
    if found != layout.expected {
        problems.push(format!(
            "{flags}: layout (header, array header, reference, alignment) {found:?}, HotSpot's \
             is {:?}",
            layout.expected
        ));
    }
    let sharing = !layout.flags.contains(&"-Xshare:off");
    let ours = leaksift_histogram(heap);
    for name in jvm
        .keys()
        .chain(ours.keys().filter(|n| !jvm.contains_key(*n)))
    {
        let theirs = jvm.get(name).copied().unwrap_or_default();
        let mine = ours.get(name).copied().unwrap_or_default();
        if sharing && name == "java.lang.Class" {
            // The archive's mirrors of classes not loaded yet are in the histogram only.
            if mine.0 > theirs.0 || mine.1 > theirs.1 {
                problems.push(format!(
                    "{flags}: {name}: leaksift {mine:?} is more than the JVM's {theirs:?}"
                ));
            }
            continue;
        }
        if mine.0 != theirs.0 {
            problems.push(format!(
                "{flags}: {name}: {} instances, the JVM counts {}",
                mine.0, theirs.0
            ));
        } else if mine.1 != theirs.1 {
            problems.push(format!(
                "{flags}: {name}: {} shallow bytes, the JVM's are {} ({} instances)",
                mine.1, theirs.1, theirs.0
            ));
        }
    }
    problems
}

#[test]
fn class_counts_and_shallow_sizes_equal_the_jvms_class_histogram() {
    let dir = tempfile::tempdir().expect("temp dir");
    let classes = dir.path().join("classes");
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/programs/java/LayoutOracle.java");
    let status = jdk_tool("javac")
        .arg("-d")
        .arg(&classes)
        .arg(&source)
        .status()
        .expect("run javac");
    assert!(status.success(), "javac LayoutOracle.java failed");

    let mut problems = Vec::new();
    for layout in LAYOUTS {
        let program = Program::start(&classes, layout.flags);
        let (jvm, dump) = histogram_and_dump(&program, dir.path());
        program.finish();
        // The program's own classes are there, with the counts it made.
        assert_eq!(jvm.get("LayoutOracle$Mixed").map(|c| c.0), Some(7 + 26));
        assert_eq!(jvm.get("LayoutOracle$RefSub").map(|c| c.0), Some(19));
        assert!(jvm.len() > 300, "{} classes in the histogram", jvm.len());
        let heap = leaksift_heap(&dump);
        problems.extend(compare(layout, &jvm, &heap));
        std::fs::remove_file(&dump).expect("remove the dump");
    }
    assert!(
        problems.is_empty(),
        "leaksift disagrees with the JVM:\n{}",
        problems.join("\n")
    );
}

#[test]
fn jvm_class_names_map_to_java_names() {
    assert_eq!(java_name("[I"), "int[]");
    assert_eq!(java_name("[[J"), "long[][]");
    assert_eq!(java_name("[Ljava.lang.Object;"), "java.lang.Object[]");
    assert_eq!(java_name("java.lang.String"), "java.lang.String");
    assert_eq!(
        java_name("LayoutOracle$$Lambda$14/0x0000000800c0b000"),
        "LayoutOracle$$Lambda$14"
    );
    assert_eq!(
        java_name("[LLayoutOracle$$Lambda$1/0x0000000800c0b000;"),
        "LayoutOracle$$Lambda$1[]"
    );
}
