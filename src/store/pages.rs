//! Store pages (being written).
