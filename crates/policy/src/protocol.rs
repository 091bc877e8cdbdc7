//! The Postfix policy delegation protocol (SMTPD_POLICY_README): Postfix
//! writes a request as `name=value` lines ended by an empty line, and the
//! policy server answers one `action=…` line plus an empty line.
//!
//! [`RequestReader`] frames requests out of bytes as they arrive: several in
//! one read (pipelining) or one across many reads. Every request's bytes are
//! bounded by `max_bytes`, so a peer that never ends a line or a request
//! cannot make the reader grow. On any error the caller must close the
//! connection without replying: Postfix then applies its configured
//! `default_action` instead of misreading a half-answer.
//!
//! Values (addresses, HELO names, SASL names) are chosen by the SMTP client,
//! so they are kept as bytes, never assumed to be UTF-8. A value cannot pose
//! as another attribute, since a line is split at its first `=` only; the
//! ambiguity left is a name sent twice, where the first occurrence wins
//! (Postfix never repeats one, so a repeat means a confused peer).

use std::collections::VecDeque;
use std::net::IpAddr;

use memchr::memchr;

/// Why a connection's byte stream is not a valid sequence of requests. The
/// reader stays failed afterwards: the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A request grew past `max_bytes` before its empty line.
    #[error("policy request too large")]
    TooLarge,
    /// The numbered line (1-based, counted within its request) has no `=`
    /// or an empty name; line 1 also for a request that is only an empty line.
    #[error("malformed policy request at line {0}")]
    Malformed(usize),
}

/// One line `name=value` of a request, as offsets into [`Request::bytes`]:
/// the name is `start..equals`, the value `equals + 1..end`.
#[derive(Debug, Clone, Copy)]
struct Attribute {
    start: usize,
    equals: usize,
    end: usize,
}

/// One policy request: its attribute lines in a single buffer, plus where
/// each name and value lies in it.
#[derive(Debug, Clone)]
pub struct Request {
    bytes: Vec<u8>,
    attributes: Vec<Attribute>,
}

/// The SMTP stage a request is asked at (`protocol_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolState {
    /// `CONNECT`: a client just connected (`smtpd_client_restrictions`);
    /// no login yet.
    Connect,
    /// `EHLO` command (`smtpd_helo_restrictions`).
    Ehlo,
    /// `HELO` command (`smtpd_helo_restrictions`).
    Helo,
    /// `MAIL FROM` (`smtpd_sender_restrictions`): the sender is known, no
    /// recipient yet.
    Mail,
    /// `RCPT TO` (`smtpd_recipient_restrictions`), once per recipient: where
    /// locks, trips (forged sender, too many IPs or networks) and limits are
    /// checked, and a recipient can still be refused on its own.
    Rcpt,
    /// `DATA` command (`smtpd_data_restrictions`): the accepted recipients
    /// are final (`recipient_count`); the message counts here with
    /// `count_at = "data"`.
    Data,
    /// `END-OF-MESSAGE`, after the message body
    /// (`smtpd_end_of_data_restrictions`): the message counts here by
    /// default, with its `recipient_count`, so a transaction the client
    /// abandoned before the end is not counted.
    EndOfMessage,
    /// `VRFY` command: a client probing an address, no mail sent.
    Vrfy,
    /// `ETRN` command: a client asking the server to flush the mail queued
    /// for a domain; no mail sent.
    Etrn,
    /// Absent, or a stage this code does not know (a newer Postfix).
    Other,
}

impl Request {
    /// The value of the first attribute called exactly `name` (Postfix sends
    /// names lower-case); `Some(b"")` when sent empty.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|attribute| {
                self.bytes.get(attribute.start..attribute.equals) == Some(name.as_bytes())
            })
            .and_then(|attribute| self.bytes.get(attribute.equals + 1..attribute.end))
    }

    /// The value of `name`, or `None` when absent or empty: Postfix sends an
    /// unavailable value as empty.
    fn non_empty(&self, name: &str) -> Option<&[u8]> {
        self.get(name).filter(|value| !value.is_empty())
    }

    /// The `protocol_state` attribute: which SMTP stage Postfix asks at,
    /// hence whether the request is checked against locks, trips and limits
    /// (RCPT), counted (DATA or END-OF-MESSAGE, per `count_at`), or let
    /// through unless its account is locked.
    pub fn protocol_state(&self) -> ProtocolState {
        match self.get("protocol_state") {
            Some(b"CONNECT") => ProtocolState::Connect,
            Some(b"EHLO") => ProtocolState::Ehlo,
            Some(b"HELO") => ProtocolState::Helo,
            Some(b"MAIL") => ProtocolState::Mail,
            Some(b"RCPT") => ProtocolState::Rcpt,
            Some(b"DATA") => ProtocolState::Data,
            Some(b"END-OF-MESSAGE") => ProtocolState::EndOfMessage,
            Some(b"VRFY") => ProtocolState::Vrfy,
            Some(b"ETRN") => ProtocolState::Etrn,
            _ => ProtocolState::Other,
        }
    }

    /// The authenticated user; `None` for an unauthenticated client.
    pub fn sasl_username(&self) -> Option<&[u8]> {
        self.non_empty("sasl_username")
    }

    /// The client's IP; `None` when absent, empty or not an address.
    pub fn client_address(&self) -> Option<IpAddr> {
        let value = self.non_empty("client_address")?;
        std::str::from_utf8(value).ok()?.parse().ok()
    }

    /// Accepted recipients, non-zero only at DATA and END-OF-MESSAGE; 0 when
    /// absent or not a number.
    pub fn recipient_count(&self) -> u32 {
        self.get("recipient_count")
            .and_then(|value| std::str::from_utf8(value).ok())
            .and_then(|text| text.parse().ok())
            .unwrap_or(0)
    }

    /// The envelope sender as sent: `Some(b"")` is the null sender of a
    /// bounce, not a missing value.
    pub fn sender(&self) -> Option<&[u8]> {
        self.get("sender")
    }

    /// The recipient at RCPT (later only when there was exactly one).
    pub fn recipient(&self) -> Option<&[u8]> {
        self.non_empty("recipient")
    }

    /// Ties together the requests of one message on one connection.
    pub fn instance(&self) -> Option<&[u8]> {
        self.non_empty("instance")
    }
}

/// Frames requests out of a connection's bytes; see the module doc.
#[derive(Debug)]
pub struct RequestReader {
    max_bytes: usize,
    /// The request being received: its complete lines, then a partial line.
    /// Never longer than `max_bytes`.
    buf: Vec<u8>,
    /// Where the partial line starts in `buf`.
    line_start: usize,
    /// The complete lines of the request being received.
    attributes: Vec<Attribute>,
    /// Requests complete but not yet taken by [`RequestReader::next_request`].
    ready: VecDeque<Request>,
    /// Set on the first error; later bytes are ignored.
    failed: Option<ProtocolError>,
}

impl RequestReader {
    /// A reader that fails any request longer than `max_bytes` (counting
    /// line ends and the final empty line).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            buf: Vec::new(),
            line_start: 0,
            attributes: Vec::new(),
            ready: VecDeque::new(),
            failed: None,
        }
    }

    /// Takes bytes as they were read. Requests they complete are queued for
    /// [`RequestReader::next_request`], so the queue grows only by what is fed.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while self.failed.is_none() && !rest.is_empty() {
            let (piece, tail) = match memchr(b'\n', rest) {
                Some(newline) => rest.split_at(newline + 1),
                None => (rest, &[][..]),
            };
            rest = tail;
            if !self.append(piece) {
                return;
            }
            if piece.ends_with(b"\n") {
                self.end_line();
            }
        }
    }

    /// Whether part of a request has arrived and not its end: the
    /// connection is inside a request, on its whole-request deadline.
    pub fn is_mid_request(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next complete request; `Ok(None)` until more bytes are fed. An
    /// error comes only after the requests completed before it.
    pub fn next_request(&mut self) -> Result<Option<Request>, ProtocolError> {
        match self.ready.pop_front() {
            Some(request) => Ok(Some(request)),
            None => self.failed.clone().map_or(Ok(None), Err),
        }
    }

    /// Adds `piece` to the request being received, or fails the reader when
    /// that would pass `max_bytes`. Capacity is kept within `max_bytes`, so
    /// the limit bounds memory, not just length.
    fn append(&mut self, piece: &[u8]) -> bool {
        let needed = self.buf.len() + piece.len();
        if needed > self.max_bytes {
            self.fail(ProtocolError::TooLarge);
            return false;
        }
        if needed > self.buf.capacity() {
            let target = needed.max(self.buf.capacity() * 2).min(self.max_bytes);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(piece);
        true
    }

    /// Handles the line that `buf` now ends with (its `\n` included): an
    /// attribute, or the empty line that completes the request.
    fn end_line(&mut self) {
        let start = self.line_start;
        let line = self.buf.get(start..).unwrap_or_default();
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line_number = self.attributes.len() + 1;
        if line.is_empty() {
            if self.attributes.is_empty() {
                self.fail(ProtocolError::Malformed(line_number));
                return;
            }
            let request = Request {
                bytes: self.buf.get(..start).unwrap_or_default().to_vec(),
                attributes: std::mem::take(&mut self.attributes),
            };
            self.ready.push_back(request);
            self.buf.clear();
            self.line_start = 0;
            return;
        }
        match memchr(b'=', line) {
            Some(equals) if equals > 0 => {
                self.attributes.push(Attribute {
                    start,
                    equals: start + equals,
                    end: start + line.len(),
                });
                self.line_start = self.buf.len();
            }
            _ => self.fail(ProtocolError::Malformed(line_number)),
        }
    }

    /// Records the error and frees the partial request: nothing after an
    /// error is read.
    fn fail(&mut self, error: ProtocolError) {
        self.failed = Some(error);
        self.buf = Vec::new();
        self.attributes = Vec::new();
        self.line_start = 0;
    }
}

/// The answer to a request. Texts are the human part of the SMTP reply (or,
/// for HOLD, of the log line); [`encode`] adds the enhanced status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No opinion: Postfix goes on with its other restrictions.
    Dunno,
    /// Accept, skipping Postfix's later restrictions of this stage.
    Ok,
    /// Temporary failure (`DEFER`, 4.7.1).
    Defer(String),
    /// Temporary failure unless another restriction rejects (4.7.1).
    DeferIfPermit(String),
    /// Permanent failure (5.7.1).
    Reject(String),
    /// Accept the message into the hold queue (`postsuper -H` releases it).
    Hold(String),
    /// Accept, and log the text as a warning.
    Warn(String),
}

/// Longest text written after an action, in bytes.
const MAX_TEXT_BYTES: usize = 200;

/// The reply for `action`: one `action=…` line and the empty line that ends
/// it. Texts come partly from configuration and from request values, so they
/// are cut to one line of printable ASCII, at most 200 bytes.
pub fn encode(action: &Action) -> Vec<u8> {
    let mut reply = Vec::new();
    encode_into(action, &mut reply);
    reply
}

/// Appends the reply for `action` to `reply` (see [`encode`]): the server
/// writes the replies of pipelined requests from one buffer.
pub fn encode_into(action: &Action, reply: &mut Vec<u8>) {
    let (verb, status, text) = match action {
        Action::Dunno => ("DUNNO", "", ""),
        Action::Ok => ("OK", "", ""),
        Action::Defer(text) => ("DEFER", "4.7.1", text.as_str()),
        Action::DeferIfPermit(text) => ("DEFER_IF_PERMIT", "4.7.1", text.as_str()),
        Action::Reject(text) => ("REJECT", "5.7.1", text.as_str()),
        Action::Hold(text) => ("HOLD", "", text.as_str()),
        Action::Warn(text) => ("WARN", "", text.as_str()),
    };
    let text = sanitize(text);
    reply.extend_from_slice(b"action=");
    reply.extend_from_slice(verb.as_bytes());
    // Without a text Postfix writes its own generic one; a bare status code
    // would stand in as the text.
    if !text.is_empty() {
        for part in [status, text.as_str()] {
            if !part.is_empty() {
                reply.push(b' ');
                reply.extend_from_slice(part.as_bytes());
            }
        }
    }
    reply.extend_from_slice(b"\n\n");
}

/// `text` as one line of printable ASCII: control characters (CR, LF, tab,
/// NUL…) dropped so nothing can end the reply early, other characters shown
/// as `?`, outer spaces trimmed, cut at [`MAX_TEXT_BYTES`].
fn sanitize(text: &str) -> String {
    let printable: String = text
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect();
    let trimmed = printable.trim_matches(' ');
    // All ASCII, so any byte index is a character boundary.
    let cut = trimmed.get(..MAX_TEXT_BYTES).unwrap_or(trimmed);
    cut.trim_end_matches(' ').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A RCPT request as Postfix 3.2+ sends it (SMTPD_POLICY_README).
    const RCPT_REQUEST: &[u8] = b"request=smtpd_access_policy
protocol_state=RCPT
protocol_name=ESMTP
helo_name=some.domain.tld
queue_id=8045F2AB23
sender=foo@bar.tld
recipient=bar@foo.tld
recipient_count=0
client_address=1.2.3.4
client_name=another.domain.tld
reverse_client_name=another.domain.tld
instance=123.456.7
sasl_method=plain
sasl_username=you@bar.tld
sasl_sender=
size=12345
ccert_subject=solaris9.porcupine.org
ccert_issuer=Wietse+20Venema
ccert_fingerprint=C2:9D:F4:87:71:73:73:D9:18:E7:C2:F3:C1:DA:6E:04
encryption_protocol=TLSv1.3
encryption_cipher=TLS_AES_256_GCM_SHA384
encryption_keysize=256
etrn_domain=
stress=
client_port=51234
policy_context=submission
server_address=10.3.2.1
server_port=587

";

    fn read_all(max_bytes: usize, bytes: &[u8]) -> Vec<Result<Request, ProtocolError>> {
        let mut reader = RequestReader::new(max_bytes);
        reader.feed(bytes);
        let mut out = Vec::new();
        loop {
            match reader.next_request() {
                Ok(Some(request)) => out.push(Ok(request)),
                Ok(None) => return out,
                Err(error) => {
                    out.push(Err(error));
                    return out;
                }
            }
        }
    }

    fn one(bytes: &[u8]) -> Request {
        let mut all = read_all(4096, bytes);
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0).unwrap()
    }

    #[test]
    fn single_request_with_typed_helpers() {
        let request = one(RCPT_REQUEST);
        assert_eq!(request.protocol_state(), ProtocolState::Rcpt);
        assert_eq!(request.sasl_username(), Some(&b"you@bar.tld"[..]));
        assert_eq!(request.client_address(), Some("1.2.3.4".parse().unwrap()));
        assert_eq!(request.recipient_count(), 0);
        assert_eq!(request.sender(), Some(&b"foo@bar.tld"[..]));
        assert_eq!(request.recipient(), Some(&b"bar@foo.tld"[..]));
        assert_eq!(request.instance(), Some(&b"123.456.7"[..]));
        assert_eq!(request.get("server_port"), Some(&b"587"[..]));
        assert_eq!(request.get("sasl_sender"), Some(&b""[..]));
        assert_eq!(request.get("nonexistent"), None);
    }

    #[test]
    fn end_of_message_from_unauthenticated_ipv6_bounce() {
        let request = one(
            b"request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n\
            sender=\nrecipient=\nrecipient_count=3\nclient_address=2001:db8::25\n\
            sasl_username=\ninstance=\nsize=20480\n\n",
        );
        assert_eq!(request.protocol_state(), ProtocolState::EndOfMessage);
        assert_eq!(request.sasl_username(), None);
        assert_eq!(request.sender(), Some(&b""[..]), "null sender is a value");
        assert_eq!(request.recipient(), None);
        assert_eq!(request.instance(), None);
        assert_eq!(request.recipient_count(), 3);
        assert_eq!(
            request.client_address(),
            Some("2001:db8::25".parse().unwrap())
        );
    }

    #[test]
    fn every_protocol_state() {
        for (text, state) in [
            ("CONNECT", ProtocolState::Connect),
            ("EHLO", ProtocolState::Ehlo),
            ("HELO", ProtocolState::Helo),
            ("MAIL", ProtocolState::Mail),
            ("RCPT", ProtocolState::Rcpt),
            ("DATA", ProtocolState::Data),
            ("END-OF-MESSAGE", ProtocolState::EndOfMessage),
            ("VRFY", ProtocolState::Vrfy),
            ("ETRN", ProtocolState::Etrn),
            ("BDAT", ProtocolState::Other),
            ("rcpt", ProtocolState::Other),
            ("", ProtocolState::Other),
        ] {
            let request = one(format!("protocol_state={text}\n\n").as_bytes());
            assert_eq!(request.protocol_state(), state, "{text}");
        }
        assert_eq!(one(b"a=b\n\n").protocol_state(), ProtocolState::Other);
    }

    #[test]
    fn unparseable_values_give_defaults() {
        let request = one(b"client_address=unknown\nrecipient_count=many\n\n");
        assert_eq!(request.client_address(), None);
        assert_eq!(request.recipient_count(), 0);
        let request = one(b"client_address=\nrecipient_count=99999999999\n\n");
        assert_eq!(request.client_address(), None);
        assert_eq!(request.recipient_count(), 0);
        let request = one(b"client_address=1.2.3.4\xff\nsasl_username=\xc3\x28\0x\n\n");
        assert_eq!(request.client_address(), None);
        assert_eq!(request.sasl_username(), Some(&b"\xc3\x28\0x"[..]));
        assert_eq!(request.recipient_count(), 0, "absent");
    }

    #[test]
    fn pipelined_requests_in_one_feed() {
        let mut bytes = RCPT_REQUEST.to_vec();
        bytes.extend_from_slice(b"protocol_state=DATA\nrecipient_count=2\n\n");
        bytes.extend_from_slice(RCPT_REQUEST);
        let all = read_all(4096, &bytes);
        assert_eq!(all.len(), 3);
        let states: Vec<_> = all
            .iter()
            .map(|r| r.as_ref().unwrap().protocol_state())
            .collect();
        assert_eq!(
            states,
            [
                ProtocolState::Rcpt,
                ProtocolState::Data,
                ProtocolState::Rcpt
            ]
        );
        assert_eq!(all[1].as_ref().unwrap().recipient_count(), 2);
    }

    #[test]
    fn request_fed_byte_by_byte() {
        let mut reader = RequestReader::new(4096);
        let (last, head) = RCPT_REQUEST.split_last().unwrap();
        for byte in head {
            reader.feed(std::slice::from_ref(byte));
            assert!(reader.next_request().unwrap().is_none());
        }
        reader.feed(std::slice::from_ref(last));
        let request = reader.next_request().unwrap().unwrap();
        assert_eq!(request.sasl_username(), Some(&b"you@bar.tld"[..]));
        assert_eq!(request.get("server_port"), Some(&b"587"[..]));
        assert!(reader.next_request().unwrap().is_none());
    }

    #[test]
    fn crlf_line_ends() {
        let request = one(b"protocol_state=MAIL\r\nsasl_username=bob\r\nsender=\r\n\r\n");
        assert_eq!(request.protocol_state(), ProtocolState::Mail);
        assert_eq!(request.sasl_username(), Some(&b"bob"[..]));
        assert_eq!(request.sender(), Some(&b""[..]));
        // Only a final CR is a line end; one inside a value stays.
        let request = one(b"helo_name=a\rb\r\n\n");
        assert_eq!(request.get("helo_name"), Some(&b"a\rb"[..]));
    }

    #[test]
    fn duplicate_attribute_keeps_the_first() {
        let request = one(b"sasl_username=alice\nsasl_username=mallory\n\n");
        assert_eq!(request.sasl_username(), Some(&b"alice"[..]));
    }

    #[test]
    fn value_with_equals_cannot_pose_as_attribute() {
        let request = one(b"helo_name=sasl_username=admin\nsender=a=b@c\n\n");
        assert_eq!(request.get("helo_name"), Some(&b"sasl_username=admin"[..]));
        assert_eq!(request.sender(), Some(&b"a=b@c"[..]));
        assert_eq!(request.sasl_username(), None);
    }

    #[test]
    fn names_match_exactly() {
        let request = one(b"SASL_USERNAME=x\nsasl_username =y\n sasl_username=z\n\n");
        assert_eq!(request.sasl_username(), None);
        assert_eq!(request.get("SASL_USERNAME"), Some(&b"x"[..]));
    }

    #[test]
    fn unknown_attributes_are_kept_and_ignored() {
        let request = one(b"future_attribute=42\nprotocol_state=RCPT\nx-other=\xfe\n\n");
        assert_eq!(request.protocol_state(), ProtocolState::Rcpt);
        assert_eq!(request.get("future_attribute"), Some(&b"42"[..]));
        assert_eq!(request.get("x-other"), Some(&b"\xfe"[..]));
    }

    #[test]
    fn oversize_request_is_too_large_with_bounded_memory() {
        let max_bytes = 256;
        let mut reader = RequestReader::new(max_bytes);
        for _ in 0..1000 {
            reader.feed(b"ccert_subject=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
            assert!(reader.buf.capacity() <= max_bytes);
        }
        assert_eq!(reader.next_request().unwrap_err(), ProtocolError::TooLarge);
        assert_eq!(
            reader.next_request().unwrap_err(),
            ProtocolError::TooLarge,
            "stays failed"
        );
        reader.feed(b"\n");
        assert_eq!(reader.next_request().unwrap_err(), ProtocolError::TooLarge);
    }

    #[test]
    fn request_of_exactly_max_bytes_is_accepted() {
        let bytes = b"a=b\nc=d\n\n";
        assert!(read_all(bytes.len(), bytes)[0].is_ok());
        assert_eq!(
            read_all(bytes.len() - 1, bytes)[0].as_ref().unwrap_err(),
            &ProtocolError::TooLarge
        );
    }

    #[test]
    fn huge_single_line_is_too_large() {
        let mut reader = RequestReader::new(1024);
        let chunk = [b'x'; 4096];
        reader.feed(b"helo_name=");
        for _ in 0..256 {
            reader.feed(&chunk);
            assert!(reader.buf.capacity() <= 1024);
        }
        assert_eq!(reader.next_request().unwrap_err(), ProtocolError::TooLarge);
    }

    #[test]
    fn garbage_line_is_malformed_at_its_number() {
        let all = read_all(4096, b"protocol_state=RCPT\nGET / HTTP/1.1\n\n");
        assert_eq!(all[0].as_ref().unwrap_err(), &ProtocolError::Malformed(2));
        let all = read_all(4096, b"=value\n\n");
        assert_eq!(all[0].as_ref().unwrap_err(), &ProtocolError::Malformed(1));
        let all = read_all(4096, b"\0\0\0\n\n");
        assert_eq!(all[0].as_ref().unwrap_err(), &ProtocolError::Malformed(1));
    }

    #[test]
    fn empty_request_is_malformed() {
        let all = read_all(4096, b"\n");
        assert_eq!(all[0].as_ref().unwrap_err(), &ProtocolError::Malformed(1));
        let all = read_all(4096, b"\r\n");
        assert_eq!(all[0].as_ref().unwrap_err(), &ProtocolError::Malformed(1));
    }

    #[test]
    fn error_comes_after_the_requests_before_it() {
        let all = read_all(4096, b"a=1\n\nbroken\nb=2\n\n");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].as_ref().unwrap().get("a"), Some(&b"1"[..]));
        assert_eq!(all[1].as_ref().unwrap_err(), &ProtocolError::Malformed(1));
    }

    #[test]
    fn complete_then_partial_request() {
        let mut reader = RequestReader::new(4096);
        reader.feed(b"protocol_state=RCPT\nsasl_username=a\n\nprotocol_state=DA");
        let first = reader.next_request().unwrap().unwrap();
        assert_eq!(first.sasl_username(), Some(&b"a"[..]));
        assert!(reader.next_request().unwrap().is_none());
        reader.feed(b"TA\nsasl_username=b\n");
        assert!(reader.next_request().unwrap().is_none());
        reader.feed(b"\n");
        let second = reader.next_request().unwrap().unwrap();
        assert_eq!(second.protocol_state(), ProtocolState::Data);
        assert_eq!(second.sasl_username(), Some(&b"b"[..]));
        assert!(reader.next_request().unwrap().is_none());
    }

    #[test]
    fn truncated_stream_yields_nothing() {
        let all = read_all(4096, &RCPT_REQUEST[..RCPT_REQUEST.len() - 1]);
        assert!(all.is_empty());
    }

    #[test]
    fn encode_actions() {
        assert_eq!(encode(&Action::Dunno), b"action=DUNNO\n\n");
        assert_eq!(encode(&Action::Ok), b"action=OK\n\n");
        assert_eq!(
            encode(&Action::DeferIfPermit("Sending limit reached".into())),
            b"action=DEFER_IF_PERMIT 4.7.1 Sending limit reached\n\n"
        );
        assert_eq!(
            encode(&Action::Defer("later".into())),
            b"action=DEFER 4.7.1 later\n\n"
        );
        assert_eq!(
            encode(&Action::Reject("Account locked".into())),
            b"action=REJECT 5.7.1 Account locked\n\n"
        );
        assert_eq!(
            encode(&Action::Hold("mailfuse: over limit".into())),
            b"action=HOLD mailfuse: over limit\n\n"
        );
        assert_eq!(
            encode(&Action::Warn("near limit".into())),
            b"action=WARN near limit\n\n"
        );
        assert_eq!(encode(&Action::Reject(String::new())), b"action=REJECT\n\n");
        assert_eq!(encode(&Action::Hold(" \r\n ".into())), b"action=HOLD\n\n");
    }

    #[test]
    fn encode_neutralises_hostile_text() {
        let reply = encode(&Action::Reject("blocked\r\naction=OK\n\nx\0\t\x7f".into()));
        assert_eq!(reply, b"action=REJECT 5.7.1 blockedaction=OKx\n\n");
        let reply = encode(&Action::Defer("Grüße, user".into()));
        assert_eq!(reply, b"action=DEFER 4.7.1 Gr??e, user\n\n");
    }

    #[test]
    fn encode_caps_text() {
        let reply = encode(&Action::Reject("é".repeat(1000)));
        let text = reply
            .strip_prefix(b"action=REJECT 5.7.1 ")
            .and_then(|rest| rest.strip_suffix(b"\n\n"))
            .unwrap();
        assert_eq!(text, "?".repeat(MAX_TEXT_BYTES).as_bytes());
        assert_eq!(memchr::memchr_iter(b'\n', &reply).count(), 2);
    }
}
