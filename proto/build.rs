//! Generates the wire types from `proto/` with prost-build, from a descriptor set that protox
//! compiles in Rust: a fresh machine needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "corelane/remote/v1/envelope.proto",
        "corelane/remote/v1/system.proto",
        "corelane/cluster/v1/member.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(files, ["proto"])?;
    prost_build::Config::new()
        // Payloads are `bytes::Bytes`: decoding a frame slices them out of the frame's buffer
        // instead of copying them. Small fields (a grain's name) are copied: a slice would add
        // two changes of the count the buffer's other slices share across threads.
        .bytes([
            ".corelane.remote.v1.Envelope.payload",
            ".corelane.remote.v1.Envelope.more",
            ".corelane.remote.v1.Schedule.payload",
        ])
        .enable_type_names()
        .compile_fds(fds)?;
    Ok(())
}
