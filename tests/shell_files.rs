//! Completions and man pages generate for every tool, from the tools' real options.

use std::process::Command;

const TOOLS: [(&str, &str, &str); 3] = [
    ("dn-ps", env!("CARGO_BIN_EXE_dn-ps"), "json"),
    ("dn-counters", env!("CARGO_BIN_EXE_dn-counters"), "monitor"),
    ("dn-dump", env!("CARGO_BIN_EXE_dn-dump"), "analyze"),
];

fn generate(exe: &str, kind: &str) -> String {
    let out = Command::new(exe)
        .args(["--generate", kind])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{exe} --generate {kind}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_name_each_tool_and_its_options() {
    for (name, exe, option) in TOOLS {
        for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
            let text = generate(exe, shell);
            assert!(text.contains(name), "{name} {shell}");
            assert!(text.contains(option), "{name} {shell} lacks {option}");
        }
        assert!(
            generate(exe, "bash").contains(&format!("complete -F _{}", name.replace('-', "__")))
        );
    }
}

#[test]
fn man_pages_render_with_roff_headers() {
    for (name, exe, option) in TOOLS {
        let page = generate(exe, "man");
        assert!(page.contains(&format!(".TH {name} 1")), "{page}");
        assert!(page.contains(".SH NAME") && page.contains(".SH SYNOPSIS"));
        assert!(
            page.contains(&option.replace('-', "\\-")),
            "{name} man page lacks {option}"
        );
    }
}

#[test]
fn an_unknown_kind_is_a_one_line_error() {
    let out = Command::new(TOOLS[0].1)
        .args(["--generate", "tcsh"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bash, zsh, fish"));
}
