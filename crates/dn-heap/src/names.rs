//! Type names as SOS shows them.
//!
//! The DAC writes generic types with assembly-qualified arguments
//! (``List`1[[System.Char, System.Private.CoreLib]]``); SOS (through ClrMD) shows
//! `List<System.Char>`. Names that do not parse are returned unchanged.

/// Converts a DAC type name to the `<...>` form.
pub fn clrmd_style(dac_name: &str) -> String {
    if !dac_name.contains('`') {
        return dac_name.to_string();
    }
    let b = dac_name.as_bytes();
    let mut pos = 0;
    match parse_type(b, &mut pos, 0) {
        Some(s) if pos == b.len() => s,
        _ => dac_name.to_string(),
    }
}

fn parse_type(b: &[u8], pos: &mut usize, depth: usize) -> Option<String> {
    if depth > 64 {
        return None;
    }
    // The name itself, split at '+' (nested types), each part with its "`N" arity.
    let mut parts: Vec<(String, usize)> = vec![(String::new(), 0)];
    while *pos < b.len() && !matches!(b[*pos], b'[' | b']' | b',') {
        match b[*pos] {
            b'`' => {
                *pos += 1;
                let mut n = 0usize;
                while *pos < b.len() && b[*pos].is_ascii_digit() {
                    n = n
                        .saturating_mul(10)
                        .saturating_add((b[*pos] - b'0') as usize);
                    *pos += 1;
                }
                parts.last_mut()?.1 = n;
                continue;
            }
            b'+' => parts.push((String::new(), 0)),
            c => parts.last_mut()?.0.push(c as char),
        }
        *pos += 1;
    }
    // Generic arguments: [[T1, asm],[T2, asm]]
    let mut args = Vec::new();
    if b.get(*pos) == Some(&b'[') && b.get(*pos + 1) == Some(&b'[') {
        *pos += 1;
        loop {
            if b.get(*pos) != Some(&b'[') {
                return None;
            }
            *pos += 1;
            args.push(parse_type(b, pos, depth + 1)?);
            // Skip ", Assembly.Name" up to the closing bracket of this argument.
            while *pos < b.len() && b[*pos] != b']' {
                *pos += 1;
            }
            *pos += 1;
            match b.get(*pos) {
                Some(b',') => *pos += 1,
                Some(b']') => {
                    *pos += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    // Each part takes as many arguments as its arity: Dictionary`2+Entry -> Dictionary<K, V>+Entry.
    let mut name = String::new();
    let mut next = args.into_iter();
    for (i, (part, arity)) in parts.iter().enumerate() {
        if i > 0 {
            name.push('+');
        }
        name.push_str(part);
        if *arity > 0 {
            let taken: Vec<String> = next.by_ref().take(*arity).collect();
            if taken.len() != *arity {
                return None;
            }
            name.push('<');
            name.push_str(&taken.join(", "));
            name.push('>');
        }
    }
    // Array suffixes: [] or [,,]
    while b.get(*pos) == Some(&b'[') && b.get(*pos + 1) != Some(&b'[') {
        let start = *pos;
        while *pos < b.len() && b[*pos] != b']' {
            *pos += 1;
        }
        if *pos >= b.len() {
            return None;
        }
        *pos += 1;
        name.push_str(std::str::from_utf8(&b[start..*pos]).ok()?);
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::clrmd_style;

    #[test]
    fn plain_names_stay() {
        assert_eq!(clrmd_style("System.String"), "System.String");
        assert_eq!(clrmd_style("System.Int32[]"), "System.Int32[]");
        assert_eq!(clrmd_style("System.Int32[,]"), "System.Int32[,]");
    }

    #[test]
    fn generics_lose_assembly_names() {
        assert_eq!(
            clrmd_style("System.Collections.Generic.List`1[[System.Char, System.Private.CoreLib]]"),
            "System.Collections.Generic.List<System.Char>"
        );
        assert_eq!(
            clrmd_style(
                "System.Collections.Generic.Dictionary`2[[System.String, System.Private.CoreLib],[System.Collections.Generic.List`1[[System.Int32, System.Private.CoreLib]], System.Private.CoreLib]][]"
            ),
            "System.Collections.Generic.Dictionary<System.String, System.Collections.Generic.List<System.Int32>>[]"
        );
    }

    #[test]
    fn nested_types_take_their_parents_arguments() {
        assert_eq!(
            clrmd_style(
                "System.Collections.Generic.Dictionary`2+Entry[[System.Char, System.Private.CoreLib],[System.String, System.Private.CoreLib]][]"
            ),
            "System.Collections.Generic.Dictionary<System.Char, System.String>+Entry[]"
        );
        assert_eq!(
            clrmd_style("Outer`1+Inner`1[[A, x],[B, y]]"),
            "Outer<A>+Inner<B>"
        );
    }

    #[test]
    fn garbage_is_returned_unchanged() {
        assert_eq!(clrmd_style("A`1[[B"), "A`1[[B");
    }
}
