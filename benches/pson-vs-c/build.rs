//! Compiles the official standalone C PSON codec (header-only: `pson_encode.h`,
//! `pson_decode.h`) with the small driver in `c/driver.c`, when `THINGER_C_PSON_DIR` names
//! the folder holding those headers (`encoding/pson/main` of thinger-io/iotmp-benchmarks).
//! Without the variable nothing is compiled and the `c_pson` cfg stays off: the crate
//! still builds, and the bench says why it measures nothing.

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-env-changed=THINGER_C_PSON_DIR");
    println!("cargo::rerun-if-changed=c/driver.c");
    println!("cargo::rustc-check-cfg=cfg(c_pson)");
    let Some(dir) = std::env::var_os("THINGER_C_PSON_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    for header in ["pson_encode.h", "pson_decode.h"] {
        let path = dir.join(header);
        assert!(
            path.is_file(),
            "THINGER_C_PSON_DIR={} has no {header}: point it at encoding/pson/main of thinger-io/iotmp-benchmarks",
            dir.display()
        );
        println!("cargo::rerun-if-changed={}", path.display());
    }
    // -O2, as the official codec is built; the driver only calls its inline functions.
    cc::Build::new().file("c/driver.c").include(&dir).opt_level(2).warnings(true).compile("pson_c_driver");
    println!("cargo::rustc-cfg=c_pson");
}
