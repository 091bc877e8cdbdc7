//! A small MaxMind DB writer, so tests build the databases they read
//! instead of shipping a downloaded one (the `maxminddb` crate only reads).
//!
//! The format (MaxMind DB 2.0): a binary search tree over the address bits
//! (here IPv4 only: `ip_version` 4, 32 levels; 24-bit records, each node a
//! left record for bit 0 and a right one for bit 1), sixteen zero bytes, a
//! data section of values in MaxMind's type encoding, then
//! `\xAB\xCD\xEFMaxMind.com` and the metadata map. A record below the node
//! count points at a node, equal to it means "no data", and above it is
//! `node_count + 16 + offset into the data section`.

#![allow(dead_code)] // each test crate uses part of it

use std::net::Ipv4Addr;

/// A value of the data section.
#[derive(Clone, Debug)]
pub enum Value {
    /// UTF-8 string (type 2).
    Str(String),
    /// IEEE 754 double (type 3).
    Double(f64),
    /// Unsigned 16-bit integer (type 5).
    U16(u16),
    /// Unsigned 32-bit integer (type 6).
    U32(u32),
    /// Unsigned 64-bit integer (extended type 9).
    U64(u64),
    /// Map of string keys (type 7).
    Map(Vec<(String, Value)>),
    /// Array (extended type 11).
    Array(Vec<Value>),
}

/// `{key: value, …}`.
pub fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// A string value.
pub fn text(s: &str) -> Value {
    Value::Str(s.to_string())
}

/// One record of the search tree.
#[derive(Clone, Copy)]
enum Record {
    Empty,
    Node(u32),
    Data(u32),
}

/// An IPv4 MaxMind DB under construction.
pub struct Builder {
    database_type: String,
    nodes: Vec<[Record; 2]>,
    data: Vec<u8>,
}

impl Builder {
    /// An empty database whose metadata calls it `database_type`
    /// (`GeoLite2-City`, `GeoLite2-ASN`).
    pub fn new(database_type: &str) -> Self {
        Builder {
            database_type: database_type.to_string(),
            nodes: vec![[Record::Empty; 2]],
            data: Vec::new(),
        }
    }

    /// Maps the network `cidr` (`203.0.113.0/24`, prefix 1 to 32) to
    /// `value`. Networks must not overlap.
    pub fn insert(mut self, cidr: &str, value: &Value) -> Self {
        let (address, prefix) = cidr.split_once('/').expect("a.b.c.d/len");
        let address = u32::from(address.parse::<Ipv4Addr>().expect("IPv4 address"));
        let prefix: u32 = prefix.parse().expect("prefix length");
        assert!((1..=32).contains(&prefix), "prefix 1..=32");
        let offset = u32::try_from(self.data.len()).expect("small data section");
        encode(value, &mut self.data);
        let mut node = 0usize;
        for depth in 0..prefix {
            let bit = ((address >> (31 - depth)) & 1) as usize;
            if depth == prefix - 1 {
                self.nodes[node][bit] = Record::Data(offset);
                break;
            }
            node = match self.nodes[node][bit] {
                Record::Node(next) => next as usize,
                Record::Empty => {
                    let next = self.nodes.len();
                    self.nodes.push([Record::Empty; 2]);
                    self.nodes[node][bit] = Record::Node(next as u32);
                    next
                }
                Record::Data(_) => panic!("{cidr} overlaps a network inserted before"),
            };
        }
        self
    }

    /// The database file's bytes.
    pub fn build(&self) -> Vec<u8> {
        let node_count = u32::try_from(self.nodes.len()).expect("small tree");
        let record = |r: Record| match r {
            Record::Empty => node_count,
            Record::Node(n) => n,
            Record::Data(offset) => node_count + 16 + offset,
        };
        let mut out = Vec::new();
        for [left, right] in &self.nodes {
            for r in [*left, *right] {
                let value = record(r);
                assert!(value < 1 << 24, "24-bit records");
                out.extend_from_slice(&value.to_be_bytes()[1..]);
            }
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let metadata = map([
            ("node_count", Value::U32(node_count)),
            ("record_size", Value::U16(24)),
            ("ip_version", Value::U16(4)),
            ("database_type", text(&self.database_type)),
            ("languages", Value::Array(vec![text("en")])),
            ("binary_format_major_version", Value::U16(2)),
            ("binary_format_minor_version", Value::U16(0)),
            ("build_epoch", Value::U64(1_793_577_600)),
            ("description", map([("en", text("mailfuse test database"))])),
        ]);
        encode(&metadata, &mut out);
        out
    }
}

/// Appends `value` in MaxMind DB's data encoding.
fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Str(s) => {
            control(2, s.len(), out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Double(d) => {
            control(3, 8, out);
            out.extend_from_slice(&d.to_be_bytes());
        }
        Value::U16(n) => unsigned(5, u64::from(*n), out),
        Value::U32(n) => unsigned(6, u64::from(*n), out),
        Value::U64(n) => unsigned(9, *n, out),
        Value::Map(entries) => {
            control(7, entries.len(), out);
            for (key, value) in entries {
                encode(&Value::Str(key.clone()), out);
                encode(value, out);
            }
        }
        Value::Array(items) => {
            control(11, items.len(), out);
            for item in items {
                encode(item, out);
            }
        }
    }
}

/// An unsigned integer: its big-endian bytes without leading zeros.
fn unsigned(type_number: u8, n: u64, out: &mut Vec<u8>) {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(type_number, bytes.len() - skip, out);
    out.extend_from_slice(&bytes[skip..]);
}

/// The control byte: the type in the top three bits (0 and a following
/// byte of `type - 7` for extended types), the size in the low five (29,
/// 30 and 31 announce one, two or three bytes of size after the type).
fn control(type_number: u8, size: usize, out: &mut Vec<u8>) {
    let (size_bits, extra): (u8, Vec<u8>) = match size {
        0..29 => (size as u8, vec![]),
        29..285 => (29, vec![(size - 29) as u8]),
        285..65_821 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
        _ => (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec()),
    };
    if type_number <= 7 {
        out.push(type_number << 5 | size_bits);
    } else {
        out.push(size_bits);
        out.push(type_number - 7);
    }
    out.extend_from_slice(&extra);
}

/// A City database record: country, city and coordinates.
pub fn city(
    iso_code: &str,
    country: &str,
    city_name: &str,
    lat_lon: (f64, f64),
    radius_km: u16,
) -> Value {
    map([
        (
            "country",
            map([
                ("iso_code", text(iso_code)),
                ("names", map([("en", text(country))])),
            ]),
        ),
        ("city", map([("names", map([("en", text(city_name))]))])),
        (
            "location",
            map([
                ("latitude", Value::Double(lat_lon.0)),
                ("longitude", Value::Double(lat_lon.1)),
                ("accuracy_radius", Value::U16(radius_km)),
            ]),
        ),
    ])
}

/// An ASN database record.
pub fn asn(number: u32, organisation: &str) -> Value {
    map([
        ("autonomous_system_number", Value::U32(number)),
        ("autonomous_system_organization", text(organisation)),
    ])
}

/// The tests' world, in documentation ranges: the office in Prague
/// (198.51.100.0/24), a home line in Brno (192.0.2.0/25), someone in Lagos
/// (203.0.113.0/24), a Country-database-only record in Germany
/// (192.0.2.128/25: no city, no coordinates).
pub fn city_database() -> Vec<u8> {
    Builder::new("GeoLite2-City")
        .insert(
            "198.51.100.0/24",
            &city("CZ", "Czechia", "Prague", (50.08, 14.42), 20),
        )
        .insert(
            "192.0.2.0/25",
            &city("CZ", "Czechia", "Brno", (49.19, 16.61), 20),
        )
        .insert(
            "203.0.113.0/24",
            &city("NG", "Nigeria", "Lagos", (6.45, 3.40), 50),
        )
        .insert(
            "192.0.2.128/25",
            &map([(
                "country",
                map([
                    ("iso_code", text("DE")),
                    ("names", map([("en", text("Germany"))])),
                ]),
            )]),
        )
        .build()
}

/// The ASN database of the same world.
pub fn asn_database() -> Vec<u8> {
    Builder::new("GeoLite2-ASN")
        .insert("198.51.100.0/24", &asn(64_500, "Prague Office Net"))
        .insert("192.0.2.0/24", &asn(64_501, "Czech Home Broadband"))
        .insert("203.0.113.0/24", &asn(64_511, "Lagos Mobile"))
        .build()
}
