//! OTLP/HTTP trace export body: an `ExportTraceServiceRequest` in protobuf, encoded by hand
//! (opentelemetry-proto `collector/trace/v1`, `trace/v1`, `common/v1`, `resource/v1`).
//!
//! One `ResourceSpans` (attributes `service.name`, `service.version`) holding one `ScopeSpans`
//! (scope `flowguard`) with the batch. Field numbers and wire types:
//!
//! | message | fields |
//! | --- | --- |
//! | ExportTraceServiceRequest | resource_spans 1 |
//! | ResourceSpans | resource 1, scope_spans 2 |
//! | Resource | attributes 1 (KeyValue) |
//! | ScopeSpans | scope 1, spans 2 |
//! | InstrumentationScope | name 1, version 2 |
//! | Span | trace_id 1, span_id 2, parent_span_id 4 (bytes); name 5; kind 6 (varint); start 7, end 8 (fixed64); attributes 9; status 15; flags 16 (fixed32) |
//! | Status | message 2, code 3 (varint) |
//! | KeyValue | key 1, value 2 (AnyValue) |
//! | AnyValue | string_value 1, bool_value 2, int_value 3 (varint, two's complement) |
//!
//! proto3 leaves out fields at their default, except inside `AnyValue`'s oneof, where an empty
//! string, `false` or 0 is still written (it says which kind of value it is).

use crate::span::{Span, Status, Value};

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// The `ExportTraceServiceRequest` for a batch of spans from one service.
pub fn encode(spans: &[Span], service_name: &str, service_version: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(128 + spans.len() * 160);
    message(&mut b, 1, |b| {
        message(b, 1, |b| {
            key_value(b, 1, "service.name", &Value::Str(service_name.to_owned()));
            if !service_version.is_empty() {
                key_value(
                    b,
                    1,
                    "service.version",
                    &Value::Str(service_version.to_owned()),
                );
            }
        });
        message(b, 2, |b| {
            message(b, 1, |b| {
                bytes(b, 1, b"flowguard");
                if !service_version.is_empty() {
                    bytes(b, 2, service_version.as_bytes());
                }
            });
            for s in spans {
                message(b, 2, |b| span(b, s));
            }
        });
    });
    b
}

fn span(b: &mut Vec<u8>, s: &Span) {
    bytes(b, 1, &s.trace_id.0);
    bytes(b, 2, &s.span_id.0);
    if let Some(p) = &s.parent {
        bytes(b, 4, &p.0);
    }
    if !s.name.is_empty() {
        bytes(b, 5, s.name.as_bytes());
    }
    tag(b, 6, VARINT);
    varint(b, s.kind as u64);
    tag(b, 7, FIXED64);
    b.extend_from_slice(&s.start_ns.to_le_bytes());
    tag(b, 8, FIXED64);
    b.extend_from_slice(&s.end_ns.to_le_bytes());
    for (k, v) in &s.attributes {
        key_value(b, 9, k, v);
    }
    let (code, text) = match &s.status {
        Status::Unset => (0, ""),
        Status::Ok => (1, ""),
        Status::Error(m) => (2, m.as_str()),
    };
    if code != 0 {
        message(b, 15, |b| {
            if !text.is_empty() {
                bytes(b, 2, text.as_bytes());
            }
            tag(b, 3, VARINT);
            varint(b, code);
        });
    }
    if s.flags != 0 {
        tag(b, 16, FIXED32);
        b.extend_from_slice(&u32::from(s.flags).to_le_bytes());
    }
}

fn key_value(b: &mut Vec<u8>, field: u32, key: &str, v: &Value) {
    message(b, field, |b| {
        bytes(b, 1, key.as_bytes());
        message(b, 2, |b| match v {
            Value::Str(s) => bytes(b, 1, s.as_bytes()),
            Value::Bool(x) => {
                tag(b, 2, VARINT);
                varint(b, u64::from(*x));
            }
            Value::Int(n) => {
                tag(b, 3, VARINT);
                varint(b, *n as u64);
            }
        });
    });
}

/// A length-delimited field whose body `f` writes: the body goes first, then its length is
/// put in front of it (moving only the body, which is small except at the top two levels).
fn message(b: &mut Vec<u8>, field: u32, f: impl FnOnce(&mut Vec<u8>)) {
    tag(b, field, LEN);
    let start = b.len();
    f(b);
    let mut len = Vec::with_capacity(10);
    varint(&mut len, (b.len() - start) as u64);
    b.splice(start..start, len);
}

fn bytes(b: &mut Vec<u8>, field: u32, data: &[u8]) {
    tag(b, field, LEN);
    varint(b, data.len() as u64);
    b.extend_from_slice(data);
}

fn tag(b: &mut Vec<u8>, field: u32, wire: u8) {
    varint(b, u64::from(field) << 3 | u64::from(wire));
}

fn varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push(v as u8 | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

/// A minimal protobuf reader for the tests: the fields of one message, in order.
#[cfg(test)]
pub(crate) mod pb {
    #[derive(Debug, PartialEq)]
    pub enum F<'a> {
        Varint(u64),
        Fixed64(u64),
        Fixed32(u32),
        Len(&'a [u8]),
    }

    pub fn fields(mut b: &[u8]) -> Vec<(u32, F<'_>)> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let key = varint(&mut b);
            let field = (key >> 3) as u32;
            let f = match key & 7 {
                0 => F::Varint(varint(&mut b)),
                1 => {
                    let (x, rest) = b.split_at(8);
                    b = rest;
                    F::Fixed64(u64::from_le_bytes(x.try_into().unwrap()))
                }
                2 => {
                    let n = varint(&mut b) as usize;
                    let (x, rest) = b.split_at(n);
                    b = rest;
                    F::Len(x)
                }
                5 => {
                    let (x, rest) = b.split_at(4);
                    b = rest;
                    F::Fixed32(u32::from_le_bytes(x.try_into().unwrap()))
                }
                w => panic!("wire type {w}"),
            };
            out.push((field, f));
        }
        out
    }

    /// The sub-messages of field `n`.
    pub fn each(b: &[u8], n: u32) -> Vec<&[u8]> {
        fields(b)
            .into_iter()
            .filter_map(|(f, v)| match v {
                F::Len(x) if f == n => Some(x),
                _ => None,
            })
            .collect()
    }

    /// How many spans an `ExportTraceServiceRequest` holds.
    pub fn count_spans(req: &[u8]) -> usize {
        let mut n = 0;
        for rs in each(req, 1) {
            for ss in each(rs, 2) {
                n += each(ss, 2).len();
            }
        }
        n
    }

    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let x = b[0];
            *b = &b[1..];
            v |= u64::from(x & 0x7f) << shift;
            if x < 0x80 {
                break;
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::pb::{each, fields, F};
    use super::*;
    use crate::span::Kind;
    use crate::traceparent::{SpanId, TraceId};

    fn tiny() -> Span {
        Span {
            trace_id: TraceId([0x11; 16]),
            span_id: SpanId([0x22; 8]),
            parent: None,
            name: "x".into(),
            kind: Kind::Server,
            start_ns: 1,
            end_ns: 2,
            attributes: vec![("a", Value::Int(-1))],
            status: Status::Unset,
            flags: 0,
        }
    }

    #[test]
    fn varints() {
        let enc = |v| {
            let mut b = Vec::new();
            varint(&mut b, v);
            b
        };
        assert_eq!(enc(0), [0]);
        assert_eq!(enc(127), [0x7f]);
        assert_eq!(enc(128), [0x80, 0x01]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(
            enc(u64::MAX),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        let mut b = Vec::new();
        tag(&mut b, 16, FIXED32);
        assert_eq!(b, [0x85, 0x01], "field 16 needs a two-byte key");
    }

    /// Worked out by hand from the field table in the module doc.
    #[test]
    fn hand_computed_bytes() {
        let got = encode(&[tiny()], "s", "");
        #[rustfmt::skip]
        let span: Vec<u8> = [
            &[0x0a, 16][..], &[0x11; 16],                 // trace_id: 1 LEN, 16 bytes
            &[0x12, 8], &[0x22; 8],                       // span_id: 2 LEN, 8 bytes
            &[0x2a, 1, b'x'],                             // name: 5 LEN "x"
            &[0x30, 2],                                   // kind: 6 VARINT, SERVER
            &[0x39, 1, 0, 0, 0, 0, 0, 0, 0],              // start: 7 FIXED64, 1
            &[0x41, 2, 0, 0, 0, 0, 0, 0, 0],              // end: 8 FIXED64, 2
            &[0x4a, 16,                                   // attributes: 9 LEN (KeyValue, 16)
                0x0a, 1, b'a',                            //   key: 1 "a"
                0x12, 11,                                 //   value: 2 LEN (AnyValue, 11)
                  0x18, 0xff, 0xff, 0xff, 0xff, 0xff,     //     int_value: 3 VARINT, -1 as
                  0xff, 0xff, 0xff, 0xff, 0x01],          //     ten bytes
        ].concat();
        assert_eq!(span.len(), 69);
        #[rustfmt::skip]
        let scope_spans: Vec<u8> = [
            &[0x0a, 11, 0x0a, 9][..], b"flowguard",       // scope: 1 LEN { name: 1 "flowguard" }
            &[0x12, 69], &span,                           // spans: 2 LEN
        ].concat();
        assert_eq!(scope_spans.len(), 84);
        #[rustfmt::skip]
        let resource: Vec<u8> = [
            &[0x0a, 19][..],                              // attributes: 1 LEN (KeyValue, 19)
            &[0x0a, 12], b"service.name",                 //   key
            &[0x12, 3, 0x0a, 1, b's'],                    //   value: AnyValue { string_value "s" }
        ].concat();
        #[rustfmt::skip]
        let resource_spans: Vec<u8> = [
            &[0x0a, 21][..], &resource,                   // resource: 1 LEN
            &[0x12, 84], &scope_spans,                    // scope_spans: 2 LEN
        ].concat();
        let mut want = vec![0x0a, resource_spans.len() as u8]; // resource_spans: 1 LEN
        want.extend_from_slice(&resource_spans);
        assert_eq!(got, want);
    }

    #[test]
    fn full_span_round_trips_through_the_reader() {
        let mut s = tiny();
        s.parent = Some(SpanId([0x33; 8]));
        s.kind = Kind::Client;
        s.start_ns = 1_700_000_000_123_456_789;
        s.end_ns = 1_700_000_000_223_456_789;
        s.attributes = vec![
            ("str", Value::Str("é\"\n".into())),
            ("empty", Value::Str(String::new())),
            ("t", Value::Bool(true)),
            ("f", Value::Bool(false)),
            ("zero", Value::Int(0)),
            ("big", Value::Int(i64::MAX)),
        ];
        s.status = Status::Error("denied by policy".into());
        s.flags = 1;
        // A long name makes the span (and so its enclosing lengths) multi-byte varints.
        s.name = "n".repeat(300).into();
        let req = encode(&[s.clone(), tiny()], "flowguard-gateway", "0.1.0");
        assert_eq!(pb::count_spans(&req), 2);

        let rs = each(&req, 1);
        assert_eq!(rs.len(), 1);
        let res = each(rs[0], 1);
        let attrs: Vec<_> = each(res[0], 1).into_iter().map(fields).collect();
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[1][0], (1, F::Len(b"service.version")));
        let ss = each(rs[0], 2);
        let scope = fields(each(ss[0], 1)[0]);
        assert_eq!(scope, [(1, F::Len(b"flowguard")), (2, F::Len(b"0.1.0"))]);

        let f = fields(each(ss[0], 2)[0]);
        assert_eq!(f[0], (1, F::Len(&[0x11; 16])));
        assert_eq!(f[1], (2, F::Len(&[0x22; 8])));
        assert_eq!(f[2], (4, F::Len(&[0x33; 8])));
        assert_eq!(f[3], (5, F::Len("n".repeat(300).as_bytes())));
        assert_eq!(f[4], (6, F::Varint(3)));
        assert_eq!(f[5], (7, F::Fixed64(1_700_000_000_123_456_789)));
        assert_eq!(f[6], (8, F::Fixed64(1_700_000_000_223_456_789)));
        let values: Vec<_> = f[7..13]
            .iter()
            .map(|(n, kv)| {
                assert_eq!(*n, 9);
                let F::Len(kv) = kv else { panic!() };
                fields(each(kv, 2)[0]).remove(0)
            })
            .collect();
        assert_eq!(
            values,
            [
                (1, F::Len("é\"\n".as_bytes())),
                (1, F::Len(b"")),
                (2, F::Varint(1)),
                (2, F::Varint(0)),
                (3, F::Varint(0)),
                (3, F::Varint(i64::MAX as u64)),
            ]
        );
        let F::Len(status) = f[13].1 else { panic!() };
        assert_eq!(f[13].0, 15);
        assert_eq!(
            fields(status),
            [(2, F::Len(b"denied by policy")), (3, F::Varint(2))]
        );
        assert_eq!(f[14], (16, F::Fixed32(1)));
        assert_eq!(f.len(), 15);
    }

    #[test]
    fn empty_batch_is_still_a_valid_request() {
        assert_eq!(pb::count_spans(&encode(&[], "s", "v")), 0);
    }

    /// Checked against the real decoder (opentelemetry-proto 1.45.2, protobuf 7.36.2 from PyPI;
    /// it printed "ok", and it fails on a one-byte change), not run by `cargo test` on its own.
    /// To repeat:
    ///
    /// ```text
    /// python3 -m venv /tmp/venv && /tmp/venv/bin/pip install opentelemetry-proto protobuf
    /// FLOWGUARD_OTLP_SAMPLE=/tmp/req.bin cargo test -p flowguard-export python_sample
    /// /tmp/venv/bin/python3 - /tmp/req.bin <<'EOF'
    /// import sys
    /// from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    /// data = open(sys.argv[1], "rb").read()
    /// r = ExportTraceServiceRequest.FromString(data)
    /// # Field order and encoding are canonical: the library writes back the very same bytes.
    /// assert r.SerializeToString() == data
    /// assert len(r.resource_spans) == 1
    /// rs = r.resource_spans[0]
    /// res = {a.key: a.value.string_value for a in rs.resource.attributes}
    /// assert res == {"service.name": "flowguard-gateway", "service.version": "0.1.0"}, res
    /// assert len(rs.scope_spans) == 1
    /// ss = rs.scope_spans[0]
    /// assert (ss.scope.name, ss.scope.version) == ("flowguard", "0.1.0")
    /// assert len(ss.spans) == 3
    /// a, b, c = ss.spans
    /// assert a.trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736"
    /// assert a.span_id.hex() == "00f067aa0ba902b7" and a.parent_span_id == b""
    /// assert a.name == "tools/call" and a.kind == 2 and a.flags == 1
    /// assert a.start_time_unix_nano == 1700000000123456789
    /// assert a.end_time_unix_nano == 1700000000987654321
    /// at = {x.key: x.value for x in a.attributes}
    /// assert at["mcp.tool"].WhichOneof("value") == "string_value"
    /// assert at["mcp.tool"].string_value == 'search "web"\n\u00e9\u2603'
    /// assert at["empty"].WhichOneof("value") == "string_value" and at["empty"].string_value == ""
    /// assert at["mcp.denied"].WhichOneof("value") == "bool_value" and at["mcp.denied"].bool_value is False
    /// assert at["ok"].bool_value is True
    /// assert at["bytes"].WhichOneof("value") == "int_value" and at["bytes"].int_value == 123456
    /// assert at["neg"].int_value == -42 and at["zero"].WhichOneof("value") == "int_value"
    /// assert at["max"].int_value == 2**63 - 1 and at["min"].int_value == -2**63
    /// assert a.status.code == 0 and a.status.message == ""
    /// assert b.parent_span_id.hex() == "00f067aa0ba902b7" and b.kind == 3 and b.flags == 0
    /// assert b.status.code == 2 and b.status.message == "upstream timed out"
    /// assert len(b.name) == 300 and b.trace_id == a.trace_id
    /// assert c.kind == 1 and c.status.code == 1 and c.status.message == "" and not c.attributes
    /// print("ok")
    /// EOF
    /// ```
    #[test]
    fn python_sample() {
        let mut a = tiny();
        a.trace_id = TraceId([
            0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
            0x47, 0x36,
        ]);
        a.span_id = SpanId([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        a.name = "tools/call".into();
        a.start_ns = 1_700_000_000_123_456_789;
        a.end_ns = 1_700_000_000_987_654_321;
        a.flags = 1;
        a.attributes = vec![
            ("mcp.tool", Value::Str("search \"web\"\né\u{2603}".into())),
            ("empty", Value::Str(String::new())),
            ("mcp.denied", Value::Bool(false)),
            ("ok", Value::Bool(true)),
            ("bytes", Value::Int(123_456)),
            ("neg", Value::Int(-42)),
            ("zero", Value::Int(0)),
            ("max", Value::Int(i64::MAX)),
            ("min", Value::Int(i64::MIN)),
        ];
        let mut b = tiny();
        b.trace_id = a.trace_id;
        b.parent = Some(a.span_id);
        b.span_id = SpanId([9; 8]);
        b.name = "u".repeat(300).into();
        b.kind = Kind::Client;
        b.attributes.clear();
        b.status = Status::Error("upstream timed out".into());
        let mut c = tiny();
        c.kind = Kind::Internal;
        c.attributes.clear();
        c.status = Status::Ok;
        let req = encode(&[a, b, c], "flowguard-gateway", "0.1.0");
        assert_eq!(pb::count_spans(&req), 3);
        if let Some(path) = std::env::var_os("FLOWGUARD_OTLP_SAMPLE") {
            std::fs::write(&path, &req).expect("writing the sample for the Python check");
        }
    }
}
