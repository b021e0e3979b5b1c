//! The two parts of the AMX path's tile step timed apart, to compare the host's states (the AMX
//! path's speed swings 1.6x with them: docs/speed.md, seventeenth session): on one core, the
//! kernel's tile loads (tiles of 12 rows of 64 bytes, the input tiles' shape) from buffers that
//! fit L1, L2 or neither, in ns a cache line, and its tile products (12 rows, K = 24, four
//! accumulators as the kernel keeps them) with the operands in registers, in ns a product.
//!
//!     rustc --edition 2024 -O -C target-cpu=native tools/amx_load_microbench.rs \
//!         -o /tmp/amx_load_microbench
//!     /tmp/amx_load_microbench
//!
//! Prints each figure three times. Needs AMX-TILE and AMX-BF16 and Linux's permission for the
//! tile state (requested here, as the engine does).

use std::arch::asm;
use std::time::Instant;

/// Rows and bytes a row of the tiles loaded (the kernel's input tiles at 24 channels).
const ROWS: usize = 12;
const ROW_BYTES: usize = 64;
const TILE_BYTES: usize = ROWS * ROW_BYTES;

#[repr(C, align(64))]
struct TileConfig([u8; 64]);

/// Palette 1, tiles 0-7 of `ROWS` rows, those the products read K = 24 bf16 (48 bytes) wide
/// where they are weights (tmm4, tmm5).
fn config() -> TileConfig {
    let mut b = [0u8; 64];
    b[0] = 1;
    for t in 0..8 {
        let bytes: u16 = if t == 4 || t == 5 { 48 } else { ROW_BYTES as u16 };
        b[16 + 2 * t..18 + 2 * t].copy_from_slice(&bytes.to_le_bytes());
        b[48 + t] = ROWS as u8;
    }
    TileConfig(b)
}

/// Linux's permission for the tile data (arch_prctl ARCH_REQ_XCOMP_PERM, XTILEDATA).
fn request_tiles() -> bool {
    let ret: i64;
    // SAFETY: the arch_prctl system call with two integer arguments; it reads and writes no
    // memory of this process.
    unsafe {
        asm!("syscall", inlateout("rax") 158i64 => ret, in("rdi") 0x1023i64, in("rsi") 18i64,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret == 0
}

/// Loads every tile of `buffer` into tmm6 and tmm7 in turn, `sweeps` times; ns a cache line.
fn loads(buffer: &[u8], sweeps: usize) -> f64 {
    let tiles = buffer.len() / TILE_BYTES;
    let start = Instant::now();
    for _ in 0..sweeps {
        for t in (0..tiles).step_by(2) {
            let p = buffer[t * TILE_BYTES..].as_ptr();
            let q = buffer[(t + 1) * TILE_BYTES..].as_ptr();
            // SAFETY: tiles t and t + 1 lie inside the buffer (an even count of whole tiles);
            // the tile state is configured and permitted (main).
            unsafe {
                asm!("tileloadd tmm6, [{p} + {s} * 1]", "tileloadd tmm7, [{q} + {s} * 1]",
                     p = in(reg) p, q = in(reg) q, s = in(reg) ROW_BYTES, options(nostack, readonly));
            }
        }
    }
    let lines = sweeps * tiles * TILE_BYTES / 64;
    start.elapsed().as_secs_f64() * 1e9 / lines as f64
}

/// `n` groups of four products (tmm0-3 += tmm4/5 x tmm6/7); ns a product.
fn products(n: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: tile registers configured (main); no memory.
        unsafe {
            asm!(
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                options(nostack, nomem)
            );
        }
    }
    start.elapsed().as_secs_f64() * 1e9 / (4 * n) as f64
}

fn main() {
    // The flags Linux reports (std's detection of AMX is unstable).
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flag = |name: &str| cpuinfo.split_whitespace().any(|word| word == name);
    if !(flag("amx_tile") && flag("amx_bf16")) {
        println!("SKIP: this CPU has no AMX-TILE and AMX-BF16");
        return;
    }
    if !request_tiles() {
        println!("SKIP: Linux refused the tile state (arch_prctl ARCH_REQ_XCOMP_PERM)");
        return;
    }
    let cfg = config();
    let zero = [0u8; 1024];
    // SAFETY: a valid palette-1 configuration (rows <= 16, bytes a row <= 64); the zero loads
    // read 12 rows of at most 64 bytes, 48 apart: inside `zero`'s 1024.
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
        asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
             "tileloadd tmm4, [{p} + {s} * 1]", "tileloadd tmm5, [{p} + {s} * 1]",
             "tileloadd tmm6, [{p} + {s} * 1]", "tileloadd tmm7, [{p} + {s} * 1]",
             p = in(reg) zero.as_ptr(), s = in(reg) 48usize, options(nostack, readonly));
    }
    // Whole pairs of tiles: 24 KB (L1: 48 KB), 768 KB (L2: 2 MB), 96 MB (neither).
    let sizes = [
        (32 * TILE_BYTES, "24 KB (L1)"),
        (1024 * TILE_BYTES, "768 KB (L2)"),
        (131_072 * TILE_BYTES, "96 MB"),
    ];
    let buffers: Vec<Vec<u8>> = sizes.iter().map(|&(len, _)| vec![1u8; len]).collect();
    for round in 1..=3 {
        for (buffer, (len, name)) in buffers.iter().zip(sizes) {
            let sweeps = (1 << 28) / len;
            println!(
                "round {round}: tile loads from {name}: {:.3} ns a cache line",
                loads(buffer, sweeps.max(2))
            );
        }
        println!(
            "round {round}: tile products 12 x 16 x 24 (operands in registers): {:.2} ns a product",
            products(1 << 22)
        );
    }
    // SAFETY: releases the tile state this thread configured.
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
}
