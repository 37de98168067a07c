//! The rootfs mounts containerd sends with Create (snapshotter output: overlay, bind, ...), mounted
//! on `<bundle>/rootfs` in the shim's (host) mount namespace, the way containerd's mount.All does.
use std::path::Path;

use containerd_shim_protos::api::Mount;
use nix::mount::{MntFlags, MsFlags};

use crate::errors::{Result, ShimError};

/// mount(2) flags and data parsed from fstab-style options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub flags: MsFlags,
    pub propagation: MsFlags,
    pub data: String,
}

pub fn parse_options(options: &[String]) -> Parsed {
    let mut flags = MsFlags::empty();
    let mut propagation = MsFlags::empty();
    let mut data: Vec<&str> = Vec::new();
    for o in options {
        let (clear, set) = match o.as_str() {
            "async" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "atime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "bind" => (MsFlags::empty(), MsFlags::MS_BIND),
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "dev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "diratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "dirsync" => (MsFlags::empty(), MsFlags::MS_DIRSYNC),
            "exec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "mand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "nodiratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "noexec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "nomand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "norelatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nosuid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "rbind" => (MsFlags::empty(), MsFlags::MS_BIND | MsFlags::MS_REC),
            "relatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "remount" => (MsFlags::empty(), MsFlags::MS_REMOUNT),
            "ro" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "rw" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "strictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "suid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "sync" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                let base = match o.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "shared" => MsFlags::MS_SHARED,
                    "slave" => MsFlags::MS_SLAVE,
                    _ => MsFlags::MS_UNBINDABLE,
                };
                propagation |= if o.starts_with('r') {
                    base | MsFlags::MS_REC
                } else {
                    base
                };
                continue;
            }
            other => {
                data.push(other);
                continue;
            }
        };
        flags &= !clear;
        flags |= set;
    }
    Parsed {
        flags,
        propagation,
        data: data.join(","),
    }
}

/// Mount every entry on `target` in order. On failure, what was mounted is unmounted again.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target) {
            for _ in 0..i {
                let _ = nix::mount::umount2(target, MntFlags::MNT_DETACH);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(m: &Mount, target: &Path) -> Result<()> {
    let p = parse_options(&m.options);
    let fail = |step: &'static str| {
        let what = format!(
            "{} ({} from {:?}, options {:?})",
            target.display(),
            m.type_,
            m.source,
            m.options
        );
        move |e: nix::errno::Errno| ShimError::io(step, what)(e.into())
    };
    if p.data.len() >= 4096 {
        return Err(ShimError::InvalidArgument {
            field: "rootfs mount options",
            reason: format!(
                "{} bytes exceed the page size mount(2) accepts",
                p.data.len()
            ),
        });
    }
    let fstype = if m.type_ == "bind" {
        None
    } else {
        Some(m.type_.as_str())
    };
    let data = (!p.data.is_empty()).then_some(p.data.as_str());
    nix::mount::mount(Some(m.source.as_str()), target, fstype, p.flags, data)
        .map_err(fail("mount rootfs"))?;
    // A bind mount ignores MS_RDONLY and friends on the first call; they need a remount.
    if p.flags.contains(MsFlags::MS_BIND)
        && p.flags.intersects(
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )
    {
        let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | (p.flags & !(MsFlags::MS_REC));
        nix::mount::mount(None::<&str>, target, None::<&str>, remount, None::<&str>)
            .map_err(fail("remount rootfs"))?;
    }
    if !p.propagation.is_empty() {
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            p.propagation,
            None::<&str>,
        )
        .map_err(fail("set rootfs propagation"))?;
    }
    Ok(())
}

/// Unmount everything stacked on `target` (containerd's UnmountAll). A missing target is fine.
pub fn unmount_all(target: &Path) -> Result<()> {
    for _ in 0..64 {
        match nix::mount::umount2(target, MntFlags::empty()) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(nix::errno::Errno::EBUSY) => {
                nix::mount::umount2(target, MntFlags::MNT_DETACH)
                    .map_err(|e| ShimError::io("unmount rootfs", target.display())(e.into()))?;
            }
            Err(e) => return Err(ShimError::io("unmount rootfs", target.display())(e.into())),
        }
    }
    Err(ShimError::Internal(format!(
        "unmount rootfs {}: still mounted after 64 unmounts",
        target.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn overlay_options_become_data() {
        let p = parse_options(&opts(&[
            "index=off",
            "workdir=/w",
            "upperdir=/u",
            "lowerdir=/l1:/l2",
        ]));
        assert_eq!(p.flags, MsFlags::empty());
        assert_eq!(p.data, "index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2");
    }

    #[test]
    fn bind_ro_flags() {
        let p = parse_options(&opts(&["rbind", "ro", "nosuid", "rprivate"]));
        assert_eq!(
            p.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID
        );
        assert_eq!(p.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert!(p.data.is_empty());
        let p = parse_options(&opts(&["ro", "rw"]));
        assert_eq!(p.flags, MsFlags::empty());
    }
}
