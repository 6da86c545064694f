//! HTML → observation (being written).
