//! Equality by value ([`Value::value_eq`]) and the comparisons with plain numbers,
//! strings and booleans built on it.

use alloc::string::String;

use super::Value;

impl Value {
    /// Equality by value, the way the IOTMP test vectors compare decoded data.
    ///
    /// * Numbers compare by their mathematical value whatever their representation:
    ///   `Uint(3)`, `Int(3)`, `F32(3.0)` and `F64(3.0)` are all equal; `0.0 == -0.0`.
    ///   Integer/float comparison is exact (no rounding through `f64`).
    /// * A NaN equals a NaN of the same width with the same bit pattern (PSON carries the
    ///   bits), nothing else.
    /// * Maps are equal when they hold equal pairs **in the same order** (PSON and `Value`
    ///   keep order); arrays element by element; strings, bytes, booleans and null exactly.
    ///
    /// This differs from `==`, which is structural and type-strict.
    ///
    /// ```
    /// use thinger_core::pson::Value;
    /// assert!(Value::Uint(3).value_eq(&Value::F64(3.0)));
    /// assert_ne!(Value::Uint(3), Value::F64(3.0));
    /// assert!(Value::F64(f64::NAN).value_eq(&Value::F64(f64::NAN)));
    /// assert!(!Value::Uint(u64::MAX).value_eq(&Value::F64(u64::MAX as f64))); // 2^64 != 2^64 - 1
    /// assert!(!thinger_core::pson!({"a": 1, "b": 2}).value_eq(&thinger_core::pson!({"b": 2, "a": 1})));
    /// ```
    pub fn value_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.value_eq(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| ka == kb && va.value_eq(vb))
            }
            (a, b) => match (Number::of(a), Number::of(b)) {
                (Some(x), Some(y)) => x.value_eq(y),
                _ => false,
            },
        }
    }
}

/// The integer a float equals exactly, if it is a whole number in `i128` range.
pub(super) fn whole(f: f64) -> Option<i128> {
    // ±2^127: every f64 inside converts to i128 without saturating.
    const LIMIT: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    if (-LIMIT..LIMIT).contains(&f) {
        let i = f as i128;
        if i as f64 == f {
            return Some(i);
        }
    }
    None
}

/// A number of any representation, for [`Value::value_eq`].
#[derive(Clone, Copy)]
enum Number {
    Int(i128),
    F32(f32),
    F64(f64),
}

impl Number {
    fn of(value: &Value) -> Option<Number> {
        match *value {
            Value::Uint(v) => Some(Number::Int(i128::from(v))),
            Value::Int(v) => Some(Number::Int(i128::from(v))),
            Value::F32(f) => Some(Number::F32(f)),
            Value::F64(f) => Some(Number::F64(f)),
            _ => None,
        }
    }

    fn value_eq(self, other: Number) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            (Number::Int(i), Number::F32(f)) | (Number::F32(f), Number::Int(i)) => whole(f64::from(f)) == Some(i),
            (Number::Int(i), Number::F64(f)) | (Number::F64(f), Number::Int(i)) => whole(f) == Some(i),
            (Number::F32(a), Number::F32(b)) => a == b || (a.is_nan() && a.to_bits() == b.to_bits()),
            (Number::F64(a), Number::F64(b)) => a == b || (a.is_nan() && a.to_bits() == b.to_bits()),
            // Widening to f64 is exact; NaNs of different widths are never equal.
            (Number::F32(a), Number::F64(b)) | (Number::F64(b), Number::F32(a)) => f64::from(a) == b,
        }
    }
}

macro_rules! eq_number {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for Value {
            /// By value: `Value::F64(3.0) == 3` holds.
            fn eq(&self, other: &$t) -> bool {
                self.value_eq(&Value::from(*other))
            }
        }
        impl PartialEq<Value> for $t {
            fn eq(&self, other: &Value) -> bool {
                other.value_eq(&Value::from(*self))
            }
        }
    )*};
}
eq_number!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, f32, f64);

impl PartialEq<bool> for Value {
    fn eq(&self, other: &bool) -> bool {
        self.as_bool() == Some(*other)
    }
}

impl PartialEq<str> for Value {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for Value {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl PartialEq<String> for Value {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == Some(other.as_str())
    }
}

impl PartialEq<Value> for &str {
    fn eq(&self, other: &Value) -> bool {
        other.as_str() == Some(*self)
    }
}

impl PartialEq<Value> for String {
    fn eq(&self, other: &Value) -> bool {
        other.as_str() == Some(self.as_str())
    }
}
