//! The push parser: bytes in (in pieces of any size), events out.
//!
//! The stream is a FastSerialization container: magic, header, the `Trace` object, then
//! size-prefixed block objects, then a NullReference tag. The parser keeps only the bytes of the
//! object being assembled (or of the EventBlock whose events are being handed out) and walks an
//! EventBlock one event at a time, so no list of events is ever built.

use std::collections::HashMap;
use std::sync::Arc;

use crate::blocks::{
    for_each_blob, for_each_stack, parse_sequence_point, BlobHeader, BlobState, SequencePoint,
};
use crate::container::{
    expect_tag, parse_object_header, ObjectKind, MAGIC, MAX_BLOCK_SIZE, SERIALIZATION_HEADER,
    STREAM_HEADER_LEN, TAG_END_OBJECT, TAG_NULL_REFERENCE,
};
use crate::cursor::Cursor;
use crate::error::{ErrorKind, ParseError};
use crate::event::{Event, EventRef};
use crate::metadata::{EventMetadata, MetadataMap};
use crate::payload::Payload;
use crate::trace_info::{TraceInfo, TRACE_DATA_LEN};
use crate::value::Guid;

#[derive(Debug, Clone, PartialEq)]
enum State {
    StreamHeader,
    ObjectHeader,
    TraceData {
        version: i32,
    },
    BlockSize(ObjectKind),
    BlockBody {
        kind: ObjectKind,
        pad: usize,
        size: usize,
    },
    /// A whole EventBlock is buffered; its events are handed out one at a time.
    EventBlock {
        pad: usize,
        size: usize,
        blob: BlobState,
    },
    End,
    Failed(ParseError),
}

/// Incremental nettrace parser. Feed it bytes as they arrive with [`feed`](Self::feed) and take
/// events with [`next_event`](Self::next_event); call [`end_of_input`](Self::end_of_input) when
/// the source is exhausted to learn whether the stream was complete.
#[derive(Debug)]
pub struct NettraceParser {
    /// Shared with the owned events whose long payloads point into it (no copy per event); the
    /// parser writes to it only when no event holds it, else it moves on to a fresh buffer.
    buf: Arc<Vec<u8>>,
    /// Index in `buf` of the first unconsumed byte.
    start: usize,
    /// Absolute stream offset of `buf[start]`.
    offset: u64,
    state: State,
    trace: Option<TraceInfo>,
    metadata: MetadataMap,
    /// The source is exhausted: running out of bytes now means truncation.
    eof: bool,
    keep_stacks: bool,
    stacks: HashMap<u32, Vec<u8>>,
    last_sequence_point: Option<SequencePoint>,
    sequence_points: u64,
    blocks: u64,
}

impl Default for NettraceParser {
    fn default() -> Self {
        Self::new()
    }
}

impl NettraceParser {
    pub fn new() -> Self {
        NettraceParser {
            buf: Arc::new(Vec::new()),
            start: 0,
            offset: 0,
            state: State::StreamHeader,
            trace: None,
            metadata: MetadataMap::default(),
            eof: false,
            keep_stacks: false,
            stacks: HashMap::new(),
            last_sequence_point: None,
            sequence_points: 0,
            blocks: 0,
        }
    }

    /// Keep the contents of StackBlocks so [`stack`](Self::stack) can answer (off by default:
    /// stacks can take megabytes between two sequence points).
    pub fn keep_stacks(mut self, keep: bool) -> Self {
        self.keep_stacks = keep;
        self
    }

    /// Appends bytes and hands every event that can now be parsed to `on_event`, without
    /// allocating per event (the fast path). Errors are sticky.
    pub fn feed_each(
        &mut self,
        bytes: &[u8],
        mut on_event: impl FnMut(EventRef<'_>),
    ) -> Result<(), ParseError> {
        self.append(bytes)?;
        loop {
            match self.step_or_fail(Some(&mut on_event))? {
                Step::Progress => {}
                Step::NeedMore => return Ok(()),
            }
        }
    }

    /// Appends bytes and parses up to the next event (stream header, Trace object, metadata and
    /// stack blocks are parsed here). Errors are sticky.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ParseError> {
        self.append(bytes)?;
        self.prepare()
    }

    /// The next event, or `Ok(None)` when more bytes are needed (or the stream ended). After
    /// [`end_of_input`](Self::end_of_input), running out of bytes before the end marker is an
    /// error.
    #[inline(always)]
    pub fn next_event(&mut self) -> Result<Option<Event>, ParseError> {
        loop {
            if matches!(self.state, State::EventBlock { .. }) {
                match self.next_in_block() {
                    Ok(Some(e)) => return Ok(Some(e)),
                    Ok(None) => {}
                    Err(e) => return Err(self.fail(e)),
                }
            }
            match self.step_or_fail(None)? {
                Step::Progress => {}
                Step::NeedMore => return Ok(None),
            }
        }
    }

    /// The hot path of [`next_event`](Self::next_event): the next event of the buffered
    /// EventBlock (`None` once it is used up), with the state updated in place.
    #[inline(always)]
    fn next_in_block(&mut self) -> Result<Option<Event>, ParseError> {
        let State::EventBlock { pad, size, blob } = &mut self.state else {
            return Ok(None);
        };
        let (pad, size) = (*pad, *size);
        let content_at = self.offset + pad as u64;
        let content = &self.buf[self.start + pad..self.start + pad + size];
        if let Some((payload, pat)) = blob.next(content, content_at)? {
            let trace = self.trace.as_ref().expect("blocks follow the Trace object");
            let ev = event_ref(&self.metadata, trace, &blob.h, payload, pat)?;
            let payload = match Payload::inline(payload) {
                Some(p) => p,
                None => {
                    let start = self.start + pad + (pat - content_at) as usize;
                    Payload::shared(&self.buf, start..start + payload.len())
                }
            };
            return Ok(Some(ev.owned_with(payload)));
        }
        self.consume(pad + size + 1);
        self.state = State::ObjectHeader;
        Ok(None)
    }

    /// Tells the parser the input is exhausted. `Ok` if the end-of-stream marker was seen (or
    /// a buffered block still has events to take), else the error naming where the stream was
    /// cut.
    pub fn end_of_input(&mut self) -> Result<(), ParseError> {
        self.eof = true;
        self.prepare()
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), ParseError> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        if matches!(self.state, State::End) && !bytes.is_empty() {
            let e = ParseError::new(self.offset, ErrorKind::DataAfterEnd);
            return Err(self.fail(e));
        }
        self.compact();
        self.buf_mut().extend_from_slice(bytes);
        Ok(())
    }

    /// Parses everything that precedes the next event.
    fn prepare(&mut self) -> Result<(), ParseError> {
        while !matches!(self.state, State::EventBlock { .. }) {
            match self.step_or_fail(None)? {
                Step::Progress => {}
                Step::NeedMore => return Ok(()),
            }
        }
        Ok(())
    }

    fn step_or_fail(
        &mut self,
        sink: Option<&mut dyn FnMut(EventRef<'_>)>,
    ) -> Result<Step, ParseError> {
        match self.step(sink) {
            Ok(Step::NeedMore) if self.eof => {
                let what = match &self.state {
                    // Events still to take from a buffered block are not a truncation (yet).
                    State::End | State::Failed(_) | State::EventBlock { .. } => {
                        return Ok(Step::NeedMore)
                    }
                    State::StreamHeader => "the stream header",
                    State::ObjectHeader => "an object header",
                    State::TraceData { .. } => "the Trace object",
                    State::BlockSize(_) | State::BlockBody { .. } => "a block",
                };
                let end = self.offset + (self.buf.len() - self.start) as u64;
                Err(self.fail(ParseError::new(end, ErrorKind::Truncated(what))))
            }
            Ok(step) => Ok(step),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// True once the end-of-stream marker has been parsed.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::End)
    }

    /// The Trace object, once parsed.
    pub fn trace_info(&self) -> Option<&TraceInfo> {
        self.trace.as_ref()
    }

    /// Metadata by metadata id.
    pub fn metadata(&self, metadata_id: u32) -> Option<&Arc<EventMetadata>> {
        self.metadata.get(&metadata_id)
    }

    /// All metadata seen so far.
    pub fn all_metadata(&self) -> impl Iterator<Item = &Arc<EventMetadata>> {
        self.metadata.values()
    }

    /// Raw instruction pointers (pointer-size little-endian) of a stack, if
    /// [`keep_stacks`](Self::keep_stacks) is on. Valid for events returned since the last
    /// sequence point.
    pub fn stack(&self, stack_id: u32) -> Option<&[u8]> {
        self.stacks.get(&stack_id).map(Vec::as_slice)
    }

    /// The instruction pointers of a stack (innermost first), read with the trace's pointer
    /// size; see [`stack`](Self::stack).
    pub fn stack_ips(&self, stack_id: u32) -> Option<Vec<u64>> {
        let bytes = self.stack(stack_id)?;
        let size = if self.trace.as_ref()?.pointer_size == 4 {
            4
        } else {
            8
        };
        Some(
            bytes
                .chunks_exact(size)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b[..size].copy_from_slice(c);
                    u64::from_le_bytes(b)
                })
                .collect(),
        )
    }

    /// The most recent SPBlock.
    pub fn last_sequence_point(&self) -> Option<&SequencePoint> {
        self.last_sequence_point.as_ref()
    }

    /// Number of SPBlocks and of all blocks parsed so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.sequence_points, self.blocks)
    }

    /// Bytes received but not yet parsed (at most one block plus the last piece fed).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Absolute offset of the first byte not yet consumed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn compact(&mut self) {
        if Arc::get_mut(&mut self.buf).is_none() {
            // Events share the buffer: move on to a fresh one holding only the unconsumed bytes.
            self.buf = Arc::new(self.buf[self.start..].to_vec());
            self.start = 0;
        } else if self.start == self.buf.len() {
            self.buf_mut().clear();
            self.start = 0;
        } else if self.start > 0 && self.start >= self.buf.len() / 2 {
            let start = self.start;
            self.buf_mut().drain(..start);
            self.start = 0;
        }
    }

    /// The buffer for writing; call [`compact`](Self::compact) first (it unshares it).
    fn buf_mut(&mut self) -> &mut Vec<u8> {
        Arc::get_mut(&mut self.buf).expect("compact() unshares the buffer")
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    fn fail(&mut self, e: ParseError) -> ParseError {
        self.state = State::Failed(e.clone());
        e
    }

    /// One parsing step. In the EventBlock state all its events go to `sink` if given; without
    /// a sink the step stops there (`NeedMore`) and [`next_in_block`](Self::next_in_block)
    /// takes them one by one.
    fn step(&mut self, sink: Option<&mut dyn FnMut(EventRef<'_>)>) -> Result<Step, ParseError> {
        if matches!(self.state, State::EventBlock { .. }) {
            return self.step_event_block(sink);
        }
        let avail = &self.buf[self.start..];
        let at = self.offset;
        match self.state.clone() {
            State::Failed(e) => Err(e),
            State::End => {
                if avail.is_empty() {
                    Ok(Step::NeedMore)
                } else {
                    Err(ParseError::new(at, ErrorKind::DataAfterEnd))
                }
            }
            State::StreamHeader => {
                let n = avail.len().min(STREAM_HEADER_LEN);
                if avail[..n.min(8)] != MAGIC[..n.min(8)] {
                    return Err(ParseError::new(at, ErrorKind::BadMagic));
                }
                if n > 8 && avail[8..n] != SERIALIZATION_HEADER[..n - 8] {
                    return Err(ParseError::new(at + 8, ErrorKind::BadSerializationHeader));
                }
                if n < STREAM_HEADER_LEN {
                    return Ok(Step::NeedMore);
                }
                self.consume(STREAM_HEADER_LEN);
                self.state = State::ObjectHeader;
                Ok(Step::Progress)
            }
            State::ObjectHeader => {
                if avail.first() == Some(&TAG_NULL_REFERENCE) {
                    if self.trace.is_none() {
                        return Err(ParseError::new(
                            at,
                            ErrorKind::Truncated("a stream without a Trace object"),
                        ));
                    }
                    self.consume(1);
                    self.state = State::End;
                    return Ok(Step::Progress);
                }
                let Some((len, kind, version, min_reader)) = parse_object_header(avail, at)? else {
                    return Ok(Step::NeedMore);
                };
                let next = match kind {
                    ObjectKind::Trace => {
                        if self.trace.is_some() {
                            return Err(ParseError::new(
                                at,
                                ErrorKind::Malformed("a second Trace object"),
                            ));
                        }
                        if !(3..=4).contains(&version) || min_reader > 4 {
                            return Err(ParseError::new(
                                at,
                                ErrorKind::UnsupportedVersion {
                                    object: "Trace".into(),
                                    version,
                                    min_reader,
                                },
                            ));
                        }
                        State::TraceData { version }
                    }
                    block => {
                        if self.trace.is_none() {
                            return Err(ParseError::new(
                                at,
                                ErrorKind::MissingTraceObject(format!("{block:?}")),
                            ));
                        }
                        if min_reader > 2 {
                            return Err(ParseError::new(
                                at,
                                ErrorKind::UnsupportedVersion {
                                    object: format!("{block:?}"),
                                    version,
                                    min_reader,
                                },
                            ));
                        }
                        State::BlockSize(block)
                    }
                };
                self.consume(len);
                self.state = next;
                Ok(Step::Progress)
            }
            State::TraceData { version } => {
                if avail.len() < TRACE_DATA_LEN + 1 {
                    return Ok(Step::NeedMore);
                }
                let info =
                    TraceInfo::parse(&mut Cursor::new(&avail[..TRACE_DATA_LEN], at), version)?;
                expect_tag(
                    avail[TRACE_DATA_LEN],
                    TAG_END_OBJECT,
                    "EndObject",
                    at + TRACE_DATA_LEN as u64,
                )?;
                self.trace = Some(info);
                self.consume(TRACE_DATA_LEN + 1);
                self.state = State::ObjectHeader;
                Ok(Step::Progress)
            }
            State::BlockSize(kind) => {
                if avail.len() < 4 {
                    return Ok(Step::NeedMore);
                }
                let size = i32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]);
                let size = usize::try_from(size)
                    .ok()
                    .filter(|s| *s <= MAX_BLOCK_SIZE)
                    .ok_or(ParseError::new(
                        at,
                        ErrorKind::BadBlockSize(i64::from(size)),
                    ))?;
                // Block content starts at a 4-byte aligned stream offset.
                let pad = ((4 - (at + 4) % 4) % 4) as usize;
                self.consume(4);
                self.state = State::BlockBody { kind, pad, size };
                Ok(Step::Progress)
            }
            State::BlockBody { kind, pad, size } => {
                let total = pad + size + 1;
                if avail.len() < total {
                    return Ok(Step::NeedMore);
                }
                let content_at = at + pad as u64;
                expect_tag(
                    avail[pad + size],
                    TAG_END_OBJECT,
                    "EndObject",
                    content_at + size as u64,
                )?;
                self.blocks += 1;
                if kind == ObjectKind::EventBlock {
                    let content = &avail[pad..pad + size];
                    let blob = BlobState::start(content, content_at)?;
                    self.state = State::EventBlock { pad, size, blob };
                    return Ok(Step::Progress);
                }
                // Hold the buffer by another handle so the block can be parsed while `self` is
                // updated.
                let buf = Arc::clone(&self.buf);
                let content = &buf[self.start + pad..self.start + pad + size];
                self.parse_block(kind, content, content_at)?;
                self.consume(total);
                self.state = State::ObjectHeader;
                Ok(Step::Progress)
            }
            State::EventBlock { .. } => unreachable!("handled by step_event_block"),
        }
    }

    /// All (remaining) events of the buffered EventBlock to `sink`, or, without a sink, the
    /// block is left for [`next_in_block`](Self::next_in_block).
    fn step_event_block(
        &mut self,
        sink: Option<&mut dyn FnMut(EventRef<'_>)>,
    ) -> Result<Step, ParseError> {
        let Some(sink) = sink else {
            return Ok(Step::NeedMore);
        };
        let State::EventBlock { pad, size, blob } = &mut self.state else {
            unreachable!("called in the EventBlock state only")
        };
        let (pad, size) = (*pad, *size);
        let content_at = self.offset + pad as u64;
        let content = &self.buf[self.start + pad..self.start + pad + size];
        let trace = self.trace.as_ref().expect("blocks follow the Trace object");
        while let Some((payload, pat)) = blob.next(content, content_at)? {
            sink(event_ref(&self.metadata, trace, &blob.h, payload, pat)?);
        }
        self.consume(pad + size + 1);
        self.state = State::ObjectHeader;
        Ok(Step::Progress)
    }

    fn parse_block(&mut self, kind: ObjectKind, content: &[u8], at: u64) -> Result<(), ParseError> {
        match kind {
            ObjectKind::Trace | ObjectKind::EventBlock => unreachable_block(at),
            ObjectKind::MetadataBlock => {
                let metadata = &mut self.metadata;
                for_each_blob(content, at, |_, payload, pat| {
                    let md = EventMetadata::parse(&mut Cursor::new(payload, pat))?;
                    metadata.insert(md.metadata_id, Arc::new(md));
                    Ok(())
                })
            }
            ObjectKind::StackBlock => {
                let keep = self.keep_stacks;
                let stacks = &mut self.stacks;
                for_each_stack(content, at, |id, ips| {
                    if keep {
                        stacks.insert(id, ips.to_vec());
                    }
                })
            }
            ObjectKind::SequencePointBlock => {
                let sp = parse_sequence_point(content, at)?;
                // Stack ids restart after a sequence point; metadata ids stay valid.
                self.stacks.clear();
                self.last_sequence_point = Some(sp);
                self.sequence_points += 1;
                Ok(())
            }
        }
    }
}

/// Resolves a blob against the metadata.
#[inline(always)]
fn event_ref<'a>(
    metadata: &'a MetadataMap,
    trace: &'a TraceInfo,
    h: &BlobHeader,
    payload: &'a [u8],
    at: u64,
) -> Result<EventRef<'a>, ParseError> {
    let md = metadata.get(&h.metadata_id).ok_or(ParseError::new(
        at,
        ErrorKind::UnknownMetadataId(h.metadata_id),
    ))?;
    Ok(EventRef {
        metadata: md,
        trace,
        timestamp: h.timestamp,
        thread_id: h.thread_id,
        capture_thread_id: h.capture_thread_id,
        processor: h.processor,
        sequence: h.sequence,
        stack_id: h.stack_id,
        activity_id: Guid(h.activity_id),
        related_activity_id: Guid(h.related_activity_id),
        is_sorted: h.is_sorted,
        payload,
    })
}

enum Step {
    Progress,
    /// More bytes are needed (or, in the EventBlock state without a sink, events are ready).
    NeedMore,
}

fn unreachable_block(at: u64) -> Result<(), ParseError> {
    Err(ParseError::new(
        at,
        ErrorKind::Malformed("object parsed as the wrong kind of block"),
    ))
}
