//! The few OpenSSL 3 calls the `openssl` crate has no binding for, each wrapped in a small safe
//! function: decoding a key into verdict's own library context, a verify context from a key
//! with a property query, the provider that really serves a context, loading an operator's
//! config file into a library context, and the legacy ENGINE calls.
//!
//! The symbols come from the `libcrypto` that `openssl-sys` links (Debian `libssl-dev`,
//! OpenSSL 3.0 or newer). AWS-LC, linked too, prefixes its symbols, so the two never clash.
//!
//! This is one of the few modules allowed `unsafe`: every block states why it is sound.
#![allow(
    unsafe_code,
    reason = "FFI into OpenSSL 3 where the openssl crate has no binding; each block states why \
              it is sound"
)]

use ::openssl::error::ErrorStack;
use ::openssl::lib_ctx::LibCtxRef;
use ::openssl::pkey::{PKey, Public};
use ::openssl::pkey_ctx::PkeyCtxRef;
use foreign_types::{ForeignType, ForeignTypeRef};
use openssl_sys as sys;
use std::ffi::{CStr, CString, c_char, c_int, c_long, c_uchar, c_uint, c_void};
use std::ptr::{self, NonNull};

unsafe extern "C" {
    fn OSSL_LIB_CTX_load_config(ctx: *mut sys::OSSL_LIB_CTX, file: *const c_char) -> c_int;
    fn d2i_PUBKEY_ex(
        a: *mut *mut sys::EVP_PKEY,
        pp: *mut *const c_uchar,
        length: c_long,
        libctx: *mut sys::OSSL_LIB_CTX,
        propq: *const c_char,
    ) -> *mut sys::EVP_PKEY;
    fn EVP_PKEY_CTX_new_from_pkey(
        libctx: *mut sys::OSSL_LIB_CTX,
        pkey: *mut sys::EVP_PKEY,
        propq: *const c_char,
    ) -> *mut sys::EVP_PKEY_CTX;
    fn EVP_PKEY_CTX_dup(ctx: *const sys::EVP_PKEY_CTX) -> *mut sys::EVP_PKEY_CTX;
    fn EVP_PKEY_CTX_get0_provider(ctx: *const sys::EVP_PKEY_CTX) -> *const sys::OSSL_PROVIDER;
    fn OSSL_PROVIDER_get0_name(provider: *const sys::OSSL_PROVIDER) -> *const c_char;
    fn EVP_DigestVerifyInit_ex(
        ctx: *mut sys::EVP_MD_CTX,
        pctx: *mut *mut sys::EVP_PKEY_CTX,
        mdname: *const c_char,
        libctx: *mut sys::OSSL_LIB_CTX,
        props: *const c_char,
        pkey: *mut sys::EVP_PKEY,
        params: *const c_void,
    ) -> c_int;
    fn EVP_MD_CTX_get_pkey_ctx(ctx: *const sys::EVP_MD_CTX) -> *mut sys::EVP_PKEY_CTX;
    fn ENGINE_by_id(id: *const c_char) -> *mut sys::ENGINE;
    fn ENGINE_init(engine: *mut sys::ENGINE) -> c_int;
    fn ENGINE_finish(engine: *mut sys::ENGINE) -> c_int;
    fn ENGINE_free(engine: *mut sys::ENGINE) -> c_int;
    fn ENGINE_set_default(engine: *mut sys::ENGINE, flags: c_uint) -> c_int;
    fn ENGINE_get_RSA(engine: *const sys::ENGINE) -> *const c_void;
    fn ENGINE_get_EC(engine: *const sys::ENGINE) -> *const c_void;
}

/// `ENGINE_METHOD_RSA` (openssl/engine.h).
const ENGINE_METHOD_RSA: c_uint = 0x0001;
/// `ENGINE_METHOD_EC` (openssl/engine.h).
const ENGINE_METHOD_EC: c_uint = 0x0800;

/// OpenSSL's queued errors as one line (and the queue emptied).
pub(super) fn errors() -> String {
    let stack = ErrorStack::get();
    if stack.errors().is_empty() {
        "no reason given by OpenSSL".to_owned()
    } else {
        stack.to_string()
    }
}

/// Empties this thread's OpenSSL error queue (a failed verification leaves entries there).
pub(super) fn clear_errors() {
    // SAFETY: takes no arguments; only touches this thread's error queue.
    unsafe { sys::ERR_clear_error() }
}

/// Loads an OpenSSL config file (`openssl_conf`) into `ctx`: the providers it activates, its
/// default properties.
pub(super) fn load_config(ctx: &LibCtxRef, file: &CStr) -> Result<(), String> {
    // SAFETY: `ctx` is a live library context; `file` is a NUL-terminated path that OpenSSL
    // only reads during the call.
    let ok = unsafe { OSSL_LIB_CTX_load_config(ctx.as_ptr(), file.as_ptr()) };
    if ok == 1 { Ok(()) } else { Err(errors()) }
}

/// Decodes a DER SubjectPublicKeyInfo into a key of `ctx`, its key management fetched with
/// `propq`.
pub(super) fn decode_public_key(
    der: &[u8],
    ctx: &LibCtxRef,
    propq: Option<&CStr>,
) -> Result<PKey<Public>, String> {
    let length = c_long::try_from(der.len()).map_err(|_| "key too long".to_owned())?;
    let mut cursor = der.as_ptr();
    // SAFETY: `cursor` points into `der`, which outlives the call, and `length` is its length;
    // OpenSSL advances the cursor but never writes through it. The result is a new key (owned
    // by the PKey below) or null.
    let key = unsafe {
        d2i_PUBKEY_ex(
            ptr::null_mut(),
            &mut cursor,
            length,
            ctx.as_ptr(),
            propq.map_or(ptr::null(), CStr::as_ptr),
        )
    };
    if key.is_null() {
        return Err(errors());
    }
    // SAFETY: a new key we own.
    Ok(unsafe { PKey::from_ptr(key) })
}

/// An `EVP_PKEY_CTX` this module owns. Used as a template: set up for verification once, then
/// copied ([`PkeyCtx::copy`]) for each verification, since a context is changed by its use.
pub(super) struct PkeyCtx(NonNull<sys::EVP_PKEY_CTX>);

// SAFETY: the template is never used to verify and never changed after set-up; the only
// operation on a shared template is `EVP_PKEY_CTX_dup`, which reads it and takes counted
// references (atomic in OpenSSL 3) to the key, the algorithm and the provider.
unsafe impl Send for PkeyCtx {}
// SAFETY: as for `Send`.
unsafe impl Sync for PkeyCtx {}

impl Drop for PkeyCtx {
    fn drop(&mut self) {
        // SAFETY: we own the context; freed once.
        unsafe { sys::EVP_PKEY_CTX_free(self.0.as_ptr()) }
    }
}

impl PkeyCtx {
    /// A context for `key`: with `ctx`, its operations are fetched from that library context
    /// with `propq` (`EVP_PKEY_CTX_new_from_pkey`); without, the legacy path, where a legacy
    /// ENGINE attached to the key runs (`EVP_PKEY_CTX_new`).
    pub(super) fn new(
        key: &PKey<Public>,
        ctx: Option<&LibCtxRef>,
        propq: Option<&CStr>,
    ) -> Result<PkeyCtx, String> {
        // SAFETY: `key` and `ctx` are live; OpenSSL takes its own reference to the key;
        // `propq` is only read during the call. The result is a new context or null.
        let raw = unsafe {
            match ctx {
                Some(ctx) => EVP_PKEY_CTX_new_from_pkey(
                    ctx.as_ptr(),
                    key.as_ptr(),
                    propq.map_or(ptr::null(), CStr::as_ptr),
                ),
                None => sys::EVP_PKEY_CTX_new(key.as_ptr(), ptr::null_mut()),
            }
        };
        NonNull::new(raw).map(PkeyCtx).ok_or_else(errors)
    }

    /// Runs `f` on the `openssl` crate's view of this context (for its setters), while this
    /// module still holds it alone.
    pub(super) fn with_typed<R>(&mut self, f: impl FnOnce(&mut PkeyCtxRef<Public>) -> R) -> R {
        // SAFETY: `self` owns a live context, borrowed exclusively for the call; the view does
        // not outlive it.
        f(unsafe { PkeyCtxRef::from_ptr_mut(self.0.as_ptr()) })
    }

    /// A copy to verify with (`EVP_PKEY_CTX_dup`).
    pub(super) fn copy(&self) -> Option<PkeyCtx> {
        // SAFETY: `self` is live and only read (see the `Sync` note).
        NonNull::new(unsafe { EVP_PKEY_CTX_dup(self.0.as_ptr()) }).map(PkeyCtx)
    }

    /// `EVP_PKEY_verify` of `signature` over `digest`: 1 verified, 0 not, below 0 an error.
    pub(super) fn verify(&mut self, digest: &[u8], signature: &[u8]) -> c_int {
        // SAFETY: `self` is a context set up for verification that this thread owns; both
        // slices are live for the call and only read.
        unsafe {
            sys::EVP_PKEY_verify(
                self.0.as_ptr(),
                signature.as_ptr(),
                signature.len(),
                digest.as_ptr(),
                digest.len(),
            )
        }
    }

    /// The name of the provider whose operation this context runs (`None` on the legacy path,
    /// or before an operation is set up).
    pub(super) fn provider_name(&self) -> Option<String> {
        // SAFETY: `self` is live; the provider and its name are owned by the library context,
        // which outlives this call, and are only read.
        unsafe { provider_name(EVP_PKEY_CTX_get0_provider(self.0.as_ptr())) }
    }
}

/// # Safety
/// `provider` is null or a live provider.
unsafe fn provider_name(provider: *const sys::OSSL_PROVIDER) -> Option<String> {
    if provider.is_null() {
        return None;
    }
    // SAFETY: a live provider's name is a NUL-terminated string it owns.
    let name = unsafe { OSSL_PROVIDER_get0_name(provider) };
    if name.is_null() {
        return None;
    }
    // SAFETY: as above.
    Some(
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// A one-shot `EVP_DigestVerify` (Ed25519, which signs the whole message): 1 verified, 0 not,
/// below 0 an error; with the name of the provider that ran it.
pub(super) fn digest_verify_oneshot(
    key: &PKey<Public>,
    ctx: &LibCtxRef,
    propq: Option<&CStr>,
    message: &[u8],
    signature: &[u8],
) -> (c_int, Option<String>) {
    // SAFETY: a new digest context (or null, checked), freed below on every path; `key` and
    // `ctx` are live and OpenSSL takes its own references; the slices and `propq` are only
    // read during the calls.
    unsafe {
        let md = sys::EVP_MD_CTX_new();
        if md.is_null() {
            return (-1, None);
        }
        let mut result = EVP_DigestVerifyInit_ex(
            md,
            ptr::null_mut(),
            ptr::null(),
            ctx.as_ptr(),
            propq.map_or(ptr::null(), CStr::as_ptr),
            key.as_ptr(),
            ptr::null(),
        );
        let mut provider = None;
        if result == 1 {
            provider = provider_name(EVP_PKEY_CTX_get0_provider(EVP_MD_CTX_get_pkey_ctx(md)));
            result = sys::EVP_DigestVerify(
                md,
                signature.as_ptr(),
                signature.len(),
                message.as_ptr(),
                message.len(),
            );
        } else if result == 0 {
            result = -1;
        }
        sys::EVP_MD_CTX_free(md);
        (result, provider)
    }
}

/// A legacy ENGINE, initialised and made the default for RSA and EC keys made afterwards.
pub(super) struct Engine(NonNull<sys::ENGINE>);

// SAFETY: an initialised ENGINE is a process-wide object OpenSSL itself shares between threads
// (its methods are called from any thread); we only read it and release it once.
unsafe impl Send for Engine {}
// SAFETY: as for `Send`.
unsafe impl Sync for Engine {}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: we hold one functional reference (ENGINE_init) and one structural one
        // (ENGINE_by_id), each released once.
        unsafe {
            ENGINE_finish(self.0.as_ptr());
            ENGINE_free(self.0.as_ptr());
        }
    }
}

impl Engine {
    /// `ENGINE_by_id` + `ENGINE_init`, then `ENGINE_set_default` for RSA and EC.
    pub(super) fn load(id: &str) -> Result<Engine, String> {
        let name = CString::new(id).map_err(|_| "the engine id contains NUL".to_owned())?;
        // SAFETY: `name` is NUL-terminated and only read; the result is a new structural
        // reference or null.
        let raw = NonNull::new(unsafe { ENGINE_by_id(name.as_ptr()) })
            .ok_or_else(|| format!("ENGINE_by_id: {}", errors()))?;
        // SAFETY: `raw` is a live engine with a structural reference we own; on failure it is
        // released here.
        unsafe {
            if ENGINE_init(raw.as_ptr()) != 1 {
                let why = errors();
                ENGINE_free(raw.as_ptr());
                return Err(format!("ENGINE_init: {why}"));
            }
        }
        let engine = Engine(raw);
        // SAFETY: `engine` is initialised; this only registers it as the default for the
        // method types it implements.
        let ok = unsafe { ENGINE_set_default(raw.as_ptr(), ENGINE_METHOD_RSA | ENGINE_METHOD_EC) };
        if ok != 1 {
            return Err(format!("ENGINE_set_default: {}", errors()));
        }
        Ok(engine)
    }

    /// Whether the engine implements RSA (`ENGINE_get_RSA`).
    pub(super) fn has_rsa(&self) -> bool {
        // SAFETY: a live engine, only read.
        !unsafe { ENGINE_get_RSA(self.0.as_ptr()) }.is_null()
    }

    /// Whether the engine implements EC keys (`ENGINE_get_EC`).
    pub(super) fn has_ec(&self) -> bool {
        // SAFETY: a live engine, only read.
        !unsafe { ENGINE_get_EC(self.0.as_ptr()) }.is_null()
    }
}
