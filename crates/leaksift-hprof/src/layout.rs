//! Classes: Java names, instance layouts through the superclass chain, MAT's reference rules,
//! and the shallow-size rule.

use rustc_hash::FxHashMap;

use crate::bytes::{Id, IdSize};
use crate::error::{ErrorKind, HprofError};
use crate::format::BasicType;
use crate::mutf8;
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
/// The dump gives field types, not the VM's layout. The rule: HotSpot's layout; with 4-byte ids
/// a 32-bit VM (8-byte header, 12-byte array header, 4-byte references, 8-byte alignment). With
/// 8-byte ids a 64-bit VM whose header and reference sizes and object alignment are voted by
/// the dump's arrays ([`LayoutVotes`]): 12-byte header and 16-byte array header with compressed
/// class pointers, 16 and 24 without; 4-byte references with compressed oops, 8 without;
/// objects aligned to 8, 16 or 32 bytes (`-XX:ObjectAlignmentInBytes`, 8 by default). Without
/// votes, compressed class pointers, 8-byte alignment, and compressed oops when all objects lie
/// within 32 GiB of each other. Instance size = align(header + Σ field sizes); array size =
/// align(array header + length × element size), align rounding up to the object alignment.
/// Field packing gaps that HotSpot cannot fill are ignored (JDK 15+ fills them across
/// superclasses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRule {
    pub header: u64,
    pub array_header: u64,
    pub reference: u64,
    pub compressed_oops: bool,
    /// Bytes every object's size is a multiple of (`-XX:ObjectAlignmentInBytes`): 8, 16 or 32.
    pub alignment: u64,
}

impl SizeRule {
    pub fn guess(id_size: IdSize, id_range: Option<(u64, u64)>, votes: &LayoutVotes) -> SizeRule {
        match id_size {
            IdSize::Four => SizeRule {
                header: 8,
                array_header: 12,
                reference: 4,
                compressed_oops: false,
                alignment: 8,
            },
            IdSize::Eight => {
                // Compressed oops are 32-bit offsets in units of the alignment: they reach
                // 4 Gi × the alignment (32 GiB at 8, 64 GiB at 16, 128 GiB at 32).
                let preferred = |alignment: u64| {
                    let compressed =
                        id_range.is_none_or(|(lo, hi)| hi - lo < (4 << 30) * alignment);
                    if compressed { 0 } else { 1 }
                };
                let (layout, alignment) = votes
                    .best(preferred)
                    .unwrap_or((preferred(ALIGNMENTS[0]), ALIGNMENTS[0]));
                let (array_header, reference) = LAYOUTS_64[layout];
                SizeRule::hotspot_64(array_header, reference, alignment)
            }
        }
    }

    /// A 64-bit HotSpot layout: with compressed class pointers (16-byte array header) the
    /// instance header is 12 bytes, else 16.
    fn hotspot_64(array_header: u64, reference: u64, alignment: u64) -> SizeRule {
        SizeRule {
            header: if array_header == 16 { 12 } else { 16 },
            array_header,
            reference,
            compressed_oops: reference == 4,
            alignment,
        }
    }

    /// Size of a VM pointer (`intptr_t`): 4 bytes on a 32-bit VM, else 8.
    fn pointer(&self) -> u64 {
        if self.header == 8 { 4 } else { 8 }
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

    /// `bytes` rounded up to the object alignment: the size an object of `bytes` takes.
    pub fn align(&self, bytes: u64) -> u64 {
        align_to(bytes, self.alignment)
    }

    pub fn array(&self, element: BasicType, length: u64) -> u64 {
        self.align(self.unaligned_array(element, length))
    }

    /// The array's header and elements, before alignment.
    fn unaligned_array(&self, element: BasicType, length: u64) -> u64 {
        self.array_header
            .saturating_add(length.saturating_mul(self.value_size(element)))
    }
}

/// The 64-bit HotSpot layouts a dump can come from, as (array header, reference size):
/// compressed class pointers and oops (the default up to 32 GiB heaps), compressed class
/// pointers only (`-XX:-UseCompressedOops`, heaps over 32 GiB), and both without compressed
/// class pointers.
const LAYOUTS_64: [(u64, u64); 4] = [(16, 4), (16, 8), (24, 4), (24, 8)];

/// The object alignments a 64-bit dump can have (`-XX:ObjectAlignmentInBytes`, a power of two
/// from 8 to 256): 8, the default; 16, which large heaps use to keep compressed oops up to
/// 64 GiB; 32, up to 128 GiB. Smallest first: ties go to the smaller one.
const ALIGNMENTS: [u64; 3] = [8, 16, 32];

/// Votes for the candidates of [`LAYOUTS_64`] × [`ALIGNMENTS`] from the dump's arrays. HotSpot
/// writes the heap in address order and a live dump comes after a compacting GC, so most
/// objects directly follow the one before: the gap from an array to the next object is the
/// array's size, which tells the array header (compressed class pointers) from primitive
/// arrays, the reference size from object arrays, and the alignment from both. A gap votes for
/// every candidate under which the array has that size. Under 8-byte alignment a 16-byte
/// candidate matches only the arrays whose size happens to be a multiple of 16 (and then the
/// 8-byte one matches too), so 8 wins; under 16-byte alignment the 16-byte candidate matches
/// every gap and the 8-byte one only those multiples of 16.
#[derive(Debug, Clone, Default)]
pub struct LayoutVotes {
    /// Votes by layout, then by alignment.
    votes: [[u64; ALIGNMENTS.len()]; LAYOUTS_64.len()],
    /// The object just seen, when it is an array: its id and its unaligned size under each
    /// layout (aligned when the next object comes: arithmetic only, this runs for every array).
    pending: Option<(u64, [u64; LAYOUTS_64.len()])>,
}

impl LayoutVotes {
    /// An object that is not an array, with this id, comes next in the dump.
    pub fn object(&mut self, id: u64) {
        if let Some((previous, sizes)) = self.pending.take() {
            let gap = id.wrapping_sub(previous);
            for (votes, size) in self.votes.iter_mut().zip(sizes) {
                for (votes, alignment) in votes.iter_mut().zip(ALIGNMENTS) {
                    *votes += u64::from(align_to(size, alignment) == gap);
                }
            }
        }
    }

    /// An array comes next in the dump.
    pub fn array(&mut self, id: u64, element: BasicType, length: u64) {
        self.object(id);
        let sizes = LAYOUTS_64.map(|(header, reference)| {
            SizeRule::hotspot_64(header, reference, ALIGNMENTS[0]).unaligned_array(element, length)
        });
        self.pending = Some((id, sizes));
    }

    /// Adds another part of the dump's votes (the array ending a part has no successor).
    pub fn merge(&mut self, other: &LayoutVotes) {
        for (votes, more) in self.votes.iter_mut().zip(other.votes) {
            for (votes, more) in votes.iter_mut().zip(more) {
                *votes += more;
            }
        }
    }

    /// The candidate with the most votes, if any has one, as (index in [`LAYOUTS_64`],
    /// alignment). Ties go to the smallest alignment (on a heap of that alignment, every gap a
    /// larger alignment's candidate matches is matched by the smaller one's too, so a tie says
    /// nothing for the larger), then to the layout `preferred(alignment)` names (the
    /// address-span guess), then to the first layout.
    fn best(&self, preferred: impl Fn(u64) -> usize) -> Option<(usize, u64)> {
        let most = self
            .votes
            .iter()
            .flatten()
            .copied()
            .max()
            .filter(|&most| most > 0)?;
        ALIGNMENTS.iter().enumerate().find_map(|(at, &alignment)| {
            let tied = |layout: usize| self.votes.get(layout).map(|votes| votes[at]) == Some(most);
            let preferred = preferred(alignment);
            let layout = if tied(preferred) {
                Some(preferred)
            } else {
                (0..LAYOUTS_64.len()).find(|&layout| tied(layout))
            };
            layout.map(|layout| (layout, alignment))
        })
    }
}

/// `bytes` rounded up to `alignment` (a power of two); saturates instead of overflowing.
fn align_to(bytes: u64, alignment: u64) -> u64 {
    bytes.saturating_add(alignment - 1) & !(alignment - 1)
}

/// Field offsets inside an object are 8-byte aligned at most (`long`, `double`), whatever the
/// object alignment.
fn align8(bytes: u64) -> u64 {
    align_to(bytes, 8)
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
    /// Shallow size of a `java.lang.Class` instance, where a mirror's static fields start.
    mirror_size: u64,
}

/// Superclass chains longer than this are cut (real hierarchies are a few dozen deep); it bounds
/// the layout work on hostile dumps with long chains.
const MAX_CHAIN: usize = 1024;

/// An instance field HotSpot adds to a JDK class (`javaClasses.hpp`): the VM lays it out with
/// the declared fields, but the dump, which lists declared fields only, does not show it.
#[derive(Debug, Clone, Copy)]
enum Injected {
    /// `intptr_t`: a VM pointer (8 bytes on a 64-bit VM).
    Pointer,
    Value(BasicType),
}

/// JDK 17's injected fields, by class (subclasses inherit them). Checked against the JVM's own
/// class histogram by `crates/leaksift/tests/hprof_oracle.rs`.
const INJECTED_FIELDS: &[(&str, &[Injected])] = {
    use BasicType::{Boolean, Int, Long, Object, Short};
    use Injected::{Pointer, Value};
    &[
        (
            "java.lang.Class",
            &[
                Pointer,       // klass
                Pointer,       // array_klass
                Value(Int),    // oop_size
                Value(Int),    // static_oop_field_count
                Value(Object), // protection_domain
                Value(Object), // signers
                Value(Object), // source_file
            ],
        ),
        ("java.lang.ClassLoader", &[Pointer]), // loader_data
        ("java.lang.Module", &[Pointer]),      // module_entry
        ("java.lang.invoke.MemberName", &[Pointer]), // vmindex
        (
            "java.lang.invoke.ResolvedMethodName",
            &[Value(Object), Pointer],
        ), // vmholder, vmtarget
        (
            "java.lang.invoke.MethodHandleNatives$CallSiteContext",
            &[Pointer, Value(Long)], // vmdependencies, last_cleanup
        ),
        ("java.lang.StackFrameInfo", &[Value(Short)]), // version
        ("java.lang.InternalError", &[Value(Boolean)]), // during_unsafe_access
    ]
};

/// JDK classes with `@Contended` fields (honoured for the boot loader's classes): HotSpot puts
/// `ContendedPaddingWidth` (128) bytes before the contended group and as many after it, and
/// lays the fields of subclasses out after that padding instead of in the class's gaps.
/// `java.lang.Thread`'s thread-local random fields are the one group every dump has.
const CONTENDED_CLASSES: &[&str] = &["java.lang.Thread"];
const CONTENDED_PADDING: u64 = 2 * 128;

/// Bytes of the fields HotSpot injects into `class_name`.
fn injected_bytes(class_name: &str, rule: &SizeRule) -> u64 {
    INJECTED_FIELDS
        .iter()
        .find(|(name, _)| *name == class_name)
        .map_or(0, |(_, fields)| {
            fields
                .iter()
                .map(|field| match field {
                    Injected::Pointer => rule.pointer(),
                    Injected::Value(ty) => rule.value_size(*ty),
                })
                .sum()
        })
}

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
                    .map(|raw| java_class_name(&mutf8::decode(raw)))
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
            // Bytes of the classes below the highest contended class of the chain.
            let mut below_contended = None;
            let mut current = Some(index);
            let mut steps = 0;
            while let Some(at) = current {
                steps += 1;
                if steps > MAX_CHAIN.min(dumps.len()) {
                    break;
                }
                let class = &dumps[at];
                let class_name = names[at].as_str();
                if CONTENDED_CLASSES.contains(&class_name) {
                    below_contended = Some(vm_bytes);
                }
                vm_bytes += injected_bytes(class_name, rule);
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
            // The contended group's first field is a `long`, 8-byte aligned after the padding
            // whatever the object alignment; the whole instance is then aligned as any object.
            let instance_size = match below_contended {
                None => rule.align(rule.header + vm_bytes),
                Some(below) => {
                    rule.align(align8(rule.header + vm_bytes - below) + CONTENDED_PADDING + below)
                }
            };
            layouts.push((ref_fields, field_bytes, instance_size));
        }
        let defs: Vec<ClassDef> = dumps
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
        let mirror_size = defs
            .iter()
            .find(|def| def.name == "java.lang.Class")
            .map_or(rule.header, |def| def.instance_size);
        Ok(ClassTable {
            defs,
            by_id,
            mirror_size,
        })
    }

    /// Shallow size of a class object (HotSpot's mirror): a `java.lang.Class` instance with the
    /// class's static fields after it. HotSpot appends statics without filling gaps: references
    /// first, then the primitives by decreasing size, each aligned to its size (so only the first
    /// primitive can leave a gap). The dump adds pseudo statics (`<resolved_references>`,
    /// `<init_lock>`) that are not in the mirror.
    pub fn class_object_size(
        &self,
        dump: &ClassDump,
        rule: &SizeRule,
        strings: &FxHashMap<Id, &[u8]>,
    ) -> u64 {
        let mut end = self.mirror_size;
        let mut widest_primitive = 0;
        let mut primitives = 0u64;
        for field in &dump.statics {
            if strings
                .get(&field.name)
                .is_some_and(|s| s.starts_with(b"<"))
            {
                continue;
            }
            let size = rule.value_size(field.ty);
            if field.ty == BasicType::Object {
                end = end.saturating_add(size);
            } else {
                widest_primitive = widest_primitive.max(size);
                primitives = primitives.saturating_add(size);
            }
        }
        if widest_primitive > 0 {
            end = end.next_multiple_of(widest_primitive);
        }
        rule.align(end.saturating_add(primitives))
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

    /// Whether `def` is the class `ancestor` (a Java name) or extends it.
    pub fn extends(&self, def: &ClassDef, ancestor: &str) -> bool {
        let mut current = Some(def);
        for _ in 0..MAX_CHAIN.min(self.defs.len()) {
            match current {
                Some(def) if def.name == ancestor => return true,
                Some(def) => {
                    current = self
                        .index_of(def.dump.super_id)
                        .map(|i| &self.defs[i as usize]);
                }
                None => return false,
            }
        }
        false
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
        let none = LayoutVotes::default();
        let small = SizeRule::guess(IdSize::Eight, Some((0xf000_0000, 0xffff_0000)), &none);
        assert!(small.compressed_oops);
        assert_eq!(small.array(BasicType::Byte, 100), 120);
        assert_eq!(small.array(BasicType::Object, 3), 32);
        let big = SizeRule::guess(
            IdSize::Eight,
            Some((0x7f00_0000_0000, 0x7f10_0000_0000)),
            &none,
        );
        assert!(!big.compressed_oops);
        assert_eq!(big.array(BasicType::Object, 3), 40);
        let vm32 = SizeRule::guess(IdSize::Four, Some((0x1000, 0x2000)), &none);
        assert_eq!(vm32.array(BasicType::Int, 1), 16);
    }

    /// Arrays laid out back to back tell the layout whatever the address span says.
    #[test]
    fn adjacent_arrays_vote_for_their_layout() {
        // -XX:-UseCompressedClassPointers -XX:-UseCompressedOops at low addresses: an
        // Object[3] is 24 + 3 × 8 = 48 bytes, an int[1] 24 + 4 → 32.
        let mut votes = LayoutVotes::default();
        let mut at = 0x1000;
        for _ in 0..3 {
            votes.array(at, BasicType::Object, 3);
            at += 48;
            votes.array(at, BasicType::Int, 1);
            at += 32;
        }
        votes.object(at);
        let rule = SizeRule::guess(IdSize::Eight, Some((0x1000, at)), &votes);
        assert_eq!(
            (rule.header, rule.array_header, rule.reference),
            (16, 24, 8)
        );
        assert!(!rule.compressed_oops);
        // Primitive arrays alone cannot tell the reference size: the address span decides.
        let mut votes = LayoutVotes::default();
        votes.array(0x1000, BasicType::Byte, 8);
        votes.object(0x1000 + 24);
        let rule = SizeRule::guess(IdSize::Eight, Some((0x1000, 0x2000)), &votes);
        assert_eq!(
            (rule.header, rule.array_header, rule.reference),
            (12, 16, 4)
        );
        let far = Some((0x7f00_0000_0000, 0x7f10_0000_0000));
        let rule = SizeRule::guess(IdSize::Eight, far, &votes);
        assert_eq!(
            (rule.header, rule.array_header, rule.reference),
            (12, 16, 8)
        );
        assert_eq!(rule.alignment, 8);
    }

    /// The votes of a heap's arrays, back to back in address order, each taking
    /// `size(element, length)` bytes, with an instance after them.
    fn votes(arrays: &[(BasicType, u64)], size: impl Fn(BasicType, u64) -> u64) -> LayoutVotes {
        let mut votes = LayoutVotes::default();
        let mut at = 0x8_0000_0000;
        for &(element, length) in arrays {
            votes.array(at, element, length);
            at += size(element, length);
        }
        votes.object(at);
        votes
    }

    /// The rule the arrays vote for, on a heap of 1 GiB.
    fn voted(arrays: &[(BasicType, u64)], size: impl Fn(BasicType, u64) -> u64) -> SizeRule {
        let span = Some((0x8_0000_0000, 0x8_4000_0000));
        SizeRule::guess(IdSize::Eight, span, &votes(arrays, size))
    }

    /// Arrays of every type and of lengths 0-20.
    fn arrays() -> Vec<(BasicType, u64)> {
        use BasicType::*;
        let types = [Boolean, Char, Float, Double, Byte, Short, Int, Long, Object];
        (0..=20)
            .flat_map(|length| types.map(|ty| (ty, length)))
            .collect()
    }

    /// Under `-XX:ObjectAlignmentInBytes=16` every gap is a multiple of 16: the 16-byte
    /// candidate matches them all, the 8-byte one only some, so 16 wins, and every size follows.
    #[test]
    fn adjacent_arrays_vote_for_their_alignment() {
        let arrays = arrays();
        // Compressed class pointers and oops, 16-byte alignment: an int[3] is 16 + 12 → 32
        // bytes (28 → 32 at 8 too), a byte[1] 16 + 1 → 32 (24 at 8), an Object[0] 16.
        let rule = voted(&arrays, |ty, length| {
            let element = if ty == BasicType::Object {
                4
            } else {
                ty.dump_size(IdSize::Eight)
            };
            (16 + length * element as u64).next_multiple_of(16)
        });
        assert_eq!(
            (
                rule.header,
                rule.array_header,
                rule.reference,
                rule.alignment
            ),
            (12, 16, 4, 16)
        );
        assert_eq!(rule.array(BasicType::Byte, 1), 32);
        assert_eq!(rule.array(BasicType::Int, 3), 32);
        assert_eq!(rule.array(BasicType::Object, 0), 16);
        assert_eq!(rule.align(24), 32);
        // No compressed class pointers, 8-byte references, 32-byte alignment.
        let rule = voted(&arrays, |ty, length| {
            let element = if ty == BasicType::Object {
                8
            } else {
                ty.dump_size(IdSize::Eight)
            };
            (24 + length * element as u64).next_multiple_of(32)
        });
        assert_eq!(
            (
                rule.header,
                rule.array_header,
                rule.reference,
                rule.alignment
            ),
            (16, 24, 8, 32)
        );
        // The default alignment: the sizes that are multiples of 16 vote for 16 as well, but
        // the others only for 8.
        let rule = voted(&arrays, |ty, length| {
            let element = if ty == BasicType::Object {
                4
            } else {
                ty.dump_size(IdSize::Eight)
            };
            (16 + length * element as u64).next_multiple_of(8)
        });
        assert_eq!(
            (
                rule.header,
                rule.array_header,
                rule.reference,
                rule.alignment
            ),
            (12, 16, 4, 8)
        );
        // Only sizes that are multiples of 32 (a byte[16] is 32 bytes under every alignment):
        // a tie, which the smallest alignment wins.
        let rule = voted(&[(BasicType::Byte, 16); 4], |_, _| 32);
        assert_eq!(rule.alignment, 8);
    }

    /// With 16-byte alignment compressed oops reach 64 GiB: when the votes cannot tell the
    /// reference size (primitive arrays only), objects 40 GiB apart still mean compressed oops.
    #[test]
    fn compressed_oops_reach_further_at_larger_alignments() {
        // A byte[1] and a byte[9]: 32 bytes each at 16 (and 32), 24 and 32 at 8.
        let span = Some((0x8_0000_0000, 0x8_0000_0000 + (40 << 30)));
        let bytes = [(BasicType::Byte, 1), (BasicType::Byte, 9)];
        let rule = SizeRule::guess(IdSize::Eight, span, &votes(&bytes, |_, _| 32));
        assert_eq!(
            (rule.array_header, rule.reference, rule.alignment),
            (16, 4, 16)
        );
        let at_8 = votes(&bytes, |_, length| (16 + length).next_multiple_of(8));
        let rule = SizeRule::guess(IdSize::Eight, span, &at_8);
        assert_eq!(
            (rule.array_header, rule.reference, rule.alignment),
            (16, 8, 8)
        );
    }
}
