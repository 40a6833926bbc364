//! Generates the gRPC wire types (prost) from `protos/`, for the bytes-in/bytes-out Decide path.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../protos");
    let proto = root.join("decision_engine/v1/decision.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let descriptors = protox::compile([&proto], [&root])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
