//! A recording host for the adapter's tests: what is sent, stripped, set,
//! counted and logged.

use scopegate::host::adapter::{Host, LogLevel, Signal};
use scopegate::host::record;
use scopegate::host::wire::HeaderMap;
use scopegate::request::audit::PeerCertificate;
use scopegate::request::response::LocalResponse;
use scopegate::vocab::reason::Reason;

/// A host that records what the adapter asks of it.
#[derive(Default)]
pub struct FakeHost {
    pub headers: Vec<(String, String)>,
    pub removed: Vec<String>,
    pub set: Vec<(String, String)>,
    pub path: Option<String>,
    pub response: Option<LocalResponse>,
    /// String properties (`request_properties_form: "properties"`).
    pub properties: Vec<(String, String)>,
    /// Decision records (the default form), decoded: one per set.
    pub records: Vec<Vec<(String, String)>>,
    pub counts: Vec<Reason>,
    pub logs: Vec<(LogLevel, String)>,
    pub peer: Option<PeerCertificate>,
    /// Behaves like Kong's host: removals and `:path` changes do not reach
    /// the upstream, and `raw_path` is the target as sent.
    pub as_received: bool,
    pub raw_path: Option<String>,
    pub signals: Vec<Signal>,
    /// Response headers added for the response to come.
    pub response_headers: Vec<(String, String)>,
}

/// Reads back a `google.protobuf.Struct` of string values, independently of
/// the encoder: tag, one-byte or two-byte length, payload.
pub fn decode_struct(mut b: &[u8]) -> Vec<(String, String)> {
    fn take<'a>(b: &mut &'a [u8], tag: u8) -> &'a [u8] {
        assert_eq!(b[0], tag, "tag");
        let (len, skip) = if b[1] & 0x80 == 0 {
            (b[1] as usize, 2)
        } else {
            ((b[1] & 0x7f) as usize | (b[2] as usize) << 7, 3)
        };
        let out = &b[skip..skip + len];
        *b = &b[skip + len..];
        out
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let mut entry = take(&mut b, 0x0a);
        let name = take(&mut entry, 0x0a);
        let mut value = take(&mut entry, 0x12);
        let text = take(&mut value, 0x1a);
        assert!(entry.is_empty() && value.is_empty());
        out.push((
            String::from_utf8(name.to_vec()).unwrap(),
            String::from_utf8(text.to_vec()).unwrap(),
        ));
    }
    out
}

impl FakeHost {
    /// The one decision record set for the request.
    pub fn record(&self) -> &[(String, String)] {
        assert_eq!(self.records.len(), 1, "{:?}", self.records);
        &self.records[0]
    }
}

impl Host for FakeHost {
    fn forwards_as_received(&self) -> bool {
        self.as_received
    }
    fn raw_request_path(&mut self) -> Option<String> {
        self.raw_path.clone()
    }
    fn request_headers(&mut self) -> HeaderMap {
        HeaderMap::from_pairs(&self.headers)
    }
    fn remove_request_header(&mut self, name: &str) {
        self.removed.push(name.into());
    }
    fn add_request_header(&mut self, name: &str, value: &str) {
        self.set.push((name.into(), value.into()));
    }
    fn set_path(&mut self, path: &str) {
        self.path = Some(path.into());
    }
    fn send_response(&mut self, r: &LocalResponse) {
        assert!(self.response.is_none(), "a second local response");
        self.response = Some(LocalResponse {
            status: r.status,
            headers: r.headers.clone(),
            body: r.body.clone(),
        });
    }
    fn set_property(&mut self, key: &str, value: &[u8]) {
        if key == record::RECORD_KEY {
            self.records.push(decode_struct(value));
        } else {
            let text = String::from_utf8(value.to_vec()).expect("a string property");
            self.properties.push((key.into(), text));
        }
    }
    fn count(&mut self, reason: Reason) {
        self.counts.push(reason);
    }
    fn count_signal(&mut self, signal: Signal) {
        self.signals.push(signal);
    }
    fn log(&mut self, level: LogLevel, message: &str) {
        self.logs.push((level, message.into()));
    }
    fn source_address(&mut self) -> Option<String> {
        Some("10.0.0.7:51000".into())
    }
    fn peer_certificate(&mut self) -> Option<PeerCertificate> {
        self.peer.clone()
    }
    fn add_response_header(&mut self, name: &'static str, value: String) {
        self.response_headers.push((name.into(), value));
    }
}
