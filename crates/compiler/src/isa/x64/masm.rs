//! [`MacroAssembler`] for x86-64 with dynasm.

use super::x64;
use crate::masm::*;
use crate::vmctx::{funcref, VMOffsets};
use crate::{CompileError, TrapCode};
use dynasmrt::x64::X64Relocation;
use dynasmrt::{DynasmApi, DynasmLabelApi, VecAssembler};

const RAX: u8 = 0;
const RCX: u8 = 1;
const RDX: u8 = 2;
const RSP: u8 = 4;
const RBP: u8 = 5;
const R11: u8 = 11;
const R14: u8 = 14;
const R15: u8 = 15;
const XMM0: u8 = 0;
const XMM_SCRATCH: u8 = 15;

/// Allocatable integer registers: the ones without a REX prefix first.
static INT_REGS: [Reg; 8] = [
    Reg::int(6),  // rsi
    Reg::int(7),  // rdi
    Reg::int(3),  // rbx
    Reg::int(8),  // r8
    Reg::int(9),  // r9
    Reg::int(10), // r10
    Reg::int(12), // r12
    Reg::int(13), // r13
];

/// Allocatable float registers: xmm1-xmm14.
static FLOAT_REGS: [Reg; 14] = [
    Reg::float(1),
    Reg::float(2),
    Reg::float(3),
    Reg::float(4),
    Reg::float(5),
    Reg::float(6),
    Reg::float(7),
    Reg::float(8),
    Reg::float(9),
    Reg::float(10),
    Reg::float(11),
    Reg::float(12),
    Reg::float(13),
    Reg::float(14),
];

/// A pending out-of-line trap stub: the branch at `site` jumps to `stub`.
struct TrapStub {
    site: Label,
    stub: Label,
    code: TrapCode,
}

/// x86-64 macro assembler for one function.
pub struct X64Masm {
    ops: VecAssembler<X64Relocation>,
    stubs: Vec<TrapStub>,
    /// Offset of the 32-bit frame size immediate in the prologue.
    frame_size_patch: Option<usize>,
    vmctx_slot: i32,
    trap_landing: i32,
    memory0_base: i32,
    stack_limit: i32,
}

fn fits_i32(v: i64) -> bool {
    v == v as i32 as i64
}

impl X64Masm {
    /// A fresh assembler for a function of a module with this vmctx layout.
    pub fn new(offsets: &VMOffsets) -> X64Masm {
        X64Masm {
            ops: VecAssembler::new(0),
            stubs: Vec::new(),
            frame_size_patch: None,
            vmctx_slot: -8,
            trap_landing: offsets.trap_landing(),
            memory0_base: offsets.memory0_base(),
            stack_limit: offsets.stack_limit(),
        }
    }

    fn base_disp(&self, addr: Address) -> (u8, i32) {
        match addr {
            Address::Frame(d) => (RBP, d),
            Address::Outgoing(d) => (RSP, d),
            Address::Vmctx(d) => (R15, d),
            Address::Base(r, d) => (r.hw, d),
        }
    }

    fn mov_int_imm(&mut self, d: u8, v: i64, size: OperandSize) {
        match size {
            OperandSize::S32 => {
                if v as i32 == 0 {
                    x64!(self.ops; xor Rd(d), Rd(d));
                } else {
                    x64!(self.ops; mov Rd(d), v as i32);
                }
            }
            OperandSize::S64 => {
                if v == 0 {
                    x64!(self.ops; xor Rd(d), Rd(d));
                } else if v >= 0 && v <= u32::MAX as i64 {
                    x64!(self.ops; mov Rd(d), v as u32 as i32);
                } else if fits_i32(v) {
                    x64!(self.ops; mov Rq(d), v as i32);
                } else {
                    x64!(self.ops; mov Rq(d), QWORD v);
                }
            }
        }
    }

    fn new_trap_stub(&mut self, code: TrapCode) -> (Label, Label) {
        let site = self.ops.new_dynamic_label();
        let stub = self.ops.new_dynamic_label();
        self.stubs.push(TrapStub { site, stub, code });
        (site, stub)
    }

    /// `cmp lhs, rhs` at `size`.
    fn cmp(&mut self, lhs: Reg, rhs: RegImm, size: OperandSize) {
        let l = lhs.hw;
        match (rhs, size) {
            (RegImm::Reg(r), OperandSize::S32) => x64!(self.ops; cmp Rd(l), Rd(r.hw)),
            (RegImm::Reg(r), OperandSize::S64) => x64!(self.ops; cmp Rq(l), Rq(r.hw)),
            (RegImm::Imm(i), OperandSize::S32) => x64!(self.ops; cmp Rd(l), i as i32),
            (RegImm::Imm(i), OperandSize::S64) => {
                if fits_i32(i) {
                    x64!(self.ops; cmp Rq(l), i as i32);
                } else {
                    self.mov_int_imm(R11, i, size);
                    x64!(self.ops; cmp Rq(l), Rq(R11));
                }
            }
        }
    }

    fn jcc(&mut self, cc: IntCmp, target: Label) {
        match cc {
            IntCmp::Eq => x64!(self.ops; je =>target),
            IntCmp::Ne => x64!(self.ops; jne =>target),
            IntCmp::LtS => x64!(self.ops; jl =>target),
            IntCmp::LtU => x64!(self.ops; jb =>target),
            IntCmp::GtS => x64!(self.ops; jg =>target),
            IntCmp::GtU => x64!(self.ops; ja =>target),
            IntCmp::LeS => x64!(self.ops; jle =>target),
            IntCmp::LeU => x64!(self.ops; jbe =>target),
            IntCmp::GeS => x64!(self.ops; jge =>target),
            IntCmp::GeU => x64!(self.ops; jae =>target),
        }
    }

    fn setcc(&mut self, cc: IntCmp, d: u8) {
        match cc {
            IntCmp::Eq => x64!(self.ops; sete Rb(d)),
            IntCmp::Ne => x64!(self.ops; setne Rb(d)),
            IntCmp::LtS => x64!(self.ops; setl Rb(d)),
            IntCmp::LtU => x64!(self.ops; setb Rb(d)),
            IntCmp::GtS => x64!(self.ops; setg Rb(d)),
            IntCmp::GtU => x64!(self.ops; seta Rb(d)),
            IntCmp::LeS => x64!(self.ops; setle Rb(d)),
            IntCmp::LeU => x64!(self.ops; setbe Rb(d)),
            IntCmp::GeS => x64!(self.ops; setge Rb(d)),
            IntCmp::GeU => x64!(self.ops; setae Rb(d)),
        }
    }

    /// `ucomiss/ucomisd` with the operands ordered so that every `cc` is tested by
    /// `ja`/`jae`-style (above) conditions, which are false on an unordered result.
    fn float_compare(&mut self, cc: FloatCmp, lhs: Reg, rhs: Reg, size: OperandSize) {
        let (a, b) = match cc {
            FloatCmp::Lt | FloatCmp::Le => (rhs.hw, lhs.hw),
            _ => (lhs.hw, rhs.hw),
        };
        if size == OperandSize::S64 {
            x64!(self.ops; ucomisd Rx(a), Rx(b));
        } else {
            x64!(self.ops; ucomiss Rx(a), Rx(b));
        }
    }

    /// Computes the heap operand: returns (base, index) registers and displacement such that
    /// the address is `base + index + disp`.
    fn heap_operand(&mut self, addr: HeapAddress) -> (u8, u8, i32) {
        if addr.offset <= i32::MAX as u32 {
            (R14, addr.index.hw, addr.offset as i32)
        } else {
            // mov r11d, imm32 zero-extends, so r11 = offset as u64.
            x64!(self.ops
                ; mov Rd(R11), addr.offset as i32
                ; add Rq(R11), Rq(addr.index.hw)
            );
            (R14, R11, 0)
        }
    }
}

impl MacroAssembler for X64Masm {
    fn allocatable(&self, class: RegClass) -> &'static [Reg] {
        match class {
            RegClass::Int => &INT_REGS,
            RegClass::Float => &FLOAT_REGS,
        }
    }

    fn move_scratch(&self, class: RegClass) -> Reg {
        // The return registers: nothing lives in them between operators.
        match class {
            RegClass::Int => Reg::int(RAX),
            RegClass::Float => Reg::float(XMM0),
        }
    }

    fn return_reg(&self, class: RegClass) -> Reg {
        match class {
            RegClass::Int => Reg::int(RAX),
            RegClass::Float => Reg::float(XMM0),
        }
    }

    fn offset(&self) -> u32 {
        self.ops.offset().0 as u32
    }

    fn new_label(&mut self) -> Label {
        self.ops.new_dynamic_label()
    }

    fn bind(&mut self, label: Label) -> Result<()> {
        let here = self.ops.offset();
        self.ops
            .labels_mut()
            .define_dynamic(label, here)
            .map_err(|e| CompileError::Internal(format!("label: {e}")))
    }

    fn jump(&mut self, target: Label) {
        x64!(self.ops; jmp =>target);
    }

    fn prologue(&mut self, vmctx_slot: i32, stack_limit_offset: i32) -> Result<u32> {
        self.vmctx_slot = vmctx_slot;
        self.stack_limit = stack_limit_offset;
        x64!(self.ops
            ; push rbp
            ; mov rbp, rsp
        );
        // `sub rsp, imm32` with a forced 32-bit immediate, patched in `finish`.
        self.ops.extend([0x48, 0x81, 0xEC, 0, 0, 0, 0]);
        self.frame_size_patch = Some(self.ops.offset().0 - 4);
        let pc = self.offset();
        let (site, stub) = self.new_trap_stub(TrapCode::StackOverflow);
        let limit = self.stack_limit;
        x64!(self.ops
            ; cmp rsp, [vmctx + limit]
            ;=>site
            ; jb =>stub
            ; mov [rbp + vmctx_slot], vmctx
        );
        Ok(pc)
    }

    fn zero_frame(&mut self, start: i32, len: u32) {
        let words = len / 8;
        if words <= 8 {
            for i in 0..words as i32 {
                x64!(self.ops; mov QWORD [rbp + start + 8 * i], 0);
            }
        } else {
            // Only used in the prologue, where no allocatable register is live.
            x64!(self.ops
                ; xor eax, eax
                ; lea rdi, [rbp + start]
                ; mov ecx, words as i32
                ; rep stosq
            );
        }
    }

    fn epilogue(&mut self) {
        x64!(self.ops
            ; mov rsp, rbp
            ; pop rbp
            ; ret
        );
    }

    fn mov(&mut self, dst: Reg, src: RegImm, size: OperandSize) {
        let d = dst.hw;
        match (dst.class, src) {
            (RegClass::Int, RegImm::Reg(s)) => {
                if s.class == RegClass::Float {
                    match size {
                        OperandSize::S32 => x64!(self.ops; movd Rd(d), Rx(s.hw)),
                        OperandSize::S64 => x64!(self.ops; movq Rq(d), Rx(s.hw)),
                    }
                } else if s.hw != d || size == OperandSize::S32 {
                    match size {
                        OperandSize::S32 => x64!(self.ops; mov Rd(d), Rd(s.hw)),
                        OperandSize::S64 => x64!(self.ops; mov Rq(d), Rq(s.hw)),
                    }
                }
            }
            (RegClass::Int, RegImm::Imm(i)) => self.mov_int_imm(d, i, size),
            (RegClass::Float, RegImm::Reg(s)) => {
                if s.class == RegClass::Int {
                    match size {
                        OperandSize::S32 => x64!(self.ops; movd Rx(d), Rd(s.hw)),
                        OperandSize::S64 => x64!(self.ops; movq Rx(d), Rq(s.hw)),
                    }
                } else if s.hw != d {
                    x64!(self.ops; movaps Rx(d), Rx(s.hw));
                }
            }
            (RegClass::Float, RegImm::Imm(bits)) => {
                if bits == 0 {
                    x64!(self.ops; xorps Rx(d), Rx(d));
                } else {
                    self.mov_int_imm(R11, bits, size);
                    match size {
                        OperandSize::S32 => x64!(self.ops; movd Rx(d), Rd(R11)),
                        OperandSize::S64 => x64!(self.ops; movq Rx(d), Rq(R11)),
                    }
                }
            }
        }
    }

    fn load(&mut self, dst: Reg, src: Address, size: OperandSize) {
        let (b, disp) = self.base_disp(src);
        let d = dst.hw;
        match (dst.class, size) {
            (RegClass::Int, OperandSize::S32) => x64!(self.ops; mov Rd(d), DWORD [Rq(b) + disp]),
            (RegClass::Int, OperandSize::S64) => x64!(self.ops; mov Rq(d), QWORD [Rq(b) + disp]),
            (RegClass::Float, OperandSize::S32) => {
                x64!(self.ops; movss Rx(d), DWORD [Rq(b) + disp])
            }
            (RegClass::Float, OperandSize::S64) => {
                x64!(self.ops; movsd Rx(d), QWORD [Rq(b) + disp])
            }
        }
    }

    fn store(&mut self, src: RegImm, dst: Address, size: OperandSize) {
        let (b, disp) = self.base_disp(dst);
        match src {
            RegImm::Reg(s) => match (s.class, size) {
                (RegClass::Int, OperandSize::S32) => {
                    x64!(self.ops; mov DWORD [Rq(b) + disp], Rd(s.hw))
                }
                (RegClass::Int, OperandSize::S64) => {
                    x64!(self.ops; mov QWORD [Rq(b) + disp], Rq(s.hw))
                }
                (RegClass::Float, OperandSize::S32) => {
                    x64!(self.ops; movss DWORD [Rq(b) + disp], Rx(s.hw))
                }
                (RegClass::Float, OperandSize::S64) => {
                    x64!(self.ops; movsd QWORD [Rq(b) + disp], Rx(s.hw))
                }
            },
            RegImm::Imm(i) => match size {
                OperandSize::S32 => x64!(self.ops; mov DWORD [Rq(b) + disp], i as i32),
                OperandSize::S64 => {
                    if fits_i32(i) {
                        x64!(self.ops; mov QWORD [Rq(b) + disp], i as i32);
                    } else {
                        self.mov_int_imm(R11, i, size);
                        x64!(self.ops; mov QWORD [Rq(b) + disp], Rq(R11));
                    }
                }
            },
        }
    }

    fn copy(&mut self, dst: Address, src: Address, size: OperandSize) {
        if dst == src {
            return;
        }
        let (sb, sd) = self.base_disp(src);
        let (db, dd) = self.base_disp(dst);
        match size {
            OperandSize::S32 => x64!(self.ops
                ; mov Rd(R11), DWORD [Rq(sb) + sd]
                ; mov DWORD [Rq(db) + dd], Rd(R11)
            ),
            OperandSize::S64 => x64!(self.ops
                ; mov Rq(R11), QWORD [Rq(sb) + sd]
                ; mov QWORD [Rq(db) + dd], Rq(R11)
            ),
        }
    }

    fn lea(&mut self, dst: Reg, src: Address) {
        let (b, disp) = self.base_disp(src);
        x64!(self.ops; lea Rq(dst.hw), [Rq(b) + disp]);
    }

    fn load_heap(&mut self, dst: Reg, src: HeapAddress, kind: LoadKind) -> u32 {
        let (b, i, disp) = self.heap_operand(src);
        let d = dst.hw;
        let pc = self.offset();
        match kind {
            LoadKind::I32 | LoadKind::I64U32 => {
                x64!(self.ops; mov Rd(d), DWORD [Rq(b) + Rq(i) + disp])
            }
            LoadKind::I64 => x64!(self.ops; mov Rq(d), QWORD [Rq(b) + Rq(i) + disp]),
            LoadKind::F32 => x64!(self.ops; movss Rx(d), DWORD [Rq(b) + Rq(i) + disp]),
            LoadKind::F64 => x64!(self.ops; movsd Rx(d), QWORD [Rq(b) + Rq(i) + disp]),
            LoadKind::I32S8 => x64!(self.ops; movsx Rd(d), BYTE [Rq(b) + Rq(i) + disp]),
            LoadKind::I32U8 | LoadKind::I64U8 => {
                x64!(self.ops; movzx Rd(d), BYTE [Rq(b) + Rq(i) + disp])
            }
            LoadKind::I32S16 => x64!(self.ops; movsx Rd(d), WORD [Rq(b) + Rq(i) + disp]),
            LoadKind::I32U16 | LoadKind::I64U16 => {
                x64!(self.ops; movzx Rd(d), WORD [Rq(b) + Rq(i) + disp])
            }
            LoadKind::I64S8 => x64!(self.ops; movsx Rq(d), BYTE [Rq(b) + Rq(i) + disp]),
            LoadKind::I64S16 => x64!(self.ops; movsx Rq(d), WORD [Rq(b) + Rq(i) + disp]),
            LoadKind::I64S32 => x64!(self.ops; movsxd Rq(d), DWORD [Rq(b) + Rq(i) + disp]),
        }
        pc
    }

    fn store_heap(&mut self, src: RegImm, dst: HeapAddress, kind: StoreKind) -> u32 {
        let (b, i, disp) = self.heap_operand(dst);
        let pc;
        match src {
            RegImm::Reg(s) => {
                let s = s.hw;
                pc = self.offset();
                match kind {
                    StoreKind::I8 => x64!(self.ops; mov BYTE [Rq(b) + Rq(i) + disp], Rb(s)),
                    StoreKind::I16 => x64!(self.ops; mov WORD [Rq(b) + Rq(i) + disp], Rw(s)),
                    StoreKind::I32 => x64!(self.ops; mov DWORD [Rq(b) + Rq(i) + disp], Rd(s)),
                    StoreKind::I64 => x64!(self.ops; mov QWORD [Rq(b) + Rq(i) + disp], Rq(s)),
                    StoreKind::F32 => x64!(self.ops; movss DWORD [Rq(b) + Rq(i) + disp], Rx(s)),
                    StoreKind::F64 => x64!(self.ops; movsd QWORD [Rq(b) + Rq(i) + disp], Rx(s)),
                }
            }
            RegImm::Imm(v) => match kind {
                StoreKind::I8 => {
                    pc = self.offset();
                    x64!(self.ops; mov BYTE [Rq(b) + Rq(i) + disp], v as i8)
                }
                StoreKind::I16 => {
                    pc = self.offset();
                    x64!(self.ops; mov WORD [Rq(b) + Rq(i) + disp], v as i16)
                }
                StoreKind::I32 | StoreKind::F32 => {
                    pc = self.offset();
                    x64!(self.ops; mov DWORD [Rq(b) + Rq(i) + disp], v as i32)
                }
                StoreKind::I64 | StoreKind::F64 => {
                    if fits_i32(v) {
                        pc = self.offset();
                        x64!(self.ops; mov QWORD [Rq(b) + Rq(i) + disp], v as i32);
                    } else {
                        self.mov_int_imm(RAX, v, OperandSize::S64);
                        pc = self.offset();
                        x64!(self.ops; mov QWORD [Rq(b) + Rq(i) + disp], Rq(RAX));
                    }
                }
            },
        }
        pc
    }

    fn alu(&mut self, op: AluOp, dst: Reg, lhs: Reg, rhs: RegImm, size: OperandSize) {
        let d = dst.hw;
        // Multiplication by an immediate has a three-operand form.
        if let (AluOp::Mul, RegImm::Imm(i)) = (op, rhs) {
            if size == OperandSize::S32 || fits_i32(i) {
                match size {
                    OperandSize::S32 => x64!(self.ops; imul Rd(d), Rd(lhs.hw), i as i32),
                    OperandSize::S64 => x64!(self.ops; imul Rq(d), Rq(lhs.hw), i as i32),
                }
                return;
            }
        }
        // Legalise: the right-hand side as a register or a 32-bit immediate.
        let rhs = match rhs {
            RegImm::Imm(i) if size == OperandSize::S64 && !fits_i32(i) => {
                self.mov_int_imm(R11, i, size);
                RegImm::Reg(Reg::int(R11))
            }
            RegImm::Reg(r) if r.hw == d && lhs.hw != d => {
                if matches!(op, AluOp::Sub) {
                    self.mov(Reg::int(R11), rhs, size);
                    RegImm::Reg(Reg::int(R11))
                } else {
                    // Commutative: dst already holds rhs.
                    return self.alu(op, dst, r, RegImm::Reg(lhs), size);
                }
            }
            other => other,
        };
        if lhs.hw != d {
            self.mov(dst, RegImm::Reg(lhs), size);
        }
        macro_rules! emit {
            ($mn:ident) => {
                match (rhs, size) {
                    (RegImm::Reg(r), OperandSize::S32) => x64!(self.ops; $mn Rd(d), Rd(r.hw)),
                    (RegImm::Reg(r), OperandSize::S64) => x64!(self.ops; $mn Rq(d), Rq(r.hw)),
                    (RegImm::Imm(i), OperandSize::S32) => x64!(self.ops; $mn Rd(d), i as i32),
                    (RegImm::Imm(i), OperandSize::S64) => x64!(self.ops; $mn Rq(d), i as i32),
                }
            };
        }
        match op {
            AluOp::Add => emit!(add),
            AluOp::Sub => emit!(sub),
            AluOp::And => emit!(and),
            AluOp::Or => emit!(or),
            AluOp::Xor => emit!(xor),
            AluOp::Mul => match (rhs, size) {
                (RegImm::Reg(r), OperandSize::S32) => x64!(self.ops; imul Rd(d), Rd(r.hw)),
                (RegImm::Reg(r), OperandSize::S64) => x64!(self.ops; imul Rq(d), Rq(r.hw)),
                (RegImm::Imm(i), OperandSize::S32) => x64!(self.ops; imul Rd(d), Rd(d), i as i32),
                (RegImm::Imm(i), OperandSize::S64) => x64!(self.ops; imul Rq(d), Rq(d), i as i32),
            },
        }
    }

    fn shift(&mut self, op: ShiftOp, dst: Reg, lhs: Reg, rhs: RegImm, size: OperandSize) {
        let d = dst.hw;
        let mask = match size {
            OperandSize::S32 => 31,
            OperandSize::S64 => 63,
        };
        if let RegImm::Reg(r) = rhs {
            x64!(self.ops; mov ecx, Rd(r.hw));
        }
        if lhs.hw != d {
            self.mov(dst, RegImm::Reg(lhs), size);
        }
        macro_rules! emit {
            ($mn:ident) => {
                match (rhs, size) {
                    (RegImm::Reg(_), OperandSize::S32) => x64!(self.ops; $mn Rd(d), cl),
                    (RegImm::Reg(_), OperandSize::S64) => x64!(self.ops; $mn Rq(d), cl),
                    (RegImm::Imm(i), OperandSize::S32) => {
                        x64!(self.ops; $mn Rd(d), (i & mask) as i8)
                    }
                    (RegImm::Imm(i), OperandSize::S64) => {
                        x64!(self.ops; $mn Rq(d), (i & mask) as i8)
                    }
                }
            };
        }
        match op {
            ShiftOp::Shl => emit!(shl),
            ShiftOp::ShrS => emit!(sar),
            ShiftOp::ShrU => emit!(shr),
            ShiftOp::Rotl => emit!(rol),
            ShiftOp::Rotr => emit!(ror),
        }
    }

    fn div(&mut self, kind: DivKind, dst: Reg, lhs: Reg, rhs: Reg, size: OperandSize) {
        let (d, l, r) = (dst.hw, lhs.hw, rhs.hw);
        match size {
            OperandSize::S32 => {
                x64!(self.ops; mov eax, Rd(l));
                match kind {
                    DivKind::DivS | DivKind::RemS => x64!(self.ops; cdq; idiv Rd(r)),
                    DivKind::DivU | DivKind::RemU => x64!(self.ops; xor edx, edx; div Rd(r)),
                }
                match kind {
                    DivKind::DivS | DivKind::DivU => x64!(self.ops; mov Rd(d), eax),
                    DivKind::RemS | DivKind::RemU => x64!(self.ops; mov Rd(d), edx),
                }
            }
            OperandSize::S64 => {
                x64!(self.ops; mov rax, Rq(l));
                match kind {
                    DivKind::DivS | DivKind::RemS => x64!(self.ops; cqo; idiv Rq(r)),
                    DivKind::DivU | DivKind::RemU => x64!(self.ops; xor edx, edx; div Rq(r)),
                }
                match kind {
                    DivKind::DivS | DivKind::DivU => x64!(self.ops; mov Rq(d), rax),
                    DivKind::RemS | DivKind::RemU => x64!(self.ops; mov Rq(d), rdx),
                }
            }
        }
    }

    fn int_unary(&mut self, op: IntUnary, dst: Reg, src: Reg, size: OperandSize) {
        let (d, s) = (dst.hw, src.hw);
        match (op, size) {
            // bsr/bsf leave the destination undefined for a zero input: patch with cmov.
            (IntUnary::Clz, OperandSize::S32) => x64!(self.ops
                ; bsr Rd(d), Rd(s)
                ; mov r11d, 63
                ; cmovz Rd(d), r11d
                ; xor Rd(d), 31
            ),
            (IntUnary::Clz, OperandSize::S64) => x64!(self.ops
                ; bsr Rq(d), Rq(s)
                ; mov r11d, 127
                ; cmovz Rq(d), r11
                ; xor Rq(d), 63
            ),
            (IntUnary::Ctz, OperandSize::S32) => x64!(self.ops
                ; bsf Rd(d), Rd(s)
                ; mov r11d, 32
                ; cmovz Rd(d), r11d
            ),
            (IntUnary::Ctz, OperandSize::S64) => x64!(self.ops
                ; bsf Rq(d), Rq(s)
                ; mov r11d, 64
                ; cmovz Rq(d), r11
            ),
            (IntUnary::Popcnt, OperandSize::S32) => x64!(self.ops; popcnt Rd(d), Rd(s)),
            (IntUnary::Popcnt, OperandSize::S64) => x64!(self.ops; popcnt Rq(d), Rq(s)),
        }
    }

    fn extend(&mut self, kind: Extend, dst: Reg, src: Reg) {
        let (d, s) = (dst.hw, src.hw);
        match kind {
            Extend::I32From8S => x64!(self.ops; movsx Rd(d), Rb(s)),
            Extend::I32From16S => x64!(self.ops; movsx Rd(d), Rw(s)),
            Extend::I64From8S => x64!(self.ops; movsx Rq(d), Rb(s)),
            Extend::I64From16S => x64!(self.ops; movsx Rq(d), Rw(s)),
            Extend::I64From32S => x64!(self.ops; movsxd Rq(d), Rd(s)),
            Extend::I64From32U | Extend::I32Wrap => x64!(self.ops; mov Rd(d), Rd(s)),
        }
    }

    fn cmp_set(&mut self, cc: IntCmp, dst: Reg, lhs: Reg, rhs: RegImm, size: OperandSize) {
        self.cmp(lhs, rhs, size);
        self.setcc(cc, dst.hw);
        x64!(self.ops; movzx Rd(dst.hw), Rb(dst.hw));
    }

    fn cmp_branch(&mut self, cc: IntCmp, lhs: Reg, rhs: RegImm, size: OperandSize, target: Label) {
        match rhs {
            RegImm::Imm(0) if matches!(cc, IntCmp::Eq | IntCmp::Ne) => match size {
                OperandSize::S32 => x64!(self.ops; test Rd(lhs.hw), Rd(lhs.hw)),
                OperandSize::S64 => x64!(self.ops; test Rq(lhs.hw), Rq(lhs.hw)),
            },
            _ => self.cmp(lhs, rhs, size),
        }
        self.jcc(cc, target);
    }

    fn select(&mut self, dst: Reg, cond: Reg, if_false: Reg, size: OperandSize) {
        let (d, c, f) = (dst.hw, cond.hw, if_false.hw);
        x64!(self.ops; test Rd(c), Rd(c));
        match (dst.class, size) {
            (RegClass::Int, OperandSize::S32) => x64!(self.ops; cmovz Rd(d), Rd(f)),
            (RegClass::Int, OperandSize::S64) => x64!(self.ops; cmovz Rq(d), Rq(f)),
            (RegClass::Float, _) => {
                let skip = self.ops.new_dynamic_label();
                x64!(self.ops
                    ; jnz =>skip
                    ; movaps Rx(d), Rx(f)
                    ;=>skip
                );
            }
        }
    }

    fn jump_table(&mut self, index: Reg, targets: &[Label], default: Label) {
        let table = self.ops.new_dynamic_label();
        let i = index.hw;
        x64!(self.ops
            ; cmp Rd(i), targets.len() as i32
            ; jae =>default
            ; lea r11, [=>table]
            ; lea rax, [Rq(i) + Rq(i) * 4]
            ; add r11, rax
            ; jmp r11
            ;=>table
        );
        // Each entry is a 5-byte `jmp rel32` (dynasm always encodes label jumps as rel32).
        for &t in targets {
            x64!(self.ops; jmp =>t);
        }
    }

    fn float_binop(&mut self, op: FloatBinOp, dst: Reg, lhs: Reg, rhs: Reg, size: OperandSize) {
        let s64 = size == OperandSize::S64;
        if op == FloatBinOp::Copysign {
            // On the bits: magnitude of lhs, sign of rhs.
            let (l, r, d) = (lhs.hw, rhs.hw, dst.hw);
            if s64 {
                x64!(self.ops
                    ; movq rax, Rx(l)
                    ; btr rax, 63
                    ; movq rcx, Rx(r)
                    ; shr rcx, 63
                    ; shl rcx, 63
                    ; or rax, rcx
                    ; movq Rx(d), rax
                );
            } else {
                x64!(self.ops
                    ; movd eax, Rx(l)
                    ; and eax, 0x7fff_ffff
                    ; movd ecx, Rx(r)
                    ; and ecx, 0x8000_0000u32 as i32
                    ; or eax, ecx
                    ; movd Rx(d), eax
                );
            }
            return;
        }
        // Bring the operands into the shape `dst op= src`.
        let mut src = rhs.hw;
        let d = dst.hw;
        if d != lhs.hw {
            if d == rhs.hw {
                x64!(self.ops; movaps Rx(XMM_SCRATCH), Rx(rhs.hw));
                src = XMM_SCRATCH;
            }
            x64!(self.ops; movaps Rx(d), Rx(lhs.hw));
        }
        macro_rules! arith {
            ($ss:ident, $sd:ident) => {
                if s64 {
                    x64!(self.ops; $sd Rx(d), Rx(src))
                } else {
                    x64!(self.ops; $ss Rx(d), Rx(src))
                }
            };
        }
        match op {
            FloatBinOp::Add => arith!(addss, addsd),
            FloatBinOp::Sub => arith!(subss, subsd),
            FloatBinOp::Mul => arith!(mulss, mulsd),
            FloatBinOp::Div => arith!(divss, divsd),
            FloatBinOp::Min | FloatBinOp::Max => {
                // minss/maxss return the second operand for NaN and for equal zeros, so
                // handle both cases by hand: NaN propagates via addition, and on equality
                // or/and of the bits gives -0 for min and +0 for max.
                let (nan, eq, done) = (
                    self.ops.new_dynamic_label(),
                    self.ops.new_dynamic_label(),
                    self.ops.new_dynamic_label(),
                );
                if s64 {
                    x64!(self.ops; ucomisd Rx(d), Rx(src));
                } else {
                    x64!(self.ops; ucomiss Rx(d), Rx(src));
                }
                x64!(self.ops
                    ; jp =>nan
                    ; je =>eq
                );
                match (op, s64) {
                    (FloatBinOp::Min, false) => x64!(self.ops; minss Rx(d), Rx(src)),
                    (FloatBinOp::Min, true) => x64!(self.ops; minsd Rx(d), Rx(src)),
                    (_, false) => x64!(self.ops; maxss Rx(d), Rx(src)),
                    (_, true) => x64!(self.ops; maxsd Rx(d), Rx(src)),
                }
                x64!(self.ops; jmp =>done; =>eq);
                if op == FloatBinOp::Min {
                    x64!(self.ops; orps Rx(d), Rx(src));
                } else {
                    x64!(self.ops; andps Rx(d), Rx(src));
                }
                x64!(self.ops; jmp =>done; =>nan);
                arith!(addss, addsd);
                x64!(self.ops; =>done);
            }
            FloatBinOp::Copysign => {}
        }
    }

    fn float_unop(&mut self, op: FloatUnOp, dst: Reg, src: Reg, size: OperandSize) {
        let (d, s) = (dst.hw, src.hw);
        let s64 = size == OperandSize::S64;
        match op {
            FloatUnOp::Abs | FloatUnOp::Neg => {
                if s64 {
                    x64!(self.ops; movq rax, Rx(s));
                    if op == FloatUnOp::Abs {
                        x64!(self.ops; btr rax, 63);
                    } else {
                        x64!(self.ops; btc rax, 63);
                    }
                    x64!(self.ops; movq Rx(d), rax);
                } else {
                    x64!(self.ops; movd eax, Rx(s));
                    if op == FloatUnOp::Abs {
                        x64!(self.ops; and eax, 0x7fff_ffff);
                    } else {
                        x64!(self.ops; xor eax, 0x8000_0000u32 as i32);
                    }
                    x64!(self.ops; movd Rx(d), eax);
                }
            }
            FloatUnOp::Sqrt => {
                if s64 {
                    x64!(self.ops; sqrtsd Rx(d), Rx(s));
                } else {
                    x64!(self.ops; sqrtss Rx(d), Rx(s));
                }
            }
            FloatUnOp::Ceil | FloatUnOp::Floor | FloatUnOp::Trunc | FloatUnOp::Nearest => {
                // SSE4.1 rounding modes (checked at engine creation).
                let mode: i8 = match op {
                    FloatUnOp::Nearest => 0,
                    FloatUnOp::Floor => 1,
                    FloatUnOp::Ceil => 2,
                    _ => 3,
                };
                if s64 {
                    x64!(self.ops; roundsd Rx(d), Rx(s), mode);
                } else {
                    x64!(self.ops; roundss Rx(d), Rx(s), mode);
                }
            }
        }
    }

    fn float_cmp_set(&mut self, cc: FloatCmp, dst: Reg, lhs: Reg, rhs: Reg, size: OperandSize) {
        let d = dst.hw;
        self.float_compare(cc, lhs, rhs, size);
        match cc {
            FloatCmp::Eq => x64!(self.ops; sete Rb(d); setnp r11b; and Rb(d), r11b),
            FloatCmp::Ne => x64!(self.ops; setne Rb(d); setp r11b; or Rb(d), r11b),
            FloatCmp::Gt | FloatCmp::Lt => x64!(self.ops; seta Rb(d)),
            FloatCmp::Ge | FloatCmp::Le => x64!(self.ops; setae Rb(d)),
        }
        x64!(self.ops; movzx Rd(d), Rb(d));
    }

    fn float_cmp_branch(
        &mut self,
        cc: FloatCmp,
        lhs: Reg,
        rhs: Reg,
        size: OperandSize,
        target: Label,
    ) {
        self.float_compare(cc, lhs, rhs, size);
        match cc {
            FloatCmp::Eq => {
                let skip = self.ops.new_dynamic_label();
                x64!(self.ops; jp =>skip; je =>target; =>skip);
            }
            FloatCmp::Ne => x64!(self.ops; jp =>target; jne =>target),
            FloatCmp::Gt | FloatCmp::Lt => x64!(self.ops; ja =>target),
            FloatCmp::Ge | FloatCmp::Le => x64!(self.ops; jae =>target),
        }
    }

    fn float_cmp_branch_not(
        &mut self,
        cc: FloatCmp,
        lhs: Reg,
        rhs: Reg,
        size: OperandSize,
        target: Label,
    ) {
        self.float_compare(cc, lhs, rhs, size);
        // An unordered result sets ZF, PF and CF, so `jbe`/`jb` also take the NaN case.
        match cc {
            FloatCmp::Eq => x64!(self.ops; jp =>target; jne =>target),
            FloatCmp::Ne => {
                let skip = self.ops.new_dynamic_label();
                x64!(self.ops; jp =>skip; je =>target; =>skip);
            }
            FloatCmp::Gt | FloatCmp::Lt => x64!(self.ops; jbe =>target),
            FloatCmp::Ge | FloatCmp::Le => x64!(self.ops; jb =>target),
        }
    }

    fn float_trap_if(
        &mut self,
        cc: FloatCmp,
        lhs: Reg,
        rhs: Reg,
        size: OperandSize,
        code: TrapCode,
    ) -> u32 {
        let (site, stub) = self.new_trap_stub(code);
        let pc = self.offset();
        x64!(self.ops; =>site);
        self.float_cmp_branch(cc, lhs, rhs, size, stub);
        pc
    }

    fn int_to_float(
        &mut self,
        dst: Reg,
        src: Reg,
        int_size: OperandSize,
        signed: bool,
        float_size: OperandSize,
    ) {
        let (d, s) = (dst.hw, src.hw);
        let f64_ = float_size == OperandSize::S64;
        x64!(self.ops; xorps Rx(d), Rx(d));
        match (int_size, signed) {
            (OperandSize::S32, true) => {
                if f64_ {
                    x64!(self.ops; cvtsi2sd Rx(d), Rd(s));
                } else {
                    x64!(self.ops; cvtsi2ss Rx(d), Rd(s));
                }
            }
            // Zero-extended in its register: a non-negative i64.
            (OperandSize::S32, false) | (OperandSize::S64, true) => {
                if int_size == OperandSize::S32 {
                    x64!(self.ops; mov Rd(s), Rd(s));
                }
                if f64_ {
                    x64!(self.ops; cvtsi2sd Rx(d), Rq(s));
                } else {
                    x64!(self.ops; cvtsi2ss Rx(d), Rq(s));
                }
            }
            (OperandSize::S64, false) => {
                // Values with the top bit set: halve (keeping the low bit for rounding),
                // convert, double.
                let (big, done) = (self.ops.new_dynamic_label(), self.ops.new_dynamic_label());
                x64!(self.ops
                    ; test Rq(s), Rq(s)
                    ; js =>big
                );
                if f64_ {
                    x64!(self.ops; cvtsi2sd Rx(d), Rq(s));
                } else {
                    x64!(self.ops; cvtsi2ss Rx(d), Rq(s));
                }
                x64!(self.ops
                    ; jmp =>done
                    ;=>big
                    ; mov rax, Rq(s)
                    ; shr rax, 1
                    ; mov rcx, Rq(s)
                    ; and ecx, 1
                    ; or rax, rcx
                );
                if f64_ {
                    x64!(self.ops; cvtsi2sd Rx(d), rax; addsd Rx(d), Rx(d));
                } else {
                    x64!(self.ops; cvtsi2ss Rx(d), rax; addss Rx(d), Rx(d));
                }
                x64!(self.ops; =>done);
            }
        }
    }

    fn float_to_float(&mut self, dst: Reg, src: Reg, dst_size: OperandSize) {
        let (d, s) = (dst.hw, src.hw);
        if dst_size == OperandSize::S64 {
            x64!(self.ops; cvtss2sd Rx(d), Rx(s));
        } else {
            x64!(self.ops; cvtsd2ss Rx(d), Rx(s));
        }
    }

    fn float_to_int(
        &mut self,
        dst: Reg,
        src: Reg,
        float_size: OperandSize,
        int_size: OperandSize,
        signed: bool,
    ) {
        let (d, s) = (dst.hw, src.hw);
        let f64_ = float_size == OperandSize::S64;
        macro_rules! cvt {
            (q, $x:expr) => {
                if f64_ {
                    x64!(self.ops; cvttsd2si Rq(d), Rx($x))
                } else {
                    x64!(self.ops; cvttss2si Rq(d), Rx($x))
                }
            };
        }
        match (int_size, signed) {
            (OperandSize::S32, true) => {
                if f64_ {
                    x64!(self.ops; cvttsd2si Rd(d), Rx(s));
                } else {
                    x64!(self.ops; cvttss2si Rd(d), Rx(s));
                }
            }
            (OperandSize::S32, false) => {
                cvt!(q, s);
                x64!(self.ops; mov Rd(d), Rd(d));
            }
            (OperandSize::S64, true) => cvt!(q, s),
            (OperandSize::S64, false) => {
                // At or above 2^63: subtract 2^63 first, then set the top bit.
                let (big, done) = (self.ops.new_dynamic_label(), self.ops.new_dynamic_label());
                let two63: i64 = if f64_ {
                    0x43e0_0000_0000_0000
                } else {
                    0x5f00_0000
                };
                self.mov(Reg::float(XMM_SCRATCH), RegImm::Imm(two63), float_size);
                if f64_ {
                    x64!(self.ops; ucomisd Rx(s), Rx(XMM_SCRATCH));
                } else {
                    x64!(self.ops; ucomiss Rx(s), Rx(XMM_SCRATCH));
                }
                x64!(self.ops; jae =>big);
                cvt!(q, s);
                x64!(self.ops
                    ; jmp =>done
                    ;=>big
                    ; movaps xmm0, Rx(s)
                );
                if f64_ {
                    x64!(self.ops; subsd xmm0, Rx(XMM_SCRATCH));
                } else {
                    x64!(self.ops; subss xmm0, Rx(XMM_SCRATCH));
                }
                cvt!(q, XMM0);
                x64!(self.ops
                    ; btc Rq(d), 63
                    ;=>done
                );
            }
        }
    }

    fn trap_if(
        &mut self,
        cc: IntCmp,
        lhs: Reg,
        rhs: RegImm,
        size: OperandSize,
        code: TrapCode,
    ) -> u32 {
        match rhs {
            RegImm::Imm(0) if matches!(cc, IntCmp::Eq | IntCmp::Ne) => match size {
                OperandSize::S32 => x64!(self.ops; test Rd(lhs.hw), Rd(lhs.hw)),
                OperandSize::S64 => x64!(self.ops; test Rq(lhs.hw), Rq(lhs.hw)),
            },
            _ => self.cmp(lhs, rhs, size),
        }
        let (site, stub) = self.new_trap_stub(code);
        let pc = self.offset();
        x64!(self.ops; =>site);
        self.jcc(cc, stub);
        pc
    }

    fn trap(&mut self, code: TrapCode) -> u32 {
        let (site, stub) = self.new_trap_stub(code);
        let pc = self.offset();
        x64!(self.ops
            ;=>site
            ; jmp =>stub
        );
        pc
    }

    fn call(&mut self, target: CallTarget) -> u32 {
        match target {
            CallTarget::SameInstance { code_offset } => {
                x64!(self.ops; call QWORD [vmctx + code_offset]);
            }
            CallTarget::FuncRef { funcref: f } => {
                let (slot, membase_off, limit) =
                    (self.vmctx_slot, self.memory0_base, self.stack_limit);
                x64!(self.ops
                    ; mov r11, vmctx
                    ; mov vmctx, [Rq(f.hw) + funcref::VMCTX]
                    ; mov rax, [r11 + limit]
                    ; mov [vmctx + limit], rax
                    ; call QWORD [Rq(f.hw) + funcref::CODE]
                    ; mov vmctx, [rbp + slot]
                    ; mov membase, [vmctx + membase_off]
                );
            }
        }
        self.offset()
    }

    fn call_builtin(&mut self, fn_offset: i32, args: &[RegImm]) {
        // System V: rdi = vmctx, then rsi, rdx, rcx, r8. Sources may live in rsi/rdi/r8, so
        // first read every argument into registers that are never sources (the scratch
        // registers), then move them into place.
        debug_assert!(args.len() <= 4);
        let staged = [RAX, R11, RCX, RDX];
        for (arg, &tmp) in args.iter().zip(staged.iter()) {
            self.mov(Reg::int(tmp), *arg, OperandSize::S64);
        }
        if args.len() > 3 {
            x64!(self.ops; mov r8, rdx);
        }
        if !args.is_empty() {
            x64!(self.ops; mov rsi, rax);
        }
        if args.len() > 1 {
            x64!(self.ops; mov rdx, r11);
        }
        x64!(self.ops
            ; mov rdi, vmctx
            ; call QWORD [vmctx + fn_offset]
        );
    }

    fn finish(mut self, frame_size: u32) -> Result<Vec<u8>> {
        if !self.stubs.is_empty() {
            let common = self.ops.new_dynamic_label();
            let stubs = std::mem::take(&mut self.stubs);
            for s in &stubs {
                let (stub, site, code) = (s.stub, s.site, s.code as u8 as i32);
                x64!(self.ops
                    ;=>stub
                    ; mov edi, code
                    ; lea rsi, [=>site]
                    ; jmp =>common
                );
            }
            let landing = self.trap_landing;
            x64!(self.ops
                ;=>common
                ; mov rdx, rbp
                ; jmp QWORD [vmctx + landing]
            );
        }
        let _ = (RCX, RDX, RSP, XMM_SCRATCH);
        let patch = self.frame_size_patch;
        let mut code = self
            .ops
            .finalize()
            .map_err(|e| CompileError::Internal(format!("x64 assembly: {e}")))?;
        if let Some(at) = patch {
            let size = i32::try_from(frame_size)
                .map_err(|_| CompileError::Unsupported("frame larger than 2 GiB".into()))?;
            code[at..at + 4].copy_from_slice(&size.to_le_bytes());
        }
        Ok(code)
    }
}
