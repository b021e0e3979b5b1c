//! The instruction sets the kernels are written for, and the detection that alone may select
//! one: an [`Isa`] can only be made by checking the CPU (and, for AMX, asking Linux for the
//! tile state), so safe code can never run AVX-512 or AMX kernels on a CPU without them.

use std::fmt;

/// A kernel path: one module of `engine::kernels` each, with the number format it computes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Path {
    /// Plain Rust, any CPU (fp32).
    Portable,
    /// AVX2 + FMA, 8 lanes (fp32).
    Avx2,
    /// AVX-512F, 16 lanes (fp32).
    Avx512,
    /// AMX-BF16 tile products in split precision (each value as a bf16 high part plus a bf16
    /// low part, three products per pair), with AVX-512 around them: close to fp32.
    AmxBf16,
}

impl Path {
    /// Every path, slowest first.
    pub const ALL: [Path; 4] = [Path::Portable, Path::Avx2, Path::Avx512, Path::AmxBf16];

    /// Whether the convolutions round their operands below fp32.
    pub fn is_reduced_precision(self) -> bool {
        self == Path::AmxBf16
    }

    /// What the CPU must have for this path, as `/proc/cpuinfo` and Intel name it.
    pub fn required_features(self) -> &'static str {
        match self {
            Path::Portable => "nothing",
            Path::Avx2 => "AVX2 and FMA",
            Path::Avx512 => "AVX-512F (with AVX2 and FMA)",
            Path::AmxBf16 => "AMX-TILE, AMX-BF16 and AVX-512F/BW/BF16/VBMI",
        }
    }
}

/// A kernel path name that is not one of the four.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown kernel path `{0}` (portable, avx2, avx512 or amx)")]
pub struct UnknownPath(pub String);

impl std::str::FromStr for Path {
    type Err = UnknownPath;

    /// `portable`, `avx2`, `avx512` or `amx`.
    fn from_str(text: &str) -> Result<Self, UnknownPath> {
        match text {
            "portable" => Ok(Path::Portable),
            "avx2" => Ok(Path::Avx2),
            "avx512" => Ok(Path::Avx512),
            "amx" => Ok(Path::AmxBf16),
            _ => Err(UnknownPath(text.into())),
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Path::Portable => "portable fp32",
            Path::Avx2 => "AVX2 fp32",
            Path::Avx512 => "AVX-512 fp32",
            Path::AmxBf16 => "AMX split bf16",
        })
    }
}

/// Why a path cannot run on this machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("the {path} path needs {}, which this CPU lacks", path.required_features())]
    MissingFeatures { path: Path },
    #[error("the {path} path needs x86-64; this is {}", std::env::consts::ARCH)]
    OtherArchitecture { path: Path },
    #[error("Linux refused the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM: errno {errno})")]
    AmxPermissionRefused { errno: i32 },
    #[error("the OS does not enable the AMX tile state (XCR0 bits 17 and 18 clear)")]
    AmxNotEnabledByOs,
}

/// A path this CPU has been checked to run. The field is private: [`Isa::new`] and
/// [`Isa::best_fp32`] (which detect) are the only ways to get one, so dispatch on it is sound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Isa {
    path: Path,
}

impl Isa {
    /// The portable path, which every CPU runs.
    pub fn portable() -> Self {
        Isa { path: Path::Portable }
    }

    /// Checks that the CPU (and OS) can run `path`.
    pub fn new(path: Path) -> Result<Self, Unavailable> {
        detect(path).map(|()| Isa { path })
    }

    /// The fastest fp32 path of this CPU.
    pub fn best_fp32() -> Self {
        [Path::Avx512, Path::Avx2]
            .into_iter()
            .find_map(|p| Isa::new(p).ok())
            .unwrap_or_else(Isa::portable)
    }

    /// Every path, with whether it runs here (and why not).
    pub fn survey() -> Vec<(Path, Result<Isa, Unavailable>)> {
        Path::ALL.into_iter().map(|p| (p, Isa::new(p))).collect()
    }

    pub fn path(self) -> Path {
        self.path
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.path.fmt(f)
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect(path: Path) -> Result<(), Unavailable> {
    match path {
        Path::Portable => Ok(()),
        _ => Err(Unavailable::OtherArchitecture { path }),
    }
}

#[cfg(target_arch = "x86_64")]
fn detect(path: Path) -> Result<(), Unavailable> {
    use std::arch::is_x86_feature_detected as has;
    let missing = Err(Unavailable::MissingFeatures { path });
    let avx2 = has!("avx2") && has!("fma");
    match path {
        Path::Portable => Ok(()),
        Path::Avx2 if avx2 => Ok(()),
        Path::Avx512 if avx2 && has!("avx512f") => Ok(()),
        Path::AmxBf16
            if avx2
                && has!("avx512f")
                && has!("avx512bw")
                && has!("avx512bf16")
                && has!("avx512vbmi")
                && cpu_has_amx_bf16() =>
        {
            amx_tile_permission()
        }
        _ => missing,
    }
}

/// CPUID leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE (std's detection of these is unstable).
#[cfg(target_arch = "x86_64")]
fn cpu_has_amx_bf16() -> bool {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    if __cpuid(0).eax < 7 {
        return false;
    }
    let edx = __cpuid_count(7, 0).edx;
    edx & (1 << 22) != 0 && edx & (1 << 24) != 0
}

/// The tile registers are an XSAVE component that Linux hands out per process on request; the
/// answer is asked once and kept.
#[cfg(target_arch = "x86_64")]
fn amx_tile_permission() -> Result<(), Unavailable> {
    static ANSWER: std::sync::OnceLock<Result<(), Unavailable>> = std::sync::OnceLock::new();
    ANSWER
        .get_or_init(|| {
            if !std::arch::is_x86_feature_detected!("xsave") {
                return Err(Unavailable::AmxNotEnabledByOs);
            }
            // SAFETY: XSAVE (hence XGETBV) was detected just above.
            let xcr0 = unsafe { std::arch::x86_64::_xgetbv(0) };
            if xcr0 & (0b11 << 17) != 0b11 << 17 {
                return Err(Unavailable::AmxNotEnabledByOs);
            }
            const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
            const XFEATURE_XTILEDATA: libc::c_long = 18;
            // SAFETY: arch_prctl with this request only reads its integer argument.
            let r = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) };
            if r == 0 {
                Ok(())
            } else {
                Err(Unavailable::AmxPermissionRefused {
                    errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
                })
            }
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_always_runs_and_the_best_fp32_path_is_detected() {
        assert_eq!(Isa::new(Path::Portable), Ok(Isa::portable()));
        let best = Isa::best_fp32();
        assert!(!best.path().is_reduced_precision());
        assert_eq!(Isa::new(best.path()), Ok(best));
        // A path reported as missing names what it needs.
        for (path, answer) in Isa::survey() {
            if let Err(why) = answer {
                assert!(
                    why.to_string().contains(&path.to_string()) || path == Path::AmxBf16,
                    "{why}"
                );
            }
        }
    }
}
