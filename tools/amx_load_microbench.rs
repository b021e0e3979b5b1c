//! The AMX path's tile step taken apart on one core, to compare the host's states (the AMX
//! path's speed swings 1.6x with them: docs/speed.md, seventeenth session) and to see what bounds
//! the step (eighteenth session):
//! - the kernel's tile loads (tiles of 12 rows of 64 bytes, the input tiles' shape) from buffers
//!   that fit L1, L2 or neither, in ns a cache line;
//! - its tile products (12 rows, K = 24, four accumulators as the kernel keeps them) with the
//!   operands in registers, in ns a product;
//! - the kernel's whole step (ten tile loads, twelve products: `amx::pass`) with its operands in
//!   L1, with the input rows on cache lines as the engine keeps them and 16 bytes off, and with
//!   no loads, in ns a product;
//! - the drain at the end of a point (four tile stores, four tile zeros) after every 4, 12 and
//!   36 products (the last layer's and the other layers' passes drain every 12 and 36);
//! - 96 and 192 AVX-512 FMAs on registers after each step, with and without the step's tile
//!   loads: whether the vector work overlaps the tile work, in ns a step;
//! - (nineteenth session) tile products of other shapes (M rows of A and C, K bf16 deep): what a
//!   product's time follows, so whether packing more into a tile's K could pay;
//! - the kernel's pass (its loads, products and point ends) over rings of transformed rows as
//!   the engine keeps them, one layer's three rows after another's, with the rings of six
//!   layers within L2, the size of x3's (1280 / 2 wide) and of x2's (1920 / 2): the tile work
//!   alone, in ns a product.
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

/// Loads tile register `$t` from `$ptr`, rows `$stride` bytes apart.
macro_rules! load {
    ($t:literal, $ptr:expr, $stride:expr) => {
        asm!(concat!("tileloadd tmm", $t, ", [{p} + {s} * 1]"),
             p = in(reg) $ptr, s = in(reg) $stride, options(nostack, readonly))
    };
}

/// The four products of a group: tmm(2j + b) += tmm(4 + j) x tmm(6 + b).
macro_rules! group {
    () => {
        asm!(
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            options(nostack, nomem)
        )
    };
}

#[repr(C, align(64))]
struct TileConfig([u8; 64]);

/// Palette 1, tiles 0-7 of `ROWS` rows, those the products read K = 24 bf16 (48 bytes) wide
/// where they are weights (tmm4, tmm5).
fn config() -> TileConfig {
    shaped_config(ROWS as u8, 24)
}

/// Palette 1, four accumulators of `m` rows (tmm0-3), two A tiles of `m` rows of K = `k` bf16
/// (tmm4, tmm5), two B tiles of k / 2 rows of 64 bytes (tmm6, tmm7).
fn shaped_config(m: u8, k: u16) -> TileConfig {
    let mut b = [0u8; 64];
    b[0] = 1;
    for t in 0..8 {
        let (rows, bytes): (u8, u16) = match t {
            0..=3 => (m, ROW_BYTES as u16),
            4 | 5 => (m, 2 * k),
            _ => ((k / 2) as u8, ROW_BYTES as u16),
        };
        b[16 + 2 * t..18 + 2 * t].copy_from_slice(&bytes.to_le_bytes());
        b[48 + t] = rows;
    }
    TileConfig(b)
}

/// Loads `cfg`, zeroes the accumulators and fills the operand tiles from `zero`.
///
/// # Safety
/// The tile state permitted; `cfg` a valid palette-1 configuration (rows <= 16, bytes a row
/// <= 64), so that the loads read at most 16 rows of 64 bytes: inside `zero`.
unsafe fn start_tiles(cfg: &TileConfig, zero: &[u8; 1024]) {
    // SAFETY: the caller's contract.
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
        asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
             "tileloadd tmm4, [{p} + {s} * 1]", "tileloadd tmm5, [{p} + {s} * 1]",
             "tileloadd tmm6, [{p} + {s} * 1]", "tileloadd tmm7, [{p} + {s} * 1]",
             p = in(reg) zero.as_ptr(), s = in(reg) ROW_BYTES, options(nostack, readonly));
    }
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
                load!("6", p, ROW_BYTES);
                load!("7", q, ROW_BYTES);
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
        unsafe { group!() };
    }
    start.elapsed().as_secs_f64() * 1e9 / (4 * n) as f64
}

/// Bytes of a weight tile (12 rows of K = 24 bf16) and of a block-point region (high then low
/// input tiles), as the kernel lays them out.
const WEIGHT_TILE: usize = ROWS * 48;
const REGION: usize = 2 * TILE_BYTES;

/// `groups` groups of eight AVX-512 FMAs on registers (eight chains).
///
/// # Safety
/// AVX-512F (a CPU with AMX has it).
#[inline(always)]
unsafe fn register_fmas(groups: usize) {
    for _ in 0..groups {
        // SAFETY: registers only; AVX-512F (the caller's contract).
        unsafe {
            asm!("vfmadd231ps zmm0, zmm8, zmm9", "vfmadd231ps zmm1, zmm8, zmm9",
                 "vfmadd231ps zmm2, zmm8, zmm9", "vfmadd231ps zmm3, zmm8, zmm9",
                 "vfmadd231ps zmm4, zmm8, zmm9", "vfmadd231ps zmm5, zmm8, zmm9",
                 "vfmadd231ps zmm6, zmm8, zmm9", "vfmadd231ps zmm7, zmm8, zmm9",
                 out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
                 out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
                 out("zmm8") _, out("zmm9") _, options(nostack, nomem));
        }
    }
}

/// `n` steps of the kernel's split pass (its loads and products in its order), over eight
/// steps' operands in turn from `weights` and `inputs` (both L1-sized), each step followed by
/// `fma_groups` groups of [`register_fmas`]; ns a step. Without `loads`, the products alone.
fn steps(n: usize, weights: *const u8, inputs: *const u8, loads: bool, fma_groups: usize) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        let s = i % 8;
        // SAFETY: step s's two weight tiles (high and low, each followed by the other tile's)
        // and two regions lie inside the buffers (main sizes them for eight steps); the tile
        // state is configured and permitted (main); AVX-512F comes with AMX.
        unsafe {
            let (w0, w1) = (weights.add(s * 4 * WEIGHT_TILE), weights.add((s * 4 + 2) * WEIGHT_TILE));
            let (v0, v1) = (inputs.add(s * 2 * REGION), inputs.add((s * 2 + 1) * REGION));
            if loads {
                load!("4", w0, 48usize);
                load!("5", w1, 48usize);
                load!("6", v0, ROW_BYTES);
                load!("7", v1, ROW_BYTES);
            }
            group!();
            if loads {
                load!("4", w0.add(WEIGHT_TILE), 48usize);
                load!("5", w1.add(WEIGHT_TILE), 48usize);
            }
            group!();
            if loads {
                load!("6", v0.add(TILE_BYTES), ROW_BYTES);
                load!("7", v1.add(TILE_BYTES), ROW_BYTES);
                load!("4", w0, 48usize);
                load!("5", w1, 48usize);
            }
            group!();
            register_fmas(fma_groups);
        }
    }
    start.elapsed().as_secs_f64() * 1e9 / n as f64
}

/// `n` times [`register_fmas`] of `fma_groups` alone; ns a time.
fn fmas_alone(n: usize, fma_groups: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: AVX-512F comes with AMX (main checked for it).
        unsafe { register_fmas(fma_groups) };
    }
    start.elapsed().as_secs_f64() * 1e9 / n as f64
}

/// `n` times: `groups` groups of four products, then the end of a point (the four accumulators
/// stored to `out`, then zeroed); ns a product.
fn drains(n: usize, groups: usize, out: *mut u8) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: four tiles of 12 rows of 64 bytes from `out` (main gives it 4 x 768 bytes);
        // the tile state is configured and permitted (main).
        unsafe {
            for _ in 0..groups {
                group!();
            }
            asm!("tilestored [{p} + {s}], tmm0", "tilestored [{p} + {s} + 768], tmm1",
                 "tilestored [{p} + {s} + 1536], tmm2", "tilestored [{p} + {s} + 2304], tmm3",
                 "tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
                 p = in(reg) out, s = in(reg) ROW_BYTES, options(nostack));
        }
    }
    start.elapsed().as_secs_f64() * 1e9 / (4 * groups * n) as f64
}

/// `n` groups of four products with tiles of `m` rows and K = `k` (A: m x k bf16, B: k / 2 rows
/// of 64 bytes, C: m rows of 64 bytes), operands from `zero`; ns a product. Leaves the tiles
/// configured for that shape.
fn shaped_products(m: u8, k: u16, n: usize, zero: &[u8; 1024]) -> f64 {
    // SAFETY: permitted (main); a valid configuration (m <= 16, k <= 32).
    unsafe { start_tiles(&shaped_config(m, k), zero) };
    products(n)
}

/// Six points of the kernel's split pass over two blocks (three kernel rows from `rows`, the
/// blocks' regions one after another in each), each point's accumulators stored to `out`;
/// the weights' 72 tiles from `weights`.
///
/// # Safety
/// The tile state configured as `config` makes it; `rows` hold the two blocks' six regions,
/// `weights` 72 weight tiles, `out` eight tiles of 768 bytes.
unsafe fn pass(weights: *const u8, rows: [*const u8; 3], out: *mut u8) {
    for m in 0..6 {
        // SAFETY (whole loop): the caller's contract.
        unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
            for (ky, row) in rows.iter().enumerate() {
                let w0 = weights.add((m * 3 + ky) * 4 * WEIGHT_TILE);
                let w1 = w0.add(2 * WEIGHT_TILE);
                let v0 = row.add(m * REGION);
                let v1 = v0.add(6 * REGION);
                load!("4", w0, 48usize);
                load!("5", w1, 48usize);
                load!("6", v0, ROW_BYTES);
                load!("7", v1, ROW_BYTES);
                group!();
                load!("4", w0.add(WEIGHT_TILE), 48usize);
                load!("5", w1.add(WEIGHT_TILE), 48usize);
                group!();
                load!("6", v0.add(TILE_BYTES), ROW_BYTES);
                load!("7", v1.add(TILE_BYTES), ROW_BYTES);
                load!("4", w0, 48usize);
                load!("5", w1, 48usize);
                group!();
            }
            let at = out.add((m % 2) * 4 * TILE_BYTES);
            asm!("tilestored [{p} + {s}], tmm0", "tilestored [{p} + {s} + 768], tmm1",
                 "tilestored [{p} + {s} + 1536], tmm2", "tilestored [{p} + {s} + 2304], tmm3",
                 p = in(reg) at, s = in(reg) ROW_BYTES, options(nostack));
        }
    }
}

/// Rows of `blocks` blocks of transformed rows (6 regions a block), three a layer for six
/// layers in `ring`: for each output row, each layer's passes over its three rows, pair of
/// blocks by pair (the rows' roles rotating as the engine's ring slots do); ns a product.
fn ring_passes(ring: &[u8], blocks: usize, weights: *const u8, out: *mut u8, outputs: usize) -> f64 {
    let row_bytes = blocks * 6 * REGION;
    let layers = ring.len() / (3 * row_bytes);
    let start = Instant::now();
    for y in 0..outputs {
        for layer in 0..layers {
            let rows: [*const u8; 3] = std::array::from_fn(|k| ring[(layer * 3 + (y + k) % 3) * row_bytes..].as_ptr());
            for pair in (0..blocks).step_by(2) {
                // SAFETY: the pair's regions inside each row (whole pairs: `blocks` even), 72
                // weight tiles and 8 output tiles (main); the tile state as `config` makes it.
                unsafe { pass(weights, rows.map(|row| row.add(pair * 6 * REGION)), out) };
            }
        }
    }
    let products = outputs * layers * (blocks / 2) * 6 * 3 * 12;
    start.elapsed().as_secs_f64() * 1e9 / products as f64
}

/// A zeroed buffer of `len` bytes whose `offset`-th byte starts a cache line; (buffer, offset).
fn line_aligned(len: usize) -> (Vec<u8>, usize) {
    let buffer = vec![0u8; len + 64];
    let offset = buffer.as_ptr().align_offset(64);
    (buffer, offset)
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
    // SAFETY: permitted (just above); the kernel's shapes.
    unsafe { start_tiles(&cfg, &zero) };
    // Whole pairs of tiles: 24 KB (L1: 48 KB), 768 KB (L2: 2 MB), 96 MB (neither).
    let sizes = [
        (32 * TILE_BYTES, "24 KB (L1)"),
        (1024 * TILE_BYTES, "768 KB (L2)"),
        (131_072 * TILE_BYTES, "96 MB"),
    ];
    let buffers: Vec<Vec<u8>> = sizes.iter().map(|&(len, _)| vec![1u8; len]).collect();
    // Eight steps' operands (weights: four tiles a step; inputs: two regions, and 16 bytes more
    // for the misaligned run), and the drained accumulators' four tiles.
    let (weight_buffer, w) = line_aligned(8 * 4 * WEIGHT_TILE);
    let (input_buffer, v) = line_aligned(8 * 2 * REGION + 16);
    let (mut drain_buffer, d) = line_aligned(4 * TILE_BYTES);
    let (weights, inputs) = (weight_buffer[w..].as_ptr(), input_buffer[v..].as_ptr());
    let drained = drain_buffer[d..].as_mut_ptr();
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
        let n = 1 << 20;
        let per_product = |step_ns: f64| step_ns / 12.0;
        println!(
            "round {round}: the kernel's step, operands in L1: {:.2} ns a product (input rows 16 bytes off the lines: {:.2}; no loads: {:.2})",
            per_product(steps(n, weights, inputs, true, 0)),
            per_product(steps(n, weights, inputs.wrapping_add(16), true, 0)),
            per_product(steps(n, weights, inputs, false, 0))
        );
        println!(
            "round {round}: products with a point's end after every 4 / 12 / 36: {:.2} / {:.2} / {:.2} ns a product",
            drains(n, 1, drained),
            drains(n, 3, drained),
            drains(n, 9, drained)
        );
        for fma_groups in [12, 24] {
            println!(
                "round {round}: {} register FMAs {:.1} ns; twelve products {:.1} ns, with the FMAs after them {:.1}; the kernel's step {:.1} ns, with the FMAs {:.1}",
                8 * fma_groups,
                fmas_alone(n, fma_groups),
                steps(n, weights, inputs, false, 0),
                steps(n, weights, inputs, false, fma_groups),
                steps(n, weights, inputs, true, 0),
                steps(n, weights, inputs, true, fma_groups)
            );
        }
    }
    // Rings of three rows: one layer's of 16 blocks (within L2, 432 KB), and six layers' of x3's
    // 10 blocks (1.6 MB) and of x2's 15 (rounded up to 16: 2.6 MB).
    let rings = [(16, 1, "within L2"), (10, 6, "x3's"), (15, 6, "x2's")].map(|(blocks, layers, name)| {
        let blocks: usize = blocks + blocks % 2;
        let len = layers * 3 * blocks * 6 * REGION;
        // Written, so that every page is its own (a zeroed allocation's pages all map the one
        // zero page until written, which would fit any ring in the cache).
        let (mut buffer, offset) = line_aligned(len);
        buffer.fill(1);
        ((buffer, offset), len, blocks, name)
    });
    let (ring_weights, rw) = line_aligned(72 * WEIGHT_TILE);
    let (mut ring_out, ro) = line_aligned(8 * TILE_BYTES);
    for round in 1..=3 {
        let shapes = [(12, 24), (12, 32), (16, 24), (16, 32), (12, 16)].map(|(m, k)| {
            let ns = shaped_products(m, k, 1 << 20, &zero);
            format!(
                "{m} x 16 x {k} {ns:.2} ns ({:.0} MAC/ns)",
                m as f64 * 16.0 * k as f64 / ns
            )
        });
        println!(
            "round {round}: tile products by shape (M x N x K, four accumulators): {}",
            shapes.join(", ")
        );
        // SAFETY: as above, the kernel's shapes again.
        unsafe { asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly)) };
        let passes = rings.each_ref().map(|((buffer, offset), len, blocks, name)| {
            let ring = &buffer[*offset..*offset + len];
            let ns = ring_passes(
                ring,
                *blocks,
                ring_weights[rw..].as_ptr(),
                ring_out[ro..].as_mut_ptr(),
                60,
            );
            format!("{name} ({} KB) {ns:.2}", ring.len() / 1024)
        });
        println!(
            "round {round}: the kernel's passes over rings of transformed rows, ns a product: {}",
            passes.join(", ")
        );
    }
    // SAFETY: releases the tile state this thread configured.
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
}
