//! Compiles proto/verdict/v1/verdict.proto with protox (pure Rust: no system protoc needed).

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptors = protox::compile(["verdict/v1/verdict.proto"], ["proto"])?;
    // For server reflection.
    std::fs::write(
        out_dir.join("verdict_v1_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
