//! Header columns: `HEADERS`, every header of the record as `ARRAY<STRUCT<KEY STRING, VALUE
//! BYTES>>` (an empty array when it has none), and `HEADER('key')`, the value of the record's
//! last header with that key as BYTES (NULL when there is none), as ksqlDB reads them.

use std::sync::Arc;

use arrow::{
    array::{ArrayRef, BinaryBuilder, ListBuilder, StringBuilder, StructBuilder},
    datatypes::{DataType, Field, Fields},
};

use crate::{
    format::{HeaderIter, RecordHeaders},
    parser::HeaderColumn,
};

/// The column `header` reads, for records with these headers.
pub fn column<'a>(header: &HeaderColumn, rows: impl Iterator<Item = Option<&'a dyn RecordHeaders>>) -> ArrayRef {
    match header {
        HeaderColumn::All => all(rows),
        HeaderColumn::Key(key) => last_with_key(key, rows),
    }
}

fn entry_fields() -> Fields {
    Fields::from(vec![Field::new("KEY", DataType::Utf8, true), Field::new("VALUE", DataType::Binary, true)])
}

fn all<'a>(rows: impl Iterator<Item = Option<&'a dyn RecordHeaders>>) -> ArrayRef {
    let entries = StructBuilder::new(entry_fields(), vec![Box::new(StringBuilder::new()), Box::new(BinaryBuilder::new())]);
    let mut list = ListBuilder::new(entries).with_field(Arc::new(Field::new("item", DataType::Struct(entry_fields()), true)));
    for headers in rows {
        for (name, value) in headers.into_iter().flat_map(HeaderIter::of) {
            let entry = list.values();
            entry.field_builder::<StringBuilder>(0).expect("the KEY field").append_value(name.to_string_lossy());
            entry.field_builder::<BinaryBuilder>(1).expect("the VALUE field").append_option(value);
            entry.append(true);
        }
        list.append(true);
    }
    Arc::new(list.finish())
}

fn last_with_key<'a>(key: &str, rows: impl Iterator<Item = Option<&'a dyn RecordHeaders>>) -> ArrayRef {
    let mut values = BinaryBuilder::new();
    for headers in rows {
        let last = headers.into_iter().flat_map(HeaderIter::of).filter(|(name, _)| name.to_bytes() == key.as_bytes()).last();
        values.append_option(last.and_then(|(_, value)| value));
    }
    Arc::new(values.finish())
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use arrow::array::{Array, AsArray};

    use super::*;

    #[derive(Debug)]
    struct Listed(Vec<(CString, Option<Vec<u8>>)>);

    impl RecordHeaders for Listed {
        fn header(&self, index: usize) -> Option<(&std::ffi::CStr, Option<&[u8]>)> {
            self.0.get(index).map(|(name, value)| (name.as_c_str(), value.as_deref()))
        }
    }

    fn listed(headers: &[(&str, Option<&[u8]>)]) -> Listed {
        Listed(headers.iter().map(|(k, v)| (CString::new(*k).unwrap(), v.map(<[u8]>::to_vec))).collect())
    }

    #[test]
    fn headers_are_listed_in_order_and_a_key_reads_its_last_value() {
        let first = listed(&[("abc", Some(b"1")), ("def", None), ("abc", Some(b"2"))]);
        let none = listed(&[]);
        let rows = || [Some(&first as &dyn RecordHeaders), Some(&none as &dyn RecordHeaders), None].into_iter();
        let all = column(&HeaderColumn::All, rows());
        let lists = all.as_list::<i32>();
        assert_eq!((lists.value_length(0), lists.value_length(1), lists.value_length(2)), (3, 0, 0));
        let entries = lists.value(0);
        let entries = entries.as_struct();
        assert_eq!(entries.column(0).as_string::<i32>().value(1), "def");
        assert!(entries.column(1).is_null(1));
        let abc = column(&HeaderColumn::Key("abc".into()), rows());
        let abc = abc.as_binary::<i32>();
        assert_eq!(abc.value(0), b"2");
        assert!(abc.is_null(1) && abc.is_null(2));
    }
}
