//! `name2ee MODULE TYPE|TYPE.METHOD`: the loaded types (and their methods) of a module by
//! name; `*` for every module. As current SOS: a type matches when its name contains the text
//! (any letter case); `Type.Member` finds the methods named `Member` of the matching types.
//! Only loaded types are found (the module's TypeDef-to-MethodTable map).

use serde::Serialize;

use super::{ser_hex, ser_hex_opt, Render, Session};

/// One type or method found.
#[derive(Debug, Clone, Serialize)]
pub struct Name2EeMatch {
    pub token: u32,
    #[serde(serialize_with = "ser_hex")]
    pub method_table: u64,
    /// For a method: its MethodDesc.
    #[serde(serialize_with = "ser_hex_opt")]
    pub method_desc: Option<u64>,
    /// For a method: its code, once jitted.
    #[serde(serialize_with = "ser_hex_opt")]
    pub code: Option<u64>,
    pub name: String,
}

/// The matches in one module.
#[derive(Debug, Clone, Serialize)]
pub struct Name2EeModule {
    #[serde(serialize_with = "ser_hex")]
    pub module: u64,
    pub assembly: String,
    pub matches: Vec<Name2EeMatch>,
}

/// `name2ee`.
#[derive(Debug, Clone, Serialize)]
pub struct Name2Ee {
    pub modules: Vec<Name2EeModule>,
    /// Modules searched that had no match.
    pub modules_without_match: usize,
    /// Modules whose types could not be listed, and AppDomains whose modules could not be.
    pub warnings: Vec<String>,
}

/// Splits `MODULE!NAME` or `MODULE NAME`.
pub fn parse(args: &[&str]) -> anyhow::Result<(String, String)> {
    const USAGE: &str =
        "usage: name2ee MODULE TYPE|TYPE.METHOD (or MODULE!NAME; * for every module)";
    match args {
        [one] => one
            .split_once('!')
            .map(|(m, n)| (m.to_string(), n.to_string()))
            .ok_or_else(|| anyhow::anyhow!(USAGE)),
        [m, n] => Ok((m.trim_end_matches('!').to_string(), n.to_string())),
        _ => anyhow::bail!(USAGE),
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// `*`, or the module's file name with or without its extension (any letter case).
fn module_matches(pattern: &str, path: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let f = file_name(path).to_ascii_lowercase();
    let p = pattern.to_ascii_lowercase();
    f == p || f.rsplit_once('.').is_some_and(|(stem, _)| stem == p)
}

/// The method name of a MethodDesc's full name `Ns.Type.Method(args)`.
fn method_name(full: &str) -> &str {
    let head = full.split('(').next().unwrap_or(full);
    head.rsplit('.').next().unwrap_or(head)
}

pub fn name2ee(s: &Session, module: &str, name: &str) -> anyhow::Result<Name2Ee> {
    let dac = &s.runtime.dac;
    let wanted = name.to_ascii_lowercase();
    let (type_part, member) = match name.rsplit_once('.') {
        Some((t, m)) if !t.is_empty() && !m.is_empty() => {
            (Some(t.to_ascii_lowercase()), Some(m.to_string()))
        }
        _ => (None, None),
    };
    let mut out = Name2Ee {
        modules: Vec::new(),
        modules_without_match: 0,
        warnings: Vec::new(),
    };
    let modules = dac.modules()?;
    let unlisted = modules.warning("their modules were not searched");
    out.warnings.extend(unlisted.clone());
    let mut any_module = false;
    for m in modules.modules {
        if s.cancelled() {
            anyhow::bail!("cancelled");
        }
        let path = dac.module_name(m).unwrap_or_default();
        if !module_matches(module, &path) {
            continue;
        }
        any_module = true;
        let types = match dac.module_types(m) {
            Ok(t) => t,
            Err(e) => {
                out.warnings
                    .push(format!("module {m:#x} ({path}): types not listed: {e}"));
                continue;
            }
        };
        let mut matches = Vec::new();
        let mut member_types = Vec::new();
        for mt in types {
            let tname = dac.method_table_name(mt).unwrap_or_default();
            let lower = tname.to_ascii_lowercase();
            let token = dac.method_table_data(mt).map_or(0, |d| d.token);
            if lower.contains(&wanted) {
                matches.push(Name2EeMatch {
                    token,
                    method_table: mt,
                    method_desc: None,
                    code: None,
                    name: tname.clone(),
                });
            }
            if type_part.as_deref().is_some_and(|t| lower.contains(t)) {
                member_types.push(mt);
            }
        }
        if let Some(member) = &member {
            for mt in member_types {
                let n = dac.method_table_data(mt).map_or(0, |d| d.num_methods);
                for sm in dac.method_table_slots(mt, u32::from(n)) {
                    if sm.method_desc == 0 {
                        continue;
                    }
                    let Ok(full) = dac.method_desc_name(sm.method_desc) else {
                        continue;
                    };
                    if method_name(&full) != member.as_str() {
                        continue;
                    }
                    let d = dac.method_desc_data(sm.method_desc).ok();
                    // Inherited slots show the parent's method: keep the type's own.
                    if d.is_some_and(|d| d.method_table != mt) {
                        continue;
                    }
                    matches.push(Name2EeMatch {
                        token: d.map_or(0, |d| d.token),
                        method_table: mt,
                        method_desc: Some(sm.method_desc),
                        code: d.filter(|d| d.has_native_code).map(|d| d.native_code),
                        name: full,
                    });
                }
            }
        }
        if matches.is_empty() {
            out.modules_without_match += 1;
        } else {
            out.modules.push(Name2EeModule {
                module: m,
                assembly: file_name(&path).to_string(),
                matches,
            });
        }
    }
    if !any_module {
        match unlisted {
            // The module may be among those the DAC would not list.
            Some(w) => anyhow::bail!("no module named '{module}' was found; {w}"),
            None => {
                anyhow::bail!("no module named '{module}' is loaded (lm lists the mapped files)")
            }
        }
    }
    Ok(out)
}

impl Render for Name2Ee {
    fn render(&self) -> String {
        let mut out = String::new();
        for (i, m) in self.modules.iter().enumerate() {
            if i > 0 {
                out.push_str("--------------------------------------\n");
            }
            out.push_str(&format!(
                "Module:      {:016x}\nAssembly:    {}\n",
                m.module, m.assembly
            ));
            for (j, x) in m.matches.iter().enumerate() {
                if j > 0 {
                    out.push_str("-----------------------\n");
                }
                out.push_str(&format!("Token:       {:016x}\n", x.token));
                match x.method_desc {
                    None => out.push_str(&format!(
                        "MethodTable: {:016x}\nName:        {}\n",
                        x.method_table, x.name
                    )),
                    Some(md) => {
                        out.push_str(&format!(
                            "MethodDesc:  {md:016x}\nName:        {}\n",
                            x.name
                        ));
                        match x.code {
                            Some(c) => out.push_str(&format!("JITTED Code Address: {c:016x}\n")),
                            None => out.push_str(&format!(
                                "Not JITTED yet. Use !bpmd -md {md:016x} to break on run.\n"
                            )),
                        }
                    }
                }
            }
        }
        if self.modules_without_match > 0 {
            out.push_str(&format!(
                "Scanned {} modules which had no matches.\n",
                self.modules_without_match
            ));
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_and_arguments() {
        assert!(module_matches("*", "/x/a.dll"));
        assert!(module_matches("ConsoleTarget", "/x/ConsoleTarget.dll"));
        assert!(module_matches("consoletarget.DLL", "/x/ConsoleTarget.dll"));
        assert!(!module_matches("Console", "/x/ConsoleTarget.dll"));
        assert_eq!(
            parse(&["*!Ns.T"]).unwrap(),
            ("*".to_string(), "Ns.T".to_string())
        );
        assert_eq!(
            parse(&["m.dll", "T"]).unwrap(),
            ("m.dll".to_string(), "T".to_string())
        );
        assert!(parse(&["T"]).is_err());
        assert_eq!(method_name("Ns.T.Run(Int32)"), "Run");
    }
}
