//! Response assembly from pre-encoded records: header, one question, sections of wire RRs,
//! optional OPT, then TSIG (added by [`crate::tsig::ResponseSigner`]).

use hickory_proto::op::OpCode;

/// Largest message the primary writes on TCP (room left for the TSIG record).
pub const MAX_TCP_MESSAGE: usize = 60_000;
/// UDP payload we advertise and use with EDNS clients.
pub const EDNS_UDP_PAYLOAD: u16 = 1232;

/// Header flags of a response.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    /// Request ID.
    pub id: u16,
    /// Opcode of the request.
    pub opcode: OpCode,
    /// Authoritative answer.
    pub aa: bool,
    /// Truncated.
    pub tc: bool,
    /// Recursion desired (copied).
    pub rd: bool,
    /// RCODE (low 4 bits).
    pub rcode: u8,
}

/// Builds a message incrementally.
pub struct MessageBuf {
    buf: Vec<u8>,
    counts: [u16; 4],
    section: usize,
}

impl MessageBuf {
    /// Starts a message with the question `qname_wire`/`qtype`/`qclass` (or none).
    pub fn new(head: Head, question: Option<(&[u8], u16, u16)>) -> Self {
        let mut buf = Vec::with_capacity(512);
        buf.extend_from_slice(&head.id.to_be_bytes());
        let mut flags: u16 = 0x8000 | (u16::from(u8::from(head.opcode)) << 11) | u16::from(head.rcode & 0x0f);
        if head.aa {
            flags |= 0x0400;
        }
        if head.tc {
            flags |= 0x0200;
        }
        if head.rd {
            flags |= 0x0100;
        }
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0; 8]);
        let mut counts = [0u16; 4];
        if let Some((name, t, c)) = question {
            buf.extend_from_slice(name);
            buf.extend_from_slice(&t.to_be_bytes());
            buf.extend_from_slice(&c.to_be_bytes());
            counts[0] = 1;
        }
        MessageBuf { buf, counts, section: 1 }
    }

    /// Current size in octets.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing but the header is in it.
    pub fn is_empty(&self) -> bool {
        self.buf.len() <= 12
    }

    /// Records added so far to answer/authority/additional.
    pub fn record_count(&self) -> usize {
        usize::from(self.counts[1]) + usize::from(self.counts[2]) + usize::from(self.counts[3])
    }

    /// Moves on to the authority (2) or additional (3) section.
    pub fn section(&mut self, s: usize) {
        self.section = s.clamp(1, 3);
    }

    /// Appends one wire RR to the current section.
    pub fn push(&mut self, rr: &[u8]) {
        self.buf.extend_from_slice(rr);
        self.counts[self.section] = self.counts[self.section].saturating_add(1);
    }

    /// Appends an OPT record to the additional section.
    pub fn push_opt(&mut self, payload: u16) {
        self.section(3);
        let mut opt = [0u8; 11];
        opt[1..3].copy_from_slice(&41u16.to_be_bytes());
        opt[3..5].copy_from_slice(&payload.to_be_bytes());
        self.push(&opt);
    }

    /// Sets TC in the header.
    pub fn set_truncated(&mut self) {
        self.buf[2] |= 0x02;
    }

    /// The encoded message.
    pub fn finish(mut self) -> Vec<u8> {
        for (i, c) in self.counts.iter().enumerate() {
            self.buf[4 + 2 * i..6 + 2 * i].copy_from_slice(&c.to_be_bytes());
        }
        self.buf
    }
}

/// The type of a wire RR whose owner name is uncompressed.
pub fn rr_type(rr: &[u8]) -> Option<u16> {
    let mut i = 0;
    loop {
        let l = usize::from(*rr.get(i)?);
        if l == 0 {
            i += 1;
            break;
        }
        i += 1 + l;
    }
    Some(u16::from_be_bytes([*rr.get(i)?, *rr.get(i + 1)?]))
}
