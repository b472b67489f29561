//! The bpf(2) calls of the cgroup v2 device controller (src/cgroup/v2/devices.rs): load a
//! BPF_PROG_TYPE_CGROUP_DEVICE program, attach it to a group, list and detach the programs
//! attached there. The `bpf_attr` layouts are those of linux/bpf.h (the union is passed with
//! the size of the member used; the kernel requires the bytes past it to be zero).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// The attach type of a device program (enum bpf_attach_type).
const BPF_CGROUP_DEVICE: u32 = 6;
/// Several programs on one group, each of which must allow (and every ancestor's as well).
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct Attach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct Query {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFd {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(cmd, attr, sizeof attr).
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised repr(C) bpf_attr member of the size passed; the
    // pointers inside it (set by the callers) point at buffers that outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r)
}

/// Loads a device program (`insns`: 8-byte struct bpf_insn each, already encoded). On failure
/// the verifier's log, when it wrote one, follows the errno.
pub fn load_device_prog(insns: &[u64], license: &std::ffi::CStr) -> Result<OwnedFd, String> {
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..7].copy_from_slice(b"sandbox");
    let first = bpf(BPF_PROG_LOAD, &mut attr);
    let e = match first {
        // SAFETY: BPF_PROG_LOAD returned a new file descriptor that nothing else owns.
        Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(e) => e,
    };
    // Again with a log (level 1 only on failure: a log too small for a good program fails it).
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: as above.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(_) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let text = text.trim();
            Err(if text.is_empty() { e.to_string() } else { format!("{e}; verifier: {}", text.replace('\n', "; ")) })
        }
    }
}

/// Attaches device program `prog` to the cgroup directory `cgroup` (an O_DIRECTORY fd), beside
/// any others there (BPF_F_ALLOW_MULTI: a program of a parent group keeps applying as well).
pub fn attach_device_prog(cgroup: &impl AsRawFd, prog: &impl AsRawFd) -> std::io::Result<()> {
    let mut attr = Attach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// Detaches device program `prog` from the cgroup directory `cgroup`.
pub fn detach_device_prog(cgroup: &impl AsRawFd, prog: &impl AsRawFd) -> std::io::Result<()> {
    let mut attr = Attach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// The ids of the device programs attached to the group itself (not its ancestors').
pub fn device_progs(cgroup: &impl AsRawFd) -> std::io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = Query {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(attr.prog_cnt.min(64) as usize);
    Ok(ids)
}

/// A file descriptor of the loaded program `id` (to detach it).
pub fn prog_by_id(id: u32) -> std::io::Result<OwnedFd> {
    let mut attr = GetFd { id, ..Default::default() };
    let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)?;
    // SAFETY: BPF_PROG_GET_FD_BY_ID returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
