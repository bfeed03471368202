//! `eeheap -loader` as SOS prints it.

use super::super::Render;
use super::{HeapBlock, LoaderHeaps};

/// SOS's `0x… (n)`, empty for 0.
pub(in crate::commands) fn memory_size(n: u64) -> String {
    if n > 0 {
        format!("0x{n:x} ({n})")
    } else {
        String::new()
    }
}

fn size_and_wasted(size: u64, wasted: u64) -> String {
    let mut s = format!("Size: {} bytes total", memory_size(size));
    if wasted > 0 {
        s.push_str(&format!(", {} bytes wasted", memory_size(wasted)));
    }
    s
}

fn block_text(b: &HeapBlock) -> String {
    if b.reserved > 0 {
        format!("{:012x}({:x}:{:x})", b.address, b.reserved, b.committed)
    } else {
        format!("{:012x}", b.address)
    }
}

const DIVIDER: &str = "----------------------------------------";

fn row(out: &mut String, label: &str, value: &str) {
    out.push_str(&format!("{label:<21} {value}\n"));
}

impl Render for LoaderHeaps {
    fn render(&self) -> String {
        let mut out = format!("Loader Heap:\n{DIVIDER}\n");
        for d in &self.domains {
            row(
                &mut out,
                &format!("{}:", d.name),
                &format!("{:x}", d.address),
            );
            if let Some(la) = d.loader_allocator {
                row(&mut out, "LoaderAllocator:", &format!("{la:x}"));
            }
            for k in &d.heaps {
                let blocks: Vec<String> = k.blocks.iter().map(block_text).collect();
                row(
                    &mut out,
                    &format!("{}:", k.kind.name()),
                    &format!(
                        "{} {}.",
                        blocks.join(" "),
                        size_and_wasted(k.size, k.wasted)
                    ),
                );
            }
            if d.size > 0 {
                row(
                    &mut out,
                    "Total size:",
                    &format!("{}.", size_and_wasted(d.size, d.wasted)),
                );
            } else {
                out.push_str("No unique loader heaps found.\n");
            }
            out.push_str(DIVIDER);
            out.push('\n');
        }
        for j in &self.jit_managers {
            row(&mut out, "JIT Manager:", &format!("{:x}", j.address));
            for h in &j.heaps {
                row(
                    &mut out,
                    &format!("{}:", h.kind.name()),
                    &format!(
                        "{} {}.",
                        block_text(&h.block),
                        size_and_wasted(h.block.committed, h.block.wasted)
                    ),
                );
            }
            row(
                &mut out,
                "Total size:",
                &format!("{}.", size_and_wasted(j.size, j.wasted)),
            );
            out.push_str(DIVIDER);
            out.push('\n');
        }
        if let Some(m) = &self.module_thunk_heaps {
            out.push_str(&format!("{DIVIDER}\nModule Thunk heaps:\n"));
            row(&mut out, "Total size:", &size_and_wasted(m.size, m.wasted));
        }
        row(
            &mut out,
            "Total LoaderHeap size:",
            &format!("{}.", size_and_wasted(self.total_size, self.total_wasted)),
        );
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out
    }
}
