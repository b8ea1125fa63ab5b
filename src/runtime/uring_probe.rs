//! Whether io_uring works here, for `verdict engines`: a tokio-uring runtime is set up (as each
//! worker and the revocation-log writer do, see `crate::revocation`) and one io_uring read is
//! made through it. Either can fail: an old kernel, or a seccomp profile (container runtimes'
//! defaults often) that forbids `io_uring_setup` or its operations.

/// `Ok` when io_uring works on this machine, else why not.
pub fn io_uring_works() -> Result<(), String> {
    let runtime = tokio_uring::Runtime::new(&tokio_uring::builder())
        .map_err(|error| format!("cannot set up an io_uring runtime: {error}"))?;
    runtime.block_on(async {
        let file = tokio_uring::fs::File::open("/proc/self/stat")
            .await
            .map_err(|error| format!("io_uring open failed: {error}"))?;
        let (read, _buffer) = file.read_at(vec![0u8; 16], 0).await;
        let closed = file.close().await;
        match (read, closed) {
            (Ok(n), Ok(())) if n > 0 => Ok(()),
            (Ok(_), Ok(())) => Err("io_uring read returned no bytes".to_owned()),
            (Err(error), _) | (_, Err(error)) => Err(format!("io_uring read failed: {error}")),
        }
    })
}

#[cfg(test)]
mod tests {
    /// On this project's CI hosts io_uring works; elsewhere the reason must say what failed.
    #[test]
    fn reports_whether_io_uring_works() {
        match super::io_uring_works() {
            Ok(()) => {}
            Err(why) => assert!(why.contains("io_uring"), "{why}"),
        }
    }
}
