//! PostgreSQL's `pgoutput` logical-decoding messages (protocol version 1), as the
//! `pg_logical_slot_peek_binary_changes` function returns them: one message per row.

use crate::error::{Result, SluiceError};

/// 2000-01-01, where PostgreSQL's timestamps count from, in epoch milliseconds.
const POSTGRES_EPOCH_MS: i64 = 946_684_800_000;

/// A column of a relation as a `Relation` message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
    /// Part of the replica identity (the primary key by default).
    pub key: bool,
}

/// One column's value in a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datum {
    Null,
    /// A TOASTed value the change left as it was; pgoutput does not send it again.
    Unchanged,
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `commit_ms`: when the transaction committed, in epoch milliseconds.
    Begin { xid: u32, commit_ms: i64 },
    Commit { end_lsn: u64 },
    Relation { oid: u32, namespace: String, name: String, columns: Vec<RelationColumn> },
    Insert { oid: u32, new: Vec<Datum> },
    /// `old` is the replica identity's columns (or the whole row with REPLICA IDENTITY FULL)
    /// when the change touched them, else `None`.
    Update { oid: u32, old: Option<Vec<Datum>>, new: Vec<Datum> },
    Delete { oid: u32, old: Vec<Datum> },
    Truncate { oids: Vec<u32> },
    /// Types, origins and logical messages: nothing for a change event.
    Other,
}

/// Reads big-endian fields off a message.
struct Reader<'a> {
    bytes: &'a [u8],
}

fn malformed(what: &str) -> SluiceError {
    SluiceError::Execution(format!("a pgoutput message could not be read: {what}"))
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(malformed("it ends early"));
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("two bytes")))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("four bytes")))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("eight bytes")))
    }

    /// A NUL-terminated string.
    fn string(&mut self) -> Result<String> {
        let end = self.bytes.iter().position(|b| *b == 0).ok_or_else(|| malformed("a string has no end"))?;
        let text = String::from_utf8_lossy(&self.bytes[..end]).into_owned();
        self.bytes = &self.bytes[end + 1..];
        Ok(text)
    }

    fn tuple(&mut self) -> Result<Vec<Datum>> {
        let count = self.i16()?;
        (0..count)
            .map(|_| match self.u8()? {
                b'n' => Ok(Datum::Null),
                b'u' => Ok(Datum::Unchanged),
                b't' => {
                    let length = self.u32()? as usize;
                    Ok(Datum::Text(String::from_utf8_lossy(self.take(length)?).into_owned()))
                }
                other => Err(malformed(&format!("a column of kind '{}'", other as char))),
            })
            .collect()
    }
}

/// Reads one message.
pub fn parse(bytes: &[u8]) -> Result<Message> {
    let mut r = Reader { bytes };
    Ok(match r.u8()? {
        b'B' => {
            let _final_lsn = r.u64()?;
            let commit_time = r.u64()? as i64;
            Message::Begin { xid: r.u32()?, commit_ms: commit_time / 1000 + POSTGRES_EPOCH_MS }
        }
        b'C' => {
            let _flags = r.u8()?;
            let _commit_lsn = r.u64()?;
            Message::Commit { end_lsn: r.u64()? }
        }
        b'R' => {
            let oid = r.u32()?;
            let namespace = r.string()?;
            let name = r.string()?;
            let _replica_identity = r.u8()?;
            let count = r.i16()?;
            let columns = (0..count)
                .map(|_| {
                    let flags = r.u8()?;
                    Ok(RelationColumn {
                        name: r.string()?,
                        type_oid: r.u32()?,
                        type_modifier: r.u32()? as i32,
                        key: flags & 1 == 1,
                    })
                })
                .collect::<Result<_>>()?;
            Message::Relation {
                oid,
                namespace: if namespace.is_empty() { "pg_catalog".into() } else { namespace },
                name,
                columns,
            }
        }
        b'I' => {
            let oid = r.u32()?;
            expect(r.u8()?, b'N')?;
            Message::Insert { oid, new: r.tuple()? }
        }
        b'U' => {
            let oid = r.u32()?;
            let mut old = None;
            let mut kind = r.u8()?;
            if kind == b'K' || kind == b'O' {
                old = Some(r.tuple()?);
                kind = r.u8()?;
            }
            expect(kind, b'N')?;
            Message::Update { oid, old, new: r.tuple()? }
        }
        b'D' => {
            let oid = r.u32()?;
            let kind = r.u8()?;
            if kind != b'K' && kind != b'O' {
                return Err(malformed("a delete without its old row"));
            }
            Message::Delete { oid, old: r.tuple()? }
        }
        b'T' => {
            let count = r.u32()?;
            let _options = r.u8()?;
            Message::Truncate { oids: (0..count).map(|_| r.u32()).collect::<Result<_>>()? }
        }
        _ => Message::Other,
    })
}

fn expect(kind: u8, wanted: u8) -> Result<()> {
    if kind == wanted {
        Ok(())
    } else {
        Err(malformed(&format!("'{}' where '{}' belongs", kind as char, wanted as char)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(values: &[Option<&str>]) -> Vec<u8> {
        let mut bytes = (values.len() as i16).to_be_bytes().to_vec();
        for value in values {
            match value {
                None => bytes.push(b'n'),
                Some(text) => {
                    bytes.push(b't');
                    bytes.extend((text.len() as u32).to_be_bytes());
                    bytes.extend(text.as_bytes());
                }
            }
        }
        bytes
    }

    #[test]
    fn a_relation_names_its_columns_and_key() {
        let mut bytes = vec![b'R'];
        bytes.extend(16384u32.to_be_bytes());
        bytes.extend(b"public\0telemetry\0d");
        bytes.extend(2i16.to_be_bytes());
        bytes.push(1);
        bytes.extend(b"id\0");
        bytes.extend(23u32.to_be_bytes());
        bytes.extend((-1i32).to_be_bytes());
        bytes.push(0);
        bytes.extend(b"price\0");
        bytes.extend(1700u32.to_be_bytes());
        bytes.extend((((10 << 16) | 2) + 4i32).to_be_bytes());
        assert_eq!(
            parse(&bytes).unwrap(),
            Message::Relation {
                oid: 16384,
                namespace: "public".into(),
                name: "telemetry".into(),
                columns: vec![
                    RelationColumn { name: "id".into(), type_oid: 23, type_modifier: -1, key: true },
                    RelationColumn { name: "price".into(), type_oid: 1700, type_modifier: (10 << 16 | 2) + 4, key: false },
                ],
            }
        );
    }

    #[test]
    fn changes_carry_their_rows() {
        let mut insert = vec![b'I'];
        insert.extend(7u32.to_be_bytes());
        insert.push(b'N');
        insert.extend(tuple(&[Some("1"), None]));
        assert_eq!(parse(&insert).unwrap(), Message::Insert { oid: 7, new: vec![Datum::Text("1".into()), Datum::Null] });

        let mut update = vec![b'U'];
        update.extend(7u32.to_be_bytes());
        update.push(b'K');
        update.extend(tuple(&[Some("1")]));
        update.push(b'N');
        update.extend(tuple(&[Some("2"), Some("x")]));
        assert_eq!(
            parse(&update).unwrap(),
            Message::Update {
                oid: 7,
                old: Some(vec![Datum::Text("1".into())]),
                new: vec![Datum::Text("2".into()), Datum::Text("x".into())]
            }
        );

        let mut plain = vec![b'U'];
        plain.extend(7u32.to_be_bytes());
        plain.push(b'N');
        plain.extend(tuple(&[Some("2")]));
        assert_eq!(parse(&plain).unwrap(), Message::Update { oid: 7, old: None, new: vec![Datum::Text("2".into())] });

        let mut delete = vec![b'D'];
        delete.extend(7u32.to_be_bytes());
        delete.push(b'K');
        delete.extend(tuple(&[Some("2")]));
        assert_eq!(parse(&delete).unwrap(), Message::Delete { oid: 7, old: vec![Datum::Text("2".into())] });
    }

    #[test]
    fn transactions_are_framed() {
        let mut begin = vec![b'B'];
        begin.extend(100u64.to_be_bytes());
        begin.extend(5_000u64.to_be_bytes());
        begin.extend(742u32.to_be_bytes());
        assert_eq!(parse(&begin).unwrap(), Message::Begin { xid: 742, commit_ms: POSTGRES_EPOCH_MS + 5 });
        let mut commit = vec![b'C', 0];
        commit.extend(90u64.to_be_bytes());
        commit.extend(120u64.to_be_bytes());
        commit.extend(5u64.to_be_bytes());
        assert_eq!(parse(&commit).unwrap(), Message::Commit { end_lsn: 120 });
    }

    #[test]
    fn a_cut_message_is_an_error_not_a_panic() {
        assert!(parse(&[b'I', 0, 0]).is_err());
        assert!(parse(&[b'R', 0, 0, 0, 1, b'p']).is_err());
        assert!(parse(&[]).is_err());
    }
}
