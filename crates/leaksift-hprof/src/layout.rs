//! Classes: Java names, instance layouts through the superclass chain, MAT's reference rules,
//! and the shallow-size rule.

use rustc_hash::FxHashMap;

use crate::bytes::{Id, IdSize};
use crate::error::{ErrorKind, HprofError};
use crate::format::BasicType;
use crate::scan::Scan;
use crate::walk::ClassDump;

/// How a reference counts for dominators and retaining paths (MAT's exclusions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// An ordinary strong reference.
    Strong,
    /// `java.lang.ref.Reference.referent`: weak, soft, phantom and final referents.
    Referent,
    /// `java.lang.ref.Finalizer`'s unfinalized chain (`unfinalized`, `next`, `prev`).
    FinalizerChain,
}

/// A reference field of an instance layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefField {
    /// Byte offset in the INSTANCE_DUMP field data.
    pub offset: u32,
    /// Field name (HPROF string id).
    pub name: Id,
    pub retention: Retention,
}

/// One class with its flattened instance layout.
#[derive(Debug)]
pub struct ClassDef {
    pub name: String,
    pub dump: ClassDump,
    /// Reference fields of this class and all its superclasses, in dump order.
    pub ref_fields: Vec<RefField>,
    /// Bytes an instance's field data should take in the dump.
    pub field_bytes: u32,
    /// Shallow size of one instance by [`SizeRule`].
    pub instance_size: u64,
}

/// Object sizes in the VM's memory, derived from what the dump tells.
///
/// The dump gives field types, not the VM's layout. The rule: HotSpot's layout with 8-byte
/// alignment; with 4-byte ids a 32-bit VM (8-byte header, 12-byte array header, 4-byte
/// references); with 8-byte ids a 64-bit VM with compressed class pointers (12-byte header,
/// 16-byte array header) and compressed oops (4-byte references) when all objects lie within
/// 32 GiB of each other, 8-byte references otherwise. Instance size = align8(header + Σ field
/// sizes); array size = align8(array header + length × element size). Field packing gaps that
/// HotSpot cannot fill are ignored (JDK 15+ fills them across superclasses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRule {
    pub header: u64,
    pub array_header: u64,
    pub reference: u64,
    pub compressed_oops: bool,
}

impl SizeRule {
    pub fn guess(id_size: IdSize, id_range: Option<(u64, u64)>) -> SizeRule {
        match id_size {
            IdSize::Four => SizeRule {
                header: 8,
                array_header: 12,
                reference: 4,
                compressed_oops: false,
            },
            IdSize::Eight => {
                let compressed = id_range.is_none_or(|(lo, hi)| hi - lo < 32 << 30);
                SizeRule {
                    header: 12,
                    array_header: 16,
                    reference: if compressed { 4 } else { 8 },
                    compressed_oops: compressed,
                }
            }
        }
    }

    /// Size of a field or element of type `ty` in the VM.
    pub fn value_size(&self, ty: BasicType) -> u64 {
        match ty {
            BasicType::Object => self.reference,
            BasicType::Boolean | BasicType::Byte => 1,
            BasicType::Char | BasicType::Short => 2,
            BasicType::Float | BasicType::Int => 4,
            BasicType::Double | BasicType::Long => 8,
        }
    }

    pub fn array(&self, element: BasicType, length: u64) -> u64 {
        align8(
            self.array_header
                .saturating_add(length.saturating_mul(self.value_size(element))),
        )
    }
}

fn align8(bytes: u64) -> u64 {
    bytes.saturating_add(7) & !7
}

/// Converts a JVM internal class name to its Java form:
/// `java/lang/String` → `java.lang.String`, `[[I` → `int[][]`, `[Ljava/lang/Object;` → `java.lang.Object[]`.
pub fn java_class_name(internal: &str) -> String {
    let internal = strip_hidden_class_address(internal);
    let dims = internal.bytes().take_while(|&b| b == b'[').count();
    if dims == 0 {
        return internal.replace('/', ".");
    }
    let element = &internal[dims..];
    let base = match element {
        "Z" => "boolean".to_string(),
        "C" => "char".to_string(),
        "F" => "float".to_string(),
        "D" => "double".to_string(),
        "B" => "byte".to_string(),
        "S" => "short".to_string(),
        "I" => "int".to_string(),
        "J" => "long".to_string(),
        other => other
            .strip_prefix('L')
            .map(|s| s.strip_suffix(';').unwrap_or(s))
            .unwrap_or(other)
            .replace('/', "."),
    };
    format!("{base}{}", "[]".repeat(dims))
}

/// Drops the address HotSpot appends to hidden classes (`Foo$$Lambda$14+0x00007f6f4504a0c0`,
/// `Foo$$Lambda$14/0x0000000800c0b000`): it changes from run to run, and would split one lambda
/// class into different classes when comparing dumps.
fn strip_hidden_class_address(name: &str) -> &str {
    let Some(at) = name.rfind("0x") else {
        return name;
    };
    let digits = &name[at + 2..];
    let separator = name[..at].chars().next_back();
    if matches!(separator, Some('+' | '/'))
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_hexdigit())
    {
        &name[..at - 1]
    } else {
        name
    }
}

/// All classes of the dump, by class object id.
#[derive(Debug)]
pub struct ClassTable {
    pub defs: Vec<ClassDef>,
    by_id: FxHashMap<Id, u32>,
}

/// Superclass chains longer than this are cut (real hierarchies are a few dozen deep); it bounds
/// the layout work on hostile dumps with long chains.
const MAX_CHAIN: usize = 1024;

impl ClassTable {
    /// Flattens every class's layout through its superclass chain. Fails when the layouts
    /// would take more entries than a dump of `dump_len` bytes can justify (hostile input: wide
    /// classes in deep chains multiply).
    pub fn build(
        scan: &mut Scan<'_>,
        rule: &SizeRule,
        dump_len: usize,
    ) -> Result<ClassTable, HprofError> {
        let dumps = std::mem::take(&mut scan.class_dumps);
        let mut by_id = FxHashMap::default();
        for (index, dump) in dumps.iter().enumerate() {
            by_id.entry(dump.id).or_insert(index as u32);
        }
        let names: Vec<String> = dumps
            .iter()
            .map(|dump| {
                scan.class_names
                    .get(&dump.id)
                    .and_then(|name| scan.strings.get(name))
                    .map(|raw| java_class_name(&String::from_utf8_lossy(raw)))
                    .unwrap_or_else(|| format!("<unknown class {:#x}>", dump.id.0))
            })
            .collect();
        let string_is =
            |id: Id, text: &str| scan.strings.get(&id).is_some_and(|s| *s == text.as_bytes());
        // Real dumps spend a few fields per class and chain link (100 K classes x 8 levels x
        // 20 fields = 16 M); hostile ones are refused before the layouts use ~256 MiB + dump/16.
        let budget = dump_len / 16 + (16 << 20);
        let mut spent = 0usize;
        let mut layouts = Vec::with_capacity(dumps.len());
        for index in 0..dumps.len() {
            let mut ref_fields = Vec::new();
            let mut field_bytes = 0u32;
            let mut vm_bytes = 0u64;
            let mut current = Some(index);
            let mut steps = 0;
            while let Some(at) = current {
                steps += 1;
                if steps > MAX_CHAIN.min(dumps.len()) {
                    break;
                }
                let class = &dumps[at];
                let class_name = names[at].as_str();
                spent += class.fields.len();
                if spent > budget {
                    return Err(HprofError::new(
                        0,
                        ErrorKind::Malformed(
                            "class layouts are larger than the dump can hold (superclass chains \
                             too deep or too wide)",
                        ),
                    ));
                }
                for field in &class.fields {
                    if field.ty == BasicType::Object {
                        let retention = match class_name {
                            "java.lang.ref.Reference" if string_is(field.name, "referent") => {
                                Retention::Referent
                            }
                            "java.lang.ref.Finalizer"
                                if string_is(field.name, "next")
                                    || string_is(field.name, "prev") =>
                            {
                                Retention::FinalizerChain
                            }
                            _ => Retention::Strong,
                        };
                        ref_fields.push(RefField {
                            offset: field_bytes,
                            name: field.name,
                            retention,
                        });
                    }
                    field_bytes =
                        field_bytes.saturating_add(field.ty.dump_size(scan.id_size) as u32);
                    vm_bytes += rule.value_size(field.ty);
                }
                current = by_id.get(&class.super_id).map(|&i| i as usize);
            }
            layouts.push((ref_fields, field_bytes, align8(rule.header + vm_bytes)));
        }
        let defs = dumps
            .into_iter()
            .zip(names)
            .zip(layouts)
            .map(
                |((dump, name), (ref_fields, field_bytes, instance_size))| ClassDef {
                    name,
                    dump,
                    ref_fields,
                    field_bytes,
                    instance_size,
                },
            )
            .collect();
        Ok(ClassTable { defs, by_id })
    }

    /// The index of the class with this class object id.
    #[inline]
    pub fn index_of(&self, class_id: Id) -> Option<u32> {
        self.by_id.get(&class_id).copied()
    }

    /// Offset (in the instance field data) and type of the field `name` of class `index` or
    /// its superclasses.
    pub fn field(
        &self,
        index: u32,
        name: &[u8],
        strings: &FxHashMap<Id, &[u8]>,
        id_size: IdSize,
    ) -> Option<(usize, BasicType)> {
        let mut offset = 0usize;
        let mut current = Some(index as usize);
        let mut steps = 0;
        while let Some(at) = current {
            steps += 1;
            if steps > self.defs.len() {
                return None;
            }
            let dump = &self.defs[at].dump;
            for field in &dump.fields {
                if strings.get(&field.name).is_some_and(|s| *s == name) {
                    return Some((offset, field.ty));
                }
                offset += field.ty.dump_size(id_size);
            }
            current = self.index_of(dump.super_id).map(|i| i as usize);
        }
        None
    }

    /// The class with this Java name (first one if several loaders define it).
    pub fn find_by_name(&self, name: &str) -> Option<u32> {
        self.defs
            .iter()
            .position(|def| def.name == name)
            .map(|i| i as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_internal_names() {
        assert_eq!(java_class_name("java/lang/String"), "java.lang.String");
        assert_eq!(java_class_name("[B"), "byte[]");
        assert_eq!(java_class_name("[[I"), "int[][]");
        assert_eq!(java_class_name("[Ljava/lang/Object;"), "java.lang.Object[]");
        assert_eq!(
            java_class_name("[[Ljava/util/Map$Entry;"),
            "java.util.Map$Entry[][]"
        );
    }

    #[test]
    fn size_rule_follows_id_size_and_address_span() {
        let small = SizeRule::guess(IdSize::Eight, Some((0xf000_0000, 0xffff_0000)));
        assert!(small.compressed_oops);
        assert_eq!(small.array(BasicType::Byte, 100), 120);
        assert_eq!(small.array(BasicType::Object, 3), 32);
        let big = SizeRule::guess(IdSize::Eight, Some((0x7f00_0000_0000, 0x7f10_0000_0000)));
        assert!(!big.compressed_oops);
        assert_eq!(big.array(BasicType::Object, 3), 40);
        let vm32 = SizeRule::guess(IdSize::Four, Some((0x1000, 0x2000)));
        assert_eq!(vm32.array(BasicType::Int, 1), 16);
    }
}
