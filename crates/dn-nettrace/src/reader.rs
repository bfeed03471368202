//! Pull wrapper: events from any `std::io::Read` (a socket or a file).

use std::io::{ErrorKind as IoErrorKind, Read};

use crate::error::{ErrorKind, ParseError};
use crate::event::{Event, EventRef};
use crate::parser::NettraceParser;
use crate::trace_info::TraceInfo;

const READ_CHUNK: usize = 64 * 1024;

/// Iterates the events of a nettrace stream read from `R`. Reads only when the parser needs
/// more bytes, so memory stays bounded by one block plus one read. Stops after the
/// end-of-stream marker without reading further; yields one error (then ends) on truncated or
/// corrupt input or a failed read.
pub struct EventReader<R: Read> {
    source: R,
    parser: NettraceParser,
    chunk: Vec<u8>,
    done: bool,
}

impl<R: Read> EventReader<R> {
    pub fn new(source: R) -> Self {
        Self::with_parser(source, NettraceParser::new())
    }

    /// Uses a parser configured by the caller (e.g. with stacks kept).
    pub fn with_parser(source: R, parser: NettraceParser) -> Self {
        EventReader {
            source,
            parser,
            chunk: vec![0; READ_CHUNK],
            done: false,
        }
    }

    /// Reads until the stream's Trace object is parsed (the first ~100 bytes, sent right after
    /// a session starts) and returns it, without consuming any event.
    pub fn trace_info(&mut self) -> Result<TraceInfo, ParseError> {
        loop {
            if let Some(info) = self.parser.trace_info() {
                return Ok(*info);
            }
            let n = self.read_chunk()?;
            if n == 0 {
                self.parser.end_of_input()?;
            } else {
                self.parser.feed(&self.chunk[..n])?;
            }
        }
    }

    /// The parser, e.g. for [`NettraceParser::trace_info`] or stacks.
    pub fn parser(&self) -> &NettraceParser {
        &self.parser
    }

    pub fn into_inner(self) -> R {
        self.source
    }

    /// Reads the whole stream, handing each event to `on_event` without allocating per event
    /// (the fast path; the iterator builds an owned [`Event`] each). Returns at the
    /// end-of-stream marker, or the first error.
    pub fn for_each_event(
        &mut self,
        mut on_event: impl FnMut(EventRef<'_>),
    ) -> Result<(), ParseError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        while !self.parser.is_finished() {
            let n = self.read_chunk()?;
            if n == 0 {
                return self.parser.end_of_input();
            }
            self.parser.feed_each(&self.chunk[..n], &mut on_event)?;
        }
        Ok(())
    }

    /// Reads the next chunk of input into `self.chunk` (0 at end of input), retrying
    /// interrupted reads.
    fn read_chunk(&mut self) -> Result<usize, ParseError> {
        loop {
            match self.source.read(&mut self.chunk) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == IoErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(self.parser.offset(), e)),
            }
        }
    }

    #[inline(always)]
    fn pull(&mut self) -> Result<Option<Event>, ParseError> {
        loop {
            if let Some(e) = self.parser.next_event()? {
                return Ok(Some(e));
            }
            if self.parser.is_finished() {
                return Ok(None);
            }
            let n = self.read_chunk()?;
            if n == 0 {
                self.parser.end_of_input()?;
                return Ok(None);
            }
            self.parser.feed(&self.chunk[..n])?;
        }
    }
}

impl<R: Read> Iterator for EventReader<R> {
    type Item = Result<Event, ParseError>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.pull() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn io_error(offset: u64, e: std::io::Error) -> ParseError {
    ParseError::new(
        offset,
        ErrorKind::Io {
            kind: e.kind(),
            message: e.to_string(),
        },
    )
}
