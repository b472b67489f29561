//! Builds the default seccomp program for docker's default capability set at compile time.
//!
//! It includes src/seccomp/default.rs, the module the library itself uses to build programs for
//! other capability sets at run time, so the static program and a run-time build cannot diverge
//! (a unit test checks they are equal). A `const fn` builder could not do this on our MSRV (1.80):
//! the builder needs `&mut` and growing vectors, not allowed in const fns before 1.83.

#[allow(dead_code)]
#[path = "src/seccomp/default.rs"]
mod default;

use std::fmt::Write as _;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/seccomp/default.rs");
    let prog = default::program(default::DOCKER_DEFAULT_CAPS & default::RELEVANT_CAPS);
    let mut s = format!(
        "/// The default program for docker's default capabilities ({} instructions), from build.rs.\n\
         static DEFAULT_PROGRAM: [libc::sock_filter; {}] = [\n",
        prog.len(),
        prog.len()
    );
    for (code, jt, jf, k) in prog {
        writeln!(s, "    libc::sock_filter {{ code: {code:#06x}, jt: {jt}, jf: {jf}, k: {k:#010x} }},").unwrap();
    }
    s.push_str("];\n");
    let out = std::path::Path::new(&std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("default_program.rs");
    std::fs::write(out, s).expect("writing default_program.rs");
}
