//! Mount propagation between the host and a container (sharedsubtree.rst), the way Kubernetes uses
//! it: a host directory that is a shared mount is bind-mounted into the container with `rshared`
//! (`mountPropagation: Bidirectional`, what every CSI node plugin needs; containerd's CRI then also
//! sets `rootfsPropagation: rshared`) or `rslave` (`HostToContainer`, with `rootfsPropagation:
//! rslave`), or `rprivate` (`None`).
//!
//! Each test mounts a tmpfs inside the container under the volume and checks the host, then mounts
//! a tmpfs on the host under the volume after the container started and checks the container. The
//! container's view of the volume's own propagation (`shared:N` / `master:N` in mountinfo, N being
//! the host's peer group) is compared with what runc 1.1.5 shows.
//!
//! Results (recorded from runs on this host):
//! * `rshared_propagates_both_ways` — runc 1.1.5: both ways, brisk: both ways (before the
//!   init helper stopped copying its own private mount namespace, brisk's container mount never
//!   reached the host: the volume arrived as a slave of the host's peer group)
//! * `rslave_propagates_host_to_container_only` — runc 1.1.5 and brisk: host → container only
//! * `rprivate_propagates_nothing` — runc 1.1.5 and brisk: neither way

use std::fs;

use brisk_integration::bundle::{Bundle, DEFAULT_CAPS};
use brisk_integration::propagation::{mount_of, SharedVolume};
use brisk_integration::runtime_cli::RuntimeUnderTest;
use brisk_integration::runtime_tests;

runtime_tests!(rshared_propagates_both_ways, rslave_propagates_host_to_container_only, rprivate_propagates_nothing);

/// Where the volume appears in the container.
const IN_CTR: &str = "/vol";

/// Mount a tmpfs at /vol/from-ctr with a marker, report, then wait.
const CTR_SCRIPT: &str = "mkdir -p /vol/from-ctr && \
    if mount -t tmpfs -o size=1m brisk-prop-ctr /vol/from-ctr && echo from-container > /vol/from-ctr/ctr-marker; \
    then echo mounted; else echo mount-failed; fi; \
    grep ' /vol ' /proc/self/mountinfo; exec sleep 1000";

struct Seen {
    /// The container's mount reached the host.
    to_host: bool,
    /// The host's later mount reached the container.
    to_container: bool,
    /// The propagation fields of /vol in the container's mountinfo (`shared:N`, `master:N`).
    ctr_vol_fields: Vec<String>,
    /// The host's peer group of the volume.
    host_group: String,
}

/// `shared:N` / `master:N` / `propagate_from:N` / `unbindable` of a mountinfo line.
fn propagation_fields(line: &str) -> Vec<String> {
    line.split(" - ").next().unwrap_or_default().split_whitespace().skip(6).map(str::to_owned).collect()
}

fn run_case(rt: &RuntimeUnderTest, bind_propagation: &str, rootfs_propagation: &str) -> Seen {
    let vol = SharedVolume::new();
    let mut caps: Vec<&str> = DEFAULT_CAPS.to_vec();
    caps.push("CAP_SYS_ADMIN");
    let b = Bundle::new()
        .bind(vol.path(), IN_CTR, &[bind_propagation])
        .set("/linux/rootfsPropagation", serde_json::json!(rootfs_propagation))
        .capabilities(&caps)
        .sh(CTR_SCRIPT);
    let id = rt.new_id("prop");
    rt.run_detached(&id, &b).ok();
    let mut out = String::new();
    rt.wait_until("the container to mount under /vol", || {
        out = rt.container_stdout(&id, &b);
        out.contains("mounted") || out.contains("mount-failed")
    });
    rt.wait_output(&id, &b, &format!(" {IN_CTR} "));
    let out = rt.container_stdout(&id, &b);
    assert!(out.contains("mounted"), "{:?}: the container could not mount a tmpfs under {IN_CTR}:\n{out}", rt.kind());
    let ctr_vol_line = out.lines().find(|l| l.contains(&format!(" {IN_CTR} "))).unwrap_or_default();

    let host_line = mount_of(vol.path()).expect("the volume is still mounted on the host");
    let host_group = propagation_fields(&host_line).into_iter().find(|f| f.starts_with("shared:")).expect("the host volume is shared");
    let from_ctr = vol.path().join("from-ctr");
    let to_host = mount_of(&from_ctr).is_some();
    let marker = fs::read_to_string(from_ctr.join("ctr-marker")).ok();
    assert_eq!(to_host, marker.as_deref() == Some("from-container\n"), "a mount at {} but not the container's tmpfs (or the reverse): {marker:?}", from_ctr.display());

    vol.host_mount("from-host", "host-marker", "from-host\n");
    let r = rt.exec(&id, &["cat", &format!("{IN_CTR}/from-host/host-marker")]);
    let to_container = r.status.success() && r.stdout == "from-host\n";
    eprintln!("RESULT {:?} {bind_propagation} (rootfsPropagation {rootfs_propagation}): to host {to_host}, to container {to_container}; host {host_group}, container /vol: {ctr_vol_line}", rt.kind());
    rt.delete_force(&id).ok();
    Seen { to_host, to_container, ctr_vol_fields: propagation_fields(ctr_vol_line), host_group }
}

// runc 1.1.5: both ways, brisk: both ways.
fn rshared_propagates_both_ways(rt: &RuntimeUnderTest) {
    let s = run_case(rt, "rshared", "rshared");
    assert!(s.to_host, "{:?}: a mount made in the container under an rshared volume did not reach the host", rt.kind());
    assert!(s.to_container, "{:?}: a mount made on the host under an rshared volume did not reach the container", rt.kind());
    // The volume in the container is a peer of the host's mount, not a slave with a group of its own.
    assert_eq!(s.ctr_vol_fields, vec![s.host_group.clone()], "{:?}: the container's {IN_CTR} is not in the host's peer group", rt.kind());
}

// runc 1.1.5: host → container only, brisk: host → container only.
fn rslave_propagates_host_to_container_only(rt: &RuntimeUnderTest) {
    let s = run_case(rt, "rslave", "rslave");
    assert!(!s.to_host, "{:?}: a mount made in the container under an rslave volume reached the host", rt.kind());
    assert!(s.to_container, "{:?}: a mount made on the host under an rslave volume did not reach the container", rt.kind());
    let master = s.host_group.replace("shared:", "master:");
    assert_eq!(s.ctr_vol_fields, vec![master], "{:?}: the container's {IN_CTR} is not a slave of the host's peer group", rt.kind());
}

// runc 1.1.5: neither way, brisk: neither way.
fn rprivate_propagates_nothing(rt: &RuntimeUnderTest) {
    let s = run_case(rt, "rprivate", "rprivate");
    assert!(!s.to_host, "{:?}: a mount made in the container under an rprivate volume reached the host", rt.kind());
    assert!(!s.to_container, "{:?}: a mount made on the host under an rprivate volume reached the container", rt.kind());
    assert!(s.ctr_vol_fields.is_empty(), "{:?}: the container's {IN_CTR} is not private: {:?}", rt.kind(), s.ctr_vol_fields);
}
