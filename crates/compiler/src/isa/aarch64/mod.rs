//! aarch64 backend (AAPCS64 hosts). Being written: see issue 3.
