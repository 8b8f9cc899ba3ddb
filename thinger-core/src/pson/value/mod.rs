//! The owned PSON [`Value`] tree and the [`pson!`](crate::pson!) macro (feature `alloc`).

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Index;

use super::WireType;

/// An owned PSON value, like `serde_json::Value` for PSON.
///
/// * Maps keep their pairs in the order written (wire order when decoded); lookups return
///   the first pair with the key, as [`MapRef::get`](super::MapRef::get) does.
/// * Integers: non-negative numbers are [`Value::Uint`], negative ones [`Value::Int`]. The
///   `From` conversions and the decoder keep to that; an `Int` holding a non-negative
///   number is still accepted and encodes as an unsigned integer.
/// * Floats: [`Value::F32`] is written **as is** (tag `0x40` + 4 bytes), so it decodes to the
///   same `F32`, NaN payload included. [`Value::F64`] is written with the official encoder's
///   rules ([`Encoder::f64`](crate::pson::Encoder::f64)): a whole number in `i64` range becomes an integer (`3.0` →
///   `03`), a double that is exact as `f32` is sent as f32, anything else as f64. An `F64`
///   may therefore decode as `Uint`, `Int`, `F32` or `F64`: compare such values with
///   [`Value::value_eq`], not `==`.
///
/// `==` (the derived [`PartialEq`]) is structural: `Uint(3) != F64(3.0)` and a NaN is never
/// equal to itself. Comparisons with plain numbers, strings and booleans
/// (`value == 3`, `value == "on"`) compare by value.
///
/// Indexing with a key or a position returns [`Value::Null`] when the key or element is
/// missing (or the value is not a map / array), like `serde_json`; it never panics.
///
/// ```
/// use thinger_core::pson::{self, Value};
///
/// let v = thinger_core::pson!({"temp": 23.5, "on": true, "tags": ["a", 1], "n": null});
/// assert_eq!(v["temp"], 23.5);
/// assert_eq!(v["tags"][0], "a");
/// assert!(v["missing"]["deeper"].is_null());
///
/// let bytes = v.encode_to_vec();
/// assert_eq!(bytes.len(), pson::encoded_len(&v));
/// let back = Value::decode(&bytes).unwrap();
/// // 23.5 was an F64 and travelled as an f32: equal by value, not structurally.
/// assert!(back.value_eq(&v));
/// assert_eq!(back["temp"], Value::F32(23.5));
/// assert_ne!(back, v);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A non-negative integer (PSON type 0).
    Uint(u64),
    /// A negative integer (PSON type 1).
    Int(i64),
    /// A float kept as `f32`; encoded as f32 without conversion.
    F32(f32),
    /// A float kept as `f64`; encoded with the official rules (see the type docs).
    F64(f64),
    /// A UTF-8 string.
    Str(String),
    /// A byte string (PSON type 5).
    Bytes(Vec<u8>),
    /// A map of string keys to values, in order.
    Map(Vec<(String, Value)>),
    /// An array of values.
    Array(Vec<Value>),
}

/// The value returned by indexing when nothing is there.
static NULL: Value = Value::Null;

mod convert;
mod decode;
mod encode;
mod eq;
use eq::whole;
#[cfg(feature = "serde")]
mod serde_impls;

impl Value {
    /// The PSON type this value is written as (`F64` is listed as [`WireType::Float`] even
    /// when the official rules send it as an integer).
    ///
    /// ```
    /// use thinger_core::pson::{Value, WireType};
    /// assert_eq!(Value::from(-2).wire_type(), WireType::NegativeInt);
    /// assert_eq!(Value::Null.wire_type(), WireType::Discrete);
    /// ```
    pub fn wire_type(&self) -> WireType {
        match self {
            Value::Null | Value::Bool(_) => WireType::Discrete,
            Value::Uint(_) => WireType::PositiveInt,
            Value::Int(v) if *v >= 0 => WireType::PositiveInt,
            Value::Int(_) => WireType::NegativeInt,
            Value::F32(_) | Value::F64(_) => WireType::Float,
            Value::Str(_) => WireType::String,
            Value::Bytes(_) => WireType::Bytes,
            Value::Map(_) => WireType::Map,
            Value::Array(_) => WireType::Array,
        }
    }

    /// Whether the value is `null`.
    ///
    /// ```
    /// assert!(thinger_core::pson::Value::Null.is_null());
    /// ```
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether the value is a number (integer or float).
    ///
    /// ```
    /// use thinger_core::pson::Value;
    /// assert!(Value::from(1.5).is_number());
    /// assert!(!Value::from("1.5").is_number());
    /// ```
    pub fn is_number(&self) -> bool {
        matches!(self, Value::Uint(_) | Value::Int(_) | Value::F32(_) | Value::F64(_))
    }

    /// The boolean, if this is one.
    ///
    /// ```
    /// assert_eq!(thinger_core::pson::Value::Bool(true).as_bool(), Some(true));
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The value as `u64`: a non-negative integer, or a whole float that fits.
    ///
    /// ```
    /// use thinger_core::pson::Value;
    /// assert_eq!(Value::Uint(7).as_u64(), Some(7));
    /// assert_eq!(Value::F64(7.0).as_u64(), Some(7));
    /// assert_eq!(Value::Int(-7).as_u64(), None);
    /// ```
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Uint(v) => Some(v),
            Value::Int(v) => u64::try_from(v).ok(),
            Value::F32(f) => whole(f64::from(f)).and_then(|i| u64::try_from(i).ok()),
            Value::F64(f) => whole(f).and_then(|i| u64::try_from(i).ok()),
            _ => None,
        }
    }

    /// The value as `i64`: an integer in range, or a whole float that fits.
    ///
    /// ```
    /// use thinger_core::pson::Value;
    /// assert_eq!(Value::Int(-3).as_i64(), Some(-3));
    /// assert_eq!(Value::Uint(u64::MAX).as_i64(), None);
    /// assert_eq!(Value::F32(-2.0).as_i64(), Some(-2));
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Uint(v) => i64::try_from(v).ok(),
            Value::Int(v) => Some(v),
            Value::F32(f) => whole(f64::from(f)).and_then(|i| i64::try_from(i).ok()),
            Value::F64(f) => whole(f).and_then(|i| i64::try_from(i).ok()),
            _ => None,
        }
    }

    /// Any number as `f64` (integers above 2^53 are rounded).
    ///
    /// ```
    /// use thinger_core::pson::Value;
    /// assert_eq!(Value::Uint(3).as_f64(), Some(3.0));
    /// assert_eq!(Value::F32(0.5).as_f64(), Some(0.5));
    /// assert_eq!(Value::Null.as_f64(), None);
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Uint(v) => Some(v as f64),
            Value::Int(v) => Some(v as f64),
            Value::F32(f) => Some(f64::from(f)),
            Value::F64(f) => Some(f),
            _ => None,
        }
    }

    /// The string, if this is one.
    ///
    /// ```
    /// assert_eq!(thinger_core::pson::Value::from("x").as_str(), Some("x"));
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    ///
    /// ```
    /// use thinger_core::pson::Value;
    /// assert_eq!(Value::Bytes(vec![1, 2]).as_bytes(), Some(&[1u8, 2][..]));
    /// ```
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    ///
    /// ```
    /// let v = thinger_core::pson!([1, 2, 3]);
    /// assert_eq!(v.as_array().map(|a| a.len()), Some(3));
    /// ```
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The elements, mutably, if this is an array.
    ///
    /// ```
    /// let mut v = thinger_core::pson!([1]);
    /// v.as_array_mut().unwrap().push("two".into());
    /// assert_eq!(v, thinger_core::pson!([1, "two"]));
    /// ```
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The pairs, in order, if this is a map.
    ///
    /// ```
    /// let v = thinger_core::pson!({"b": 1, "a": 2});
    /// let keys: Vec<&str> = v.as_map().unwrap().iter().map(|(k, _)| k.as_str()).collect();
    /// assert_eq!(keys, ["b", "a"]);
    /// ```
    pub fn as_map(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The pairs, mutably, if this is a map.
    ///
    /// ```
    /// let mut v = thinger_core::pson!({});
    /// v.as_map_mut().unwrap().push(("on".into(), true.into()));
    /// assert_eq!(v, thinger_core::pson!({"on": true}));
    /// ```
    pub fn as_map_mut(&mut self) -> Option<&mut Vec<(String, Value)>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value of the first pair whose key is `key`, if this is a map.
    ///
    /// ```
    /// let v = thinger_core::pson!({"a": 1});
    /// assert_eq!(v.get("a"), Some(&thinger_core::pson::Value::Uint(1)));
    /// assert_eq!(v.get("b"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of the first pair whose key is `key`, mutably, if this is a map.
    ///
    /// ```
    /// let mut v = thinger_core::pson!({"a": 1});
    /// *v.get_mut("a").unwrap() = 2.into();
    /// assert_eq!(v["a"], 2);
    /// ```
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.as_map_mut()?.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Takes the value out, leaving `null` in its place.
    ///
    /// ```
    /// let mut v = thinger_core::pson!({"a": "text"});
    /// let text = v.get_mut("a").unwrap().take();
    /// assert_eq!(text, "text");
    /// assert!(v["a"].is_null());
    /// ```
    pub fn take(&mut self) -> Value {
        core::mem::take(self)
    }

    /// Builds a map from an array of pairs (used by [`pson!`](crate::pson!)).
    #[doc(hidden)]
    pub fn __map<const N: usize>(pairs: [(String, Value); N]) -> Value {
        Value::Map(Vec::from(pairs))
    }

    /// Builds an array from an array of values (used by [`pson!`](crate::pson!)).
    #[doc(hidden)]
    pub fn __array<const N: usize>(items: [Value; N]) -> Value {
        Value::Array(Vec::from(items))
    }

    /// Converts a map key (used by [`pson!`](crate::pson!)).
    #[doc(hidden)]
    pub fn __key<K: Into<String>>(key: K) -> String {
        key.into()
    }
}

impl Index<&str> for Value {
    type Output = Value;
    /// The value of the first pair with this key, or `null` when there is none or this is
    /// not a map.
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl Index<usize> for Value {
    type Output = Value;
    /// The element at this position, or `null` when out of range or this is not an array.
    fn index(&self, index: usize) -> &Value {
        self.as_array().and_then(|a| a.get(index)).unwrap_or(&NULL)
    }
}

/// Builds a [`pson::Value`](crate::pson::Value) with JSON-like syntax, like
/// `serde_json::json!` (feature `alloc`).
///
/// * `null`, `[ … ]` (an array) and `{ "key": value, … }` (a map, keys in written order);
/// * keys are string literals or any expression in parentheses, `(name)`, that converts
///   `Into<String>`;
/// * any other value is an expression converted with `Value::from` (numbers, `bool`,
///   strings, `Vec`, `Option`, other `Value`s…). An element that is itself a block
///   expression must be wrapped in parentheses, since `{ … }` means a map;
/// * used with braces, the braces are the map: `pson!{ "on": true }` is
///   `pson!({ "on": true })`, and `pson!{}` is an empty map.
///
/// Trailing commas are accepted. Each element costs one step of macro recursion, so very
/// long literals may need `#![recursion_limit]`.
///
/// ```
/// use thinger_core::pson::{self, Value};
///
/// let celsius = 21.5;
/// let key = String::from("unit");
/// let reading = thinger_core::pson!({
///     "celsius": celsius,
///     (key): "C",
///     "history": [20.0, 21, -1, null, {"ok": true}],
///     "label": Some("lab"),
/// });
/// assert_eq!(reading["celsius"], 21.5);
/// assert_eq!(reading["unit"], "C");
/// assert_eq!(reading["history"][2], -1);
/// assert!(reading["history"][3].is_null());
/// assert_eq!(reading["history"][4]["ok"], true);
///
/// // The brace form from the issue tracker.
/// let state = thinger_core::pson! { "temp": 23.5, "on": true };
/// assert_eq!(state, thinger_core::pson!({"temp": 23.5, "on": true}));
/// assert_eq!(state.encode_to_vec(),
///            [0xc2, 0x84, b't', b'e', b'm', b'p', 0x40, 0, 0, 0xbc, 0x41, 0x82, b'o', b'n', 0x61]);
/// ```
#[macro_export]
macro_rules! pson {
    // ---- internal: array elements ([done, ...] then the remaining tokens) ----
    (@array [$($done:expr,)*]) => {
        $crate::pson::Value::__array([$($done,)*])
    };
    (@array [$($done:expr,)*] null $(, $($rest:tt)*)?) => {
        $crate::pson!(@array [$($done,)* $crate::pson::Value::Null,] $($($rest)*)?)
    };
    (@array [$($done:expr,)*] [$($inner:tt)*] $(, $($rest:tt)*)?) => {
        $crate::pson!(@array [$($done,)* $crate::pson!([$($inner)*]),] $($($rest)*)?)
    };
    (@array [$($done:expr,)*] {$($inner:tt)*} $(, $($rest:tt)*)?) => {
        $crate::pson!(@array [$($done,)* $crate::pson!({$($inner)*}),] $($($rest)*)?)
    };
    (@array [$($done:expr,)*] $value:expr $(, $($rest:tt)*)?) => {
        $crate::pson!(@array [$($done,)* $crate::pson::Value::from($value),] $($($rest)*)?)
    };

    // ---- internal: map pairs ([done, ...] then the remaining tokens) ----
    (@map [$($done:expr,)*]) => {
        $crate::pson::Value::__map([$($done,)*])
    };
    (@map [$($done:expr,)*] $key:literal : $($rest:tt)*) => {
        $crate::pson!(@value [$($done,)*] ($key) $($rest)*)
    };
    (@map [$($done:expr,)*] ($key:expr) : $($rest:tt)*) => {
        $crate::pson!(@value [$($done,)*] ($key) $($rest)*)
    };
    (@value [$($done:expr,)*] ($key:expr) null $(, $($rest:tt)*)?) => {
        $crate::pson!(@map [$($done,)* ($crate::pson::Value::__key($key), $crate::pson::Value::Null),]
            $($($rest)*)?)
    };
    (@value [$($done:expr,)*] ($key:expr) [$($inner:tt)*] $(, $($rest:tt)*)?) => {
        $crate::pson!(@map [$($done,)* ($crate::pson::Value::__key($key), $crate::pson!([$($inner)*])),]
            $($($rest)*)?)
    };
    (@value [$($done:expr,)*] ($key:expr) {$($inner:tt)*} $(, $($rest:tt)*)?) => {
        $crate::pson!(@map [$($done,)* ($crate::pson::Value::__key($key), $crate::pson!({$($inner)*})),]
            $($($rest)*)?)
    };
    (@value [$($done:expr,)*] ($key:expr) $value:expr $(, $($rest:tt)*)?) => {
        $crate::pson!(@map [$($done,)* ($crate::pson::Value::__key($key), $crate::pson::Value::from($value)),]
            $($($rest)*)?)
    };

    // ---- public forms ----
    () => {
        $crate::pson::Value::__map([])
    };
    (null) => {
        $crate::pson::Value::Null
    };
    ([$($inner:tt)*]) => {
        $crate::pson!(@array [] $($inner)*)
    };
    ({$($inner:tt)*}) => {
        $crate::pson!(@map [] $($inner)*)
    };
    // `pson!{ "key": value, ... }`: the macro's own braces are the map.
    ($key:literal : $($rest:tt)*) => {
        $crate::pson!(@map [] $key : $($rest)*)
    };
    (($key:expr) : $($rest:tt)*) => {
        $crate::pson!(@map [] ($key) : $($rest)*)
    };
    ($value:expr) => {
        $crate::pson::Value::from($value)
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pson::DecodeOptions;
    use alloc::borrow::ToOwned;
    use alloc::vec;

    #[test]
    fn index_never_panics() {
        let v = crate::pson!({"a": [1, {"b": null}]});
        assert_eq!(v["a"][0], 1);
        assert!(v["a"][1]["b"].is_null());
        assert!(v["a"][9].is_null());
        assert!(v[0].is_null());
        assert!(v["a"]["x"].is_null());
        assert!(Value::Uint(1)["x"][3].is_null());
    }

    #[test]
    fn macro_forms() {
        let x = 5u8;
        assert_eq!(crate::pson!(null), Value::Null);
        assert_eq!(crate::pson!(x), Value::Uint(5));
        assert_eq!(crate::pson!(-2), Value::Int(-2));
        assert_eq!(crate::pson!([]), Value::Array(vec![]));
        assert_eq!(crate::pson!({}), Value::Map(vec![]));
        assert_eq!(crate::pson! {}, Value::Map(vec![]));
        assert_eq!(crate::pson!([null, [null], {}, x + 1,]), {
            Value::Array(vec![Value::Null, Value::Array(vec![Value::Null]), Value::Map(vec![]), Value::Uint(6)])
        });
        let key = "k";
        assert_eq!(
            crate::pson!({(key): [1, 2].len(), ("a".to_owned() + "b"): null}),
            Value::Map(vec![("k".into(), Value::Uint(2)), ("ab".into(), Value::Null)])
        );
        assert_eq!(crate::pson!([[1, 2].len(), "s"]), Value::Array(vec![Value::Uint(2), Value::from("s")]));
        assert_eq!(crate::pson! { ("x"): 1 }, Value::Map(vec![("x".into(), Value::Uint(1))]));
    }

    #[test]
    fn conversions() {
        assert_eq!(Value::from(-1i8), Value::Int(-1));
        assert_eq!(Value::from(1i64), Value::Uint(1));
        assert_eq!(Value::from(i64::MIN), Value::Int(i64::MIN));
        assert_eq!(Value::from(None::<u8>), Value::Null);
        assert_eq!(Value::from(vec![1u8, 2]), Value::Array(vec![Value::Uint(1), Value::Uint(2)]));
        assert_eq!(Value::from(crate::pson::Bytes(&[1, 2])), Value::Bytes(vec![1, 2]));
        let m: Value = [("a", 1), ("b", 2)].into_iter().collect();
        assert_eq!(m, crate::pson!({"a": 1, "b": 2}));
        let a: Value = (1..=3).collect();
        assert_eq!(a, crate::pson!([1, 2, 3]));
        assert_eq!(Value::from(&[1i32, -1][..]), crate::pson!([1, -1]));
        assert_eq!(Value::from(["a", "b"]), crate::pson!(["a", "b"]));
        let inner = crate::pson!({"x": 1});
        assert_eq!(crate::pson!({"inner": &inner, "copy": inner.clone()}), {
            Value::Map(vec![("inner".into(), inner.clone()), ("copy".into(), inner)])
        });
        // The sizes the `decode` docs quote (64-bit hosts).
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(core::mem::size_of::<Value>(), 32);
            assert_eq!(core::mem::size_of::<(String, Value)>(), 56);
        }
    }

    #[test]
    fn number_equality() {
        assert!(Value::Int(3).value_eq(&Value::Uint(3)));
        assert!(Value::F32(-7.0).value_eq(&Value::Int(-7)));
        assert!(Value::F32(0.1).value_eq(&Value::F64(f64::from(0.1f32))));
        assert!(!Value::F32(0.1).value_eq(&Value::F64(0.1)));
        assert!(Value::F64(-0.0).value_eq(&Value::Uint(0)));
        assert!(!Value::F32(f32::NAN).value_eq(&Value::F64(f64::NAN)));
        assert!(!Value::F64(f64::NAN).value_eq(&Value::F64(-f64::NAN)));
        assert!(!Value::F64(f64::INFINITY).value_eq(&Value::Uint(u64::MAX)));
        assert!(Value::Int(i64::MIN).value_eq(&Value::F64(-9_223_372_036_854_775_808.0)));
        assert!(!Value::Str("1".into()).value_eq(&Value::Uint(1)));
        assert!(!Value::Bytes(vec![1]).value_eq(&Value::Array(vec![Value::Uint(1)])));
    }

    #[test]
    fn accessors() {
        assert_eq!(Value::F64(1e30).as_u64(), None);
        assert_eq!(Value::F64(18_446_744_073_709_551_616.0).as_u64(), None);
        assert_eq!(Value::F64(-1.0).as_u64(), None);
        assert_eq!(Value::F64(0.5).as_i64(), None);
        assert_eq!(Value::Int(5).as_u64(), Some(5));
        assert_eq!(Value::Int(5).wire_type(), WireType::PositiveInt);
    }

    #[test]
    fn deep_value_converts() {
        let depth = 200;
        let mut bytes = vec![0xe1; depth];
        bytes.push(0xe0);
        let v = Value::decode_with(&bytes, &DecodeOptions::new().max_depth(depth + 1)).unwrap();
        let mut cur = &v;
        let mut levels = 0;
        while let Some(inner) = cur.as_array().and_then(|a| a.first()) {
            cur = inner;
            levels += 1;
        }
        assert_eq!(levels, depth);
        assert_eq!(cur, &Value::Array(vec![]));
        assert_eq!(v.encode_to_vec(), bytes);
    }
}
