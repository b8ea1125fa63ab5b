//! The few Intel crypto_mb functions verdict calls, loaded at run time with `libloading`.
//!
//! Declarations follow the library's headers (`crypto_mb/cpu_features.h`, `status.h`, `rsa.h`,
//! `ec_nistp256.h`, `ec_nistp384.h`, `ec_nistp521.h`, `ed25519.h`, as shipped in the PyPI wheel
//! `ipp-crypto-include` 2026.2.0). Every entry point takes eight lanes: arrays of eight pointers,
//! one per independent operation, and returns one `mbx_status` word holding a 4-bit status per
//! lane (`MBX_GET_STS`). Byte strings (`int8u*`: RSA input and output, ECDSA `r`, `s` and
//! digest) are big-endian; multi-precision integers (`int64u*`: the RSA modulus, EC
//! coordinates) are little-endian 64-bit limbs. The library's own sources convert all eight
//! lanes whatever their status, so verdict never passes a null lane: the safe wrappers here
//! take eight references, and callers fill unused lanes with a repeat of a real one.
//!
//! Runtime dependencies: `libcrypto_mb.so` needs `libsvml.so`, `libimf.so`, `libirng.so` and
//! `libintlc.so.5` (Intel compiler runtime, PyPI `intel-cmplr-lib-rt`) and the system's
//! `libcrypto.so.3`. When the library is loaded from an explicit path, the Intel runtime
//! libraries found beside it are loaded first, by absolute path, so the dynamic loader resolves
//! them by soname without `LD_LIBRARY_PATH` (the layout of the PyPI wheels, which install all of
//! them into `<venv>/lib`). When it is loaded by bare name, the loader's search path must find
//! everything.
//!
//! This is one of the few modules allowed `unsafe`: every block states why it is sound.
#![allow(
    unsafe_code,
    reason = "FFI into Intel crypto_mb, loaded at run time; each block states why it is sound"
)]

use std::ffi::c_int;
use std::path::{Path, PathBuf};

/// Lanes per call (`mb8`).
pub(crate) const LANES: usize = 8;

/// `MBX_STATUS_OK`.
pub(crate) const STATUS_OK: u32 = 0;
/// `MBX_STATUS_SIGNATURE_ERR`: the lane's signature does not verify.
pub(crate) const STATUS_SIGNATURE_ERR: u32 = 8;

/// `MBX_STATUS_NULL_PARAM_ERR`, which verdict never causes: the unit tests inject it.
#[cfg(test)]
pub(crate) const MBX_STATUS_NULL_PARAM_ERR_FOR_TESTS: u32 = 2;

/// `MBX_GET_STS`: lane `lane`'s 4-bit status.
pub(crate) fn lane_status(status: u32, lane: usize) -> u32 {
    (status >> (4 * (lane & 7))) & 0xf
}

/// `enum MBX_ALGO` values (cpu_features.h), for `mbx_get_algo_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum MbxAlgo {
    Rsa2k = 1,
    Rsa3k = 2,
    Rsa4k = 3,
    EcNistP256 = 5,
    EcNistP384 = 6,
    EcNistP521 = 7,
    Ed25519 = 14,
}

/// `MBX_WIDTH_MB8` bit of an `MBX_ALGO_INFO`.
const WIDTH_MB8: u64 = 8;

/// The Intel compiler runtime libraries `libcrypto_mb.so` needs, in dependency order.
const RUNTIME_LIBRARIES: [&str; 4] = ["libintlc.so.5", "libirng.so", "libimf.so", "libsvml.so"];

/// The library's default file name, looked up on the loader's search path.
pub(crate) const DEFAULT_LIBRARY: &str = "libcrypto_mb.so";

/// Opaque `mbx_RSA_Method`.
#[repr(C)]
pub(crate) struct RsaMethod {
    _private: [u8; 0],
}

type GetCpuFeatures = unsafe extern "C" fn() -> u64;
type IsApplicable = unsafe extern "C" fn(u64) -> c_int;
type GetAlgoInfo = unsafe extern "C" fn(c_int) -> u64;
type RsaPub65537Method = unsafe extern "C" fn(c_int) -> *const RsaMethod;
type RsaPublicMb8 = unsafe extern "C" fn(
    *const *const u8,
    *const *mut u8,
    *const *const u64,
    c_int,
    *const RsaMethod,
    *mut u8,
) -> u32;
type EcdsaVerifyMb8 = unsafe extern "C" fn(
    *const *const u8,
    *const *const u8,
    *const *const u8,
    *const *const u64,
    *const *const u64,
    *const *const u64,
    *mut u8,
) -> u32;
type Ed25519VerifyMb8 = unsafe extern "C" fn(
    *const *const [u8; 32],
    *const *const [u8; 32],
    *const *const u8,
    *const u32,
    *const *const [u8; 32],
) -> u32;

/// Why the library could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoadFailure {
    pub(crate) library: String,
    pub(crate) reason: String,
}

/// A loaded `libcrypto_mb.so` and the entry points verdict uses. Functions the library lacks
/// are `None` (their algorithms stay on aws-lc-rs).
pub(crate) struct Library {
    path: String,
    get_cpu_features: GetCpuFeatures,
    is_applicable: IsApplicable,
    get_algo_info: Option<GetAlgoInfo>,
    /// `mbx_RSA_pub65537_Method(2048 | 3072 | 4096)`; null when unavailable.
    rsa_methods: [*const RsaMethod; 3],
    rsa_public: Option<RsaPublicMb8>,
    p256_verify: Option<EcdsaVerifyMb8>,
    p384_verify: Option<EcdsaVerifyMb8>,
    p521_verify: Option<EcdsaVerifyMb8>,
    ed25519_verify: Option<Ed25519VerifyMb8>,
    // Declared after the function pointers and dropped in this order: the library, then its
    // runtime. verdict never drops a loaded engine in practice (it lives for the process).
    _library: libloading::Library,
    _runtime: Vec<libloading::Library>,
}

// SAFETY: the function pointers and method tables point into the loaded library's code and
// read-only data, which stay mapped while `_library` lives (it is owned by `self`). The entry
// points used are reentrant: they keep no global mutable state (every call works on its own
// stack buffers, or heap buffers it allocates and frees), so calling them from several threads
// at once is sound.
unsafe impl Send for Library {}
// SAFETY: as for `Send`; `&Library` only exposes those reentrant calls.
unsafe impl Sync for Library {}

fn fail(library: &str, reason: impl std::fmt::Display) -> LoadFailure {
    LoadFailure {
        library: library.to_owned(),
        reason: reason.to_string(),
    }
}

impl Library {
    /// Loads the library from `path` (with the Intel runtime beside it), or by
    /// [`DEFAULT_LIBRARY`] from the loader's search path.
    pub(crate) fn load(path: Option<&Path>) -> Result<Library, LoadFailure> {
        let shown = path.map_or_else(|| DEFAULT_LIBRARY.to_owned(), |p| p.display().to_string());
        let mut runtime = Vec::new();
        let library = match path {
            Some(path) => {
                if !path.exists() {
                    return Err(fail(&shown, "no such file"));
                }
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                for name in RUNTIME_LIBRARIES {
                    let candidate: PathBuf = dir.join(name);
                    if candidate.exists() {
                        // SAFETY: loading runs the library's initialisers; these are Intel's
                        // compiler runtime libraries, whose initialisers only set up their own
                        // dispatch tables. The handle is kept for as long as `Library` lives.
                        let loaded = unsafe { libloading::Library::new(&candidate) }
                            .map_err(|e| fail(&shown, format!("cannot load {name}: {e}")))?;
                        runtime.push(loaded);
                    }
                }
                // SAFETY: as above: crypto_mb's initialisers only detect CPU features.
                unsafe { libloading::Library::new(path) }
            }
            // SAFETY: as above.
            None => unsafe { libloading::Library::new(DEFAULT_LIBRARY) },
        }
        .map_err(|e| fail(&shown, e))?;

        // SAFETY (every `get` below): each symbol is declared with the signature of its
        // prototype in the crypto_mb headers named in the module documentation; the copied
        // function pointers are only used while `library` is alive (both live in `Library`).
        // SAFETY: see above.
        let get_cpu_features = unsafe { library.get::<GetCpuFeatures>("mbx_get_cpu_features") }
            .map(|s| *s)
            .map_err(|e| fail(&shown, format!("missing mbx_get_cpu_features: {e}")))?;
        // SAFETY: see above.
        let is_applicable = unsafe { library.get::<IsApplicable>("mbx_is_crypto_mb_applicable") }
            .map(|s| *s)
            .map_err(|e| fail(&shown, format!("missing mbx_is_crypto_mb_applicable: {e}")))?;
        // SAFETY: see above.
        let get_algo_info = unsafe { library.get::<GetAlgoInfo>("mbx_get_algo_info") }
            .ok()
            .map(|s| *s);
        // SAFETY: see above.
        let rsa_method = unsafe { library.get::<RsaPub65537Method>("mbx_RSA_pub65537_Method") }
            .ok()
            .map(|s| *s);
        let mut rsa_methods = [std::ptr::null(); 3];
        if let Some(method) = rsa_method {
            for (slot, bits) in rsa_methods.iter_mut().zip([2048, 3072, 4096]) {
                // SAFETY: takes a bit size and returns a pointer to a static method table, or
                // null for a size it does not implement.
                *slot = unsafe { method(bits) };
            }
        }
        // SAFETY: see above.
        let rsa_public = unsafe { library.get::<RsaPublicMb8>("mbx_rsa_public_mb8") }
            .ok()
            .map(|s| *s);
        // SAFETY: see above.
        let p256_verify = unsafe { library.get::<EcdsaVerifyMb8>("mbx_nistp256_ecdsa_verify_mb8") }
            .ok()
            .map(|s| *s);
        // SAFETY: see above.
        let p384_verify = unsafe { library.get::<EcdsaVerifyMb8>("mbx_nistp384_ecdsa_verify_mb8") }
            .ok()
            .map(|s| *s);
        // SAFETY: see above.
        let p521_verify = unsafe { library.get::<EcdsaVerifyMb8>("mbx_nistp521_ecdsa_verify_mb8") }
            .ok()
            .map(|s| *s);
        // SAFETY: see above.
        let ed25519_verify = unsafe { library.get::<Ed25519VerifyMb8>("mbx_ed25519_verify_mb8") }
            .ok()
            .map(|s| *s);
        Ok(Library {
            path: shown,
            get_cpu_features,
            is_applicable,
            get_algo_info,
            rsa_methods,
            rsa_public,
            p256_verify,
            p384_verify,
            p521_verify,
            ed25519_verify,
            _library: library,
            _runtime: runtime,
        })
    }

    /// Where the library was loaded from (as given, or its default name).
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// `mbx_get_cpu_features()`: this CPU's features as the library sees them.
    pub(crate) fn cpu_features(&self) -> u64 {
        // SAFETY: no arguments; reads CPUID results the library cached at load.
        unsafe { (self.get_cpu_features)() }
    }

    /// `mbx_is_crypto_mb_applicable(features)`: whether a CPU with `features` runs the library.
    pub(crate) fn is_applicable(&self, features: u64) -> bool {
        // SAFETY: pure function of its integer argument.
        unsafe { (self.is_applicable)(features) != 0 }
    }

    /// Whether `mbx_get_algo_info` reports an 8-lane implementation of `algo` on this CPU.
    /// `None` when the library has no `mbx_get_algo_info` (older releases).
    pub(crate) fn has_mb8(&self, algo: MbxAlgo) -> Option<bool> {
        let info = self.get_algo_info?;
        // SAFETY: pure function of its integer argument (an `enum MBX_ALGO` value).
        let width = unsafe { info(algo as c_int) };
        Some(width & WIDTH_MB8 != 0)
    }

    fn rsa_method(&self, bits: u32) -> *const RsaMethod {
        let index = match bits {
            2048 => 0,
            3072 => 1,
            4096 => 2,
            _ => return std::ptr::null(),
        };
        self.rsa_methods
            .get(index)
            .copied()
            .unwrap_or(std::ptr::null())
    }

    /// Whether `mbx_rsa_public_mb8` and the `pub65537` method for `bits` are present.
    pub(crate) fn has_rsa(&self, bits: u32) -> bool {
        self.rsa_public.is_some() && !self.rsa_method(bits).is_null()
    }

    /// Whether this library has the ECDSA verification for the curve of `coordinate_len`
    /// bytes (32: P-256, 48: P-384, 66: P-521).
    pub(crate) fn has_ecdsa(&self, coordinate_len: usize) -> bool {
        self.ecdsa_fn(coordinate_len).is_some()
    }

    /// Whether `mbx_ed25519_verify_mb8` is present.
    pub(crate) fn has_ed25519(&self) -> bool {
        self.ed25519_verify.is_some()
    }

    fn ecdsa_fn(&self, coordinate_len: usize) -> Option<EcdsaVerifyMb8> {
        match coordinate_len {
            32 => self.p256_verify,
            48 => self.p384_verify,
            66 => self.p521_verify,
            _ => None,
        }
    }

    /// `out[i] = input[i]^65537 mod n[i]` for eight lanes of `bits`-bit moduli
    /// (`mbx_rsa_public_mb8` with the `pub65537` method). Every `input[i]` and `out[i]` must be
    /// `bits / 8` bytes (big-endian) and every `n[i]` `bits / 64` limbs (little-endian); callers
    /// also make sure `input[i] < n[i]` (the library does not check). `None` when a length is
    /// wrong or the library lacks the operation.
    pub(crate) fn rsa_public(
        &self,
        bits: u32,
        input: [&[u8]; LANES],
        n: [&[u64]; LANES],
        out: &mut [Vec<u8>; LANES],
    ) -> Option<u32> {
        let function = self.rsa_public?;
        let method = self.rsa_method(bits);
        let bytes = bits as usize / 8;
        let limbs = bits as usize / 64;
        if method.is_null()
            || input.iter().any(|i| i.len() != bytes)
            || n.iter().any(|n| n.len() != limbs)
        {
            return None;
        }
        for lane in out.iter_mut() {
            lane.resize(bytes, 0);
        }
        let from: [*const u8; LANES] = input.map(<[u8]>::as_ptr);
        let moduli: [*const u64; LANES] = n.map(<[u64]>::as_ptr);
        let mut to: [*mut u8; LANES] = [std::ptr::null_mut(); LANES];
        for (pointer, lane) in to.iter_mut().zip(out.iter_mut()) {
            *pointer = lane.as_mut_ptr();
        }
        // SAFETY: eight non-null lanes, each input and output `bits / 8` bytes and each modulus
        // `bits / 64` limbs, as checked above; the outputs are distinct buffers owned by
        // `out` for the duration of the call; `method` is the library's static pub65537 table
        // for exactly `bits`; a null scratch buffer makes the library allocate and free its
        // own. The library keeps no pointer after returning.
        let status = unsafe {
            function(
                from.as_ptr(),
                to.as_ptr(),
                moduli.as_ptr(),
                bits as c_int,
                method,
                std::ptr::null_mut(),
            )
        };
        Some(status)
    }

    /// ECDSA verification of eight lanes on the curve whose coordinates are
    /// `coordinate_len` bytes (`mbx_nistp{256,384,521}_ecdsa_verify_mb8`), affine public keys.
    /// `r`, `s` and `digest` are big-endian `coordinate_len` bytes (the digest already reduced
    /// below the group order), `x` and `y` little-endian 64-bit limbs, `coordinate_len / 8`
    /// rounded up (P-521: 66 bytes, 9 limbs). `None` when a length is wrong or the library
    /// lacks the curve.
    pub(crate) fn ecdsa_verify(
        &self,
        coordinate_len: usize,
        r: [&[u8]; LANES],
        s: [&[u8]; LANES],
        digest: [&[u8]; LANES],
        x: [&[u64]; LANES],
        y: [&[u64]; LANES],
    ) -> Option<u32> {
        let function = self.ecdsa_fn(coordinate_len)?;
        let limbs = coordinate_len.div_ceil(8);
        let bytes_ok = |lanes: &[&[u8]; LANES]| lanes.iter().all(|l| l.len() == coordinate_len);
        let limbs_ok = |lanes: &[&[u64]; LANES]| lanes.iter().all(|l| l.len() == limbs);
        if !(bytes_ok(&r) && bytes_ok(&s) && bytes_ok(&digest) && limbs_ok(&x) && limbs_ok(&y)) {
            return None;
        }
        let r = r.map(<[u8]>::as_ptr);
        let s = s.map(<[u8]>::as_ptr);
        let digest = digest.map(<[u8]>::as_ptr);
        let x = x.map(<[u64]>::as_ptr);
        let y = y.map(<[u64]>::as_ptr);
        // SAFETY: eight non-null lanes of the lengths the curve's function reads, as checked
        // above; a null `pa_pubz` selects affine coordinates (documented in the header); the
        // scratch buffer is unused by verification and may be null. Nothing is written through
        // the arguments and no pointer is kept.
        let status = unsafe {
            function(
                r.as_ptr(),
                s.as_ptr(),
                digest.as_ptr(),
                x.as_ptr(),
                y.as_ptr(),
                std::ptr::null(),
                std::ptr::null_mut(),
            )
        };
        Some(status)
    }

    /// Ed25519 verification of eight lanes (`mbx_ed25519_verify_mb8`). `None` when a message is
    /// longer than `u32::MAX` bytes or the library lacks the function.
    pub(crate) fn ed25519_verify(
        &self,
        r: [&[u8; 32]; LANES],
        s: [&[u8; 32]; LANES],
        message: [&[u8]; LANES],
        key: [&[u8; 32]; LANES],
    ) -> Option<u32> {
        let function = self.ed25519_verify?;
        let mut lengths = [0u32; LANES];
        for (length, message) in lengths.iter_mut().zip(message.iter()) {
            *length = u32::try_from(message.len()).ok()?;
        }
        let r = r.map(|c| c as *const [u8; 32]);
        let s = s.map(|c| c as *const [u8; 32]);
        let message = message.map(<[u8]>::as_ptr);
        let key = key.map(|k| k as *const [u8; 32]);
        // SAFETY: eight non-null lanes: 32-byte `r`, `s` and key arrays, and messages of
        // exactly `lengths[i]` bytes; nothing is written through the arguments and no pointer
        // is kept.
        let status = unsafe {
            function(
                r.as_ptr(),
                s.as_ptr(),
                message.as_ptr(),
                lengths.as_ptr(),
                key.as_ptr(),
            )
        };
        Some(status)
    }
}
