use core::fmt;

/// Everything that can go wrong encoding or decoding PSON.
///
/// Small and `Copy`, so it costs nothing on a microcontroller.
///
/// ```
/// use thinger_core::pson::{Error, PsonRef};
/// assert_eq!(PsonRef::decode(&[0x85, b'h']).unwrap_err(), Error::LengthExceedsInput);
/// assert_eq!(PsonRef::decode(&[0x85]).unwrap_err(), Error::Truncated);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The output buffer has no room for the encoded value.
    BufferFull,
    /// The input ended in the middle of a value.
    Truncated,
    /// A varint is longer than 10 bytes or overflows 64 bits.
    VarintOverflow,
    /// A float tag other than f32 (0) or f64 (1), or a discrete tag other than
    /// false/true/null.
    InvalidTag(u8),
    /// A string is not valid UTF-8.
    InvalidUtf8,
    /// A map key is not a PSON string.
    NonStringKey,
    /// Maps and arrays are nested deeper than the configured limit.
    DepthLimitExceeded,
    /// A length or count is larger than the input that remains.
    LengthExceedsInput,
    /// A negative integer whose magnitude does not fit in `i64`.
    IntegerOverflow,
    /// Bytes remain after the value.
    TrailingBytes,
    /// The value has a different type than the one asked for (serde).
    UnexpectedType,
    /// A serde data model construct PSON cannot express, or a custom serde error.
    Unsupported,
    /// A serde `Serialize`/`Deserialize` implementation reported an error.
    Custom,
    /// The `embedded_io::Write` sink failed.
    Io,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BufferFull => f.write_str("PSON output buffer is full"),
            Error::Truncated => f.write_str("PSON input ends inside a value"),
            Error::VarintOverflow => f.write_str("PSON varint overflows 64 bits"),
            Error::InvalidTag(tag) => write!(f, "invalid PSON tag 0x{tag:02x}"),
            Error::InvalidUtf8 => f.write_str("PSON string is not valid UTF-8"),
            Error::NonStringKey => f.write_str("PSON map key is not a string"),
            Error::DepthLimitExceeded => f.write_str("PSON nesting exceeds the depth limit"),
            Error::LengthExceedsInput => f.write_str("PSON length exceeds the remaining input"),
            Error::IntegerOverflow => f.write_str("PSON negative integer does not fit in i64"),
            Error::TrailingBytes => f.write_str("bytes remain after the PSON value"),
            Error::UnexpectedType => f.write_str("PSON value has an unexpected type"),
            Error::Unsupported => f.write_str("value cannot be expressed in PSON"),
            Error::Custom => f.write_str("PSON serde error"),
            Error::Io => f.write_str("PSON output sink failed"),
        }
    }
}

impl core::error::Error for Error {}

impl From<crate::varint::Overflow> for Error {
    fn from(_: crate::varint::Overflow) -> Self {
        Error::VarintOverflow
    }
}
