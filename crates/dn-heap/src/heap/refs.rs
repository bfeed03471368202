//! An object's size and references: the header read without walking, and the GCDesc series
//! below each MethodTable.

use std::sync::Arc;

use super::{GcHeap, MtInfo, MIN_OBJECT_SIZE};
use crate::dac::{Dac, DataTarget};
use crate::memory::MemorySource;

/// Largest object copied out of the target to read its references (bigger ones are read in
/// place from a core file's mapping).
const MAX_COPIED_OBJECT: u64 = 1 << 30;

#[derive(Debug, Clone)]
pub(super) enum GcDesc {
    Series(Vec<(u64, i64)>),
    ValSeries { start: u64, items: Vec<(u32, u32)> },
}

/// Whether an object's references could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefsRead {
    /// Every reference slot was read (or the type holds none).
    Complete,
    /// The type's GCDesc (where its references are) is not in the target.
    NoGcDesc,
    /// The object's bytes are not in the target.
    Unreadable,
}

impl GcHeap {
    /// Reads an object's header quickly (MT + size) without walking: for references.
    pub fn object_at(&self, dac: &Dac, addr: u64) -> Option<(Arc<MtInfo>, u64)> {
        // MethodTable and length in one read (zero-copy from a core file).
        let mut head = [0u8; 12];
        match self.mem.slice(addr, 12) {
            Some(s) => head.copy_from_slice(s),
            None => {
                self.mem.read_exact(addr, &mut head[..8]).ok()?;
                let _ = self.mem.read_exact(addr + 8, &mut head[8..]);
            }
        }
        let mt = u64::from_le_bytes(head[..8].try_into().unwrap()) & !7;
        let info = self.mt_info(dac, mt)?;
        let mut size = info.base_size as u64;
        if info.component_size != 0 {
            let n = u32::from_le_bytes(head[8..12].try_into().unwrap()) as u64;
            size += n * info.component_size as u64;
        }
        Some((info, size.max(MIN_OBJECT_SIZE)))
    }

    /// The references held by an object, from its GCDesc; calls `f(slot_address, target)`
    /// for each non-null reference slot. Says whether the references could be read.
    pub fn for_each_reference(
        &self,
        addr: u64,
        info: &MtInfo,
        size: u64,
        mut f: impl FnMut(u64, u64),
    ) -> RefsRead {
        if !info.contains_pointers {
            return RefsRead::Complete;
        }
        let desc = info.gcdesc.get_or_init(|| read_gcdesc(&*self.mem, info.mt));
        let Some(desc) = desc else {
            return RefsRead::NoGcDesc;
        };
        let Ok(data) = self.object_bytes(addr, size) else {
            return RefsRead::Unreadable;
        };
        // Offsets and counts come from the target's GCDesc: every step is checked, and a walk
        // past the object's bytes ends its series.
        let slot = |off: u64| -> Option<u64> {
            let o = usize::try_from(off).ok()?;
            data.get(o..o.checked_add(8)?)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
        };
        match desc {
            GcDesc::Series(series) => {
                for &(start, adjust) in series {
                    let run = adjust.saturating_add(i64::try_from(size).unwrap_or(i64::MAX));
                    if run <= 0 {
                        continue;
                    }
                    let end = start.saturating_add(run as u64);
                    let mut o = start;
                    while o < end {
                        match slot(o) {
                            Some(v) if v != 0 => f(addr.wrapping_add(o), v),
                            Some(_) => {}
                            None => break,
                        }
                        o = o.saturating_add(8);
                    }
                }
            }
            GcDesc::ValSeries { start, items } => {
                let mut o = *start;
                'object: while o.saturating_add(8) < size {
                    let before = o;
                    for &(nptrs, skip) in items {
                        for _ in 0..nptrs {
                            if o.saturating_add(8) > size {
                                break 'object;
                            }
                            if let Some(v) = slot(o) {
                                if v != 0 {
                                    f(addr.wrapping_add(o), v);
                                }
                            }
                            o += 8;
                        }
                        o = o.saturating_add(skip as u64);
                    }
                    if o == before {
                        break;
                    }
                }
            }
        }
        RefsRead::Complete
    }

    fn object_bytes(
        &self,
        addr: u64,
        size: u64,
    ) -> crate::memory::Result<std::borrow::Cow<'_, [u8]>> {
        let len = size as usize;
        if let Some(s) = self.mem.slice(addr, len) {
            return Ok(std::borrow::Cow::Borrowed(s));
        }
        // A garbage "object" can claim any length: never allocate gigabytes for one.
        if size > MAX_COPIED_OBJECT {
            return Err(crate::memory::MemoryError::NotAvailable { addr });
        }
        Ok(std::borrow::Cow::Owned(self.mem.read_vec(addr, len)?))
    }
}

fn read_gcdesc(mem: &dyn DataTarget, mt: u64) -> Option<GcDesc> {
    // The GCDesc sits just below the MethodTable; an MT too low to have one is damage.
    let num = mem.read_i64(mt.checked_sub(8)?).ok()?;
    if num > 0 && num < 100_000 {
        let n = num as u64;
        let block = mem
            .read_vec(mt.checked_sub((1 + 2 * n) * 8)?, ((1 + 2 * n) * 8) as usize)
            .ok()?;
        let at = |back: u64| -> u64 {
            let o = block.len() - (back * 8) as usize;
            u64::from_le_bytes(block[o..o + 8].try_into().unwrap())
        };
        let series = (0..n)
            .map(|i| (at(2 * i + 2), at(2 * i + 3) as i64))
            .collect();
        Some(GcDesc::Series(series))
    } else if num < 0 && num > -100_000 {
        let n = (-num) as u64;
        let block = mem
            .read_vec(mt.checked_sub((2 + n) * 8)?, ((2 + n) * 8) as usize)
            .ok()?;
        let at = |back: u64| -> u64 {
            let o = block.len() - (back * 8) as usize;
            u64::from_le_bytes(block[o..o + 8].try_into().unwrap())
        };
        let start = at(2);
        let items = (0..n)
            .map(|j| {
                let v = at(3 + j);
                (v as u32, (v >> 32) as u32)
            })
            .collect();
        Some(GcDesc::ValSeries { start, items })
    } else {
        None
    }
}
