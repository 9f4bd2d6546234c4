//! Test data and how to compare it: sizes, reproducible payloads, hex, and byte comparisons
//! that report lengths and SHA-256 digests instead of megabytes of bytes.

use streamtool::streams::tls::sha256;

/// One KiB.
pub const KIB: usize = 1 << 10;

/// One MiB.
pub const MIB: usize = 1 << 20;

/// `len` pseudo-random bytes from `seed` (xorshift64*): every transfer is different, and a
/// byte out of place shows.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Whether `haystack` contains `needle` (an empty needle is everywhere).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `got` is `expected`, by length and SHA-256; the error says both (for tests that
/// collect the outcomes of many clients before failing).
pub fn compare_bytes(what: &str, got: &[u8], expected: &[u8]) -> Result<(), String> {
    if got.len() == expected.len() && sha256(got) == sha256(expected) {
        return Ok(());
    }
    Err(format!(
        "{what}: got {} bytes (sha256 {}), expected {} bytes (sha256 {})",
        got.len(),
        hex(&sha256(got)),
        expected.len(),
        hex(&sha256(expected))
    ))
}

/// Asserts `got` is `expected`, by length and SHA-256 (no megabytes of bytes in a message).
#[track_caller]
pub fn same_bytes(what: &str, got: &[u8], expected: &[u8]) {
    if let Err(message) = compare_bytes(what, got, expected) {
        panic!("{message}");
    }
}
