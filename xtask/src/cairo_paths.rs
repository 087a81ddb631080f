//! Where the pinned Cairo compiler lives in the tool cache. Standard library only: included with
//! `#[path]` by both `xtask` (which installs it) and `sage-devkit` (which compiles the contracts).

use std::path::{Path, PathBuf};

/// PyPI sdist that carries a static Cairo 2.4.0 `starknet-compile` and its corelib.
pub const CAIRO_LANG_SDIST: &str = "cairo-lang==0.13.0";
pub const CAIRO_LANG_ZIP: &str = "cairo-lang-0.13.0.zip";
/// sha256 of that sdist, pinned (checked before anything is extracted from it).
pub const CAIRO_LANG_SHA256: &str = "2789a87d3528d6015ae361a8086360125af28abb39451dfbc8655549aebc3553";
/// The compiler's folder inside the sdist.
pub const COMPILER_SUBDIR: &str = "cairo-lang-0.13.0/starkware/starknet/compiler/v1/sierra-compiler-major-1";

/// The Cairo install's own folder in the tool cache (`sdist/`, `x/`).
pub fn cairo_base(cache: &Path) -> PathBuf {
    cache.join("tools").join("cairo-2.4.0")
}

/// Root of the extracted Cairo compiler (`bin/`, `corelib/`).
pub fn cairo_root(cache: &Path) -> PathBuf {
    cairo_base(cache).join("x").join(COMPILER_SUBDIR)
}

/// The `starknet-compile` binary.
pub fn starknet_compile(cache: &Path) -> PathBuf {
    cairo_root(cache).join("bin").join("starknet-compile")
}
