//! The OCI mount options (runtime-spec config.md "Mounts", the Linux list) and their translation to
//! mount(2) flags, propagation changes, mount_setattr(2) attributes and filesystem data.
//!
//! [`MOUNT_OPTIONS`] is the one table: the parser reads it and `brisk features` lists it.

use nix::mount::MsFlags;

/// `MS_NOSYMFOLLOW` (Linux 5.10); not in nix's `MsFlags` list.
const MS_NOSYMFOLLOW: u64 = 0x100;

// mount_setattr(2) attribute bits (linux/mount.h).
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x4;
pub(crate) const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub(crate) const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
pub(crate) const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub(crate) const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub(crate) const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub(crate) const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub(crate) const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// What one mount option does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionEffect {
    /// Set (`clear == false`) or clear these mount(2) flags (raw `MS_*` bits).
    Flag { clear: bool, flags: u64 },
    /// A propagation change applied after the mount, in option order (raw `MS_*` bits).
    Propagation(u64),
    /// A recursive attribute applied with `mount_setattr(AT_RECURSIVE)` (raw `MOUNT_ATTR_*` bits).
    Recursive { clear: bool, attr: u64 },
    /// runc's `tmpcopyup` extension: a tmpfs starts with a copy of what the image has at its
    /// destination. runc accepts it on any mount and acts on it only for tmpfs; it is never
    /// filesystem data.
    CopyUp,
}

/// One entry of [`MOUNT_OPTIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountOption {
    pub name: &'static str,
    pub effect: OptionEffect,
}

#[allow(clippy::unnecessary_cast)] // c_ulong is not u64 everywhere
const fn set(name: &'static str, flags: MsFlags) -> MountOption {
    MountOption { name, effect: OptionEffect::Flag { clear: false, flags: flags.bits() as u64 } }
}
#[allow(clippy::unnecessary_cast)] // c_ulong is not u64 everywhere
const fn clr(name: &'static str, flags: MsFlags) -> MountOption {
    MountOption { name, effect: OptionEffect::Flag { clear: true, flags: flags.bits() as u64 } }
}
#[allow(clippy::unnecessary_cast)] // c_ulong is not u64 everywhere
const fn prop(name: &'static str, flags: MsFlags) -> MountOption {
    MountOption { name, effect: OptionEffect::Propagation(flags.bits() as u64) }
}
const fn rset(name: &'static str, attr: u64) -> MountOption {
    MountOption { name, effect: OptionEffect::Recursive { clear: false, attr } }
}
const fn rclr(name: &'static str, attr: u64) -> MountOption {
    MountOption { name, effect: OptionEffect::Recursive { clear: true, attr } }
}

/// Every mount option brisk understands (runc 1.1's set, including its `tmpcopyup` extension, plus
/// the spec's nosymfollow family).
/// Anything else in a mount's `options` is passed to the filesystem as data, as runc does.
pub const MOUNT_OPTIONS: &[MountOption] = &[
    set("acl", MsFlags::MS_POSIXACL),
    clr("async", MsFlags::MS_SYNCHRONOUS),
    clr("atime", MsFlags::MS_NOATIME),
    set("bind", MsFlags::MS_BIND),
    set("defaults", MsFlags::empty()),
    clr("dev", MsFlags::MS_NODEV),
    clr("diratime", MsFlags::MS_NODIRATIME),
    set("dirsync", MsFlags::MS_DIRSYNC),
    clr("exec", MsFlags::MS_NOEXEC),
    set("iversion", MsFlags::MS_I_VERSION),
    set("lazytime", MsFlags::MS_LAZYTIME),
    clr("loud", MsFlags::MS_SILENT),
    set("mand", MsFlags::MS_MANDLOCK),
    clr("noacl", MsFlags::MS_POSIXACL),
    set("noatime", MsFlags::MS_NOATIME),
    set("nodev", MsFlags::MS_NODEV),
    set("nodiratime", MsFlags::MS_NODIRATIME),
    set("noexec", MsFlags::MS_NOEXEC),
    clr("noiversion", MsFlags::MS_I_VERSION),
    clr("nolazytime", MsFlags::MS_LAZYTIME),
    clr("nomand", MsFlags::MS_MANDLOCK),
    clr("norelatime", MsFlags::MS_RELATIME),
    clr("nostrictatime", MsFlags::MS_STRICTATIME),
    set("nosuid", MsFlags::MS_NOSUID),
    MountOption { name: "nosymfollow", effect: OptionEffect::Flag { clear: false, flags: MS_NOSYMFOLLOW } },
    MountOption { name: "symfollow", effect: OptionEffect::Flag { clear: true, flags: MS_NOSYMFOLLOW } },
    set("rbind", MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    set("relatime", MsFlags::MS_RELATIME),
    set("remount", MsFlags::MS_REMOUNT),
    set("ro", MsFlags::MS_RDONLY),
    clr("rw", MsFlags::MS_RDONLY),
    set("silent", MsFlags::MS_SILENT),
    set("strictatime", MsFlags::MS_STRICTATIME),
    clr("suid", MsFlags::MS_NOSUID),
    set("sync", MsFlags::MS_SYNCHRONOUS),
    prop("private", MsFlags::MS_PRIVATE),
    prop("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    prop("shared", MsFlags::MS_SHARED),
    prop("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    prop("slave", MsFlags::MS_SLAVE),
    prop("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    prop("unbindable", MsFlags::MS_UNBINDABLE),
    prop("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
    rset("rro", MOUNT_ATTR_RDONLY),
    rclr("rrw", MOUNT_ATTR_RDONLY),
    rset("rnosuid", MOUNT_ATTR_NOSUID),
    rclr("rsuid", MOUNT_ATTR_NOSUID),
    rset("rnodev", MOUNT_ATTR_NODEV),
    rclr("rdev", MOUNT_ATTR_NODEV),
    rset("rnoexec", MOUNT_ATTR_NOEXEC),
    rclr("rexec", MOUNT_ATTR_NOEXEC),
    rset("rnodiratime", MOUNT_ATTR_NODIRATIME),
    rclr("rdiratime", MOUNT_ATTR_NODIRATIME),
    rset("rrelatime", MOUNT_ATTR_RELATIME),
    rclr("rnorelatime", MOUNT_ATTR_RELATIME),
    rset("rnoatime", MOUNT_ATTR_NOATIME),
    rclr("ratime", MOUNT_ATTR_NOATIME),
    rset("rstrictatime", MOUNT_ATTR_STRICTATIME),
    rclr("rnostrictatime", MOUNT_ATTR_STRICTATIME),
    rset("rnosymfollow", MOUNT_ATTR_NOSYMFOLLOW),
    rclr("rsymfollow", MOUNT_ATTR_NOSYMFOLLOW),
    MountOption { name: "tmpcopyup", effect: OptionEffect::CopyUp },
];

/// The option names of [`MOUNT_OPTIONS`], for `brisk features` (`mountOptions`).
pub fn mount_option_names() -> impl Iterator<Item = &'static str> {
    MOUNT_OPTIONS.iter().map(|o| o.name)
}

/// A mount's `options`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedOptions {
    pub flags: MsFlags,
    /// Propagation changes in option order, each one mount(2) call.
    pub propagation: Vec<MsFlags>,
    /// `mount_setattr` attr_set / attr_clr; zero when no recursive option was given.
    pub attr_set: u64,
    pub attr_clr: u64,
    /// Unknown options joined with ',' (e.g. `size=64m,mode=755`), passed as filesystem data.
    pub data: Option<String>,
    /// `tmpcopyup` was given.
    pub copy_up: bool,
}

impl Default for ParsedOptions {
    fn default() -> Self {
        ParsedOptions { flags: MsFlags::empty(), propagation: Vec::new(), attr_set: 0, attr_clr: 0, data: None, copy_up: false }
    }
}

impl ParsedOptions {
    pub fn has_recursive_attrs(&self) -> bool {
        self.attr_set != 0 || self.attr_clr != 0
    }
}

/// Parse mount options left to right: a later option overrides an earlier one (`ro,rw` is rw).
pub fn parse_options<S: AsRef<str>>(options: &[S]) -> ParsedOptions {
    let mut out = ParsedOptions::default();
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        let opt = opt.as_ref();
        match MOUNT_OPTIONS.iter().find(|o| o.name == opt).map(|o| o.effect) {
            Some(OptionEffect::Flag { clear, flags }) => {
                let f = MsFlags::from_bits_retain(flags as libc::c_ulong);
                if clear {
                    out.flags.remove(f)
                } else {
                    out.flags.insert(f)
                }
            }
            Some(OptionEffect::Propagation(p)) => {
                out.propagation.push(MsFlags::from_bits_retain(p as libc::c_ulong))
            }
            Some(OptionEffect::Recursive { clear: true, attr }) => out.attr_clr |= attr,
            Some(OptionEffect::Recursive { clear: false, attr }) => {
                out.attr_set |= attr;
                // mount_setattr(2): an access-time mode in attr_set needs MOUNT_ATTR__ATIME in
                // attr_clr. RELATIME is 0, so it is an atime mode too (as runc treats it).
                if attr & MOUNT_ATTR_ATIME_MASK == attr {
                    out.attr_clr |= MOUNT_ATTR_ATIME_MASK;
                }
            }
            Some(OptionEffect::CopyUp) => out.copy_up = true,
            None if opt.is_empty() => {}
            None => data.push(opt),
        }
    }
    if !data.is_empty() {
        out.data = Some(data.join(","));
    }
    out
}

/// Parse a `rootfsPropagation` value ("private", "rslave", ...).
pub fn parse_propagation(value: &str) -> Option<MsFlags> {
    match MOUNT_OPTIONS.iter().find(|o| o.name == value)?.effect {
        OptionEffect::Propagation(p) => Some(MsFlags::from_bits_retain(p as libc::c_ulong)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_unique_names_and_covers_the_spec_list() {
        let mut names: Vec<_> = mount_option_names().collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate option in MOUNT_OPTIONS");
        for spec in [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion",
            "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion",
            "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow",
            "private", "ratime", "rbind", "rdev", "rdiratime", "relatime", "remount", "rexec",
            "rnoatime", "rnodiratime", "rnoexec", "rnodev", "rnorelatime", "rnostrictatime",
            "rnosuid", "rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared",
            "rslave", "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared",
            "silent", "slave", "strictatime", "suid", "symfollow", "sync", "unbindable",
        ] {
            assert!(names.contains(&spec), "{spec} missing from MOUNT_OPTIONS");
        }
    }

    #[test]
    fn flags_later_option_wins() {
        let p = parse_options(&["ro", "nosuid", "nodev", "rw", "noexec", "suid"]);
        assert_eq!(p.flags, MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
        let p = parse_options(&["rw", "ro"]);
        assert_eq!(p.flags, MsFlags::MS_RDONLY);
    }

    #[test]
    fn every_flag_option() {
        let cases: &[(&str, MsFlags)] = &[
            ("sync", MsFlags::MS_SYNCHRONOUS),
            ("dirsync", MsFlags::MS_DIRSYNC),
            ("remount", MsFlags::MS_REMOUNT),
            ("mand", MsFlags::MS_MANDLOCK),
            ("noatime", MsFlags::MS_NOATIME),
            ("nodiratime", MsFlags::MS_NODIRATIME),
            ("relatime", MsFlags::MS_RELATIME),
            ("strictatime", MsFlags::MS_STRICTATIME),
            ("lazytime", MsFlags::MS_LAZYTIME),
            ("bind", MsFlags::MS_BIND),
            ("rbind", MsFlags::MS_BIND | MsFlags::MS_REC),
            ("nosymfollow", MsFlags::from_bits_retain(0x100)),
        ];
        for (opt, want) in cases {
            assert_eq!(parse_options(&[*opt]).flags, *want, "{opt}");
        }
        for (on, off) in [
            ("sync", "async"),
            ("noatime", "atime"),
            ("relatime", "norelatime"),
            ("strictatime", "nostrictatime"),
            ("nodiratime", "diratime"),
            ("nosuid", "suid"),
            ("nodev", "dev"),
            ("noexec", "exec"),
            ("mand", "nomand"),
            ("lazytime", "nolazytime"),
        ] {
            assert_eq!(parse_options(&[on, off]).flags, MsFlags::empty(), "{on},{off}");
        }
    }

    #[test]
    fn data_passes_through_in_order() {
        let p = parse_options(&["nosuid", "size=65536k", "strictatime", "mode=755", "uid=5"]);
        assert_eq!(p.data.as_deref(), Some("size=65536k,mode=755,uid=5"));
        assert_eq!(p.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(parse_options(&["ro"]).data, None);
    }

    #[test]
    fn propagation_kept_in_order() {
        let p = parse_options(&["rbind", "rprivate", "slave", "unbindable"]);
        assert_eq!(
            p.propagation,
            vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC, MsFlags::MS_SLAVE, MsFlags::MS_UNBINDABLE]
        );
        assert_eq!(p.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(parse_propagation("rshared"), Some(MsFlags::MS_SHARED | MsFlags::MS_REC));
        assert_eq!(parse_propagation("ro"), None);
        assert_eq!(parse_propagation("bogus"), None);
    }

    #[test]
    fn recursive_attrs() {
        let p = parse_options(&["rro", "rnosuid", "rnodev", "rnoexec"]);
        assert_eq!(p.attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        assert_eq!(p.attr_clr, 0);
        assert!(p.flags.is_empty());
        let p = parse_options(&["rrw", "rsuid", "rdev", "rexec", "rdiratime", "ratime"]);
        assert_eq!(p.attr_set, 0);
        assert_eq!(
            p.attr_clr,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC
                | MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_NOATIME
        );
        let p = parse_options(&["rnoatime"]);
        assert_eq!((p.attr_set, p.attr_clr), (MOUNT_ATTR_NOATIME, MOUNT_ATTR_ATIME_MASK));
        let p = parse_options(&["rstrictatime"]);
        assert_eq!((p.attr_set, p.attr_clr), (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR_ATIME_MASK));
        let p = parse_options(&["rrelatime"]);
        assert_eq!((p.attr_set, p.attr_clr), (0, MOUNT_ATTR_ATIME_MASK));
        assert!(p.has_recursive_attrs());
        let p = parse_options(&["rnodiratime"]);
        assert_eq!((p.attr_set, p.attr_clr), (MOUNT_ATTR_NODIRATIME, 0));
        let p = parse_options(&["rnosymfollow"]);
        assert_eq!(p.attr_set, MOUNT_ATTR_NOSYMFOLLOW);
    }

    #[test]
    fn tmpcopyup_is_an_extension_not_data() {
        let p = parse_options(&["rw", "rprivate", "nosuid", "nodev", "tmpcopyup", "size=1m"]);
        assert!(p.copy_up);
        assert_eq!(p.data.as_deref(), Some("size=1m"));
        assert_eq!(p.flags, MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
        assert!(!parse_options(&["nosuid"]).copy_up);
        assert!(mount_option_names().any(|n| n == "tmpcopyup"));
    }
}
