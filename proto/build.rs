//! Compiles the .proto files with protox (pure Rust: no protoc needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/etcd/kv.proto", "proto/etcd/rpc.proto", "proto/capstan/raft.proto"];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    Ok(())
}
