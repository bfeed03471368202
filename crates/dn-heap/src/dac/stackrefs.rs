//! The stack-reference walk of many threads, in a forked child so that a crash inside the DAC
//! (seen with .NET 10's DAC on some async stacks) costs one thread's roots, not the session.
//!
//! The child reports on a pipe, per thread: a begin record, then the references or the DAC's
//! error. When it dies, the thread it had begun is the one that crashed; a new child carries
//! on with the threads after it.

use std::io::Write;

use super::isolate::{run_forked, ChildEnd};
use super::*;

/// What the walk of one thread's stack gave.
#[derive(Debug)]
pub enum StackRefsOutcome {
    /// The references (possibly none).
    Refs(Vec<StackRef>),
    /// The DAC refused (its error).
    Failed(String),
    /// The DAC crashed on this thread: how the child walking it ended ("signal 11,
    /// SIGSEGV").
    Crashed(String),
}

const BEGIN: u8 = b'B';
const REFS: u8 = b'R';
const ERROR: u8 = b'E';
/// Bytes of one encoded reference.
const REF_BYTES: usize = 1 + 4 + 4 + 8 + 8 + 4 + 4 + 8 + 8;

impl Dac {
    /// The stack references of each thread of `os_tids`, in that order, each walk isolated in a
    /// child process (or in this one if no child can be made).
    pub fn stack_refs_isolated(&self, os_tids: &[u32]) -> Vec<(u32, StackRefsOutcome)> {
        let mut out = Vec::with_capacity(os_tids.len());
        let mut rest = os_tids;
        while !rest.is_empty() {
            let g = lock();
            let run = run_forked(|pipe| {
                for &tid in rest {
                    let mut rec = vec![BEGIN];
                    rec.extend_from_slice(&tid.to_le_bytes());
                    if pipe.write_all(&rec).is_err() {
                        return;
                    }
                    rec = encode(tid, &self.stack_refs_locked(&g, tid));
                    if pipe.write_all(&rec).is_err() {
                        return;
                    }
                }
            });
            drop(g);
            let Ok((bytes, end)) = run else {
                // No child (out of processes or memory): walk here, as without isolation.
                for &tid in rest {
                    out.push((tid, outcome(self.stack_refs(tid))));
                }
                break;
            };
            let (done, begun) = decode(&bytes);
            let answered = done.len();
            out.extend(done);
            let next = match (end, begun) {
                (ChildEnd::Finished, None) if answered == rest.len() => break,
                // Died inside a thread's walk: that thread crashed; carry on after it.
                (ChildEnd::Signal(_) | ChildEnd::Failed(_), Some(tid)) => {
                    out.push((tid, StackRefsOutcome::Crashed(end.describe())));
                    answered + 1
                }
                // Anything else (a garbled answer): what is missing is reported as lost.
                _ => {
                    for &tid in rest.iter().skip(answered) {
                        out.push((tid, StackRefsOutcome::Crashed(end.describe())));
                    }
                    break;
                }
            };
            rest = rest.get(next..).unwrap_or(&[]);
        }
        out
    }
}

fn outcome(r: Result<Vec<StackRef>>) -> StackRefsOutcome {
    match r {
        Ok(refs) => StackRefsOutcome::Refs(refs),
        Err(e) => StackRefsOutcome::Failed(e.to_string()),
    }
}

/// One thread's answer as bytes.
fn encode(tid: u32, r: &Result<Vec<StackRef>>) -> Vec<u8> {
    let mut b = Vec::new();
    match r {
        Ok(refs) => {
            b.push(REFS);
            b.extend_from_slice(&tid.to_le_bytes());
            b.extend_from_slice(&(refs.len() as u32).to_le_bytes());
            for r in refs {
                b.push(u8::from(r.has_register));
                b.extend_from_slice(&r.register.to_le_bytes());
                b.extend_from_slice(&r.offset.to_le_bytes());
                b.extend_from_slice(&r.address.to_le_bytes());
                b.extend_from_slice(&r.object.to_le_bytes());
                b.extend_from_slice(&r.flags.to_le_bytes());
                b.extend_from_slice(&r.source_type.to_le_bytes());
                b.extend_from_slice(&r.source.to_le_bytes());
                b.extend_from_slice(&r.stack_pointer.to_le_bytes());
            }
        }
        Err(e) => {
            let msg = e.to_string();
            b.push(ERROR);
            b.extend_from_slice(&tid.to_le_bytes());
            b.extend_from_slice(&(msg.len() as u32).to_le_bytes());
            b.extend_from_slice(msg.as_bytes());
        }
    }
    b
}

/// Reads fixed-width little-endian fields, refusing to run past the end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.bytes.split_first_chunk::<N>()?;
        self.bytes = tail;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
}

/// The complete answers in `bytes`, and the thread begun without an answer (where the child
/// stopped). A truncated or garbled tail ends the reading.
fn decode(bytes: &[u8]) -> (Vec<(u32, StackRefsOutcome)>, Option<u32>) {
    let mut r = Reader { bytes };
    let mut done = Vec::new();
    let mut begun = None;
    while let Some(tag) = r.u8() {
        let Some(tid) = r.u32() else { break };
        match tag {
            BEGIN => begun = Some(tid),
            REFS if begun == Some(tid) => {
                let Some(count) = r.u32() else { break };
                // Bounded by the bytes actually there, not by the count.
                if (count as usize).saturating_mul(REF_BYTES) > r.bytes.len() {
                    break;
                }
                let mut refs = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    let rec = (|| {
                        Some(StackRef {
                            has_register: r.u8()? != 0,
                            register: r.i32()?,
                            offset: r.i32()?,
                            address: r.u64()?,
                            object: r.u64()?,
                            flags: r.u32()?,
                            source_type: r.u32()?,
                            source: r.u64()?,
                            stack_pointer: r.u64()?,
                        })
                    })();
                    let Some(rec) = rec else { break };
                    refs.push(rec);
                }
                done.push((tid, StackRefsOutcome::Refs(refs)));
                begun = None;
            }
            ERROR if begun == Some(tid) => {
                let Some(len) = r.u32() else { break };
                let Some(msg) = r.bytes.get(..len as usize) else {
                    break;
                };
                let msg = String::from_utf8_lossy(msg).into_owned();
                r.bytes = &r.bytes[len as usize..];
                done.push((tid, StackRefsOutcome::Failed(msg)));
                begun = None;
            }
            _ => break,
        }
    }
    (done, begun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(i: u64) -> StackRef {
        StackRef {
            has_register: i % 2 == 0,
            register: i as i32,
            offset: -(i as i32),
            address: 0x7f00_0000_0000 + i,
            object: 0x7e00_0000_0000 + i * 8,
            flags: 1,
            source_type: (i % 2) as u32,
            source: 0x1234 + i,
            stack_pointer: 0x7ffd_0000_0000 - i,
        }
    }

    #[test]
    fn answers_round_trip_and_a_crash_is_found() {
        let mut bytes = vec![BEGIN, 7, 0, 0, 0];
        bytes.extend(encode(7, &Ok((0..5).map(sample).collect())));
        bytes.extend([BEGIN, 9, 0, 0, 0]);
        bytes.extend(encode(
            9,
            &Err(DacError::Call {
                call: "GetStackReferences",
                hr: 0x8007_0057,
            }),
        ));
        bytes.extend([BEGIN, 11, 0, 0, 0]);
        let (done, begun) = decode(&bytes);
        assert_eq!(done.len(), 2);
        match &done[0] {
            (7, StackRefsOutcome::Refs(r)) => {
                assert_eq!(r.len(), 5);
                assert_eq!(r[3].object, sample(3).object);
                assert_eq!(r[3].offset, -3);
                assert_eq!(r[4].stack_pointer, sample(4).stack_pointer);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&done[1], (9, StackRefsOutcome::Failed(m)) if m.contains("GetStackReferences"))
        );
        assert_eq!(begun, Some(11));
    }

    #[test]
    fn truncated_or_lying_answers_are_cut_not_trusted() {
        let mut bytes = vec![BEGIN, 7, 0, 0, 0];
        bytes.extend(encode(7, &Ok((0..3).map(sample).collect())));
        for cut in 0..bytes.len() {
            let (done, _) = decode(&bytes[..cut]);
            assert!(done.is_empty(), "cut at {cut}");
        }
        // A count far beyond the bytes there.
        let lying = [BEGIN, 1, 0, 0, 0, REFS, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(decode(&lying).0.len(), 0);
        // An answer for a thread that was not begun.
        let stray = encode(3, &Ok(vec![sample(1)]));
        assert_eq!(decode(&stray).0.len(), 0);
    }
}
