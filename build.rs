//! Build script: generates the Kafka protocol codec from our own message
//! definitions in `src/protocol/schema/*.kdef` (format documented in that
//! folder's README). Output: `$OUT_DIR/messages.rs`, one module per file with
//! a struct per message/struct and version-aware `decode`/`encode`, plus a
//! table of every request's version ranges.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Range {
    lo: i16,
    hi: i16,
}

impl Range {
    const ALL: Range = Range { lo: 0, hi: i16::MAX };
    const NONE: Range = Range { lo: 1, hi: 0 };

    fn parse(s: &str) -> Result<Range, String> {
        let s = s.strip_prefix('v').unwrap_or(s);
        if s == "none" {
            return Ok(Range::NONE);
        }
        if let Some(lo) = s.strip_suffix('+') {
            let lo = lo.parse().map_err(|_| format!("bad version range '{s}'"))?;
            return Ok(Range { lo, hi: i16::MAX });
        }
        if let Some((a, b)) = s.split_once('-') {
            let lo = a.parse().map_err(|_| format!("bad version range '{s}'"))?;
            let hi = b.parse().map_err(|_| format!("bad version range '{s}'"))?;
            return Ok(Range { lo, hi });
        }
        let v = s.parse().map_err(|_| format!("bad version range '{s}'"))?;
        Ok(Range { lo: v, hi: v })
    }

    fn is_empty(&self) -> bool {
        self.lo > self.hi
    }

    fn intersect(&self, o: &Range) -> Range {
        Range { lo: self.lo.max(o.lo), hi: self.hi.min(o.hi) }
    }

    fn contains_range(&self, o: &Range) -> bool {
        o.is_empty() || (self.lo <= o.lo && o.hi <= self.hi)
    }

    /// A Rust boolean expression testing `version` against this range,
    /// simplified against the range the code runs under (`within`).
    fn test(&self, within: &Range) -> String {
        if self.is_empty() || self.intersect(within).is_empty() {
            return "false".into();
        }
        if self.contains_range(within) {
            return "true".into();
        }
        let mut parts = Vec::new();
        if self.lo > within.lo {
            parts.push(format!("version >= {}", self.lo));
        }
        if self.hi < within.hi {
            parts.push(format!("version <= {}", self.hi));
        }
        parts.join(" && ")
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Prim {
    I8,
    I16,
    I32,
    I64,
    U16,
    U32,
    F64,
    Bool,
    Uuid,
    String,
    Bytes,
    Records,
}

impl Prim {
    fn parse(s: &str) -> Option<Prim> {
        Some(match s {
            "i8" => Prim::I8,
            "i16" => Prim::I16,
            "i32" => Prim::I32,
            "i64" => Prim::I64,
            "u16" => Prim::U16,
            "u32" => Prim::U32,
            "f64" => Prim::F64,
            "bool" => Prim::Bool,
            "uuid" => Prim::Uuid,
            "string" => Prim::String,
            "bytes" => Prim::Bytes,
            "records" => Prim::Records,
            _ => return None,
        })
    }

    fn rust(&self) -> &'static str {
        match self {
            Prim::I8 => "i8",
            Prim::I16 => "i16",
            Prim::I32 => "i32",
            Prim::I64 => "i64",
            Prim::U16 => "u16",
            Prim::U32 => "u32",
            Prim::F64 => "f64",
            Prim::Bool => "bool",
            Prim::Uuid => "Uuid",
            Prim::String => "String",
            Prim::Bytes | Prim::Records => "Bytes",
        }
    }

    fn nullable_kind(&self) -> bool {
        matches!(self, Prim::String | Prim::Bytes | Prim::Records)
    }
}

#[derive(Clone, Debug)]
enum Ty {
    Prim(Prim),
    Array(Box<Ty>),
    Struct(String),
}

#[derive(Clone, Debug)]
struct Field {
    name: String,
    ty: Ty,
    versions: Range,
    nullable: Range,
    tag: Option<u32>,
    default: Option<String>,
}

impl Field {
    fn ever_nullable(&self) -> bool {
        !self.nullable.intersect(&self.versions).is_empty()
    }
}

struct Message {
    module: String,
    name: String,
    kind: String,
    api_key: i16,
    versions: Range,
    flexible: Range,
    fields: Vec<Field>,
    structs: BTreeMap<String, Vec<Field>>,
}

struct Line {
    no: usize,
    indent: usize,
    text: String,
}

fn parse_field(line: &Line) -> Result<(Field, Option<String>), String> {
    let mut parts = line.text.split_whitespace();
    let name = parts.next().ok_or("missing field name")?.to_string();
    let ty_s = parts.next().ok_or(format!("field '{name}' has no type"))?;
    let (ty, struct_name) = if let Some(inner) = ty_s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        match Prim::parse(inner) {
            Some(p) => (Ty::Array(Box::new(Ty::Prim(p))), None),
            None => (Ty::Array(Box::new(Ty::Struct(inner.to_string()))), Some(inner.to_string())),
        }
    } else {
        match Prim::parse(ty_s) {
            Some(p) => (Ty::Prim(p), None),
            None => (Ty::Struct(ty_s.to_string()), Some(ty_s.to_string())),
        }
    };
    if let Some(s) = &struct_name {
        if !s.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
            return Err(format!("unknown type '{ty_s}'"));
        }
    }
    let mut f = Field { name, ty, versions: Range::ALL, nullable: Range::NONE, tag: None, default: None };
    for attr in parts {
        if let Some(v) = attr.strip_prefix("nullable=") {
            f.nullable = Range::parse(v)?;
        } else if attr == "nullable" {
            f.nullable = Range::ALL;
        } else if let Some(v) = attr.strip_prefix("tag=") {
            f.tag = Some(v.parse().map_err(|_| format!("bad tag '{v}'"))?);
        } else if let Some(v) = attr.strip_prefix("default=") {
            f.default = Some(v.to_string());
        } else if let Some(v) = attr.strip_prefix('v') {
            f.versions = Range::parse(v)?;
        } else {
            return Err(format!("unknown attribute '{attr}'"));
        }
    }
    if f.ever_nullable() {
        let ok = match &f.ty {
            Ty::Prim(p) => p.nullable_kind(),
            _ => true,
        };
        if !ok {
            return Err(format!("field '{}' of this type cannot be nullable", f.name));
        }
    }
    Ok((f, struct_name))
}

/// Parses the fields at `indent` starting at `*i`, recursing into children.
fn parse_fields(
    lines: &[Line],
    i: &mut usize,
    indent: usize,
    structs: &mut BTreeMap<String, Vec<Field>>,
) -> Result<Vec<Field>, String> {
    let mut out = Vec::new();
    while *i < lines.len() && lines[*i].indent >= indent {
        let line = &lines[*i];
        if line.indent > indent {
            return Err(format!("line {}: unexpected indentation", line.no));
        }
        if line.text.starts_with("struct ") {
            break;
        }
        let (field, struct_name) = parse_field(line).map_err(|e| format!("line {}: {e}", line.no))?;
        *i += 1;
        if *i < lines.len() && lines[*i].indent > indent {
            let Some(sname) = struct_name.clone() else {
                return Err(format!("line {}: only struct fields may have children", lines[*i].no));
            };
            let children = parse_fields(lines, i, indent + 1, structs)?;
            if structs.insert(sname.clone(), children).is_some() {
                return Err(format!("struct '{sname}' defined twice"));
            }
        }
        if out.iter().any(|f: &Field| f.name == field.name) {
            return Err(format!("line {}: duplicate field '{}'", line.no, field.name));
        }
        out.push(field);
    }
    Ok(out)
}

fn parse_file(module: &str, text: &str) -> Result<Message, String> {
    let mut lines = Vec::new();
    for (no, raw) in text.lines().enumerate() {
        let content = raw.split('#').next().unwrap_or("").trim_end();
        if content.trim().is_empty() {
            continue;
        }
        let spaces = content.len() - content.trim_start().len();
        if spaces % 2 != 0 || content.contains('\t') {
            return Err(format!("line {}: indentation must be a multiple of 2 spaces", no + 1));
        }
        lines.push(Line { no: no + 1, indent: spaces / 2, text: content.trim().to_string() });
    }
    let head = lines.first().ok_or("empty file")?;
    let words: Vec<&str> = head.text.split_whitespace().collect();
    if words.len() < 3 || words[0] != "message" {
        return Err("first line must be 'message <Name> <kind> key=.. versions=.. flexible=..'".into());
    }
    let mut msg = Message {
        module: module.to_string(),
        name: words[1].to_string(),
        kind: words[2].to_string(),
        api_key: -1,
        versions: Range::ALL,
        flexible: Range::NONE,
        fields: Vec::new(),
        structs: BTreeMap::new(),
    };
    if !["request", "response", "data"].contains(&msg.kind.as_str()) {
        return Err(format!("unknown message kind '{}'", msg.kind));
    }
    for w in &words[3..] {
        if let Some(v) = w.strip_prefix("key=") {
            msg.api_key = v.parse().map_err(|_| format!("bad key '{v}'"))?;
        } else if let Some(v) = w.strip_prefix("versions=") {
            msg.versions = Range::parse(v)?;
        } else if let Some(v) = w.strip_prefix("flexible=") {
            msg.flexible = Range::parse(v)?;
        } else {
            return Err(format!("unknown message attribute '{w}'"));
        }
    }
    let mut i = 1;
    let mut structs = BTreeMap::new();
    msg.fields = parse_fields(&lines, &mut i, 0, &mut structs)?;
    while i < lines.len() {
        let line = &lines[i];
        let Some(name) = line.text.strip_prefix("struct ") else {
            return Err(format!("line {}: expected 'struct <Name>'", line.no));
        };
        let name = name.trim().to_string();
        i += 1;
        let fields = parse_fields(&lines, &mut i, 1, &mut structs)?;
        if structs.insert(name.clone(), fields).is_some() {
            return Err(format!("struct '{name}' defined twice"));
        }
    }
    msg.structs = structs;
    check_types(&msg)?;
    Ok(msg)
}

fn check_types(msg: &Message) -> Result<(), String> {
    let mut all: Vec<&Field> = msg.fields.iter().collect();
    for fs in msg.structs.values() {
        all.extend(fs.iter());
    }
    for f in all {
        let mut t = &f.ty;
        if let Ty::Array(inner) = t {
            t = inner;
        }
        if let Ty::Struct(s) = t {
            if !msg.structs.contains_key(s) {
                return Err(format!("field '{}' uses undefined struct '{s}'", f.name));
            }
        }
        if f.tag.is_some() && !msg.flexible.contains_range(&f.versions.intersect(&msg.versions)) {
            return Err(format!("tagged field '{}' is present in non-flexible versions", f.name));
        }
    }
    if msg.structs.contains_key(&msg.name) {
        return Err(format!("struct name '{}' clashes with the message name", msg.name));
    }
    Ok(())
}

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if",
    "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self",
    "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "async",
    "await", "dyn", "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof",
    "unsized", "virtual", "yield", "try",
];

fn ident(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
}

fn rust_type(f: &Field) -> String {
    let base = match &f.ty {
        Ty::Prim(p) => p.rust().to_string(),
        Ty::Array(inner) => match inner.as_ref() {
            Ty::Prim(p) => format!("Vec<{}>", p.rust()),
            Ty::Struct(s) => format!("Vec<{s}>"),
            Ty::Array(_) => unreachable!("nested arrays are not part of the protocol"),
        },
        Ty::Struct(s) => s.clone(),
    };
    if f.ever_nullable() {
        format!("Option<{base}>")
    } else {
        base
    }
}

fn default_expr(f: &Field) -> String {
    let nullable = f.ever_nullable();
    if let Some(d) = &f.default {
        if d == "null" {
            return "None".into();
        }
        let inner = match &f.ty {
            Ty::Prim(Prim::String) => format!("String::from({d:?})"),
            Ty::Prim(Prim::Bool) => d.clone(),
            Ty::Prim(Prim::F64) => format!("{d}_f64"),
            Ty::Prim(p) => format!("{d}_{}", p.rust()),
            _ => "Default::default()".into(),
        };
        return if nullable { format!("Some({inner})") } else { inner };
    }
    if nullable {
        "Some(Default::default())".into()
    } else {
        "Default::default()".into()
    }
}

/// Expression reading one value of primitive `p` (non-null form when `nullable` is false).
fn read_prim(p: &Prim, nullable: bool, r: &str) -> String {
    match (p, nullable) {
        (Prim::String, false) => format!("{r}.string(flexible)?"),
        (Prim::String, true) => format!("{r}.nullable_string(flexible)?"),
        (Prim::Bytes | Prim::Records, false) => format!("{r}.bytes(flexible)?"),
        (Prim::Bytes | Prim::Records, true) => format!("{r}.nullable_bytes(flexible)?"),
        (p, _) => format!("{r}.{}()?", p.rust().to_lowercase()),
    }
}

/// Statement writing the value at place expression `v` (not a reference).
fn write_prim(p: &Prim, nullable: bool, v: &str, w: &str) -> String {
    match (p, nullable) {
        (Prim::String, false) => format!("{w}.string(&{v}, flexible);"),
        (Prim::String, true) => format!("{w}.nullable_string({v}.as_deref(), flexible);"),
        (Prim::Bytes | Prim::Records, false) => format!("{w}.bytes(&{v}, flexible);"),
        (Prim::Bytes | Prim::Records, true) => format!("{w}.nullable_bytes({v}.as_ref(), flexible);"),
        (Prim::Uuid, _) => format!("{w}.uuid(&{v});"),
        (p, _) => format!("{w}.{}({v});", p.rust().to_lowercase()),
    }
}

/// Statements decoding field `f` into `this.<name>` given the reader `r`.
/// `nullable_now` tells whether this code path is for a nullable version.
fn gen_read(f: &Field, nullable_now: bool, r: &str) -> String {
    let name = ident(&f.name);
    let ever = f.ever_nullable();
    let wrap = |e: String| if ever && !nullable_now { format!("Some({e})") } else { e };
    match &f.ty {
        Ty::Prim(p) => format!("this.{name} = {};", wrap(read_prim(p, nullable_now, r))),
        Ty::Struct(s) => {
            if nullable_now {
                format!(
                    "this.{name} = if {r}.i8()? < 0 {{ None }} else {{ Some({s}::decode_inner({r}, version)?) }};"
                )
            } else {
                format!("this.{name} = {};", wrap(format!("{s}::decode_inner({r}, version)?")))
            }
        }
        Ty::Array(inner) => {
            let elem = match inner.as_ref() {
                Ty::Prim(p) => read_prim(p, false, r),
                Ty::Struct(s) => format!("{s}::decode_inner({r}, version)?"),
                Ty::Array(_) => unreachable!(),
            };
            let build = format!(
                "{{ let mut v = Vec::with_capacity(n.min(1000)); {r}.charge(n.saturating_mul(crate::protocol::codec::elem_size(&v)))?; for _ in 0..n {{ v.push({elem}); }} v }}"
            );
            if nullable_now {
                format!("this.{name} = match {r}.array_len(flexible)? {{ None => None, Some(n) => Some({build}) }};")
            } else {
                format!(
                    "this.{name} = {{ let n = {r}.array_len(flexible)?.ok_or(DecodeError::UnexpectedNull)?; {} }};",
                    wrap(build)
                )
            }
        }
    }
}

fn gen_write(f: &Field, nullable_now: bool, w: &str) -> String {
    let name = ident(&f.name);
    let ever = f.ever_nullable();
    let v = format!("self.{name}");
    match &f.ty {
        Ty::Prim(p) => {
            if ever && !nullable_now {
                // A nullable-in-other-versions field written where null is not allowed.
                match p {
                    Prim::String => format!("{w}.string({v}.as_deref().unwrap_or(\"\"), flexible);"),
                    _ => format!("{w}.bytes({v}.as_ref().unwrap_or(&Bytes::new()), flexible);"),
                }
            } else {
                write_prim(p, nullable_now, &v, w)
            }
        }
        Ty::Struct(s) => {
            if nullable_now {
                format!("match &{v} {{ None => {w}.i8(-1), Some(x) => {{ {w}.i8(1); x.encode_inner({w}, version); }} }}")
            } else if ever {
                format!("match &{v} {{ Some(x) => x.encode_inner({w}, version), None => {s}::default().encode_inner({w}, version) }}")
            } else {
                format!("{v}.encode_inner({w}, version);")
            }
        }
        Ty::Array(inner) => {
            let elem = match inner.as_ref() {
                Ty::Prim(p) => write_prim(p, false, "(*x)", w),
                Ty::Struct(_) => format!("x.encode_inner({w}, version);"),
                Ty::Array(_) => unreachable!(),
            };
            if nullable_now {
                format!(
                    "match &{v} {{ None => {w}.array_len(None, flexible), Some(a) => {{ {w}.array_len(Some(a.len()), flexible); for x in a {{ {elem} }} }} }}"
                )
            } else if ever {
                format!(
                    "{{ let empty = Vec::new(); let a = {v}.as_ref().unwrap_or(&empty); {w}.array_len(Some(a.len()), flexible); for x in a {{ {elem} }} }}"
                )
            } else {
                format!("{w}.array_len(Some({v}.len()), flexible); for x in &{v} {{ {elem} }}")
            }
        }
    }
}

/// The code `gen` produces for field `f`, split by a version test where
/// the field is nullable in some of the versions it is present in.
fn by_nullability(f: &Field, within: &Range, gen: impl Fn(bool) -> String) -> String {
    let nullable_range = f.nullable.intersect(&f.versions);
    if nullable_range.is_empty() {
        gen(false)
    } else if nullable_range.contains_range(&f.versions.intersect(within)) {
        gen(true)
    } else {
        format!("if {} {{ {} }} else {{ {} }}", nullable_range.test(within), gen(true), gen(false))
    }
}

fn gen_struct(out: &mut String, msg: &Message, name: &str, fields: &[Field], top: bool) {
    let within = msg.versions;
    let flex_test = msg.flexible.test(&within);
    writeln!(out, "    #[derive(Debug, Clone, PartialEq)]").unwrap();
    writeln!(out, "    pub struct {name} {{").unwrap();
    for f in fields {
        writeln!(out, "        pub {}: {},", ident(&f.name), rust_type(f)).unwrap();
    }
    writeln!(out, "    }}\n").unwrap();
    writeln!(out, "    impl Default for {name} {{").unwrap();
    writeln!(out, "        fn default() -> Self {{").unwrap();
    writeln!(out, "            {name} {{").unwrap();
    for f in fields {
        writeln!(out, "                {}: {},", ident(&f.name), default_expr(f)).unwrap();
    }
    writeln!(out, "            }}\n        }}\n    }}\n").unwrap();

    writeln!(out, "    impl {name} {{").unwrap();
    if top {
        writeln!(
            out,
            "        /// Decodes the body of version `version`; the caller checks the version is valid.\n        pub fn decode(r: &mut Reader, version: i16) -> Result<Self, DecodeError> {{ Self::decode_inner(r, version) }}\n"
        )
        .unwrap();
        writeln!(
            out,
            "        /// Encodes the body for version `version`; fields absent in that version are skipped.\n        pub fn encode(&self, w: &mut Writer, version: i16) {{ self.encode_inner(w, version) }}\n"
        )
        .unwrap();
    }
    // decode
    writeln!(out, "        #[allow(unused_variables, unused_mut, clippy::all)]").unwrap();
    writeln!(out, "        pub(crate) fn decode_inner(r: &mut Reader, version: i16) -> Result<Self, DecodeError> {{").unwrap();
    writeln!(out, "            let flexible = {flex_test};").unwrap();
    writeln!(out, "            let mut this = Self::default();").unwrap();
    for f in fields.iter().filter(|f| f.tag.is_none()) {
        let present = f.versions.test(&within);
        if present == "false" {
            continue;
        }
        let body = by_nullability(f, &within, |nullable| gen_read(f, nullable, "r"));
        writeln!(out, "            if {present} {{ {body} }}").unwrap();
    }
    writeln!(out, "            if flexible {{").unwrap();
    writeln!(out, "                let n = r.tagged_count()?;").unwrap();
    writeln!(out, "                for _ in 0..n {{").unwrap();
    writeln!(out, "                    let (tag, mut sub) = r.tagged_field()?;").unwrap();
    writeln!(out, "                    let sub = &mut sub;").unwrap();
    writeln!(out, "                    match tag {{").unwrap();
    for f in fields.iter().filter(|f| f.tag.is_some()) {
        let present = f.versions.test(&within);
        let nullable_now = !f.nullable.intersect(&f.versions).is_empty();
        writeln!(
            out,
            "                        {} if {present} => {{ {} }}",
            f.tag.unwrap(),
            gen_read(f, nullable_now, "sub")
        )
        .unwrap();
    }
    writeln!(out, "                        _ => {{}}").unwrap();
    writeln!(out, "                    }}\n                }}\n            }}").unwrap();
    writeln!(out, "            Ok(this)\n        }}\n").unwrap();

    // encode
    writeln!(out, "        #[allow(unused_variables, unused_mut, clippy::all)]").unwrap();
    writeln!(out, "        pub(crate) fn encode_inner(&self, w: &mut Writer, version: i16) {{").unwrap();
    writeln!(out, "            let flexible = {flex_test};").unwrap();
    for f in fields.iter().filter(|f| f.tag.is_none()) {
        let present = f.versions.test(&within);
        if present == "false" {
            continue;
        }
        let body = by_nullability(f, &within, |nullable| gen_write(f, nullable, "w"));
        writeln!(out, "            if {present} {{ {body} }}").unwrap();
    }
    let mut tagged: Vec<&Field> = fields.iter().filter(|f| f.tag.is_some()).collect();
    tagged.sort_by_key(|f| f.tag);
    writeln!(out, "            if flexible {{").unwrap();
    writeln!(out, "                let mut count = 0u32;").unwrap();
    for f in &tagged {
        let present = f.versions.test(&within);
        writeln!(
            out,
            "                let has_{} = ({present}) && {{ let d: {} = {}; self.{} != d }};",
            f.name,
            rust_type(f),
            default_expr(f),
            ident(&f.name)
        )
        .unwrap();
        writeln!(out, "                if has_{} {{ count += 1; }}", f.name).unwrap();
    }
    writeln!(out, "                w.uvarint(count);").unwrap();
    for f in &tagged {
        let nullable_now = !f.nullable.intersect(&f.versions).is_empty();
        writeln!(
            out,
            "                if has_{} {{ let mut sub = Writer::new(); {{ let w = &mut sub; {} }} w.tagged_field({}, sub); }}",
            f.name,
            gen_write(f, nullable_now, "w"),
            f.tag.unwrap()
        )
        .unwrap();
    }
    writeln!(out, "            }}\n        }}\n").unwrap();
    gen_sample(out, msg, fields);
    writeln!(out, "    }}\n").unwrap();
}

/// Expression producing a pseudo-random value of primitive `p` from `rng`.
fn sample_prim(p: &Prim) -> String {
    match p {
        Prim::I8 => "crate::protocol::sample::next(rng) as i8".into(),
        Prim::I16 => "crate::protocol::sample::next(rng) as i16".into(),
        Prim::I32 => "crate::protocol::sample::next(rng) as i32".into(),
        Prim::I64 => "crate::protocol::sample::next(rng) as i64".into(),
        Prim::U16 => "crate::protocol::sample::next(rng) as u16".into(),
        Prim::U32 => "crate::protocol::sample::next(rng) as u32".into(),
        Prim::F64 => "(crate::protocol::sample::next(rng) % 1000) as f64 / 8.0".into(),
        Prim::Bool => "crate::protocol::sample::next(rng) % 2 == 0".into(),
        Prim::Uuid => "crate::protocol::sample::uuid(rng)".into(),
        Prim::String => "crate::protocol::sample::string(rng)".into(),
        Prim::Bytes | Prim::Records => "crate::protocol::sample::bytes(rng)".into(),
    }
}

/// `sample(rng, version)`: a message with pseudo-random values in every
/// field present in `version` (test-only; used by the differential tests).
fn gen_sample(out: &mut String, msg: &Message, fields: &[Field]) {
    let within = msg.versions;
    writeln!(out, "        #[cfg(test)]").unwrap();
    writeln!(out, "        #[allow(unused_variables, unused_mut, clippy::all)]").unwrap();
    writeln!(out, "        pub(crate) fn sample(rng: &mut u64, version: i16, depth: u32) -> Self {{").unwrap();
    writeln!(out, "            let mut this = Self::default();").unwrap();
    for f in fields {
        let present = f.versions.test(&within);
        if present == "false" {
            continue;
        }
        let name = ident(&f.name);
        let ever = f.ever_nullable();
        let nullable_range = f.nullable.intersect(&f.versions);
        let value = match &f.ty {
            Ty::Prim(p) => sample_prim(p),
            Ty::Struct(s) => format!("{s}::sample(rng, version, depth + 1)"),
            Ty::Array(inner) => {
                let elem = match inner.as_ref() {
                    Ty::Prim(p) => sample_prim(p),
                    Ty::Struct(s) => format!("{s}::sample(rng, version, depth + 1)"),
                    Ty::Array(_) => unreachable!(),
                };
                format!("(0..crate::protocol::sample::count(rng, depth)).map(|_| {elem}).collect::<Vec<_>>()")
            }
        };
        let value = if ever { format!("Some({value})") } else { value };
        let can_null = if nullable_range.is_empty() { "false".to_string() } else { nullable_range.test(&within) };
        writeln!(
            out,
            "            if {present} {{ this.{name} = if ({can_null}) && crate::protocol::sample::next(rng) % 4 == 0 {{ Default::default() }} else {{ {value} }}; }}"
        )
        .unwrap();
    }
    writeln!(out, "            this\n        }}").unwrap();
}

fn camel_to_module(s: &str) -> String {
    s.to_string()
}

/// Generates `decode_encode`: decode any message body by kind, api key and
/// version, then encode it again. Fuzz targets and tests use it to run every
/// generated decoder and to check that what decodes also round-trips.
fn gen_decode_encode(out: &mut String, messages: &[Message]) {
    writeln!(out, "/// Decodes a `kind` (\"request\" or \"response\") body of `api_key` at `version`").unwrap();
    writeln!(out, "/// (checked against the definition's range) and encodes it again.").unwrap();
    writeln!(out, "pub fn decode_encode(kind: &str, api_key: i16, version: i16, r: &mut crate::protocol::Reader) -> Result<crate::protocol::Writer, crate::protocol::DecodeError> {{").unwrap();
    writeln!(out, "    let mut w = crate::protocol::Writer::new();").unwrap();
    writeln!(out, "    match (kind, api_key) {{").unwrap();
    for m in messages {
        writeln!(
            out,
            "        ({:?}, {}) if ({}..={}).contains(&version) => {}::{}::decode(r, version)?.encode(&mut w, version),",
            m.kind, m.api_key, m.versions.lo, m.versions.hi, m.module, m.name
        )
        .unwrap();
    }
    writeln!(out, "        (\"request\" | \"response\", _) if {:?}.contains(&api_key) => return Err(crate::protocol::DecodeError::UnsupportedVersion {{ api_key, version }}),", messages.iter().map(|m| m.api_key).collect::<Vec<_>>()).unwrap();
    writeln!(out, "        _ => return Err(crate::protocol::DecodeError::UnknownApiKey(api_key)),").unwrap();
    writeln!(out, "    }}").unwrap();
    writeln!(out, "    Ok(w)").unwrap();
    writeln!(out, "}}\n").unwrap();
    writeln!(out, "/// The encoded body of a pseudo-random `kind` message of `api_key` at `version` (test data, fuzz seeds).").unwrap();
    writeln!(out, "#[cfg(test)]").unwrap();
    writeln!(out, "pub(crate) fn sample_encoded(kind: &str, api_key: i16, version: i16, rng: &mut u64) -> Option<bytes::Bytes> {{").unwrap();
    writeln!(out, "    let mut w = crate::protocol::Writer::new();").unwrap();
    writeln!(out, "    match (kind, api_key) {{").unwrap();
    for m in messages {
        writeln!(
            out,
            "        ({:?}, {}) if ({}..={}).contains(&version) => {}::{}::sample(rng, version, 0).encode(&mut w, version),",
            m.kind, m.api_key, m.versions.lo, m.versions.hi, m.module, m.name
        )
        .unwrap();
    }
    writeln!(out, "        _ => return None,").unwrap();
    writeln!(out, "    }}").unwrap();
    writeln!(out, "    Some(w.finish_contiguous())").unwrap();
    writeln!(out, "}}").unwrap();
}

fn main() {
    let dir = Path::new("src/protocol/schema");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/protocol/schema exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "kdef"))
        .collect();
    entries.sort();
    let mut out = String::new();
    let mut messages = Vec::new();
    let mut errors = Vec::new();
    for path in &entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let module = path.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(path).expect("readable schema file");
        match parse_file(&camel_to_module(&module), &text) {
            Ok(m) => messages.push(m),
            Err(e) => errors.push(format!("{}: {e}", path.display())),
        }
    }
    if !errors.is_empty() {
        for e in &errors {
            println!("cargo:warning={e}");
        }
        panic!("invalid message definitions:\n{}", errors.join("\n"));
    }
    for m in &messages {
        writeln!(out, "/// `{}` ({} of api key {}), versions {}-{}.", m.name, m.kind, m.api_key, m.versions.lo, m.versions.hi).unwrap();
        writeln!(out, "pub mod {} {{", m.module).unwrap();
        writeln!(out, "    #![allow(clippy::all, unused_imports, unused_parens)]").unwrap();
        writeln!(out, "    use crate::protocol::codec::{{DecodeError, Reader, Uuid, Writer}};").unwrap();
        writeln!(out, "    use bytes::Bytes;\n").unwrap();
        writeln!(out, "    pub const API_KEY: i16 = {};", m.api_key).unwrap();
        writeln!(out, "    pub const MIN_VERSION: i16 = {};", m.versions.lo).unwrap();
        writeln!(out, "    pub const MAX_VERSION: i16 = {};", m.versions.hi).unwrap();
        let flex = if m.flexible.is_empty() { "None".to_string() } else { format!("Some({})", m.flexible.lo) };
        writeln!(out, "    /// First flexible version, if any.").unwrap();
        writeln!(out, "    pub const FIRST_FLEXIBLE_VERSION: Option<i16> = {flex};\n").unwrap();
        gen_struct(&mut out, m, &m.name, &m.fields, true);
        for (name, fields) in &m.structs {
            gen_struct(&mut out, m, name, fields, false);
        }
        writeln!(out, "}}\n").unwrap();
    }
    // Table of request messages: api key, name, versions, first flexible version.
    writeln!(out, "/// Every request message we have a definition for.").unwrap();
    writeln!(out, "pub const REQUEST_SCHEMAS: &[crate::protocol::RequestSchema] = &[").unwrap();
    for m in messages.iter().filter(|m| m.kind == "request") {
        let flex = if m.flexible.is_empty() { "None".to_string() } else { format!("Some({})", m.flexible.lo) };
        writeln!(
            out,
            "    crate::protocol::RequestSchema {{ api_key: {}, name: {:?}, min_version: {}, max_version: {}, first_flexible_version: {flex} }},",
            m.api_key,
            m.name.trim_end_matches("Request"),
            m.versions.lo,
            m.versions.hi
        )
        .unwrap();
    }
    writeln!(out, "];").unwrap();
    gen_decode_encode(&mut out, &messages);
    let out_path = Path::new(&std::env::var("OUT_DIR").unwrap()).join("messages.rs");
    std::fs::write(out_path, out).expect("write generated code");
}
