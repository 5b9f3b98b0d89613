//! Generated protobuf code for capstan.
//!
//! - [`mvccpb`] and [`etcdserverpb`]: etcd's v3 API, wire-compatible with etcd
//!   (the `.proto` files in `proto/etcd/` are ours, written from the API facts).
//! - [`raft`]: the member-to-member transport and the store's on-disk records.
//! - [`cri`]: the subset of the Kubernetes CRI v1 (`runtime.v1`) that the node
//!   agent uses as a client of containerd (`proto/cri/api.proto`, same names and
//!   field numbers as kubernetes/cri-api).

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

/// The package `capstan.raft`, nested as the generated code expects.
pub mod capstan {
    pub mod raft {
        tonic::include_proto!("capstan.raft");
    }
}

pub use capstan::raft;

/// The package `runtime.v1`, nested as the generated code expects.
pub mod runtime {
    pub mod v1 {
        tonic::include_proto!("runtime.v1");
    }
}

pub use runtime::v1 as cri;
