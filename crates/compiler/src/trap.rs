/// The reasons wasm code can trap. The numeric value is what generated code passes to the
/// runtime's trap landing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TrapCode {
    /// `unreachable` was executed.
    Unreachable = 1,
    /// A load or store outside the bounds of a linear memory.
    MemoryOutOfBounds = 2,
    /// A table access outside the bounds of a table.
    TableOutOfBounds = 3,
    /// `call_indirect` with an index outside the table.
    UndefinedElement = 4,
    /// `call_indirect` through a null table entry.
    IndirectCallToNull = 5,
    /// `call_indirect` through an entry whose signature differs from the expected one.
    BadSignature = 6,
    /// Integer overflow (`i32.div_s` of `INT_MIN / -1`, float to int out of range).
    IntegerOverflow = 7,
    /// Integer division or remainder by zero.
    IntegerDivisionByZero = 8,
    /// Float to integer conversion of a NaN.
    BadConversionToInteger = 9,
    /// The wasm call stack exceeded its limit.
    StackOverflow = 10,
    /// A host function returned an error or panicked (the runtime keeps the details).
    HostError = 11,
    /// The engine's epoch passed the instance's deadline (`Engine::increment_epoch`).
    Interrupt = 12,
    /// The instance ran out of fuel.
    OutOfFuel = 13,
    /// `call_ref` or `ref.as_non_null` of a null reference.
    NullReference = 14,
}

impl TrapCode {
    /// All codes, in numeric order.
    pub const ALL: [TrapCode; 14] = [
        TrapCode::Unreachable,
        TrapCode::MemoryOutOfBounds,
        TrapCode::TableOutOfBounds,
        TrapCode::UndefinedElement,
        TrapCode::IndirectCallToNull,
        TrapCode::BadSignature,
        TrapCode::IntegerOverflow,
        TrapCode::IntegerDivisionByZero,
        TrapCode::BadConversionToInteger,
        TrapCode::StackOverflow,
        TrapCode::HostError,
        TrapCode::Interrupt,
        TrapCode::OutOfFuel,
        TrapCode::NullReference,
    ];

    /// The code for a numeric value passed by generated code.
    pub fn from_u8(v: u8) -> Option<TrapCode> {
        Self::ALL.iter().copied().find(|c| *c as u8 == v)
    }

    /// The message the spec test suite uses for this trap.
    pub fn message(self) -> &'static str {
        match self {
            TrapCode::Unreachable => "unreachable",
            TrapCode::MemoryOutOfBounds => "out of bounds memory access",
            TrapCode::TableOutOfBounds => "out of bounds table access",
            TrapCode::UndefinedElement => "undefined element",
            TrapCode::IndirectCallToNull => "uninitialized element",
            TrapCode::BadSignature => "indirect call type mismatch",
            TrapCode::IntegerOverflow => "integer overflow",
            TrapCode::IntegerDivisionByZero => "integer divide by zero",
            TrapCode::BadConversionToInteger => "invalid conversion to integer",
            TrapCode::StackOverflow => "call stack exhausted",
            TrapCode::HostError => "host function error",
            TrapCode::Interrupt => "interrupt",
            TrapCode::OutOfFuel => "all fuel consumed",
            TrapCode::NullReference => "null reference",
        }
    }
}

impl std::fmt::Display for TrapCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}
