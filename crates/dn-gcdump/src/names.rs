//! Type names as dotnet-gcdump shows them: generic arity removed, `[..]` turned into `<..>`
//! (and `<>` back to `[]`), size buckets for objects above 1000 bytes.

use crate::events::{TypeRec, TYPE_FLAG_ARRAY};

/// The display name of a BulkType entry (or of a type id no BulkType described).
pub fn type_name(t: Option<&TypeRec>, type_id: u64) -> String {
    let Some(t) = t else {
        return format!("UNKNOWN 0x{type_id:x}");
    };
    if t.name.is_empty() {
        return if t.flags & TYPE_FLAG_ARRAY != 0 {
            format!("ArrayType(0x{:x})", t.name_token)
        } else {
            format!("Type(0x{:x})", t.name_token)
        };
    }
    clean(&t.name)
}

/// Removes `` `N `` and maps brackets like dotnet-gcdump does.
pub fn clean(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                    chars.next();
                }
            }
            '[' => out.push('<'),
            ']' => out.push('>'),
            c => out.push(c),
        }
    }
    out.replace("<>", "[]")
}

/// Size buckets: objects above 1000 bytes get a type of their own per decade.
pub fn bucket(size: u32) -> u8 {
    match size {
        0..=1000 => 0,
        1001..=10_000 => 1,
        10_001..=100_000 => 2,
        100_001..=1_000_000 => 3,
        1_000_001..=10_000_000 => 4,
        10_000_001..=100_000_000 => 5,
        _ => 6,
    }
}

/// The suffix of a bucket (empty for bucket 0).
pub fn bucket_suffix(b: u8) -> &'static str {
    match b {
        1 => " (Bytes > 1K)",
        2 => " (Bytes > 10K)",
        3 => " (Bytes > 100K)",
        4 => " (Bytes > 1M)",
        5 => " (Bytes > 10M)",
        6 => " (Bytes > 100M)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dotnet_gcdump() {
        assert_eq!(
            clean("System.Collections.Generic.Dictionary`2[System.String,System.Object]"),
            "System.Collections.Generic.Dictionary<System.String,System.Object>"
        );
        assert_eq!(clean("System.String[]"), "System.String[]");
        assert_eq!(clean("System.String[,]"), "System.String<,>");
        assert_eq!(clean("<>c"), "[]c");
        assert_eq!(bucket(1000), 0);
        assert_eq!(bucket(1001), 1);
        assert_eq!(bucket(1_200_024), 4);
    }
}
