//! HPROF constants: header, record and sub-record tags, basic types.

use crate::bytes::{Cursor, IdSize};
use crate::error::{ErrorKind, HprofError};

/// True when `data` starts like an HPROF dump.
fn looks_like_hprof(data: &[u8]) -> bool {
    data.starts_with(b"JAVA PROFILE 1.0.")
}

/// The fixed header: version string, identifier size, dump time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// "1.0.1", "1.0.2" or "1.0.3" (Android).
    pub version: String,
    pub id_size: IdSize,
    /// Milliseconds since the Unix epoch when the dump was written.
    pub timestamp_ms: u64,
    /// Offset of the first record.
    pub records_start: usize,
}

/// Parses the header at the start of `data`.
pub fn parse_header(data: &[u8]) -> Result<Header, HprofError> {
    const PREFIX: &[u8] = b"JAVA PROFILE 1.0.";
    if !looks_like_hprof(data) {
        return Err(HprofError::new(0, ErrorKind::NotHprof));
    }
    let nul = data
        .iter()
        .take(64)
        .position(|&b| b == 0)
        .ok_or(HprofError::new(0, ErrorKind::NotHprof))?;
    let minor = &data[PREFIX.len()..nul];
    if !matches!(minor, b"1" | b"2" | b"3") {
        return Err(HprofError::new(0, ErrorKind::NotHprof));
    }
    let version = String::from_utf8_lossy(&data[b"JAVA PROFILE ".len()..nul]).into_owned();
    let mut cursor = Cursor::new(data, nul + 1, IdSize::Four);
    let id_pos = cursor.pos();
    let id_size = match cursor.u4("identifier size")? {
        4 => IdSize::Four,
        8 => IdSize::Eight,
        other => return Err(HprofError::new(id_pos as u64, ErrorKind::IdSize(other))),
    };
    let timestamp_ms = cursor.u8("dump timestamp")?;
    Ok(Header {
        version,
        id_size,
        timestamp_ms,
        records_start: cursor.pos(),
    })
}

/// Top-level record tags the reader uses; every other tag is skipped by its length.
pub mod tag {
    pub const UTF8: u8 = 0x01;
    pub const LOAD_CLASS: u8 = 0x02;
    pub const FRAME: u8 = 0x04;
    pub const TRACE: u8 = 0x05;
    pub const HEAP_DUMP: u8 = 0x0C;
    pub const HEAP_DUMP_SEGMENT: u8 = 0x1C;
    pub const HEAP_DUMP_END: u8 = 0x2C;
}

/// Heap dump sub-record tags (HotSpot, plus Android's 1.0.3 additions).
pub mod sub {
    pub const ROOT_UNKNOWN: u8 = 0xFF;
    pub const ROOT_JNI_GLOBAL: u8 = 0x01;
    pub const ROOT_JNI_LOCAL: u8 = 0x02;
    pub const ROOT_JAVA_FRAME: u8 = 0x03;
    pub const ROOT_NATIVE_STACK: u8 = 0x04;
    pub const ROOT_STICKY_CLASS: u8 = 0x05;
    pub const ROOT_THREAD_BLOCK: u8 = 0x06;
    pub const ROOT_MONITOR_USED: u8 = 0x07;
    pub const ROOT_THREAD_OBJECT: u8 = 0x08;
    pub const CLASS_DUMP: u8 = 0x20;
    pub const INSTANCE_DUMP: u8 = 0x21;
    pub const OBJECT_ARRAY_DUMP: u8 = 0x22;
    pub const PRIMITIVE_ARRAY_DUMP: u8 = 0x23;
    pub const ANDROID_ROOT_INTERNED_STRING: u8 = 0x89;
    pub const ANDROID_ROOT_FINALIZING: u8 = 0x8A;
    pub const ANDROID_ROOT_DEBUGGER: u8 = 0x8B;
    pub const ANDROID_ROOT_REFERENCE_CLEANUP: u8 = 0x8C;
    pub const ANDROID_ROOT_VM_INTERNAL: u8 = 0x8D;
    pub const ANDROID_ROOT_JNI_MONITOR: u8 = 0x8E;
    pub const ANDROID_ROOT_UNREACHABLE: u8 = 0x90;
    pub const ANDROID_PRIMITIVE_ARRAY_NODATA: u8 = 0xC3;
    pub const ANDROID_HEAP_DUMP_INFO: u8 = 0xFE;
}

/// A field or array element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BasicType {
    Object,
    Boolean,
    Char,
    Float,
    Double,
    Byte,
    Short,
    Int,
    Long,
}

impl BasicType {
    pub fn from_code(code: u8) -> Option<BasicType> {
        Some(match code {
            2 => BasicType::Object,
            4 => BasicType::Boolean,
            5 => BasicType::Char,
            6 => BasicType::Float,
            7 => BasicType::Double,
            8 => BasicType::Byte,
            9 => BasicType::Short,
            10 => BasicType::Int,
            11 => BasicType::Long,
            _ => return None,
        })
    }

    /// Size of a value of this type in the dump (object references take the identifier size).
    pub fn dump_size(self, id_size: IdSize) -> usize {
        match self {
            BasicType::Object => id_size.bytes(),
            BasicType::Boolean | BasicType::Byte => 1,
            BasicType::Char | BasicType::Short => 2,
            BasicType::Float | BasicType::Int => 4,
            BasicType::Double | BasicType::Long => 8,
        }
    }

    /// Java name of a primitive array of this element type, e.g. `byte[]`.
    pub fn array_class_name(self) -> &'static str {
        match self {
            BasicType::Object => "java.lang.Object[]",
            BasicType::Boolean => "boolean[]",
            BasicType::Char => "char[]",
            BasicType::Float => "float[]",
            BasicType::Double => "double[]",
            BasicType::Byte => "byte[]",
            BasicType::Short => "short[]",
            BasicType::Int => "int[]",
            BasicType::Long => "long[]",
        }
    }
}

/// Reads a basic type code, failing with the offset on an invalid one.
pub fn read_type(cursor: &mut Cursor<'_>, what: &'static str) -> Result<BasicType, HprofError> {
    let pos = cursor.pos();
    let code = cursor.u1(what)?;
    BasicType::from_code(code).ok_or(HprofError::new(pos as u64, ErrorKind::BadType(code, what)))
}
