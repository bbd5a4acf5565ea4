//! group (placeholder; filled in by its owner).
