//! Shared glue of the three dn binaries (the logic lives in the crates under `crates/`).

pub mod shell_files;

/// One line for an error and its causes, as the tools print it. A cause whose text the message
/// already contains (errors that quote their source) is not repeated.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::error_line;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open core: {source}")]
    struct Quoting {
        source: std::io::Error,
    }

    #[test]
    fn causes_already_quoted_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(Quoting { source: io });
        assert_eq!(error_line(&e), "cannot open core: no such file");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_line(&e), "outer: inner");
    }
}
