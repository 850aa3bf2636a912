//! The query strings of `POST /log/append` and `GET /log/read`, parsed and built in one place.
//!
//! Keys are bytes, not text, so values decode to `Vec<u8>` (`%XX`
//! escapes, `+` for a space) with the `percent-encoding` crate; a `%` not
//! followed by two hex digits is an error rather than passed through.

use percent_encoding::{percent_decode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but unreserved characters (RFC 3986) is escaped.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A query string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

impl core::fmt::Display for QueryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QueryError {}

/// Escape bytes for a query-string value.
pub fn encode_component(bytes: &[u8]) -> String {
    percent_encoding::percent_encode(bytes, COMPONENT).to_string()
}

fn decode_value(raw: &str) -> Result<Vec<u8>, QueryError> {
    let b = raw.as_bytes();
    for (i, _) in b.iter().enumerate().filter(|(_, c)| **c == b'%') {
        let ok = b
            .get(i + 1..i + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        if !ok {
            return Err(QueryError(format!("bad %-escape in '{raw}'")));
        }
    }
    let spaced = raw.replace('+', " ");
    Ok(percent_decode(spaced.as_bytes()).collect())
}

/// (name, decoded value) pairs of a query string (without the `?`).
pub fn parse_query(q: &str) -> Result<Vec<(String, Vec<u8>)>, QueryError> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let name = String::from_utf8(decode_value(k)?)
                .map_err(|_| QueryError(format!("parameter name '{k}' is not UTF-8")))?;
            Ok((name, decode_value(v)?))
        })
        .collect()
}

fn first<'a>(pairs: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

fn number<T: core::str::FromStr>(
    pairs: &[(String, Vec<u8>)],
    name: &str,
) -> Result<Option<T>, QueryError> {
    first(pairs, name)
        .map(|v| {
            core::str::from_utf8(v)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| QueryError(format!("{name} must be a non-negative integer")))
        })
        .transpose()
}

/// `POST /log/append?key=K[&producer=ID&seq=N]`.
///
/// With `producer` and `seq` (an idempotent producer's id and the
/// append's sequence number, both decimal), an append sent again with the
/// same pair (a retry after a timeout or an unavailable chain, through any
/// node, also after restarts) is written at most once and answered with
/// the original offset. A producer numbers its appends increasingly; a
/// retry reuses the number.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppendQuery {
    /// The record's key (any bytes): it picks the partition.
    pub key: Vec<u8>,
    /// The idempotent producer's id (random, non-zero) ...
    pub producer: Option<u64>,
    /// ... and this append's sequence number (both or neither).
    pub seq: Option<u64>,
}

impl AppendQuery {
    /// An append of `key` without a producer.
    pub fn key(key: impl Into<Vec<u8>>) -> AppendQuery {
        AppendQuery {
            key: key.into(),
            ..AppendQuery::default()
        }
    }

    /// Parse the query string.
    pub fn parse(q: &str) -> Result<AppendQuery, QueryError> {
        let pairs = parse_query(q)?;
        let key = first(&pairs, "key")
            .ok_or_else(|| QueryError("key is required: POST /log/append?key=K".into()))?;
        let producer = number::<u64>(&pairs, "producer")?;
        let seq = number::<u64>(&pairs, "seq")?;
        if producer.is_some() != seq.is_some() {
            return Err(QueryError(
                "give producer=ID and seq=N together (an idempotent append), or neither".into(),
            ));
        }
        if producer == Some(0) {
            return Err(QueryError("producer must be non-zero".into()));
        }
        Ok(AppendQuery {
            key: key.to_vec(),
            producer,
            seq,
        })
    }

    /// The path and query string.
    pub fn to_path(&self) -> String {
        let mut path = format!(
            "{}?key={}",
            crate::routes::APPEND,
            encode_component(&self.key)
        );
        if let (Some(p), Some(s)) = (self.producer, self.seq) {
            path.push_str(&format!("&producer={p}&seq={s}"));
        }
        path
    }
}

/// `GET /log/read`: one of `id`, `partition`, `key`; then `from` and `max`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadQuery {
    /// The one record with this Scarab ID (decimal text).
    pub id: Option<String>,
    /// A partition by number ...
    pub partition: Option<u32>,
    /// ... or the partition of this key.
    pub key: Option<Vec<u8>>,
    /// First offset (default 0).
    pub from: u64,
    /// Most records (default 100, at most 10,000).
    pub max: u32,
}

impl ReadQuery {
    /// Default and largest `max`.
    pub const DEFAULT_MAX: u32 = 100;
    /// Largest `max` a node serves.
    pub const LIMIT: u32 = 10_000;

    /// Records of `partition` from `from`.
    pub fn partition(partition: u32, from: u64, max: u32) -> ReadQuery {
        ReadQuery {
            partition: Some(partition),
            from,
            max,
            ..ReadQuery::default()
        }
    }

    /// The record with Scarab ID `id`.
    pub fn id(id: impl Into<String>) -> ReadQuery {
        ReadQuery {
            id: Some(id.into()),
            max: Self::DEFAULT_MAX,
            ..ReadQuery::default()
        }
    }

    /// Parse the query string; `max` is clamped to 1..=[`Self::LIMIT`].
    pub fn parse(q: &str) -> Result<ReadQuery, QueryError> {
        let pairs = parse_query(q)?;
        let partition =
            number::<u64>(&pairs, "partition")?.map(|p| u32::try_from(p).unwrap_or(u32::MAX));
        let from = number::<u64>(&pairs, "from")?.unwrap_or(0);
        let max = number::<u64>(&pairs, "max")?
            .unwrap_or(u64::from(Self::DEFAULT_MAX))
            .clamp(1, u64::from(Self::LIMIT)) as u32;
        let key = first(&pairs, "key").map(<[u8]>::to_vec);
        let id = first(&pairs, "id").map(|v| String::from_utf8_lossy(v).into_owned());
        if partition.is_none() && key.is_none() && id.is_none() {
            return Err(QueryError("give partition=P, key=K or id=SCARAB".into()));
        }
        Ok(ReadQuery {
            id,
            partition,
            key,
            from,
            max,
        })
    }

    /// The path and query string.
    pub fn to_path(&self) -> String {
        let mut q = Vec::new();
        if let Some(id) = &self.id {
            q.push(format!("id={}", encode_component(id.as_bytes())));
        }
        if let Some(p) = self.partition {
            q.push(format!("partition={p}"));
        }
        if let Some(k) = &self.key {
            q.push(format!("key={}", encode_component(k)));
        }
        if self.id.is_none() {
            q.push(format!("from={}", self.from));
            q.push(format!("max={}", self.max));
        }
        format!("{}?{}", crate::routes::READ, q.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_decode_to_bytes_and_bad_escapes_are_errors() {
        let q = parse_query("key=a%20b+c&partition=3&x").unwrap();
        assert_eq!(q[0], ("key".to_string(), b"a b c".to_vec()));
        assert_eq!(q[1], ("partition".to_string(), b"3".to_vec()));
        assert_eq!(q[2], ("x".to_string(), Vec::new()));
        for bad in ["key=%zz", "key=%4", "key=%", "key=ab%g1"] {
            assert!(parse_query(bad).is_err(), "{bad}");
        }
        let raw = b"k/\xff ey&=+%";
        let enc = encode_component(raw);
        assert!(enc
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.~%".contains(&c)));
        assert_eq!(
            parse_query(&format!("key={enc}")).unwrap()[0].1,
            raw.to_vec()
        );
    }

    #[test]
    fn queries_round_trip_through_their_paths() {
        let a = AppendQuery::key(b"user 42/\x00".to_vec());
        let path = a.to_path();
        let (route, q) = path.split_once('?').unwrap();
        assert_eq!(route, "/log/append");
        assert_eq!(AppendQuery::parse(q).unwrap(), a);
        assert!(AppendQuery::parse("nokey=1").is_err());
        let idem = AppendQuery {
            producer: Some(u64::MAX),
            seq: Some(7),
            ..a.clone()
        };
        let path = idem.to_path();
        assert!(
            path.ends_with("&producer=18446744073709551615&seq=7"),
            "{path}"
        );
        assert_eq!(
            AppendQuery::parse(path.split_once('?').unwrap().1).unwrap(),
            idem
        );
        for bad in [
            "key=k&producer=1",
            "key=k&seq=1",
            "key=k&producer=0&seq=1",
            "key=k&producer=x&seq=1",
        ] {
            assert!(AppendQuery::parse(bad).is_err(), "{bad}");
        }

        for r in [
            ReadQuery::partition(7, 12, 50),
            ReadQuery::id("123456789"),
            ReadQuery {
                key: Some(b"k&=".to_vec()),
                from: 3,
                max: 9,
                ..ReadQuery::default()
            },
        ] {
            let path = r.to_path();
            let (_, q) = path.split_once('?').unwrap();
            assert_eq!(ReadQuery::parse(q).unwrap(), r, "{path}");
        }
    }

    #[test]
    fn read_queries_are_checked_and_clamped() {
        assert!(ReadQuery::parse("from=3").is_err());
        assert!(ReadQuery::parse("partition=-1").is_err());
        assert!(ReadQuery::parse("partition=1&max=x").is_err());
        assert_eq!(ReadQuery::parse("partition=1&max=0").unwrap().max, 1);
        assert_eq!(
            ReadQuery::parse("partition=1&max=99999").unwrap().max,
            10_000
        );
        assert_eq!(ReadQuery::parse("partition=1").unwrap().max, 100);
        assert_eq!(
            ReadQuery::parse("partition=99999999999").unwrap().partition,
            Some(u32::MAX)
        );
    }
}
