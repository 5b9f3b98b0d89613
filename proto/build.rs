//! Compiles the .proto files with protox (pure Rust: no protoc needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/etcd/kv.proto", "proto/etcd/rpc.proto", "proto/capstan/raft.proto"];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;

    // The CRI: capstan is only ever its client (containerd serves it).
    let cri = "proto/cri/api.proto";
    println!("cargo:rerun-if-changed={cri}");
    let fds = protox::compile([cri], ["proto"])?;
    tonic_prost_build::configure().build_server(false).compile_fds(fds)?;
    Ok(())
}
