//! placeholder crate root, replaced by its author.
