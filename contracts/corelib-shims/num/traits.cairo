// Sage shim: `core::num::traits` is referenced by the Cairo 2.4.0 corelib but missing from the
// PyPI `cairo-lang==0.13.0` sdist. Only the two traits the corelib itself uses are declared.
trait Zero<T> {
    fn zero() -> T;
    fn is_zero(self: @T) -> bool;
    fn is_non_zero(self: @T) -> bool;
}

trait One<T> {
    fn one() -> T;
    fn is_one(self: @T) -> bool;
    fn is_non_one(self: @T) -> bool;
}
