//! `help COMMAND`: one command's usage, found by its name or an alias.

use serde::Serialize;

use super::{Render, COMMANDS};

/// Other names a command answers to, as SOS spells them.
pub const ALIASES: &[(&str, &str)] = &[
    ("do", "dumpobj"),
    ("da", "dumparray"),
    ("fq", "finalizequeue"),
    ("lm", "modules"),
    ("soshelp", "help"),
    ("?", "help"),
    ("quit", "exit"),
    ("q", "exit"),
];

/// `help COMMAND`.
#[derive(Debug, Clone, Serialize)]
pub struct HelpTopic {
    pub name: &'static str,
    pub aliases: Vec<&'static str>,
    pub usage: &'static str,
}

/// The command `name` (or the one it is an alias of), or an error listing what exists.
pub fn topic(name: &str) -> anyhow::Result<HelpTopic> {
    let lower = name.trim_start_matches('!').to_ascii_lowercase();
    let canonical = ALIASES
        .iter()
        .find(|(alias, _)| *alias == lower)
        .map_or(lower.as_str(), |(_, c)| c);
    let Some(&(name, usage)) = COMMANDS.iter().find(|(n, _)| *n == canonical) else {
        anyhow::bail!("no command '{name}' (type 'help' for the list)");
    };
    Ok(HelpTopic {
        name,
        aliases: ALIASES
            .iter()
            .filter(|(_, c)| *c == name)
            .map(|(a, _)| *a)
            .collect(),
        usage,
    })
}

impl Render for HelpTopic {
    fn render(&self) -> String {
        let (synopsis, what) = self.usage.split_once(": ").unwrap_or((self.usage, ""));
        let mut out = format!("{}\n\nUsage: {synopsis}\n", self.name);
        if !what.is_empty() {
            out.push_str(&format!("\n{what}\n"));
        }
        if !self.aliases.is_empty() {
            out.push_str(&format!("\nAliases: {}\n", self.aliases.join(", ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alias_names_a_command() {
        for (alias, c) in ALIASES {
            assert!(
                COMMANDS.iter().any(|(n, _)| n == c),
                "{alias} -> {c} is not a command"
            );
        }
    }

    #[test]
    fn alias_finds_its_command_and_unknown_is_an_error() {
        let t = topic("!LM").unwrap();
        assert_eq!(t.name, "modules");
        assert!(
            t.render().contains("Usage: modules (alias lm)"),
            "{}",
            t.render()
        );
        assert!(topic("nosuch")
            .unwrap_err()
            .to_string()
            .contains("no command 'nosuch'"));
    }
}
