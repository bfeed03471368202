//! Contents of EventBlock / MetadataBlock (event blobs), StackBlock and SPBlock.

use crate::cursor::Cursor;
use crate::error::{ErrorKind, ParseError};

/// Header fields of one event blob. In compressed blocks each blob only carries what changed,
/// so this also serves as the "previous header" state (all zero at block start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BlobHeader {
    pub metadata_id: u32,
    pub sequence: u32,
    pub thread_id: u64,
    pub capture_thread_id: u64,
    pub processor: u32,
    pub stack_id: u32,
    pub timestamp: i64,
    pub activity_id: [u8; 16],
    pub related_activity_id: [u8; 16],
    pub is_sorted: bool,
    pub payload_size: u32,
}

const MIN_BLOCK_HEADER: u16 = 20;
const FLAG_COMPRESSED: u16 = 1;

/// Position inside an EventBlock or MetadataBlock between two blobs, so a block can be walked
/// one event at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobState {
    pos: usize,
    compressed: bool,
    /// The last blob's header (the base for the next compressed header).
    pub h: BlobHeader,
}

impl BlobState {
    /// Reads the block header; `content` is the whole block and `base` its stream offset.
    pub fn start(content: &[u8], base: u64) -> Result<BlobState, ParseError> {
        let mut c = Cursor::new(content, base);
        let header_size = c.u16("block header size")?;
        let flags = c.u16("block flags")?;
        if header_size < MIN_BLOCK_HEADER || usize::from(header_size) > content.len() {
            return Err(ParseError::new(
                base,
                ErrorKind::Malformed("bad block header size"),
            ));
        }
        Ok(BlobState {
            pos: usize::from(header_size),
            compressed: flags & FLAG_COMPRESSED != 0,
            h: BlobHeader::default(),
        })
    }

    /// The next blob's payload and its absolute offset (header in `self.h`), or `None` at the
    /// end of the block.
    #[inline]
    pub fn next<'a>(
        &mut self,
        content: &'a [u8],
        base: u64,
    ) -> Result<Option<(&'a [u8], u64)>, ParseError> {
        let mut c = Cursor::at(content, base, self.pos);
        if c.is_empty() {
            return Ok(None);
        }
        let h = &mut self.h;
        let found = if self.compressed {
            read_compressed(&mut c, h)?;
            let at = c.offset();
            (
                c.bytes(
                    h.payload_size as usize,
                    "event payload larger than its block",
                )?,
                at,
            )
        } else {
            let blob_start = c.pos();
            let at = c.offset();
            let size = c.i32("event size")?;
            let end = usize::try_from(size)
                .ok()
                .and_then(|s| s.checked_add(blob_start + 4))
                .filter(|e| *e <= content.len())
                .ok_or(ParseError::new(at, ErrorKind::Malformed("bad event size")))?;
            read_uncompressed(&mut c, h)?;
            let pat = c.offset();
            let payload = c.bytes(
                h.payload_size as usize,
                "event payload larger than its block",
            )?;
            if c.pos() > end {
                return Err(ParseError::new(
                    at,
                    ErrorKind::Malformed("event larger than its size"),
                ));
            }
            // Blobs are 4-byte aligned within the (aligned) block.
            let next = (end + 3) & !3;
            c.skip(next.min(content.len()) - c.pos(), "event padding")?;
            (payload, pat)
        };
        self.pos = c.pos();
        Ok(Some(found))
    }
}

/// Walks all blobs of a block: `on_blob` gets the header, the payload and its absolute offset.
pub(crate) fn for_each_blob<'a>(
    content: &'a [u8],
    base: u64,
    mut on_blob: impl FnMut(&BlobHeader, &'a [u8], u64) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let mut st = BlobState::start(content, base)?;
    while let Some((payload, at)) = st.next(content, base)? {
        on_blob(&st.h, payload, at)?;
    }
    Ok(())
}

#[inline]
fn read_compressed(c: &mut Cursor, h: &mut BlobHeader) -> Result<(), ParseError> {
    let flags = c.u8("event header flags")?;
    if flags & 0x01 != 0 {
        h.metadata_id = c.varu32("metadata id")?;
    }
    if flags & 0x02 != 0 {
        // The writer emits seq - prev - 1 in u32 arithmetic (0xFFFFFFFF for metadata blobs).
        let delta = c.varu32("sequence delta")?;
        h.sequence = h.sequence.wrapping_add(delta).wrapping_add(1);
        h.capture_thread_id = c.varu64("capture thread id")?;
        h.processor = c.varu32("processor number")?;
    } else if h.metadata_id != 0 {
        h.sequence = h.sequence.wrapping_add(1);
    }
    if flags & 0x04 != 0 {
        h.thread_id = c.varu64("thread id")?;
    }
    if flags & 0x08 != 0 {
        h.stack_id = c.varu32("stack id")?;
    }
    h.timestamp = h
        .timestamp
        .wrapping_add(c.varu64("timestamp delta")? as i64);
    if flags & 0x10 != 0 {
        h.activity_id = c.guid("activity id")?;
    }
    if flags & 0x20 != 0 {
        h.related_activity_id = c.guid("related activity id")?;
    }
    h.is_sorted = flags & 0x40 != 0;
    if flags & 0x80 != 0 {
        h.payload_size = c.varu32("payload size")?;
    }
    Ok(())
}

fn read_uncompressed(c: &mut Cursor, h: &mut BlobHeader) -> Result<(), ParseError> {
    let md = c.u32("metadata id")?;
    h.metadata_id = md & 0x7fff_ffff;
    // The runtime writes `!sorted << 31`.
    h.is_sorted = md & 0x8000_0000 == 0;
    h.sequence = c.u32("sequence number")?;
    h.thread_id = c.u64("thread id")?;
    h.capture_thread_id = c.u64("capture thread id")?;
    h.processor = c.u32("processor number")?;
    h.stack_id = c.u32("stack id")?;
    h.timestamp = c.i64("timestamp")?;
    h.activity_id = c.guid("activity id")?;
    h.related_activity_id = c.guid("related activity id")?;
    h.payload_size = c.u32("payload size")?;
    Ok(())
}

/// Walks a StackBlock: `u32 first_id, u32 count`, then `count` × (`u32 size`, bytes).
pub(crate) fn for_each_stack<'a>(
    content: &'a [u8],
    base: u64,
    mut on_stack: impl FnMut(u32, &'a [u8]),
) -> Result<(), ParseError> {
    let mut c = Cursor::new(content, base);
    let first_id = c.u32("stack block first id")?;
    let count = c.u32("stack block count")?;
    if count as usize > c.remaining() / 4 {
        return Err(c.error(ErrorKind::Malformed("stack count larger than its block")));
    }
    for i in 0..count {
        let size = c.u32("stack size")? as usize;
        let bytes = c.bytes(size, "stack larger than its block")?;
        on_stack(first_id.wrapping_add(i), bytes);
    }
    Ok(())
}

/// A sequence point: for each capture thread the last sequence number written before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequencePoint {
    pub timestamp: i64,
    /// (capture thread id, sequence number)
    pub threads: Vec<(u64, u32)>,
}

pub(crate) fn parse_sequence_point(content: &[u8], base: u64) -> Result<SequencePoint, ParseError> {
    let mut c = Cursor::new(content, base);
    let timestamp = c.i64("sequence point timestamp")?;
    let count = c.u32("sequence point thread count")?;
    if count as usize > c.remaining() / 12 {
        return Err(c.error(ErrorKind::Malformed("thread count larger than its block")));
    }
    let mut threads = Vec::with_capacity(count as usize);
    for _ in 0..count {
        threads.push((c.u64("capture thread id")?, c.u32("sequence number")?));
    }
    Ok(SequencePoint { timestamp, threads })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The runtimes seen (3.1, 8, 10) always compress headers; this layout is from the format
    // description, built by hand.
    #[test]
    fn uncompressed_blobs_with_padding() {
        let mut block = Vec::new();
        block.extend(20u16.to_le_bytes()); // header size
        block.extend(0u16.to_le_bytes()); // flags: not compressed
        block.extend([0u8; 16]); // min/max timestamps
        for (i, payload) in [&b"abc"[..], &b"12345678"[..]].iter().enumerate() {
            let mut blob = Vec::new();
            blob.extend((7u32 | if i == 0 { 0x8000_0000 } else { 0 }).to_le_bytes());
            blob.extend((10 + i as u32).to_le_bytes()); // sequence
            blob.extend(0x1234u64.to_le_bytes()); // thread
            blob.extend(0x5678u64.to_le_bytes()); // capture thread
            blob.extend(3u32.to_le_bytes()); // processor
            blob.extend(9u32.to_le_bytes()); // stack
            blob.extend(1_000_000i64.to_le_bytes());
            blob.extend([0xAA; 16]);
            blob.extend([0xBB; 16]);
            blob.extend((payload.len() as u32).to_le_bytes());
            blob.extend(*payload);
            while blob.len() % 4 != 0 {
                blob.push(0);
            }
            block.extend((blob.len() as i32).to_le_bytes());
            block.extend(blob);
        }
        let mut seen = Vec::new();
        for_each_blob(&block, 136, |h, payload, at| {
            seen.push((
                h.metadata_id,
                h.is_sorted,
                h.sequence,
                h.stack_id,
                h.activity_id[0],
                payload.to_vec(),
                at,
            ));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[0],
            (7, false, 10, 9, 0xAA, b"abc".to_vec(), 136 + 20 + 4 + 76)
        );
        assert_eq!(seen[1].0..seen[1].3, 7..9);
        assert!(seen[1].1);
        assert_eq!(seen[1].5, b"12345678");
    }

    #[test]
    fn compressed_sequence_delta_wraps_and_fields_carry_over() {
        let mut block = vec![20, 0, 1, 0];
        block.extend([0u8; 16]);
        // Metadata-style first blob: flags 0xC6, seq delta 0xFFFFFFFF, capture thread 0,
        // processor 0xFFFFFFFF, thread 5, timestamp +100, payload size 2.
        block.extend([
            0xC6, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x05, 100, 2,
            1, 2,
        ]);
        // Next: metadata id 3 (flag 0x01), timestamp +1, same payload size (no 0x80).
        block.extend([0x01, 3, 1, 9, 9]);
        let mut seen = Vec::new();
        for_each_blob(&block, 0, |h, payload, _| {
            seen.push((
                h.metadata_id,
                h.sequence,
                h.thread_id,
                h.processor,
                h.timestamp,
                payload.to_vec(),
            ));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen[0], (0, 0, 5, u32::MAX, 100, vec![1, 2]));
        // A non-metadata blob without flag 0x02 counts its sequence up by one.
        assert_eq!(seen[1], (3, 1, 5, u32::MAX, 101, vec![9, 9]));
    }
}
