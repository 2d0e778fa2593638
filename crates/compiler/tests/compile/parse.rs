//! The module parsing both test files need: types, imports and the other declarations
//! the compiler reads, and each defined function's body and validation job.

use wasmparser::{
    FuncToValidate, FunctionBody, Parser, Payload, TypeRef, ValidPayload, Validator,
    ValidatorResources, WasmFeatures,
};
use wjit_compiler::ModuleInfo;

/// A parsed module: what the compiler needs, and each defined function's body and
/// validation job.
pub struct Parsed<'a> {
    pub info: ModuleInfo,
    pub funcs: Vec<(u32, FunctionBody<'a>, FuncToValidate<ValidatorResources>)>,
}

/// Parses and validates `binary` at module level with `features` (panics on an invalid
/// module: the tests hand in their own valid ones); the function bodies are left to the
/// caller's validation jobs.
pub fn parse(binary: &[u8], features: WasmFeatures) -> Parsed<'_> {
    let mut validator = Validator::new_with_features(features);
    let mut info = ModuleInfo {
        tail_call: features.contains(WasmFeatures::TAIL_CALL),
        ..ModuleInfo::default()
    };
    let mut funcs = Vec::new();
    for payload in Parser::new(0).parse_all(binary) {
        let payload = payload.unwrap();
        let valid = validator
            .payload(&payload)
            .expect("module-level validation");
        match payload {
            Payload::TypeSection(r) => {
                for rec in r {
                    for sub in rec.unwrap().into_types() {
                        info.types.push(sub.unwrap_func().clone());
                        info.type_ids.push(info.types.len() as u32);
                    }
                }
            }
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    match imp.unwrap().ty {
                        TypeRef::Func(t) => {
                            info.functions.push(t);
                            info.num_imported_functions += 1;
                        }
                        TypeRef::Global(g) => info.globals.push(g),
                        TypeRef::Table(t) => info.tables.push(t),
                        TypeRef::Memory(m) => info.memories.push(m),
                        _ => unreachable!(),
                    }
                }
            }
            Payload::FunctionSection(r) => info.functions.extend(r.into_iter().map(|t| t.unwrap())),
            Payload::TableSection(r) => info.tables.extend(r.into_iter().map(|t| t.unwrap().ty)),
            Payload::MemorySection(r) => info.memories.extend(r.into_iter().map(|m| m.unwrap())),
            Payload::GlobalSection(r) => info.globals.extend(r.into_iter().map(|g| g.unwrap().ty)),
            Payload::CodeSectionEntry(_) => {
                let ValidPayload::Func(job, body) = valid else {
                    unreachable!()
                };
                funcs.push((job.index, body, job));
            }
            _ => {}
        }
    }
    info.compute_offsets();
    Parsed { info, funcs }
}
