//! What the statics walk could not read, counted by reason, and the warnings that say so: a
//! static (or thread static) the DAC would not show is a GC root missing from the graph (or
//! named wrong).

/// Why part of the statics could not be made into roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum StaticSkip {
    /// The DAC would not list a module's types (the item is the module).
    ModuleTypes,
    /// The DAC would not read a type's fields, or not all of them (the item is the MethodTable).
    TypeFields,
    /// The DAC would not give the address of a type's statics (the item is the MethodTable).
    StaticsBase,
    /// The DAC would not name a static field; it is kept as a root named by its metadata token
    /// (counted per field; the item is the field's MethodTable).
    FieldName,
    /// The DAC would not give the address of a type's thread statics on a thread (counted per
    /// type and thread; the item is the MethodTable).
    ThreadStaticsBase,
}

impl StaticSkip {
    const ALL: [StaticSkip; 5] = [
        StaticSkip::ModuleTypes,
        StaticSkip::TypeFields,
        StaticSkip::StaticsBase,
        StaticSkip::FieldName,
        StaticSkip::ThreadStaticsBase,
    ];

    fn index(self) -> usize {
        match self {
            StaticSkip::ModuleTypes => 0,
            StaticSkip::TypeFields => 1,
            StaticSkip::StaticsBase => 2,
            StaticSkip::FieldName => 3,
            StaticSkip::ThreadStaticsBase => 4,
        }
    }

    /// "{count} {what} (first: {item}): {consequence}".
    fn warning(self, count: usize, first: u64) -> String {
        let (what, item, consequence) = match self {
            StaticSkip::ModuleTypes => (
                "module(s) whose types the DAC could not list",
                "module",
                "their types' statics are not roots",
            ),
            StaticSkip::TypeFields => (
                "type(s) whose static fields the DAC could not read",
                "MT",
                "their statics (or some of them) are not roots",
            ),
            StaticSkip::StaticsBase => (
                "type(s) whose statics address the DAC could not give",
                "MT",
                "their statics are not roots",
            ),
            StaticSkip::FieldName => (
                "static field(s) whose names the DAC could not read",
                "MT",
                "their roots are named by metadata token",
            ),
            StaticSkip::ThreadStaticsBase => (
                "type-and-thread pair(s) whose thread statics address the DAC could not give",
                "MT",
                "those thread statics are not roots",
            ),
        };
        format!("{count} {what} (first: {item} {first:#x}): {consequence}")
    }
}

/// How many items each [`StaticSkip`] left out, and the first of them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct StaticSkips {
    /// (count, first item) per reason, in [`StaticSkip::ALL`] order.
    tally: [(usize, u64); 5],
}

impl StaticSkips {
    /// Counts one `item` (module, MethodTable or field) skipped for `reason`.
    pub(crate) fn add(&mut self, reason: StaticSkip, item: u64) {
        let (count, first) = &mut self.tally[reason.index()];
        if *count == 0 {
            *first = item;
        }
        *count = count.saturating_add(1);
    }

    /// How many items were skipped for `reason`.
    #[cfg(test)]
    pub(crate) fn count(&self, reason: StaticSkip) -> usize {
        self.tally[reason.index()].0
    }

    /// One warning per reason that skipped anything, in a fixed order.
    pub(crate) fn warnings(&self) -> Vec<String> {
        StaticSkip::ALL
            .iter()
            .filter_map(|&r| {
                let (count, first) = self.tally[r.index()];
                (count > 0).then(|| r.warning(count, first))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_skipped_means_no_warning() {
        assert!(StaticSkips::default().warnings().is_empty());
    }

    #[test]
    fn one_line_per_reason_with_its_count_and_first_item() {
        let mut s = StaticSkips::default();
        s.add(StaticSkip::FieldName, 0x7f00_0000_1000);
        s.add(StaticSkip::TypeFields, 0x7f00_0000_2000);
        s.add(StaticSkip::TypeFields, 0x7f00_0000_3000);
        s.add(StaticSkip::TypeFields, 0x7f00_0000_4000);
        assert_eq!(s.count(StaticSkip::TypeFields), 3);
        assert_eq!(s.count(StaticSkip::StaticsBase), 0);
        assert_eq!(
            s.warnings(),
            [
                "3 type(s) whose static fields the DAC could not read (first: MT 0x7f0000002000): \
                 their statics (or some of them) are not roots",
                "1 static field(s) whose names the DAC could not read (first: MT 0x7f0000001000): \
                 their roots are named by metadata token",
            ]
        );
    }

    #[test]
    fn every_reason_has_its_own_line() {
        let mut s = StaticSkips::default();
        for (i, r) in StaticSkip::ALL.iter().enumerate() {
            s.add(*r, 0x100 * (i as u64 + 1));
        }
        let w = s.warnings();
        assert_eq!(w.len(), StaticSkip::ALL.len());
        assert!(w[0]
            .starts_with("1 module(s) whose types the DAC could not list (first: module 0x100)"));
        assert!(w[2].contains("statics address"), "{w:?}");
    }
}
