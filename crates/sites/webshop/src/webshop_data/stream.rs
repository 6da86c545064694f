//! Streaming reads of WebShop's large JSON files: arrays of records and string-keyed objects
//! read one entry at a time (never the whole file in memory), records read key by key so an
//! error names the record and key, and objects whose key order is kept.

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::marker::PhantomData;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::data_error;
use crate::{Error, Result};

/// A record read key by key, so that a parse error can name the key being read.
pub(super) trait Record: Default {
    /// Reads the value of `key` into the record, or skips it.
    fn read_field<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> std::result::Result<(), A::Error>;
}

/// A record type whose fields are JSON values named like their keys, plus one object kept
/// in key order; other keys are skipped unparsed.
macro_rules! record {
    ($(#[$doc:meta])* $name:ident { $($field:ident),* ; ordered $ordered:ident }) => {
        $(#[$doc])*
        #[derive(Default)]
        pub(super) struct $name {
            $(pub(super) $field: Option<Value>,)*
            pub(super) $ordered: Option<OrderedValue>,
        }

        impl Record for $name {
            fn read_field<'de, A: MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> std::result::Result<(), A::Error> {
                match key {
                    $(stringify!($field) => self.$field = Some(map.next_value()?),)*
                    stringify!($ordered) => self.$ordered = Some(map.next_value()?),
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(())
            }
        }
    };
}

record! {
    /// The fields of a product record that `load_products` reads. Values stay JSON until the
    /// record is known to be kept (WebShop never looks at the fields of skipped records).
    RawProduct {
        asin, name, full_description, small_description, pricing, images, category,
        product_category, query;
        ordered customization_options
    }
}

record! {
    /// The fields of a WebShop goal dict.
    RawGoal {
        asin, category, query, name, product_category, instruction_text, attributes,
        price_upper, weight, name_nouns;
        ordered goal_options
    }
}

/// A JSON value whose top-level object keeps its keys in file order (serde_json's `Map`
/// sorts them, but WebShop's option groups are shown in dict order).
pub(super) enum OrderedValue {
    Object(Vec<(String, Value)>),
    Other(Value),
}

impl<'de> Deserialize<'de> for OrderedValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(OrderedValueVisitor)
    }
}

pub(super) struct OrderedValueVisitor;

impl<'de> Visitor<'de> for OrderedValueVisitor {
    type Value = OrderedValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut pairs = Vec::new();
        while let Some(pair) = map.next_entry::<String, Value>()? {
            pairs.push(pair);
        }
        Ok(OrderedValue::Object(pairs))
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            items.push(v);
        }
        Ok(OrderedValue::Other(Value::Array(items)))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Self::Value, E> {
        Ok(OrderedValue::Other(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
        Ok(OrderedValue::Other(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
        Ok(OrderedValue::Other(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
        Ok(OrderedValue::Other(Value::from(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(OrderedValue::Other(Value::String(v.to_string())))
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(OrderedValue::Other(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(OrderedValue::Other(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        OrderedValue::deserialize(d)
    }
}

/// Reads one record, noting in `field` the key whose value failed to parse.
pub(super) struct RecordSeed<'a, T> {
    pub(super) field: &'a mut Option<String>,
    pub(super) _record: PhantomData<T>,
}

impl<'de, T: Record> DeserializeSeed<'de> for RecordSeed<'_, T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<T, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Record> Visitor<'de> for RecordSeed<'_, T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<T, A::Error> {
        let mut record = T::default();
        while let Some(key) = map.next_key::<String>()? {
            if let Err(e) = record.read_field(&key, &mut map) {
                *self.field = Some(key);
                return Err(e);
            }
        }
        Ok(record)
    }
}

/// What a streaming visitor leaves for its caller: the caller's own error, where a parse
/// error happened, and whether it stopped before the end on purpose.
#[derive(Default)]
pub(super) struct StreamState {
    pub(super) callback_error: Option<Error>,
    pub(super) location: Option<String>,
    pub(super) stopped_early: bool,
}

pub(super) fn open(
    path: &Path,
) -> Result<serde_json::Deserializer<serde_json::de::IoRead<BufReader<File>>>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(serde_json::Deserializer::from_reader(
        BufReader::with_capacity(1 << 20, file),
    ))
}

pub(super) fn json_error(path: &Path, location: String, e: &serde_json::Error) -> Error {
    let message = if e.is_eof() {
        format!("{e} (unexpected end of file: the file is truncated or empty)")
    } else {
        e.to_string()
    };
    data_error(path, location, message)
}

pub(super) fn finish(
    path: &Path,
    mut de: serde_json::Deserializer<serde_json::de::IoRead<BufReader<File>>>,
    state: StreamState,
    result: std::result::Result<(), serde_json::Error>,
) -> Result<()> {
    if let Some(err) = state.callback_error {
        return Err(err);
    }
    if state.stopped_early {
        return Ok(());
    }
    if let Err(e) = result {
        let location = state.location.unwrap_or_else(|| "top level".to_string());
        return Err(json_error(path, location, &e));
    }
    de.end()
        .map_err(|e| json_error(path, "after the top-level value".to_string(), &e))
}

/// Streams a JSON array of records, calling `on(index, record)` for each of the first
/// `limit` records (all when `None`) as it is parsed.
pub(super) fn stream_array<T: Record>(
    path: &Path,
    limit: Option<usize>,
    expecting: &'static str,
    on: impl FnMut(usize, T) -> Result<()>,
) -> Result<()> {
    let mut de = open(path)?;
    let mut state = StreamState::default();
    let result = de.deserialize_seq(ArrayVisitor {
        state: &mut state,
        limit,
        expecting,
        on,
        _record: PhantomData,
    });
    finish(path, de, state, result)
}

pub(super) struct ArrayVisitor<'a, T, F> {
    pub(super) state: &'a mut StreamState,
    pub(super) limit: Option<usize>,
    pub(super) expecting: &'static str,
    pub(super) on: F,
    pub(super) _record: PhantomData<T>,
}

impl<'de, T: Record, F: FnMut(usize, T) -> Result<()>> Visitor<'de> for ArrayVisitor<'_, T, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> std::result::Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            if self.limit == Some(index) {
                self.state.stopped_early = true;
                return Ok(());
            }
            let mut field = None;
            let next = seq.next_element_seed(RecordSeed::<T> {
                field: &mut field,
                _record: PhantomData,
            });
            let record = match next {
                Ok(Some(record)) => record,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.state.location = Some(match field {
                        Some(f) => format!("record {index}, field {f}"),
                        None => format!("record {index}"),
                    });
                    return Err(e);
                }
            };
            if let Err(err) = (self.on)(index, record) {
                self.state.callback_error = Some(err);
                return Err(de::Error::custom("stopped by a data error"));
            }
            index += 1;
        }
    }
}

/// Streams a JSON object, calling `on(key, value)` for the entries whose key passes `keep`;
/// the values of the others are skipped without being built.
pub(super) fn stream_object(
    path: &Path,
    keep: impl Fn(&str) -> bool,
    expecting: &'static str,
    on: impl FnMut(&str, Value) -> Result<()>,
) -> Result<()> {
    let mut de = open(path)?;
    let mut state = StreamState::default();
    let result = de.deserialize_map(ObjectVisitor {
        state: &mut state,
        keep,
        expecting,
        on,
    });
    finish(path, de, state, result)
}

pub(super) struct ObjectVisitor<'a, K, F> {
    pub(super) state: &'a mut StreamState,
    pub(super) keep: K,
    pub(super) expecting: &'static str,
    pub(super) on: F,
}

impl<'de, K, F> Visitor<'de> for ObjectVisitor<'_, K, F>
where
    K: Fn(&str) -> bool,
    F: FnMut(&str, Value) -> Result<()>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> std::result::Result<(), A::Error> {
        let mut previous: Option<String> = None;
        loop {
            let key = match map.next_key::<String>() {
                Ok(Some(key)) => key,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.state.location = Some(match &previous {
                        Some(k) => format!("after entry {k:?}"),
                        None => "first entry".to_string(),
                    });
                    return Err(e);
                }
            };
            let value = if (self.keep)(&key) {
                map.next_value::<Value>().map(Some)
            } else {
                map.next_value::<IgnoredAny>().map(|_| None)
            };
            match value {
                Ok(Some(value)) => {
                    if let Err(err) = (self.on)(&key, value) {
                        self.state.callback_error = Some(err);
                        return Err(de::Error::custom("stopped by a data error"));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    self.state.location = Some(format!("entry {key:?}"));
                    return Err(e);
                }
            }
            previous = Some(key);
        }
    }
}
