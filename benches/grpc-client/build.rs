//! Generates the client from the repository's protos at build time: protox (a protobuf
//! compiler in Rust, no `protoc` needed) parses them into a FileDescriptorSet, and
//! tonic-prost-build turns that into prost messages and tonic client stubs.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../protos");
    let files = ["decision_engine/v1/decision.proto", "decision_engine/v1/admin.proto"].map(|f| protos.join(f));
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    // google/protobuf/*.proto (Timestamp) are built into protox.
    let descriptors = protox::compile(&files, [&protos])?;
    tonic_prost_build::configure().build_server(false).build_client(true).compile_fds(descriptors)?;
    Ok(())
}
