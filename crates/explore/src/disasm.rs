//! Machine code to instruction text: iced-x86 (Intel syntax) for x86-64, yaxpeax-arm for
//! AArch64. Bytes that do not decode become `(bad)` / `.word` lines, never an error.

use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter, NumberBase};
use wjit::Target;
use yaxpeax_arch::{Decoder as _, U8Reader};
use yaxpeax_arm::armv8::a64::InstDecoder;

/// One decoded instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Offset from the start of the function's code.
    pub offset: usize,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Mnemonic and operands. x86-64 branch targets are function offsets; AArch64 ones are
    /// relative (`$+0x10`), as yaxpeax prints them.
    pub text: String,
}

/// Disassembles `code[range]` of a function of `target` (offsets are function offsets).
pub fn disassemble(target: Target, code: &[u8], range: std::ops::Range<usize>) -> Vec<Instruction> {
    let Some(bytes) = code.get(range.clone()) else {
        return Vec::new();
    };
    match target {
        Target::X86_64 => x64(bytes, range.start),
        Target::Aarch64 => aarch64(bytes, range.start),
    }
}

fn x64(bytes: &[u8], start: usize) -> Vec<Instruction> {
    let mut decoder = Decoder::with_ip(64, bytes, start as u64, DecoderOptions::NONE);
    let mut formatter = IntelFormatter::new();
    let options = formatter.options_mut();
    options.set_number_base(NumberBase::Hexadecimal);
    options.set_hex_prefix("0x");
    options.set_hex_suffix("");
    options.set_uppercase_hex(false);
    options.set_branch_leading_zeros(false);
    options.set_space_after_operand_separator(true);
    options.set_first_operand_char_index(8);
    let mut out = Vec::new();
    while decoder.can_decode() {
        let at = decoder.position();
        let ins = decoder.decode();
        // An undecodable byte is shown alone; decoding goes on after it.
        let len = if ins.is_invalid() {
            1
        } else {
            ins.len().max(1)
        };
        let mut text = String::new();
        if ins.is_invalid() {
            text.push_str("(bad)");
        } else {
            formatter.format(&ins, &mut text);
        }
        out.push(Instruction {
            offset: start + at,
            bytes: bytes[at..(at + len).min(bytes.len())].to_vec(),
            text,
        });
        if ins.is_invalid() {
            // Skip one byte and resynchronize.
            let _ = decoder.set_position(at + 1);
            decoder.set_ip((start + at + 1) as u64);
        }
    }
    out
}

fn aarch64(bytes: &[u8], start: usize) -> Vec<Instruction> {
    let decoder = InstDecoder::default();
    bytes
        .chunks(4)
        .enumerate()
        .map(|(i, word)| {
            let mut reader = U8Reader::new(word);
            let offset = start + 4 * i;
            let text = match decoder.decode(&mut reader) {
                Ok(ins) => {
                    let text = absolute_target(&ins.to_string(), offset);
                    // Mnemonic, then operands from column 8, as for x86-64.
                    match text.split_once(' ') {
                        Some((op, rest)) => format!("{op:<7} {rest}"),
                        None => text,
                    }
                }
                Err(_) => {
                    let mut w = [0u8; 4];
                    w[..word.len()].copy_from_slice(word);
                    format!(".word   {:#010x}", u32::from_le_bytes(w))
                }
            };
            Instruction {
                offset,
                bytes: word.to_vec(),
                text,
            }
        })
        .collect()
}

/// yaxpeax's pc-relative `$+0x10` / `$-0x8` as a function offset (`0x1c`), like x86-64.
fn absolute_target(text: &str, offset: usize) -> String {
    let Some(at) = text.find("$+0x").or_else(|| text.find("$-0x")) else {
        return text.to_string();
    };
    let digits = &text[at + 4..];
    let len = digits
        .find(|c: char| !c.is_ascii_hexdigit())
        .unwrap_or(digits.len());
    let Ok(delta) = i64::from_str_radix(&digits[..len], 16) else {
        return text.to_string();
    };
    let delta = if text[at..].starts_with("$-") {
        -delta
    } else {
        delta
    };
    match (offset as i64).checked_add(delta) {
        Some(target) if target >= 0 => {
            format!("{}{target:#x}{}", &text[..at], &digits[len..])
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_both_isas() {
        // add eax, ecx ; ret
        let x = disassemble(Target::X86_64, &[0x90, 0x01, 0xc8, 0xc3], 1..4);
        let texts: Vec<&str> = x.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(texts, ["add     eax, ecx", "ret"]);
        assert_eq!(x[0].offset, 1);
        assert_eq!(x[1].bytes, [0xc3]);
        // add w0, w1, w2 ; ret
        let code = [0x20, 0x00, 0x02, 0x0b, 0xc0, 0x03, 0x5f, 0xd6];
        let a = disassemble(Target::Aarch64, &code, 0..8);
        assert_eq!(a[0].text.split_whitespace().next(), Some("add"));
        assert!(a[0].text.contains("w0"), "{}", a[0].text);
        assert_eq!(a[1].text, "ret");
        assert_eq!(a[1].offset, 4);
        // `b.lo +0x74` at offset 4 and `b -8` at offset 8, as function offsets.
        let code = [0, 0, 0, 0, 0xa3, 0x03, 0x00, 0x54, 0xfe, 0xff, 0xff, 0x17];
        let b = disassemble(Target::Aarch64, &code, 0..12);
        assert_eq!(b[1].text, "b.lo    0x78");
        assert_eq!(b[2].text, "b       0x0");
    }

    #[test]
    fn bad_bytes_are_lines_not_errors() {
        let x = disassemble(Target::X86_64, &[0x06, 0xc3], 0..2);
        assert!(x.iter().any(|i| i.text == "(bad)"), "{x:?}");
        assert_eq!(x.last().map(|i| i.text.as_str()), Some("ret"));
        let a = disassemble(Target::Aarch64, &[0, 0, 0, 0, 1, 2], 0..6);
        assert!(a.iter().all(|i| !i.text.is_empty()));
        assert_eq!(a.len(), 2);
        assert!(disassemble(Target::X86_64, &[0xc3], 0..5).is_empty());
    }
}
